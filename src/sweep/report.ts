// `randmask report`: the paper's tables and figures from a results database.
// Table 5/6 (best LR, metric at it), Figure 3 (metric vs LR per ratio),
// 4a (Hessian norm vs ratio, when measured), 4b (metric vs epoch at small LRs),
// 4c (distance from init vs ratio), 5 (Random vs Structured Masking).
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { TopLevelSpec } from "vega-lite";
import { writeFileAtomic } from "../io/atomic.js";
import { headline, type Metrics } from "../eval/evaluate.js";
import type { RunRow } from "./db.js";
import { mean, modelLabel, selectBest, std, unitKey, type Selection } from "./select.js";
import { paperTables, resultsCsv, sci, TIE_RULE, tieNotes } from "./tables.js";
import { renderChart } from "../plot/render.js";

type Datum = Record<string, string | number | null>;
const FINISHED = new Set(["completed", "diverged"]);
const MASKING = ["random-mask", "structured-mask"];

/** Mean (and std) of `value` over the rows sharing `key`, one datum per key. */
function aggregate<T>(items: T[], key: (t: T) => Datum, value: (t: T) => number | null): Datum[] {
  const groups = new Map<string, { d: Datum; xs: number[] }>();
  for (const it of items) {
    const v = value(it);
    if (v === null || !Number.isFinite(v)) continue;
    const d = key(it);
    const k = JSON.stringify(d);
    const g = groups.get(k) ?? groups.set(k, { d, xs: [] }).get(k)!;
    g.xs.push(v);
  }
  return [...groups.values()].map(({ d, xs }) => ({ ...d, value: mean(xs), std: std(xs), n: xs.length }));
}

/** The ratio as a legend label, ordered from large to small. */
const ratioLabel = (r: number | null) => (r === null ? "-" : sci(r));
const ratioSort = (rows: { trainable_ratio: number | null }[]) =>
  [...new Set(rows.map((r) => r.trainable_ratio))].sort((a, b) => (b ?? 0) - (a ?? 0)).map(ratioLabel);
const logAxis = (field: string, title: string) => ({ field, type: "quantitative" as const, scale: { type: "log" as const }, title, axis: { format: "~e" } });

/** Rows at the LR the selection picked for their unit. */
function atSelectedLr(rows: RunRow[], sel: Selection[]): RunRow[] {
  const best = new Map(sel.map((s) => [s.unit, s.bestLr]));
  return rows.filter((r) => best.get(unitKey(r)) === r.lr);
}

export interface ReportOptions {
  /** Figure 4b's LRs: those ≤ this (default: the smallest LR of the Random Masking grid). */
  smallLr?: number;
}

/**
 * Writes report.md (tables and figure links), results.csv and the figures
 * (SVG + PNG) into `out`; returns the files written. Figures whose data the
 * database lacks (no Random Masking runs, no Hessian columns filled) are left out.
 */
