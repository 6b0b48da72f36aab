// Sweeps: the sweep file's expansion and errors, and the results database under
// kill -9, two processes sharing one database, and crashing runs. Runs are tiny
// (a random 2-layer OPT, 16 training examples, 2 epochs) at one thread each.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { buildInfo } from "../src/engine/index.js";
import { expandSweep, loadSweep, runId, SweepFileError } from "../src/sweep/spec.js";
import { ResultsDb, type RunRow } from "../src/sweep/db.js";
import { RUN_SCHEMA, jobIdOf, validateRunJob } from "../src/sweep/queue/payload.js";
import type { ImageTrainOptions } from "../src/train/image-trainer.js";
import { FLAG_ACTIONS, sweepCommand } from "../src/cli/sweep-commands.js";
import { parityTask, repoRoot, sharedDir, tinyTextModel } from "./helpers.js";

const cli = join(repoRoot, "dist", "src", "cli", "main.js");
const work = mkdtempSync(join(tmpdir(), "randmask-sweep-"));
tinyTextModel(join(work, "model"));
parityTask(join(work, "data"));
const env = { ...process.env, RANDMASK_THREADS: "1" };

/** A sweep file in `work` (paths relative to it); returns its path. */
function sweepFile(name: string, extra: Record<string, unknown>): string {
  const file = join(work, `${name}.json`);
  writeFileSync(file, JSON.stringify({ name, models: ["model"], tasks: ["jsonl"], dataDir: "data", sizes: { train: 16, dev: 8, test: 8 },
    epochs: [2], train: { batchSize: 8 }, ...extra }));
  return file;
}
const rowsOf = (db: string): RunRow[] => { const d = ResultsDb.open(db); try { return d.rows(); } finally { d.close(); } };
const alive = (pid: number) => { try { process.kill(pid, 0); return true; } catch { return false; } };

test("a sweep file expands to the cross product with per-method overrides; ids are hashes of the configuration", () => {
  const raw = { models: ["model"], tasks: ["jsonl"], dataDir: "data", lrs: [1e-1, 1e-2, 1e-3], seeds: [0, 1],
    methods: [{ method: "random-mask", trainableRatios: [1e-3, 1e-4] }, { method: "lora", lrs: [1e-3], options: { r: 4 }, train: { batchSize: 4 } }] };
  const sweep = expandSweep(raw, join(work, "grid.json"));
  assert.equal(sweep.runs.length, 2 * 3 * 2 + 1 * 2);
  const lora = sweep.runs.filter((r) => r.config.method === "lora");
  assert.deepEqual(lora.map((r) => [r.config.train.lr, r.config.train.batchSize, r.config.methodOptions.r, r.config.methodOptions.seed]),
    [[1e-3, 4, 4, 0], [1e-3, 4, 4, 1]]);
  const rm = sweep.runs.find((r) => r.config.method === "random-mask")!;
  assert.equal(rm.config.model, join(work, "model"), "paths are relative to the sweep file");
  assert.equal((rm.config.train as { epochs: number }).epochs, 5, "finetune's defaults fill what the file leaves out");
  assert.equal(rm.config.train.maxGradNorm, 1);
  // identity: equal configurations (any key order) share the id, any change makes a new one
  const again = expandSweep(JSON.parse(JSON.stringify({ ...raw, methods: [...raw.methods].reverse() })), join(work, "grid.json"));
  assert.deepEqual(new Set(again.runs.map((r) => r.id)), new Set(sweep.runs.map((r) => r.id)));
  assert.notEqual(runId({ ...rm.config, train: { ...rm.config.train, lr: 0.5 } }), rm.id);
  assert.match(rm.id, /^[0-9a-f]{16}$/);
});

test("device: cpu is the default and keeps the run ids of files without it", () => {
  const raw = { models: ["model"], tasks: ["jsonl"], dataDir: "data", lrs: [1e-3], methods: [{ method: "lora" }] };
  const plain = expandSweep(raw, join(work, "a.json")).runs[0];
  const cpu = expandSweep({ ...raw, device: "cpu" }, join(work, "a.json")).runs[0];
  assert.equal(cpu.id, plain.id);
  assert.equal(cpu.config.device, undefined);
});

