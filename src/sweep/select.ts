// Selection as in the paper (Tables 5, 6): per run configuration less its seed
// and LR, the learning rate with the best mean dev metric over seeds; its test mean ± std.
import { basename } from "node:path";
import type { RunRow } from "./db.js";
import { canonicalJson } from "./spec.js";

export interface LrSummary {
  lr: number;
  /** Finished runs (completed or diverged) at this LR. */
  n: number;
  /** Of them, runs that diverged (with or without a dev evaluation before). */
  diverged: number;
  devMean: number | null;
  testMean: number | null;
  testStd: number | null;
  /** Every finished run has a dev metric (none diverged before its first evaluation). */
  eligible: boolean;
}

export interface Selection {
  model: string;
  task: string;
  method: string;
  /** Requested trainable ratio of the whole model; null for methods without one. */
  ratio: number | null;
  /**
   * What sets this unit apart from others of the same (model, task, method, ratio):
   * the differing settings as `key=value` separated by spaces (`r=4`, `epochs=2`); "" when none differ.
   */
  variant: string;
  /** The unit's identity: unitKey of each of its runs. */
  unit: string;
  metric: string;
  trainableParams: number | null;
  /** The selected LR, or null when no LR is eligible. */
  bestLr: number | null;
  /**
   * The eligible LRs whose mean dev metric ties the best (within TIE), ascending: bestLr is the first.
   * More than one is a tie, broken toward the smallest LR (see selectBest).
   */
  tiedLrs: number[];
  n: number;
  devMean: number | null;
  testMean: number | null;
  testStd: number | null;
  lrs: LrSummary[];
}

const FINISHED = new Set(["completed", "diverged"]);
/** Mean dev metrics (in [0, 1]) this close are a tie: means of equal scores summed in another order differ in the last bits. */
export const TIE = 1e-9;
export const modelLabel = (path: string) => basename(path);

export function mean(xs: number[]): number | null { return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null; }
/** Sample standard deviation (n − 1); 0 for one value. */
export function std(xs: number[]): number | null {
  const m = mean(xs);
  if (m === null) return null;
  return xs.length < 2 ? 0 : Math.sqrt(xs.reduce((s, x) => s + (x - m) ** 2, 0) / (xs.length - 1));
}

/**
 * A run's stored configuration less what varies between the runs of one unit: seeds (the run's and the mask's)
 * and the LR; less `hessian` too, a measurement taken on the run that does not change its training (a sweep
 * measures it on some seeds only, Figure 4a's setup).
 */
function unitConfig(r: RunRow): Record<string, unknown> {
  let c: Record<string, unknown>;
  try { c = JSON.parse(r.config) as Record<string, unknown>; } catch { c = {}; }
  delete c.hessian;
  const strip = (v: unknown, keys: string[]) => (v !== null && typeof v === "object" ? Object.fromEntries(
    Object.entries(v as Record<string, unknown>).filter(([k]) => !keys.includes(k))) : v);
  return { ...c, ...("train" in c ? { train: strip(c.train, ["lr", "seed"]) } : {}),
    ...("methodOptions" in c ? { methodOptions: strip(c.methodOptions, ["seed"]) } : {}) };
}

/** The selection unit of a run: (model, task, method, ratio) and the rest of its configuration but seeds and LR. */
export function unitKey(r: RunRow): string {
  return canonicalJson([modelLabel(r.model), r.task, r.method, r.trainable_ratio, unitConfig(r)]);
}

/** Leaves of a configuration as `path → value text`; methodOptions and train keys under their own names (`r`, `epochs`). */
function leaves(v: unknown, path: string, out: Map<string, string>): Map<string, string> {
  if (v !== null && typeof v === "object" && !Array.isArray(v)) {
    for (const [k, x] of Object.entries(v)) leaves(x, path === "" || path === "methodOptions" || path === "train" ? k : `${path}.${k}`, out);
  } else out.set(path, typeof v === "string" ? v : JSON.stringify(v));
  return out;
}

/**
 * Per unit (unitKey), the `key=value` settings, separated by spaces, that differ among the units whose runs
 * share `group(run)`; keys in `omit` are left out (say the ratio where it is already a chart's axis).
 */
