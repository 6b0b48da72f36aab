// Results selection on a hand-made database, and `randmask report` on a small
// committed database against committed tables (a golden test).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { ResultsDb, type RunRow } from "../src/sweep/db.js";
import { selectBest } from "../src/sweep/select.js";
import { loadSweep } from "../src/sweep/spec.js";
import { reportFigures, writeReport } from "../src/sweep/report.js";
import { paperTables } from "../src/sweep/tables.js";
import { chartSvg } from "../src/plot/render.js";
import { parityTask, repoRoot, tinyTextModel } from "./helpers.js";

const cli = join(repoRoot, "dist", "src", "cli", "main.js");
const golden = join(repoRoot, "test", "fixtures", "sweep-report");
const tmp = () => mkdtempSync(join(tmpdir(), "randmask-report-"));

/** A database of hand-written results (dyadic numbers, so means compare exactly). */
const handMadeDbRows = (path: string) => {
  const db = ResultsDb.open(path);
  try { return db.rows(); } finally { db.close(); }
};

function handMadeDb(path: string): ResultsDb {
  const db = ResultsDb.open(path, { create: true });
  const insert = db.db.prepare(`INSERT INTO runs (id, ord, sweep, config, model, task, method, trainable_ratio, lr, seed, epochs, status,
    metric, dev_metric, test_metric, distance_weight, hessian_before, hessian_after, trainable_params)
    VALUES (?, ?, 'hand', '{}', '/models/opt-x', 'sst2', ?, ?, ?, ?, 5, ?, 'accuracy', ?, ?, ?, ?, ?, 100)`);
  const rows: [string, number | null, number, number, string, number | null, number | null][] = [
    // method, ratio, lr, seed, status, dev, test
    ["random-mask", 1e-3, 1e-1, 0, "completed", 0.9375, 0.9375], // the best single run, but its LR's other seed diverged before any dev evaluation
    ["random-mask", 1e-3, 1e-1, 1, "diverged", null, null],
    ["random-mask", 1e-3, 1e-2, 0, "completed", 0.75, 0.5],
    ["random-mask", 1e-3, 1e-2, 1, "completed", 0.875, 0.625], // mean dev 0.8125
    ["random-mask", 1e-3, 1e-3, 0, "completed", 0.8125, 0.75],
    ["random-mask", 1e-3, 1e-3, 1, "diverged", 0.8125, 0.875], // diverged after its best epoch: a result; mean dev 0.8125 ties, the smaller LR wins
    ["random-mask", 1e-3, 1e-4, 0, "pending", null, null],
    ["random-mask", 1e-3, 1e-4, 1, "failed", null, null],
    ["random-mask", 1e-5, 1e-1, 0, "completed", 0.625, 0.5],
    ["structured-mask", 1e-3, 1e-2, 0, "diverged", null, null],
    ["lora", null, 1e-3, 0, "completed", 0.75, 0.6875],
  ];
  rows.forEach(([method, ratio, lr, seed, status, dev, testM], i) => insert.run(`r${i}`, i, method, ratio, lr, seed, status, dev, testM,
    dev === null ? null : 10 * (ratio ?? 1), method === "random-mask" ? 40 : null, method === "random-mask" ? 20 * (1 + i) : null));
  return db;
}

test("selection: per (model, task, method, ratio) the LR with the best mean dev over seeds, its test mean ± std", () => {
  const db = handMadeDb(join(tmp(), "hand.sqlite"));
  const sel = selectBest(db.rows());
  db.close();
  assert.deepEqual(sel.map((s) => [s.method, s.ratio, s.bestLr, s.n, s.devMean, s.testMean]), [
    ["lora", null, 1e-3, 1, 0.75, 0.6875],
    ["random-mask", 1e-3, 1e-3, 2, 0.8125, 0.8125],
    ["random-mask", 1e-5, 1e-1, 1, 0.625, 0.5],
    ["structured-mask", 1e-3, null, 0, null, null],
  ]);
  const rm = sel[1];
  assert.ok(Math.abs(rm.testStd! - Math.SQRT2 * 0.0625) < 1e-15, `sample std over seeds: ${rm.testStd}`); // (0.75, 0.875): |d| = 0.0625 each, n − 1 = 1
  assert.equal(sel[0].testStd, 0);
  const lr1 = rm.lrs.find((l) => l.lr === 1e-1)!;
  assert.deepEqual([lr1.n, lr1.diverged, lr1.eligible], [2, 1, false]);
  assert.deepEqual(rm.lrs.map((l) => l.lr), [1e-3, 1e-2, 1e-1], "pending and failed runs are not results");
  assert.deepEqual(sel.map((s) => s.tiedLrs), [[1e-3], [1e-3, 1e-2], [1e-1], []], "1e-3 and 1e-2 tie at mean dev 0.8125; the smaller is chosen");
});