test("a bad sweep file is one error naming the file and the key", () => {
  const bad = (patch: Record<string, unknown>, re: RegExp) => {
    const raw = { models: ["model"], tasks: ["jsonl"], dataDir: "data", lrs: [1e-3], methods: [{ method: "lora" }], ...patch };
    assert.throws(() => expandSweep(raw, join(work, "bad.json")), (e: Error) => e instanceof SweepFileError && re.test(e.message) && e.message.includes("bad.json"));
  };
  bad({ lr: [1e-3] }, /unknown key 'lr'/);
  bad({ lrs: [] }, /lrs: expected a non-empty list of positive numbers/);
  bad({ methods: [{ method: "nope" }] }, /methods\[0\]\.method: unknown method 'nope'/);
  bad({ methods: [{ method: "lora", options: { r: -1 } }] }, /methods\[0\]: lora: .*r/);
  bad({ methods: [{ method: "random-mask", trainableRatios: [0.9] }] }, /methods\[0\]: random-mask: trainableRatio 0\.9 asks for/);
  bad({ tasks: ["nope"] }, /tasks: unknown task 'nope'/);
  bad({ models: ["missing"] }, /models: .*missing has no config\.json/);
  bad({ train: { batchSize: 0 } }, /train\.batchSize: expected a positive integer/);
  // what finetune refuses as flags, refused here too (every run failed, or diverged at once, before)
  bad({ train: { batchSize: 8, gradAccum: 3 } }, /train\.batchSize: 8 must be a multiple of gradAccum 3/);
  bad({ methods: [{ method: "lora", train: { gradAccum: 3 } }] }, /methods\[0\]\.train\.batchSize: 8 must be a multiple of gradAccum 3/);
  bad({ train: { warmupRatio: 1 } }, /train\.warmupRatio: expected a number in \[0, 1\)/);
  bad({ train: { divergenceFactor: 0.5 } }, /train\.divergenceFactor: expected 0 \(off\) or a number > 1/);
  bad({ methods: [{ method: "prefix", options: { numVirtualTokens: 100 } }] }, /methods\[0\]: prefix: numVirtualTokens 100 leaves too few of the model's 64 positions/);
  bad({ methods: [{ method: "lora", options: { targetModules: "re:((" } }] }, /methods\[0\]: lora: targetModules pattern 're:\(\(' is not a valid regular expression/);
  bad({ device: "gpu" }, /device "gpu": expected cpu, cuda or cuda:N/);
  if (!buildInfo().cudaAvailable) bad({ device: "cuda" }, /device cuda: CUDA is not available/);
  writeFileSync(join(work, "broken.yaml"), "models: [model\n");
  assert.throws(() => loadSweep(join(work, "broken.yaml")), /broken\.yaml: not valid YAML/);
  writeFileSync(join(work, "ok.yaml"), "models: [model]\ntasks: [jsonl]\ndataDir: data\nlrs: [1.0e-3]\nmethods:\n  - method: lora\n");
  assert.equal(loadSweep(join(work, "ok.yaml")).runs.length, 1);
  // a byte-order mark (Windows editors) reads as without it ('not valid JSON' before); a folder is named
  writeFileSync(join(work, "bom.json"), "\uFEFF" + JSON.stringify({ models: ["model"], tasks: ["jsonl"], dataDir: "data", lrs: [1e-3], methods: [{ method: "lora" }] }));
  assert.equal(loadSweep(join(work, "bom.json")).runs.length, 1);
  assert.throws(() => loadSweep(join(work, "data")), /data: is a folder, expected a sweep file \(JSON or YAML\)/);
});

test("a method option the entry's method does not read is refused at load (exit 2), naming the file, the method and the key", () => {
  const file = sweepFile("stray", { lrs: [1e-3], methods: [{ method: "random-mask", trainableRatios: [1e-3], options: { loraR: 8, r: 4 } }] });
  const db = join(work, "stray.sqlite");
  const r = spawnSync(process.execPath, [cli, "sweep", "run", file, "--db", db], { env, encoding: "utf8" });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /^randmask sweep run: .*stray\.json: methods\[0\]\.options\.loraR, methods\[0\]\.options\.r: not options of method random-mask \(its options: trainableRatio, density, targetModules, seed, maskKind\)\n$/);
  assert.ok(!existsSync(db), "nothing written");
  const bad = (patch: Record<string, unknown>, re: RegExp) => assert.throws(() => expandSweep({ models: ["model"], tasks: ["jsonl"], dataDir: "data", lrs: [1e-3], ...patch },
    join(work, "bad.json")), (e: Error) => e instanceof SweepFileError && re.test(e.message) && e.message.includes("bad.json"));
  // a top-level option reaches every entry; a ratio grid only the masking methods
  bad({ options: { r: 4 }, methods: [{ method: "lora" }, { method: "bitfit" }] }, /: options\.r: not an option of method bitfit \(its options: none\)$/);
  bad({ methods: [{ method: "lora", trainableRatios: [1e-3] }] }, /: methods\[0\]\.trainableRatios: not an option of method lora \(its options: targetModules, r, alpha,/);
  bad({ methods: [{ method: "adapter", options: { bottleneck: 4, numVirtualTokens: 2 } }] }, /methods\[0\]\.options\.numVirtualTokens: not an option of method adapter/);
  // options without a finetune flag are still a method's own
  const ok = expandSweep({ models: ["model"], tasks: ["jsonl"], dataDir: "data", lrs: [1e-3],
    methods: [{ method: "lora", options: { useRslora: true, seed: 3 } }, { method: "adalora", options: { deltaT: 2, beta1: 0.9 } }] }, join(work, "ok.json"));
  assert.deepEqual(ok.runs.map((x) => x.config.method), ["lora", "adalora"]);
});

test("a data file a task needs is missing: one error naming it before the database or any run exists", () => {
  const partial = join(work, "partial-data");
  mkdirSync(partial);
  copyFileSync(join(work, "data", "train.jsonl"), join(partial, "train.jsonl"));
  const cases: [string, string, RegExp][] = [
    ["nodata", "jsonl", /nodata\.json: dataDir: task jsonl: .*partial-data\/validation\.jsonl: data file not found\n$/],
    ["nodata-rte", "rte", /nodata-rte\.json: dataDir: task rte: .*partial-data\/rte\/train\.jsonl: data file not found\n$/],
  ];
  for (const [name, task, re] of cases) {
    const file = sweepFile(name, { tasks: [task], dataDir: "partial-data", lrs: [1e-2, 1e-3], seeds: [0, 1], methods: [{ method: "lora" }] });
    const db = join(work, `${name}.sqlite`);
    const r = spawnSync(process.execPath, [cli, "sweep", "run", file, "--db", db], { env, encoding: "utf8" });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, re);
    assert.equal(r.stderr.split("\n").length, 2, `one line: ${r.stderr}`);
    assert.ok(!existsSync(db), `${name}: no database, no runs`);
  }
});