function settingsApart(units: Map<string, RunRow[]>, group: (r: RunRow) => string, omit: string[] = []): Map<string, string> {
  const byGroup = new Map<string, string[]>();
  for (const [unit, runs] of units) {
    const g = group(runs[0]);
    byGroup.set(g, [...(byGroup.get(g) ?? []), unit]);
  }
  const out = new Map<string, string>();
  for (const members of byGroup.values()) {
    const flat = members.map((u) => leaves(unitConfig(units.get(u)![0]), "", new Map()));
    const keys = [...new Set(flat.flatMap((f) => [...f.keys()]))].sort()
      .filter((k) => !omit.includes(k) && new Set(flat.map((f) => f.get(k) ?? "-")).size > 1);
    members.forEach((u, i) => out.set(u, keys.map((k) => `${k}=${flat[i].get(k) ?? "-"}`).join(" ")));
  }
  return out;
}

function byUnit(rows: RunRow[]): Map<string, RunRow[]> {
  const units = new Map<string, RunRow[]>();
  for (const r of rows) {
    const key = unitKey(r);
    units.set(key, [...(units.get(key) ?? []), r]);
  }
  return units;
}

/**
 * Per unit of `rows` (unitKey), what sets it apart from the other units of its `group`, less `omit` keys:
 * the label that keeps a chart's series of different configurations apart (`epochs=2 r=4`; "" when none differ).
 */
export function seriesLabels(rows: RunRow[], group: (r: RunRow) => string, omit: string[] = []): Map<string, string> {
  return settingsApart(byUnit(rows), group, omit);
}

/**
 * Groups finished runs into units, runs whose stored configuration differs only
 * in seeds and LR, and per unit picks the LR with the highest mean dev headline
 * metric over seeds, among LRs whose runs all reached a dev evaluation. Sorted by
 * model, task, method, ratio from large to small as in the paper's tables, then variant.
 *
 * Ties (mean dev within TIE) go to the smallest tied LR, and `tiedLrs` names them all. Why the
 * smallest: the dev metric gives no evidence for the larger one, which sits nearer the divergence
 * edge; and Table 5's claim is that sparser masks need larger LRs, so breaking ties upward would
 * put that trend into the table without the data showing it.
 */
export function selectBest(rows: RunRow[]): Selection[] {
  const units = byUnit(rows.filter((r) => FINISHED.has(r.status)));
  const variant = settingsApart(units, (r) => JSON.stringify([modelLabel(r.model), r.task, r.method, r.trainable_ratio]));
  const out: Selection[] = [];
  for (const [unit, runs] of units) {
    const { task, method, trainable_ratio: ratio } = runs[0], model = modelLabel(runs[0].model);
    const lrs = [...new Set(runs.map((r) => r.lr))].sort((a, b) => a - b).map((lr): LrSummary => {
      const at = runs.filter((r) => r.lr === lr);
      const dev = at.flatMap((r) => (r.dev_metric === null ? [] : [r.dev_metric]));
      const test = at.flatMap((r) => (r.test_metric === null ? [] : [r.test_metric]));
      return { lr, n: at.length, diverged: at.filter((r) => r.status === "diverged").length, devMean: mean(dev), testMean: mean(test),
        testStd: std(test), eligible: dev.length === at.length };
    });
    const eligible = lrs.filter((l) => l.eligible);
    const top = Math.max(...eligible.map((l) => l.devMean!));
    const tied = eligible.filter((l) => l.devMean! >= top - TIE); // ascending LR
    const best: LrSummary | null = tied[0] ?? null;
    out.push({ model, task, method, ratio, variant: variant.get(unit)!, unit, metric: runs.find((r) => r.metric)?.metric ?? "accuracy",
      trainableParams: runs[0].trainable_params, bestLr: best?.lr ?? null, tiedLrs: tied.map((l) => l.lr), n: best?.n ?? 0, devMean: best?.devMean ?? null,
      testMean: best?.testMean ?? null, testStd: best?.testStd ?? null, lrs });
  }
  return out.sort((a, b) => a.model.localeCompare(b.model) || a.task.localeCompare(b.task) || a.method.localeCompare(b.method) ||
    (b.ratio ?? Infinity) - (a.ratio ?? Infinity) || a.variant.localeCompare(b.variant, undefined, { numeric: true }));
}
