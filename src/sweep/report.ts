// `randmask report`: the paper's tables and figures from a results database.
// Table 5/6 (best LR, metric at it), Figure 3 (metric vs LR per ratio),
// 4a (Hessian norm vs ratio, when measured), 4b (metric vs epoch at small LRs),
// 4c (distance from init vs ratio), 5 (Random vs Structured Masking).
import { mkdirSync, rmSync } from "node:fs";
import { basename, join } from "node:path";
import type { TopLevelSpec } from "vega-lite";
import { writeFileAtomic, writeJsonAtomic } from "../io/atomic.js";
import { REPORT_MARKER, earlierReport, reportFolderFault } from "./report-folder.js";
import { RANDMASK_VERSION } from "../version.js";
import { headline, type Metrics } from "../eval/evaluate.js";
import type { RunRow } from "./db.js";
import { mean, modelLabel, selectBest, seriesLabels, std, unitKey, type Selection } from "./select.js";
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

/** The ratio as a legend label. */
const ratioLabel = (r: number | null) => (r === null ? "-" : sci(r));
/** A series' legend label: its name, then the settings that set it apart, in parentheses. */
const seriesLabel = (name: string, settings: string) => (settings ? `${name} (${settings})` : name);
const logAxis = (field: string, title: string) => ({ field, type: "quantitative" as const, scale: { type: "log" as const }, title, axis: { format: "~e" } });
/** The series labels of `data`, ordered by ratio from large to small as in the paper, then by label. */
const seriesByRatio = (data: Datum[]) => [...new Map(data.map((d) => [d.series, d.ratio as number | null]))]
  .sort(([a, x], [b, y]) => (y ?? 0) - (x ?? 0) || String(a).localeCompare(String(b), undefined, { numeric: true })).map(([label]) => label);

/** Rows at the LR the selection picked for their unit. */
function atSelectedLr(rows: RunRow[], sel: Selection[]): RunRow[] {
  const best = new Map(sel.map((s) => [s.unit, s.bestLr]));
  return rows.filter((r) => best.get(unitKey(r)) === r.lr);
}

export interface ReportOptions {
  /** Figure 4b's LRs: those ≤ this (default: the smallest LR of the Random Masking grid). */
  smallLr?: number;
}

/** A report figure: its file name (no extension), its caption in report.md, its Vega-Lite spec with the data inline. */
export interface ReportFigure { name: string; caption: string; spec: TopLevelSpec }

/**
 * The report's figures from finished runs and their selection (selectBest). A point averages over seeds
 * only: runs of different configurations (anything but seed and LR: method options, epochs, dtype, model
 * folder) are separate series, labelled with the settings that set them apart within their panel and method.
 * Figures whose data the runs lack (no Random Masking runs, no Hessian columns filled) are left out.
 */
