// Result tables: the selection as text, CSV, and the paper's Table 5/6 layout
// (method × ratio rows, task columns) in markdown.
import type { Selection } from "./select.js";

/** 1e-5, 2.5e-4: the short exponent form the paper's tables use. */
export function sci(v: number | null): string {
  if (v === null) return "-";
  return Number(v.toPrecision(3)).toExponential().replace("e+", "e").replace(/\.0+e/, "e");
}
const pct = (v: number | null) => (v === null ? "-" : (100 * v).toFixed(1));
const methodRow = (s: Selection) => (s.ratio === null ? s.method : `${s.method} ${sci(s.ratio)}`) + (s.variant ? ` (${s.variant})` : "");
/** The variant column after ratio, only when some unit has a variant: ordinary sweeps' tables keep their columns. */
const withVariant = <T>(sel: Selection[], row: T[], v: T): T[] => (sel.some((s) => s.variant) ? [...row.slice(0, 4), v, ...row.slice(4)] : row);

const tie = (s: Selection) => s.tiedLrs.length > 1;
/** The tied_lrs column last, only when some unit has a tie, as the variant column. */
const withTies = <T>(sel: Selection[], row: T[], v: T): T[] => (sel.some(tie) ? [...row, v] : row);
const tiedText = (s: Selection) => (tie(s) ? s.tiedLrs.map(sci).join(" ") : "");
/** Why ties go where they go (selectBest); said wherever a tie is shown. */
export const TIE_RULE = "ties go to the smallest LR: dev gives no evidence for a larger one, which sits nearer divergence";

/** One line per unit whose best mean dev metric is shared by several LRs: which tied, at what value, which was chosen. */
export function tieNotes(sel: Selection[]): string[] {
  return sel.filter(tie).map((s) => `${s.model} ${s.task} ${methodRow(s)}: LRs ${s.tiedLrs.map(sci).join(", ")} tie at mean dev ${s.metric} ` +
    `${s.devMean!.toFixed(4)}; chose ${sci(s.bestLr)}`);
}

const COLUMNS = ["model", "task", "method", "ratio", "trainable_params", "metric", "best_lr", "n", "dev_mean", "test_mean", "test_std"];
const values = (s: Selection) => [s.model, s.task, s.method, s.ratio === null ? "" : sci(s.ratio), s.trainableParams ?? "", s.metric,
  s.bestLr === null ? "" : sci(s.bestLr), s.n, s.devMean?.toFixed(4) ?? "", s.testMean?.toFixed(4) ?? "", s.testStd?.toFixed(4) ?? ""];

/** One row per selection unit (Selection): the selected LR and its dev and test means. */
export function resultsCsv(sel: Selection[]): string {
  const cell = (v: unknown) => (/[",\n]/.test(String(v)) ? `"${String(v).replace(/"/g, '""')}"` : String(v));
  return [withTies<unknown>(sel, withVariant<unknown>(sel, COLUMNS, "variant"), "tied_lrs"),
    ...sel.map((s) => withTies<unknown>(sel, withVariant<unknown>(sel, values(s), s.variant), tiedText(s)))]
    .map((r) => r.map(cell).join(",")).join("\n") + "\n";
}

/** The same as an aligned text table, with test as mean ± std in percent; a tied best LR is starred and explained below. */
export function resultsTable(sel: Selection[]): string {
  const head = withVariant(sel, ["model", "task", "method", "ratio", "params", "best lr", "n", "dev %", "test % (± std)"], "variant");
  const rows = sel.map((s) => withVariant(sel, [s.model, s.task, s.method, s.ratio === null ? "-" : sci(s.ratio), String(s.trainableParams ?? "-"),
    sci(s.bestLr) + (tie(s) ? "*" : ""), String(s.n), pct(s.devMean), s.testMean === null ? "-" : `${pct(s.testMean)} ± ${pct(s.testStd)}`], s.variant || "-"));
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const notes = tieNotes(sel);
  return [...[head, ...rows].map((r) => r.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd()),
    ...(notes.length ? ["", `* tie on mean dev (${TIE_RULE}):`, ...notes.map((n) => `  ${n}`)] : [])].join("\n") + "\n";
}

/**
 * Markdown in the layout of the paper's Tables 5 and 6, one pair per model:
 * test metric (mean ± std over seeds, %) at the selected LR, and the selected LR.
 */
export function paperTables(sel: Selection[]): string {
  const out: string[] = [];
  for (const model of [...new Set(sel.map((s) => s.model))]) {
    const mine = sel.filter((s) => s.model === model);
    const tasks = [...new Set(mine.map((s) => s.task))];
    const rows = [...new Set(mine.map(methodRow))];
    const cell = (row: string, task: string, f: (s: Selection) => string) => {
      const s = mine.find((x) => methodRow(x) === row && x.task === task);
      return s ? f(s) : "";
    };
    const table = (title: string, f: (s: Selection) => string) => [
      `### ${title}`, "", `| method | ${tasks.join(" | ")} |`, `|---|${tasks.map(() => "---:").join("|")}|`,
      ...rows.map((r) => `| ${r} | ${tasks.map((t) => cell(r, t, f)).join(" | ")} |`), ""];
    out.push(`## ${model}`, "",
      ...table("Test metric at the best LR (%, mean ± std over seeds; Table 6)", (s) => (s.testMean === null ? "diverged" : `${pct(s.testMean)} ± ${pct(s.testStd)}`)),
      ...table("Best learning rate by mean dev metric (Table 5)", (s) => sci(s.bestLr) + (tie(s) ? ` (tie: ${s.tiedLrs.map(sci).join(", ")})` : "")));
  }
  return out.join("\n");
}