export async function writeReport(allRows: RunRow[], out: string, o: ReportOptions = {}): Promise<string[]> {
  mkdirSync(out, { recursive: true });
  const rows = allRows.filter((r) => FINISHED.has(r.status));
  const sel = selectBest(rows);
  const metric = sel[0]?.metric ?? "accuracy";
  const files: string[] = [];
  const figures: string[] = [];
  const figure = async (name: string, caption: string, spec: TopLevelSpec) => {
    files.push(...(await renderChart(spec, join(out, name))));
    figures.push(`### ${caption}`, "", `![${caption}](${name}.svg)`, "");
  };
  const rm = rows.filter((r) => r.method === "random-mask");
  // one panel per task; per model and task when the database holds several models
  const several = new Set(rows.map((r) => r.model)).size > 1;
  const panel = (r: RunRow) => (several ? `${modelLabel(r.model)} · ${r.task}` : r.task);
  const facetTask = { field: "task", type: "nominal" as const, title: several ? "model · task" : "task" };
  const ratioColor = (order: string[]) => ({ field: "ratio", type: "nominal" as const, title: "trainable ratio", sort: order });

  if (rm.length) {
    const data = [
      ...aggregate(rm, (r) => ({ task: panel(r), ratio: ratioLabel(r.trainable_ratio), lr: r.lr, split: "dev" }), (r) => r.dev_metric),
      ...aggregate(rm, (r) => ({ task: panel(r), ratio: ratioLabel(r.trainable_ratio), lr: r.lr, split: "test" }), (r) => r.test_metric),
    ];
    await figure("fig3-metric-vs-lr", `Figure 3: ${metric} vs learning rate, Random Masking`, {
      $schema: "https://vega.github.io/schema/vega-lite/v6.json",
      title: `Random Masking: ${metric} vs learning rate (mean over seeds)`,
      data: { values: data },
      facet: { column: facetTask, row: { field: "split", type: "nominal", title: "split" } },
      spec: { width: 220, height: 160, mark: { type: "line", point: true },
        encoding: { x: logAxis("lr", "learning rate"), y: { field: "value", type: "quantitative", title: metric },
          color: ratioColor(ratioSort(rm)) } },
    } as TopLevelSpec);

    const smallLr = o.smallLr ?? Math.min(...rm.map((r) => r.lr));
    const small = rm.filter((r) => r.lr <= smallLr && r.epoch_records);
    const epochs = small.flatMap((r) => (JSON.parse(r.epoch_records!) as { epoch: number; dev: Metrics }[])
      .map((e) => ({ task: panel(r), ratio: r.trainable_ratio, lr: r.lr, epoch: e.epoch, dev: headline(e.dev) })));
    if (epochs.length) {
      await figure("fig4b-metric-vs-epoch", `Figure 4b: dev ${metric} vs epoch at small learning rates (≤ ${sci(smallLr)})`, {
        $schema: "https://vega.github.io/schema/vega-lite/v6.json",
        title: `Random Masking at small LRs: dev ${metric} vs epoch`,
        data: { values: aggregate(epochs, (e) => ({ task: e.task, ratio: ratioLabel(e.ratio), lr: `lr ${sci(e.lr)}`, epoch: e.epoch }), (e) => e.dev) },
        facet: { column: facetTask, row: { field: "lr", type: "nominal", title: "learning rate" } },
        spec: { width: 220, height: 160, mark: { type: "line", point: true },
          encoding: { x: { field: "epoch", type: "quantitative", title: "epoch", axis: { tickMinStep: 1 } },
            y: { field: "value", type: "quantitative", title: `dev ${metric}`, scale: { zero: false } }, color: ratioColor(ratioSort(small)) } },
      } as TopLevelSpec);
    }
  }

  const best = atSelectedLr(rows, sel).filter((r) => MASKING.includes(r.method));
  const byRatio = (value: (r: RunRow) => number | null) =>
    aggregate(best, (r) => ({ task: panel(r), method: r.method, ratio: r.trainable_ratio }), value);
  const ratioX = logAxis("ratio", "trainable ratio (of all parameters)");
  const methodColor = { field: "method", type: "nominal" as const, title: "method" };
  const distance = byRatio((r) => r.distance_weight);
  if (distance.length) {
    await figure("fig4c-distance-vs-ratio", "Figure 4c: ℓ2 distance from init vs trainable ratio (at the best LR)", {
      $schema: "https://vega.github.io/schema/vega-lite/v6.json",
      title: "Distance from init ‖ΔW‖ vs trainable ratio (best LR, mean over seeds)",
      data: { values: distance }, facet: { column: facetTask },
      spec: { width: 220, height: 180, mark: { type: "line", point: true },
        encoding: { x: ratioX, y: logAxis("value", "‖ΔW‖ (ℓ2 distance from init)"), color: methodColor } },
    } as TopLevelSpec);
  }
  const hess = [
    ...aggregate(best, (r) => ({ task: panel(r), method: r.method, ratio: r.trainable_ratio, when: "before training" }), (r) => r.hessian_before),
    ...aggregate(best, (r) => ({ task: panel(r), method: r.method, ratio: r.trainable_ratio, when: "after training" }), (r) => r.hessian_after),
  ].filter((d) => d.method === "random-mask");
  if (hess.length) {
    await figure("fig4a-hessian-vs-ratio", "Figure 4a: Hessian ℓ2 norm vs trainable ratio", {
      $schema: "https://vega.github.io/schema/vega-lite/v6.json",
      title: "Random Masking: Hessian ℓ2 norm of the training loss vs trainable ratio",
      data: { values: hess }, facet: { column: facetTask },
      spec: { width: 220, height: 180, mark: { type: "line", point: true },
        encoding: { x: ratioX, y: logAxis("value", "Hessian ℓ2 norm (largest |eigenvalue|)"), color: { field: "when", type: "nominal", title: "" } } },
    } as TopLevelSpec);
  }
  const acc = byRatio((r) => r.test_metric);
  if (new Set(acc.map((d) => d.method)).size === 2) {
    await figure("fig5-random-vs-structured", `Figure 5: Random vs Structured Masking, test ${metric} vs trainable ratio`, {
      $schema: "https://vega.github.io/schema/vega-lite/v6.json",
      title: `Random vs Structured Masking: test ${metric} at the best LR (mean ± std over seeds)`,
      data: { values: acc.map((d) => ({ ...d, lo: (d.value as number) - (d.std as number), hi: (d.value as number) + (d.std as number) })) },
      facet: { column: facetTask },
      spec: { width: 220, height: 180, encoding: { x: ratioX, color: methodColor },
        layer: [
          { mark: { type: "line", point: true }, encoding: { y: { field: "value", type: "quantitative", title: `test ${metric}`, scale: { zero: false } } } },
          { mark: "errorbar", encoding: { y: { field: "lo", type: "quantitative", title: `test ${metric}` }, y2: { field: "hi" } } },
        ] },
    } as TopLevelSpec);
  }

  const csv = join(out, "results.csv");
  writeFileAtomic(csv, resultsCsv(sel));
  const md = join(out, "report.md");
  const ties = tieNotes(sel);
  writeFileAtomic(md, [`# Results`, "", `${rows.length} finished runs (${rows.filter((r) => r.status === "diverged").length} diverged); ` +
    "selection: per (model, task, method, ratio) the LR with the best mean dev metric over seeds." +
    (sel.some((s) => s.variant) ? " Runs differing in other settings are selected apart; the settings that differ follow the method, in parentheses." : ""),
    ...(ties.length ? ["", `Ties on mean dev (${TIE_RULE}):`, "", ...ties.map((t) => `- ${t}`)] : []),
    "", paperTables(sel), "## Figures", "",
    ...figures].join("\n"));
  return [md, csv, ...files];
}
