#!/usr/bin/env node
// The numbers behind REPORT.md's verdicts on the paper's claims (a)–(e), from the sweep's database:
// the paper's selection (best mean dev over seeds per method and ratio, src/sweep/select.ts), then at
// each selected LR the ℓ2 distance from init (Figure 4c) and the Hessian's ℓ2 norm (Figure 4a, the
// seeds that measured it). Prints Markdown.
//   node experiments/opt-mini-repro/claims.mjs [--db experiments/opt-mini-repro/results.sqlite]
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const here = dirname(fileURLToPath(import.meta.url));
const dist = process.env.RANDMASK_DIST ?? join(here, "..", "..", "dist", "src");
const { ResultsDb } = await import(join(dist, "sweep", "db.js"));
const { selectBest } = await import(join(dist, "sweep", "select.js"));

const { values } = parseArgs({ options: { db: { type: "string", default: join(here, "results.sqlite") } } });
let rows;
try {
  const db = ResultsDb.open(values.db);
  rows = db.rows();
  db.close();
} catch (e) {
  process.stderr.write(`claims: ${e.message}\n`);
  process.exit(1);
}
const sel = selectBest(rows);
const pct = (x) => (x === null || x === undefined ? "–" : (100 * x).toFixed(1));
const mean = (xs) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);
const num = (x, d = 3) => (x === null ? "–" : x.toPrecision(d));

const lines = [`${rows.filter((r) => r.status === "completed" || r.status === "diverged").length} of ${rows.length} runs finished ` +
  `(${rows.filter((r) => r.status === "diverged").length} diverged, ${rows.filter((r) => r.status === "failed").length} failed).`, ""];
for (const task of [...new Set(sel.map((s) => s.task))].sort()) {
  const here = sel.filter((s) => s.task === task);
  lines.push(`### ${task}`, "", "| method | ratio | trainable | best LR | n | dev % | test % (± std) | ‖ΔW‖ at best LR | Hessian ℓ2 before → after (seed 0, best LR) |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
  for (const s of here) {
    const at = rows.filter((r) => r.task === task && r.method === s.method && r.trainable_ratio === s.ratio && r.lr === s.bestLr &&
      (r.status === "completed" || r.status === "diverged"));
    const dist = mean(at.flatMap((r) => (r.distance_weight === null ? [] : [r.distance_weight])));
    const hess = at.find((r) => r.hessian_before !== null || r.hessian_after !== null);
    lines.push(`| ${s.method} | ${s.ratio ?? "—"} | ${s.trainableParams?.toLocaleString("en-US") ?? "–"} | ${s.bestLr ?? "–"} | ${s.n} | ` +
      `${pct(s.devMean)} | ${pct(s.testMean)} ± ${pct(s.testStd)} | ${num(dist)} | ` +
      `${hess ? `${num(hess.hessian_before)} → ${num(hess.hessian_after)}` : "–"} |`);
  }
  lines.push("");
}
process.stdout.write(lines.join("\n"));