test("image runs: evalEvery and warmupSteps default as finetune's (a quarter and a tenth of steps)", () => {
  const vit = join(sharedDir, "fixtures", "vit-tiny");
  const image = (train: Record<string, unknown>) => expandSweep({ models: [vit], tasks: ["cifar10"], dataDir: "data", lrs: [1e-3], train,
    methods: [{ method: "full" }] }, join(work, "img.json")).runs[0].config.train as ImageTrainOptions;
  assert.deepEqual([image({ steps: 40 }).evalEvery, image({ steps: 40 }).warmupSteps], [10, 4]);
  assert.deepEqual([image({ steps: 6 }).evalEvery, image({ steps: 6 }).warmupSteps], [2, 1]);
  assert.deepEqual([image({}).steps, image({}).evalEvery, image({}).warmupSteps], [2000, 500, 200], "Appendix B.2's run");
  assert.equal(image({ steps: 40, evalEvery: 7 }).evalEvery, 7);
});

test("kill -9 during a run: the restarted sweep redoes that run only, every run ends exactly once; --db's missing folders are made", async () => {
  // 6 epochs: a run lasts seconds even on an idle machine, so the kill lands mid-run
  const file = sweepFile("kill", { lrs: [1e-2, 3e-3, 1e-3], epochs: [6], methods: [{ method: "random-mask", trainableRatios: [1e-3] }] });
  const db = join(work, "new-folder", "sub", "kill.sqlite");
  const first = spawn(process.execPath, [cli, "sweep", "run", file, "--db", db], { env, stdio: "ignore" });
  // wait until the first run is done and the second one's child is training
  let victim: RunRow | undefined;
  for (let i = 0; i < 600 && !victim; i++) {
    await sleep(100);
    if (!existsSync(db)) continue;
    const rows = rowsOf(db);
    if (rows[0]?.status === "completed") victim = rows.find((r) => r.status === "running" && r.child_pid !== null);
  }
  assert.ok(victim, "the sweep never reached its second run");
  await sleep(200);
  process.kill(first.pid!, "SIGKILL");
  await new Promise((r) => first.once("exit", r));
  const killedRows = rowsOf(db);
  assert.equal(killedRows.find((r) => r.id === victim!.id)!.status, "running", "the killed run's row is left stale");
  // the child notices between training steps; on a loaded machine a step can take seconds
  for (let i = 0; i < 600 && alive(victim.child_pid!); i++) await sleep(100);
  assert.ok(!alive(victim.child_pid!), "the orphaned run process exits when its sweep dies");
  const firstDone = killedRows[0].finished_at;

  const second = spawnSync(process.execPath, [cli, "sweep", "run", file, "--db", db], { env, encoding: "utf8" });
  assert.equal(second.status, 0, second.stderr);
  assert.match(second.stderr, new RegExp(`reclaiming ${victim.id}`));
  const rows = rowsOf(db);
  assert.equal(rows.length, 3);
  assert.deepEqual(rows.map((r) => r.status), ["completed", "completed", "completed"]);
  assert.deepEqual(rows.map((r) => r.attempts), [1, 2, 1], "completed runs are never redone; the interrupted one twice");
  assert.equal(rows[0].finished_at, firstDone);
  for (const r of rows) {
    assert.ok(existsSync(join(r.run_dir!, "metrics.json")) && existsSync(join(r.adapter_dir!, "adapter_config.json")), r.id);
    assert.equal(JSON.parse(readFileSync(join(r.run_dir!, "metrics.json"), "utf8")).dev_per_epoch.length, 6);
  }
  assert.match(spawnSync(process.execPath, [cli, "sweep", "status", "--db", db], { encoding: "utf8" }).stdout, /3 runs: 0 pending, 0 running, 3 completed/);
});