test("ties are equal means up to rounding: three seeds' dev summed in another order still tie, and the smaller LR wins", () => {
  const row = (lr: number, seed: number, dev: number) => ({ id: `${lr}-${seed}`, config: "{}", model: "/m/opt-x", task: "sst2", method: "lora",
    trainable_ratio: null, lr, seed, status: "completed", metric: "accuracy", dev_metric: dev, test_metric: dev, trainable_params: 1 }) as unknown as RunRow;
  // (0.1 + 0.2) + 0.3 and (0.3 + 0.2) + 0.1 differ in the last bit
  assert.notEqual((0.1 + 0.2 + 0.3) / 3, (0.3 + 0.2 + 0.1) / 3);
  const rows = [row(1e-2, 0, 0.1), row(1e-2, 1, 0.2), row(1e-2, 2, 0.3), row(1e-3, 0, 0.3), row(1e-3, 1, 0.2), row(1e-3, 2, 0.1), row(1e-4, 0, 0.1)];
  for (const order of [rows, [...rows].reverse()]) {
    const [s] = selectBest(order);
    assert.deepEqual([s.bestLr, s.tiedLrs], [1e-3, [1e-3, 1e-2]]);
  }
});

test("a tie on mean dev is stated: which LRs tied, which was chosen and why (sweep results table and CSV, report.md)", async () => {
  const dir = tmp();
  const path = join(dir, "hand.sqlite");
  handMadeDb(path).close();
  const results = (format: string) => spawnSync(process.execPath, [cli, "sweep", "results", "--db", path, "--format", format], { encoding: "utf8" });
  const table = results("table");
  assert.equal(table.status, 0, table.stderr);
  assert.match(table.stdout, /^opt-x +sst2 +random-mask +1e-3 +100 +1e-3\* +2 /m, "the tied best LR is starred");
  assert.match(table.stdout, /^opt-x +sst2 +lora +- +100 +1e-3 +1 /m, "no tie, no star");
  assert.match(table.stdout, /^\* tie on mean dev \(ties go to the smallest LR: .*\):\n  opt-x sst2 random-mask 1e-3: LRs 1e-3, 1e-2 tie at mean dev accuracy 0\.8125; chose 1e-3$/m);
  assert.equal(table.stdout.match(/ tie at /g)!.length, 1, "only the tied unit is listed");
  const csv = results("csv").stdout.trim().split("\n");
  assert.match(csv[0], /,test_std,tied_lrs$/);
  assert.deepEqual(csv.slice(1).map((l) => l.split(",").at(-1)), ["", "1e-3 1e-2", "", ""]);
  await writeReport(handMadeDbRows(path), join(dir, "out"));
  const md = readFileSync(join(dir, "out", "report.md"), "utf8");
  assert.match(md, /^Ties on mean dev \(ties go to the smallest LR: .*\):\n\n- opt-x sst2 random-mask 1e-3: LRs 1e-3, 1e-2 tie at mean dev accuracy 0\.8125; chose 1e-3$/m);
  assert.match(md, /^\| random-mask 1e-3 \| 1e-3 \(tie: 1e-3, 1e-2\) \|$/m, "Table 5's cell names the tie");
  assert.match(md, /^\| lora \| 1e-3 \|$/m);
});

