// Selection as in the paper (Tables 5, 6): per (model, task, method, ratio),
// the learning rate with the best mean dev metric over seeds; its test mean ± std.
import { basename } from "node:path";
import type { RunRow } from "./db.js";

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
  metric: string;
  trainableParams: number | null;
  /** The selected LR, or null when no LR is eligible. */
  bestLr: number | null;
  n: number;
  devMean: number | null;
  testMean: number | null;
  testStd: number | null;
  lrs: LrSummary[];
}

const FINISHED = new Set(["completed", "diverged"]);
export const modelLabel = (path: string) => basename(path);

export function mean(xs: number[]): number | null { return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null; }
/** Sample standard deviation (n − 1); 0 for one value. */
export function std(xs: number[]): number | null {
  const m = mean(xs);
  if (m === null) return null;
  return xs.length < 2 ? 0 : Math.sqrt(xs.reduce((s, x) => s + (x - m) ** 2, 0) / (xs.length - 1));
}

/**
 * Groups finished runs by (model, task, method, ratio) and picks the LR with
 * the highest mean dev headline metric over seeds, among LRs whose runs all
 * reached a dev evaluation (ties: the smaller LR). Sorted by model, task,
 * method, then ratio from large to small as in the paper's tables.
 */
export function selectBest(rows: RunRow[]): Selection[] {
  const groups = new Map<string, RunRow[]>();
  for (const r of rows) {
    if (!FINISHED.has(r.status)) continue;
    const key = JSON.stringify([modelLabel(r.model), r.task, r.method, r.trainable_ratio]);
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  const out: Selection[] = [];
  for (const [key, runs] of groups) {
    const [model, task, method, ratio] = JSON.parse(key) as [string, string, string, number | null];
    const lrs = [...new Set(runs.map((r) => r.lr))].sort((a, b) => a - b).map((lr): LrSummary => {
      const at = runs.filter((r) => r.lr === lr);
      const dev = at.flatMap((r) => (r.dev_metric === null ? [] : [r.dev_metric]));
      const test = at.flatMap((r) => (r.test_metric === null ? [] : [r.test_metric]));
      return { lr, n: at.length, diverged: at.filter((r) => r.status === "diverged").length, devMean: mean(dev), testMean: mean(test),
        testStd: std(test), eligible: dev.length === at.length };
    });
    let best: LrSummary | null = null;
    for (const l of lrs) if (l.eligible && (best === null || l.devMean! > best.devMean!)) best = l;
    out.push({ model, task, method, ratio, metric: runs.find((r) => r.metric)?.metric ?? "accuracy",
      trainableParams: runs[0].trainable_params, bestLr: best?.lr ?? null, n: best?.n ?? 0, devMean: best?.devMean ?? null,
      testMean: best?.testMean ?? null, testStd: best?.testStd ?? null, lrs });
  }
  return out.sort((a, b) => a.model.localeCompare(b.model) || a.task.localeCompare(b.task) || a.method.localeCompare(b.method) ||
    (b.ratio ?? Infinity) - (a.ratio ?? Infinity));
}