export function reportFigures(rows: RunRow[], sel: Selection[], o: ReportOptions = {}): ReportFigure[] {
  const metric = sel[0]?.metric ?? "accuracy";
  const figures: ReportFigure[] = [];
  const figure = (name: string, caption: string, spec: TopLevelSpec) => figures.push({ name, caption, spec });
  const rm = rows.filter((r) => r.method === "random-mask");
  // one panel per task; per model and task when the database holds several models
  const several = new Set(rows.map((r) => r.model)).size > 1;
  const panel = (r: RunRow) => (several ? `${modelLabel(r.model)} · ${r.task}` : r.task);
  // the ratio is an axis or named in the label already; anything else that differs is a series of its own
  const apart = seriesLabels(rows, (r) => JSON.stringify([panel(r), r.method]), ["trainableRatio"]);
  const settings = (r: RunRow) => apart.get(unitKey(r)) ?? "";
  const byRatio = (r: RunRow) => ({ ratio: r.trainable_ratio, series: seriesLabel(ratioLabel(r.trainable_ratio), settings(r)) });
  const facetTask = { field: "task", type: "nominal" as const, title: several ? "model · task" : "task" };
  const ratioColor = (data: Datum[]) => ({ field: "series", type: "nominal" as const, title: "trainable ratio", sort: seriesByRatio(data) });

  if (rm.length) {
    const data = [
      ...aggregate(rm, (r) => ({ task: panel(r), ...byRatio(r), lr: r.lr, split: "dev" }), (r) => r.dev_metric),
      ...aggregate(rm, (r) => ({ task: panel(r), ...byRatio(r), lr: r.lr, split: "test" }), (r) => r.test_metric),
    ];
    figure("fig3-metric-vs-lr", `Figure 3: ${metric} vs learning rate, Random Masking`, {
      $schema: "https://vega.github.io/schema/vega-lite/v6.json",
      title: `Random Masking: ${metric} vs learning rate (mean over seeds)`,
      data: { values: data },
      facet: { column: facetTask, row: { field: "split", type: "nominal", title: "split" } },
      spec: { width: 220, height: 160, mark: { type: "line", point: true },
        encoding: { x: logAxis("lr", "learning rate"), y: { field: "value", type: "quantitative", title: metric }, color: ratioColor(data) } },
    } as TopLevelSpec);

    const smallLr = o.smallLr ?? Math.min(...rm.map((r) => r.lr));
    const small = rm.filter((r) => r.lr <= smallLr && r.epoch_records);
    const epochs = small.flatMap((r) => (JSON.parse(r.epoch_records!) as { epoch: number; dev: Metrics }[])
      .map((e) => ({ task: panel(r), ...byRatio(r), lr: r.lr, epoch: e.epoch, dev: headline(e.dev) })));
    if (epochs.length) {
      const data = aggregate(epochs, (e) => ({ task: e.task, ratio: e.ratio, series: e.series, lr: `lr ${sci(e.lr)}`, epoch: e.epoch }), (e) => e.dev);
      figure("fig4b-metric-vs-epoch", `Figure 4b: dev ${metric} vs epoch at small learning rates (≤ ${sci(smallLr)})`, {
        $schema: "https://vega.github.io/schema/vega-lite/v6.json",
        title: `Random Masking at small LRs: dev ${metric} vs epoch`,
        data: { values: data },
        facet: { column: facetTask, row: { field: "lr", type: "nominal", title: "learning rate" } },
        spec: { width: 220, height: 160, mark: { type: "line", point: true },
          encoding: { x: { field: "epoch", type: "quantitative", title: "epoch", axis: { tickMinStep: 1 } },
            y: { field: "value", type: "quantitative", title: `dev ${metric}`, scale: { zero: false } }, color: ratioColor(data) } },
      } as TopLevelSpec);
    }
  }

  const best = atSelectedLr(rows, sel).filter((r) => MASKING.includes(r.method));
  const byMethod = (r: RunRow) => ({ task: panel(r), method: r.method, series: seriesLabel(r.method, settings(r)), ratio: r.trainable_ratio });
  const ratioX = logAxis("ratio", "trainable ratio (of all parameters)");
  const methodColor = { field: "series", type: "nominal" as const, title: "method" };
  const distance = aggregate(best, byMethod, (r) => r.distance_weight);
  if (distance.length) {
    figure("fig4c-distance-vs-ratio", "Figure 4c: ℓ2 distance from init vs trainable ratio (at the best LR)", {
      $schema: "https://vega.github.io/schema/vega-lite/v6.json",
      title: "Distance from init ‖ΔW‖ vs trainable ratio (best LR, mean over seeds)",
      data: { values: distance }, facet: { column: facetTask },
      spec: { width: 220, height: 180, mark: { type: "line", point: true },
        encoding: { x: ratioX, y: logAxis("value", "‖ΔW‖ (ℓ2 distance from init)"), color: methodColor } },
    } as TopLevelSpec);
  }
  const bestRm = best.filter((r) => r.method === "random-mask");
  const hess = [
    ...aggregate(bestRm, (r) => ({ ...byMethod(r), when: "before training", series: seriesLabel("before training", settings(r)) }), (r) => r.hessian_before),
    ...aggregate(bestRm, (r) => ({ ...byMethod(r), when: "after training", series: seriesLabel("after training", settings(r)) }), (r) => r.hessian_after),
  ];
  if (hess.length) {
    figure("fig4a-hessian-vs-ratio", "Figure 4a: Hessian ℓ2 norm vs trainable ratio", {
      $schema: "https://vega.github.io/schema/vega-lite/v6.json",
      title: "Random Masking: Hessian ℓ2 norm of the training loss vs trainable ratio",
      data: { values: hess }, facet: { column: facetTask },
      spec: { width: 220, height: 180, mark: { type: "line", point: true },
        encoding: { x: ratioX, y: logAxis("value", "Hessian ℓ2 norm (largest |eigenvalue|)"), color: { field: "series", type: "nominal", title: "" } } },
    } as TopLevelSpec);
  }
  const acc = aggregate(best, byMethod, (r) => r.test_metric);
  if (new Set(acc.map((d) => d.method)).size === 2) {
    figure("fig5-random-vs-structured", `Figure 5: Random vs Structured Masking, test ${metric} vs trainable ratio`, {
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
  return figures;
}

/**
 * Writes report.md (tables and figure links), results.csv and the figures (SVG + PNG, reportFigures) into
 * `out`, and the REPORT_MARKER listing them; returns the files written. An earlier report's figures that no
 * longer apply are removed.
 * @throws Error naming `out` when it is (or lies under) a file, or holds files but no earlier report.
 */
export async function writeReport(allRows: RunRow[], out: string, o: ReportOptions = {}): Promise<string[]> {
  const fault = reportFolderFault(out);
  if (fault) throw new Error(`--out ${out}: ${fault.text}; nothing was written`);
  const earlier = earlierReport(out) ?? [];
  mkdirSync(out, { recursive: true });
  // marked first and after each figure, listing the earlier files too: a report stopped half-way is still one
  const mark = (files: string[]) =>
    writeJsonAtomic(join(out, REPORT_MARKER), { kind: "randmask-report", randmask_version: RANDMASK_VERSION, files: [...new Set(files.map((f) => basename(f)))] });
  mark(earlier);
  const rows = allRows.filter((r) => FINISHED.has(r.status));
  const sel = selectBest(rows);
  const files: string[] = [];
  const figures: string[] = [];
  for (const { name, caption, spec } of reportFigures(rows, sel, o)) {
    files.push(...(await renderChart(spec, join(out, name))));
    mark([...earlier, ...files]);
    figures.push(`### ${caption}`, "", `![${caption}](${name}.svg)`, "");
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
  const written = [md, csv, ...files];
  const names = new Set(written.map((f) => basename(f)));
  for (const f of earlier) if (!names.has(f)) rmSync(join(out, f), { force: true });
  mark(written);
  return written;
}