test("report on the hand-made database: Table 5/6 markdown, CSV, and every figure including 4a from the Hessian columns", async () => {
  const dir = tmp();
  const db = handMadeDb(join(dir, "hand.sqlite"));
  const files = await writeReport(db.rows(), join(dir, "out"));
  db.close();
  const names = files.map((f) => f.replace(/^.*\//, ""));
  for (const fig of ["fig3-metric-vs-lr", "fig4a-hessian-vs-ratio", "fig4b-metric-vs-epoch", "fig4c-distance-vs-ratio", "fig5-random-vs-structured"]) {
    if (fig === "fig4b-metric-vs-epoch" || fig === "fig5-random-vs-structured") continue; // no epoch records; Structured Masking never finished
    assert.ok(names.includes(`${fig}.svg`) && names.includes(`${fig}.png`), fig);
  }
  const csv = readFileSync(join(dir, "out", "results.csv"), "utf8");
  assert.equal(csv, [
    "model,task,method,ratio,trainable_params,metric,best_lr,n,dev_mean,test_mean,test_std,tied_lrs",
    "opt-x,sst2,lora,,100,accuracy,1e-3,1,0.7500,0.6875,0.0000,",
    "opt-x,sst2,random-mask,1e-3,100,accuracy,1e-3,2,0.8125,0.8125,0.0884,1e-3 1e-2",
    "opt-x,sst2,random-mask,1e-5,100,accuracy,1e-1,1,0.6250,0.5000,0.0000,",
    "opt-x,sst2,structured-mask,1e-3,100,accuracy,,0,,,,", ""].join("\n"));
  const md = readFileSync(join(dir, "out", "report.md"), "utf8");
  assert.match(md, /\| random-mask 1e-3 \| 81\.3 ± 8\.8 \|/);
  assert.match(md, /\| structured-mask 1e-3 \| diverged \|/);
  const svg = readFileSync(join(dir, "out", "fig4a-hessian-vs-ratio.svg"), "utf8");
  for (const text of ["Hessian ℓ2 norm", "trainable ratio", "before training", "after training"]) assert.ok(svg.includes(text), text);
  assert.deepEqual([...readFileSync(join(dir, "out", "fig3-metric-vs-lr.png")).subarray(1, 4)], [0x50, 0x4e, 0x47], "a PNG");
});

test("figures: runs of different configurations (dtype here) are separate, labelled series, never averaged into one point", async () => {
  // [dtype, method, ratio, lr, seed, dev, test, ‖ΔW‖]
  const runs: [string, string, number, number, number, number, number, number][] = [
    ["float32", "random-mask", 1e-3, 1e-2, 0, 0.75, 0.75, 2], ["float32", "random-mask", 1e-3, 1e-2, 1, 0.875, 0.625, 4],
    ["float32", "random-mask", 1e-3, 1e-3, 0, 0.5, 0.5, 1],
    ["bfloat16", "random-mask", 1e-3, 1e-2, 0, 0.25, 0.25, 8], ["bfloat16", "random-mask", 1e-3, 1e-3, 0, 0.375, 0.375, 16],
    ["float32", "random-mask", 1e-5, 1e-2, 0, 0.5, 0.5, 32],
    ["float32", "structured-mask", 1e-3, 1e-2, 0, 0.625, 0.5, 64],
  ];
  const rows = runs.map(([dtype, method, ratio, lr, seed, dev, testM, dist], i) => ({ id: `r${i}`, model: "/m/opt-x", task: "sst2", method,
    config: JSON.stringify({ dtype, method, methodOptions: { trainableRatio: ratio, seed }, train: { lr, seed, epochs: 2 } }),
    trainable_ratio: ratio, lr, seed, status: "completed", metric: "accuracy", dev_metric: dev, test_metric: testM, distance_weight: dist,
    trainable_params: 1, epoch_records: null, hessian_before: null, hessian_after: null }) as unknown as RunRow);
  const sel = selectBest(rows);
  const figs = new Map(reportFigures(rows, sel).map((f) => [f.name, (f.spec.data as { values: Record<string, unknown>[] }).values]));
  const pick = (name: string, keys: string[], where: (d: Record<string, unknown>) => boolean = () => true) =>
    figs.get(name)!.filter(where).map((d) => keys.map((k) => d[k]));
  assert.deepEqual(pick("fig3-metric-vs-lr", ["series", "lr", "value", "n"], (d) => d.split === "dev"), [
    ["1e-3 (dtype=float32)", 1e-2, 0.8125, 2], ["1e-3 (dtype=float32)", 1e-3, 0.5, 1],
    ["1e-3 (dtype=bfloat16)", 1e-2, 0.25, 1], ["1e-3 (dtype=bfloat16)", 1e-3, 0.375, 1],
    ["1e-5 (dtype=float32)", 1e-2, 0.5, 1]]);
  // at each variant's own best LR (float32: 1e-2, bfloat16: 1e-3); Structured Masking has one configuration, so no label
  assert.deepEqual(pick("fig4c-distance-vs-ratio", ["series", "ratio", "value", "n"]), [
    ["random-mask (dtype=float32)", 1e-3, 3, 2], ["random-mask (dtype=bfloat16)", 1e-3, 16, 1], ["random-mask (dtype=float32)", 1e-5, 32, 1],
    ["structured-mask", 1e-3, 64, 1]]);
  assert.deepEqual(pick("fig5-random-vs-structured", ["series", "method", "ratio", "value"]), [
    ["random-mask (dtype=float32)", "random-mask", 1e-3, 0.6875], ["random-mask (dtype=bfloat16)", "random-mask", 1e-3, 0.375],
    ["random-mask (dtype=float32)", "random-mask", 1e-5, 0.5], ["structured-mask", "structured-mask", 1e-3, 0.5]]);
  const fig3 = reportFigures(rows, sel).find((f) => f.name === "fig3-metric-vs-lr")!.spec as { spec: { encoding: { color: { field: string; sort: string[] } } } };
  assert.deepEqual(fig3.spec.encoding.color, { field: "series", type: "nominal", title: "trainable ratio",
    sort: ["1e-3 (dtype=bfloat16)", "1e-3 (dtype=float32)", "1e-5 (dtype=float32)"] }, "the legend by ratio, large to small");
  // The drawn legend shows each label in full: they differ only at the end, where Vega's default limit cut them.
  const svg = await chartSvg(reportFigures(rows, sel).find((f) => f.name === "fig4c-distance-vs-ratio")!.spec);
  for (const label of ["random-mask (dtype=float32)", "random-mask (dtype=bfloat16)"]) assert.ok(svg.includes(`>${label}</text>`), label);
});

test("golden: randmask report on the committed database reproduces the committed tables", () => {
  const dir = tmp();
  copyFileSync(join(golden, "results.sqlite"), join(dir, "results.sqlite")); // opening writes the WAL beside the file
  const r = spawnSync(process.execPath, [cli, "report", "--db", join(dir, "results.sqlite"), "--out", join(dir, "report")], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  for (const f of ["report.md", "results.csv"]) assert.equal(readFileSync(join(dir, "report", f), "utf8"), readFileSync(join(golden, f), "utf8"), f);
  for (const fig of ["fig3-metric-vs-lr", "fig4b-metric-vs-epoch", "fig4c-distance-vs-ratio", "fig5-random-vs-structured"]) {
    assert.ok(existsSync(join(dir, "report", `${fig}.svg`)) && existsSync(join(dir, "report", `${fig}.png`)), fig);
  }
  assert.ok(!existsSync(join(dir, "report", "fig4a-hessian-vs-ratio.svg")), "no Hessian columns filled: no Figure 4a");
  const results = spawnSync(process.execPath, [cli, "sweep", "results", "--db", join(dir, "results.sqlite"), "--format", "csv"], { encoding: "utf8" });
  assert.equal(results.stdout, readFileSync(join(golden, "results.csv"), "utf8"));
  assert.match(spawnSync(process.execPath, [cli, "report", "--db", join(dir, "nope.sqlite"), "--out", join(dir, "r-nope")], { encoding: "utf8" }).stderr,
    /--db .*nope\.sqlite: not found/);
  // an empty file and another program's SQLite file are refused, byte for byte untouched
  const empty = join(dir, "empty.sqlite");
  writeFileSync(empty, "");
  const foreign = join(dir, "foreign.sqlite");
  const f = new Database(foreign);
  f.exec("CREATE TABLE foo (x)");
  f.close();
  for (const file of [empty, foreign]) {
    const before = readFileSync(file);
    for (const args of [["report", "--db", file, "--out", join(dir, "r-other")], ["sweep", "results", "--db", file]]) {
      const o = spawnSync(process.execPath, [cli, ...args], { encoding: "utf8" });
      assert.notEqual(o.status, 0, args.join(" "));
      assert.match(o.stderr, /not a randmask results database \(it has no runs table; nothing was written to it\)/);
    }
    assert.deepEqual(readFileSync(file), before, `${file} unchanged`);
  }
});

test("runs differing in more than seed and LR are selected apart, each row naming what differs (lora r, bitfit epochs); a Hessian on one seed does not split a unit", () => {
  const dir = tmp();
  tinyTextModel(join(dir, "model"));
  parityTask(join(dir, "data"));
  const file = join(dir, "variants.json");
  writeFileSync(file, JSON.stringify({ models: ["model"], tasks: ["jsonl"], dataDir: "data", lrs: [1e-3], seeds: [0], epochs: [1],
    methods: [{ method: "lora", options: { r: 1 } }, { method: "lora", options: { r: 4 } }, { method: "bitfit", epochs: [1, 2] },
      // the Hessian measured on seed 0 only: still one unit with seed 1
      { method: "full", seeds: [0], hessian: { when: ["before"] } }, { method: "full", seeds: [1] }] }));
  const path = join(dir, "results.sqlite");
  const db = ResultsDb.open(path, { create: true });
  db.addRuns(loadSweep(file));
  // finished with distinct results: lora r=1 0.5, r=4 0.75; bitfit 1 epoch 0.25, 2 epochs 0.625
  const result = (c: { method: string; methodOptions: { r?: number }; train: { epochs?: number; seed: number } }) =>
    c.method === "full" ? 0.5 + 0.25 * c.train.seed : c.methodOptions.r === 1 ? 0.5 : c.methodOptions.r === 4 ? 0.75 : c.train.epochs === 1 ? 0.25 : 0.625;
  for (const r of db.rows()) {
    const v = result(JSON.parse(r.config));
    db.db.prepare("UPDATE runs SET status = 'completed', metric = 'accuracy', dev_metric = ?, test_metric = ? WHERE id = ?").run(v, v, r.id);
  }
  const sel = selectBest(db.rows());
  db.close();
  assert.deepEqual(sel.map((s) => [s.method, s.variant, s.n, s.testMean]), [
    ["bitfit", "epochs=1", 1, 0.25], ["bitfit", "epochs=2", 1, 0.625], ["full", "", 2, 0.625], ["lora", "r=1", 1, 0.5], ["lora", "r=4", 1, 0.75]]);
  const csv = spawnSync(process.execPath, [cli, "sweep", "results", "--db", path, "--format", "csv"], { encoding: "utf8" });
  assert.equal(csv.status, 0, csv.stderr);
  assert.deepEqual(csv.stdout.trim().split("\n").map((l) => l.split(",").slice(2, 5).concat(l.split(",")[8])), [
    ["method", "ratio", "variant", "n"], ["bitfit", "", "epochs=1", "1"], ["bitfit", "", "epochs=2", "1"], ["full", "", "", "2"], ["lora", "", "r=1", "1"], ["lora", "", "r=4", "1"]]);
  const table = spawnSync(process.execPath, [cli, "sweep", "results", "--db", path], { encoding: "utf8" }).stdout;
  assert.match(table, /^model .* variant /);
  assert.match(table, /^model +jsonl +lora +- +r=4 +- +1e-3 +1 +75\.0 +75\.0 ± 0\.0$/m);
  assert.match(paperTables(sel), /^\| lora \(r=4\) \| 75\.0 ± 0\.0 \|$/m);
});