test("Ctrl-C: the sweep stops with exit 130 (not 0, which let `sweep run && report` go on), its run in flight pending; the same command finishes it", async () => {
  const file = sweepFile("sigint", { lrs: [1e-2, 1e-3], epochs: [6], methods: [{ method: "random-mask", trainableRatios: [1e-3] }] });
  const db = join(work, "sigint.sqlite");
  const first = spawn(process.execPath, [cli, "sweep", "run", file, "--db", db, "--workers", "1"], { env, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  first.stderr!.on("data", (d: Buffer) => { stderr += d.toString(); });
  let running: RunRow | undefined;
  for (let i = 0; i < 600 && !running; i++) {
    await sleep(100);
    // the database may exist before its tables do
    try { running = rowsOf(db).find((r) => r.status === "running" && r.child_pid !== null); } catch { /* not yet */ }
  }
  assert.ok(running, "the sweep never started a run");
  first.kill("SIGINT");
  const code = await new Promise<number | null>((done) => first.once("close", (c: number | null) => done(c)));
  assert.equal(code, 130, stderr);
  assert.match(stderr, /stopped \(SIGINT\); run the same command again to continue\n$/);
  assert.equal(rowsOf(db).find((r) => r.id === running!.id)!.status, "pending", "the run in flight is handed back");
  const again = spawnSync(process.execPath, [cli, "sweep", "run", file, "--db", db, "--workers", "1"], { env, encoding: "utf8" });
  assert.equal(again.status, 0, again.stderr);
  assert.deepEqual(rowsOf(db).map((r) => r.status), ["completed", "completed"]);
});

test("two sweep processes on one database share the work without a duplicate; a crashing run is failed and the sweep goes on", async () => {
  const file = sweepFile("pair", { lrs: [1e-2, 1e-3], seeds: [0, 1], methods: [{ method: "random-mask", trainableRatios: [1e-3] },
    // passes the sweep's checks (62 of the 64 positions may be virtual tokens), fails in its run: the prompts do not fit the 2 left
    { method: "prefix", lrs: [1e-4], seeds: [0], options: { numVirtualTokens: 62 } }] });
  const db = join(work, "pair.sqlite");
  const start = () => new Promise<{ code: number | null; err: string }>((done) => {
    const p = spawn(process.execPath, [cli, "sweep", "run", file, "--db", db], { env, stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    p.stderr.on("data", (d) => { err += d; });
    p.on("exit", (code) => done({ code, err }));
  });
  const [a, b] = await Promise.all([start(), start()]);
  assert.equal(a.code, 0, a.err);
  assert.equal(b.code, 0, b.err);
  const rows = rowsOf(db);
  assert.equal(rows.length, 5);
  assert.ok(rows.every((r) => r.attempts === 1), `attempts ${rows.map((r) => r.attempts)}`);
  assert.equal(new Set(rows.map((r) => r.owner_pid)).size, 2, "both processes ran some");
  const failed = rows.filter((r) => r.status === "failed");
  assert.equal(failed.length, 1);
  assert.match(failed[0].error!, /train\.jsonl:\d+: option " (no|yes)" is longer than the model's 2 positions/);
  for (const r of rows.filter((x) => x.status === "completed")) {
    assert.ok(r.distance_weight! > 0 && r.distance_trainable! > 0, "distance from init is recorded");
    assert.ok(Math.abs(r.distance_weight! - r.distance_trainable!) <= 1e-6 * r.distance_trainable!, "masking: ‖S‖ is the values' change");
    const epochs = JSON.parse(r.epoch_records!);
    assert.equal(epochs.length, 2);
    assert.ok(epochs.every((e: { distance: { weight: number } }) => e.distance.weight > 0));
    assert.equal(r.host !== null && r.randmask_version !== null, true);
  }
});

test("claims: a live owner's run is never handed out twice; a dead owner's or an expired lease's run is, and its late result is refused", async () => {
  const sweep = expandSweep({ models: ["model"], tasks: ["jsonl"], dataDir: "data", lrs: [1e-2, 1e-3, 1e-4], methods: [{ method: "lora" }] },
    join(work, "claims.json"));
  const ids = sweep.runs.map((r) => r.id);
  const path = join(work, "claims.sqlite");
  const a = ResultsDb.open(path, { create: true });
  const b = ResultsDb.open(path); // a second connection, as a second sweep process would hold
  assert.equal(a.addRuns(sweep), 3);
  assert.equal(b.addRuns(sweep), 0, "adding the same sweep again adds nothing");
  const me = { host: hostname(), pid: process.pid };
  const sleeper = spawn(process.execPath, ["-e", "setTimeout(() => {}, 60000)"], { stdio: "ignore" }); // another live process on this host
  const first = a.claim(ids, { host: me.host, pid: sleeper.pid! }, 60)!;
  const second = b.claim(ids, me, 60)!;
  const other = { host: "elsewhere", pid: 1 };
  const third = a.claim(ids, other, 60)!;
  assert.equal(new Set([first.id, second.id, third.id]).size, 3);
  assert.equal(b.claim(ids, me, 60), null, "every run is held by a live owner");
  // the owner dies: its run comes back at the next claim, as attempt 2
  sleeper.kill("SIGKILL");
  await new Promise((r) => sleeper.once("exit", r));
  const reclaimed: string[] = [];
  const again = b.claim(ids, me, 60, false, (r) => reclaimed.push(r.id))!;
  assert.deepEqual([again.id, again.attempts, reclaimed], [first.id, 2, [first.id]]);
  // the other host stops beating: after the lease its run is taken over, and its late result is refused
  assert.equal(b.claim(ids, me, 60), null);
  a.db.prepare("UPDATE runs SET heartbeat_at = heartbeat_at - 61 WHERE id = ?").run(third.id);
  assert.equal(b.claim(ids, me, 60)!.id, third.id);
  assert.equal(a.fail(third.id, other, "late", 1, "/nowhere"), false);
  assert.equal(a.heartbeat(third.id, other), false, "the old owner learns it lost the claim");
  assert.equal(b.rows(ids).find((r) => r.id === third.id)!.status, "running");
  a.close();
  b.close();
});

test("hessian: each run measures ‖H‖₂ before and after training in its child; equal to `randmask hessian`, checkpointing or not; report draws Figure 4a", async () => {
  const hessian = { when: ["before", "after"], examples: 8, batchSize: 4, maxIters: 60, tol: 1e-4 };
  const grid = { lrs: [3e-2], methods: [{ method: "random-mask", trainableRatios: [1e-3], hessian }, { method: "lora", options: { r: 2 } }] };
  const plain = sweepFile("hess", grid);
  const ckpt = sweepFile("hess-ckpt", { ...grid, gradientCheckpointing: true });
  const run = (file: string, db: string) => {
    const r = spawnSync(process.execPath, [cli, "sweep", "run", file, "--db", db, "--workers", "1"], { env, encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    return rowsOf(db);
  };
  const [rm, lora] = run(plain, join(work, "hess.sqlite"));
  assert.equal(rm.status, "completed");
  for (const v of [rm.hessian_before, rm.hessian_after]) assert.ok(v !== null && Number.isFinite(v) && v > 0, `finite positive: ${v}`);
  assert.notEqual(rm.hessian_before, rm.hessian_after, "training moved the weights");
  assert.equal(lora.hessian_before, null, "only the entry that asks measures");
  assert.equal(lora.hessian_after, null);
  const rec = JSON.parse(readFileSync(join(rm.run_dir!, "metrics.json"), "utf8"));
  assert.equal(rec.hessian.before.examples, 8);
  assert.ok(rec.hessian.before.converged && rec.hessian.after.converged);

  // reentrant checkpointing would hide the parameters from autograd.grad: the run switches it off for the products
  const [rmCkpt] = run(ckpt, join(work, "hess-ckpt.sqlite"));
  assert.ok(JSON.parse(rmCkpt.config).gradientCheckpointing);
  for (const k of ["hessian_before", "hessian_after"] as const) {
    assert.ok(Math.abs(rmCkpt[k]! - rm[k]!) <= hessian.tol * rm[k]!, `${k}: ${rmCkpt[k]} with checkpointing vs ${rm[k]}`);
  }

  // the same measurement from the command line: the method at initialisation, then the saved adapter
  const common = ["hessian", "--model", join(work, "model"), "--task", "jsonl", "--data-dir", join(work, "data"), "--seed", "0",
    "--train-size", "16", "--dev-size", "8", "--test-size", "8", "--examples", "8", "--batch-size", "4", "--max-iters", "60", "--tol", "1e-4", "--json", "--quiet"];
  const cliNorm = (extra: string[]) => {
    const r = spawnSync(process.execPath, [cli, ...common, ...extra], { env, encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout).norm as number;
  };
  const before = cliNorm(["--method", "random-mask", "--trainable-ratio", "1e-3"]);
  const after = cliNorm(["--adapter", rm.adapter_dir!]);
  assert.ok(Math.abs(before - rm.hessian_before!) <= hessian.tol * before, `before: sweep ${rm.hessian_before} vs hessian ${before}`);
  assert.ok(Math.abs(after - rm.hessian_after!) <= hessian.tol * after, `after: sweep ${rm.hessian_after} vs hessian ${after}`);

  const out = join(work, "hess-report");
  const rep = spawnSync(process.execPath, [cli, "report", "--db", join(work, "hess.sqlite"), "--out", out], { env, encoding: "utf8" });
  assert.equal(rep.status, 0, rep.stderr);
  const svg = readFileSync(join(out, "fig4a-hessian-vs-ratio.svg"), "utf8");
  for (const text of ["before training", "after training"]) assert.ok(svg.includes(text), text);
});

test("a bad hessian option in a sweep file names the key", () => {
  const bad = (hessian: unknown, re: RegExp) => assert.throws(() => expandSweep({ models: ["model"], tasks: ["jsonl"], dataDir: "data", lrs: [1e-3],
    methods: [{ method: "lora", hessian }] }, join(work, "bad.json")), (e: Error) => e instanceof SweepFileError && re.test(e.message));
  bad({ when: ["during"] }, /methods\[0\]\.hessian\.when: expected a non-empty list of before, after/);
  bad({ maxIterations: 5 }, /unknown key 'methods\[0\]\.hessian\.maxIterations' \(expected one of when, examples, batchSize, maxIters, tol\)/);
  bad({ examples: 0 }, /methods\[0\]\.hessian\.examples: expected a positive integer/);
  bad({ tol: -1 }, /methods\[0\]\.hessian\.tol: expected a positive number/);
  const on = expandSweep({ models: ["model"], tasks: ["jsonl"], dataDir: "data", lrs: [1e-3], hessian: { examples: 4 },
    methods: [{ method: "lora" }, { method: "bitfit", hessian: false }] }, join(work, "h.json"));
  assert.deepEqual(on.runs[0].config.hessian, { when: ["after", "before"], examples: 4, batchSize: 8, maxIters: 100, tol: 1e-3 });
  assert.equal(on.runs[1].config.hessian, undefined);
  // a queued job (sweep submit) carries the option through the worker's checks unchanged
  for (const r of on.runs) {
    assert.deepEqual(validateRunJob(jobIdOf(r.id), { schema: RUN_SCHEMA, id: r.id, sweep: "h", index: 0, config: r.config }).config, r.config);
  }
});

test("a flag another sweep action reads is refused (exit 2, naming the actions it is for), never silently ignored", () => {
  assert.deepEqual(Object.keys(FLAG_ACTIONS).sort(), Object.keys(sweepCommand.flags).sort(), "every flag says which actions read it");
  const db = join(work, "never-made.sqlite");
  const cases: [string[], string][] = [
    [["status", "--db", db, "--workers", "4"], "--workers does not apply to sweep status (it is for sweep run)"],
    [["results", "--db", db, "--lease-s", "60"], "--lease-s does not apply to sweep results (it is for sweep run)"],
    [["status", "--db", db, "--format", "csv"], "--format does not apply to sweep status (it is for sweep results)"],
    [["submit", join(work, "none.json"), "--queue", "redis://127.0.0.1:1/0", "--db", db], "--db does not apply to sweep submit (it is for sweep run, status, results and collect)"],
    [["collect", "--db", db, "--queue", "redis://127.0.0.1:1/0", "--retry-failed"], "--retry-failed does not apply to sweep collect (it is for sweep run and submit)"],
    [["run", join(work, "none.json"), "--db", db, "--wait"], "--wait does not apply to sweep run (it is for sweep collect)"],
  ];
  for (const [args, message] of cases) {
    const r = spawnSync(process.execPath, [cli, "sweep", ...args], { env, encoding: "utf8" });
    assert.equal(r.status, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.equal(r.stderr, `randmask sweep ${args[0]}: ${message}\n`);
  }
  assert.ok(!existsSync(db));
});
