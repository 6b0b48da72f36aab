// Sweeps across machines through a real Redis queue (BullMQ): a redis-server of the test's own
// (loopback, a temporary folder, AOF with fsync on every write, a password), three `randmask worker`
// processes, one killed with SIGKILL mid-run, Redis killed and restarted mid-sweep, a malformed job,
// and the collected database compared with a local `sweep run` of the same file. Runs are tiny
// (a random 2-layer OPT, 16 training examples) at one thread each. Skipped without redis-server.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Queue } from "bullmq";
import { ResultsDb, type RunRow } from "../src/sweep/db.js";
import { loadSweep, runId } from "../src/sweep/spec.js";
import { QUEUE_NAME, RUN_SCHEMA, MalformedJobError, jobIdOf, runIdOfJob, runJobs, validateRunJob } from "../src/sweep/queue/payload.js";
import { parseQueueUrl, redactUrl } from "../src/sweep/queue/redis-url.js";
import { parityTask, repoRoot, tinyTextModel } from "./helpers.js";

const cli = join(repoRoot, "dist", "src", "cli", "main.js");
const work = mkdtempSync(join(tmpdir(), "randmask-queue-"));
tinyTextModel(join(work, "model"));
parityTask(join(work, "data"));
const env = { ...process.env, RANDMASK_THREADS: "1" };
const hasRedis = spawnSync("redis-server", ["--version"]).status === 0;
const noRedis = hasRedis ? false : "redis-server is not installed (apt-get install redis-server; .ci/run installs it)";
const PASSWORD = "s3cret-Pa55word";

// 13 runs: 3 learning rates × 2 seeds × 2 trainable ratios, and one that fails in its run (a prefix leaving 2 of the
// 64 positions passes the sweep file's checks; the prompts do not fit)
const sweepPath = join(work, "grid.json");
writeFileSync(sweepPath, JSON.stringify({ name: "grid", models: ["model"], tasks: ["jsonl"], dataDir: "data", sizes: { train: 16, dev: 8, test: 8 },
  epochs: [3], train: { batchSize: 8 }, lrs: [1e-2, 3e-3, 1e-3], seeds: [0, 1], methods: [{ method: "random-mask", trainableRatios: [1e-3, 3e-4] },
    { method: "prefix", lrs: [1e-4], seeds: [0], options: { numVirtualTokens: 62 } }] }));

const rowsOf = (db: string): RunRow[] => { const d = ResultsDb.open(db); try { return d.rows(); } finally { d.close(); } };

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

/** A redis-server on loopback with its data in `dir`: AOF, fsync on every write, no RDB snapshots. */
async function startRedis(dir: string, port: number): Promise<ChildProcess> {
  const p = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--appendonly", "yes", "--appendfsync", "always",
    "--save", "", "--requirepass", PASSWORD], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  await new Promise<void>((ready, fail) => {
    p.stdout!.on("data", (d) => { out += d; if (/Ready to accept connections/.test(out)) ready(); });
    p.once("exit", (code) => fail(new Error(`redis-server exited (${code}): ${out}`)));
  });
  return p;
}

/** A CLI process whose stdout and stderr are collected. */
function start(args: string[]): { p: ChildProcess; out: () => string; exit: Promise<number | null> } {
  const p = spawn(process.execPath, [cli, ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  p.stdout!.on("data", (d) => { out += d; });
  p.stderr!.on("data", (d) => { out += d; });
  return { p, out: () => out, exit: new Promise((r) => p.once("exit", r)) };
}

async function until(what: string, check: () => boolean | Promise<boolean>, seconds = 120): Promise<void> {
  for (let i = 0; i < seconds * 10; i++) { if (await check()) return; await sleep(100); }
  assert.fail(`timed out waiting until ${what}`);
}

test("queue URLs: the password is redacted wherever the URL is shown; a bad URL is one error naming --queue", () => {
  assert.equal(redactUrl("redis://:hunter2@db.lan:6380/3"), "redis://:***@db.lan:6380/3");
  assert.equal(redactUrl("redis://ops:hunter2@db.lan/1"), "redis://ops:***@db.lan/1");
  assert.equal(redactUrl("redis://db.lan:6379/0"), "redis://db.lan:6379/0");
  const a = parseQueueUrl("redis://:p%40ss@10.0.0.5:6380/2");
  assert.deepEqual([a.connection.host, a.connection.port, a.connection.db, a.connection.password, a.shown],
    ["10.0.0.5", 6380, 2, "p@ss", "redis://:***@10.0.0.5:6380/2"]);
  assert.deepEqual([parseQueueUrl("redis://h").connection.port, parseQueueUrl("redis://h").connection.db], [6379, 0]);
  assert.throws(() => parseQueueUrl("http://:hunter2@h/0"), (e: Error) => /^--queue http:\/\/:\*\*\*@h\/0: unsupported scheme/.test(e.message) && !e.message.includes("hunter2"));
  assert.throws(() => parseQueueUrl("redis://:hunter2@h/abc"), (e: Error) => /database 'abc' is not a number/.test(e.message) && !e.message.includes("hunter2"));
  // query strings, fragments and text that is not a URL with a host never appear
  assert.equal(redactUrl("redis://127.0.0.1:6391/0?password=s3cretPW"), "redis://127.0.0.1:6391/0?***");
  assert.equal(redactUrl("redis://h/0#s3cretPW"), "redis://h/0#***");
  for (const bare of ["s3cretPW", "s3cret:PW", "s3cret PW", ""]) assert.equal(redactUrl(bare), "***", bare);
  for (const [value, why] of [["redis://127.0.0.1:6391/0?password=s3cretPW", /^--queue redis:\/\/127\.0\.0\.1:6391\/0\?\*\*\*: query strings/],
    ["s3cretPW", /^--queue \*\*\*: not a URL/], ["s3cret:PW", /^--queue \*\*\*: no host/]] as const) {
    assert.throws(() => parseQueueUrl(value), (e: Error) => why.test(e.message) && !e.message.includes("s3cret"), value);
    // the CLI: one line on stderr without the secret, exit 2 (a usage error)
    const r = spawnSync(process.execPath, [cli, "sweep", "submit", sweepPath, "--queue", value], { encoding: "utf8", env });
    assert.equal(r.status, 2, `${value}: ${r.stderr}`);
    assert.ok(why.test(r.stderr.replace(/^.*?--queue/s, "--queue")) && !(r.stdout + r.stderr).includes("s3cret"), r.stderr);
  }
});

test("--queue faults on every queue command: one prefix, a bad %-escape or port named with only the password redacted (exit 2)", () => {
  // the parser: the rest of the URL is shown even where WHATWG refuses the whole (a port out of range)
  assert.equal(redactUrl("redis://:hunter2@127.0.0.1:99999/1"), "redis://:***@127.0.0.1:99999/1");
  assert.equal(redactUrl("redis://:hun/ter@2@h:99999/0?x"), "redis://:***@h:99999/0?***", "a password holding / and @ never spills into the host");
  for (const [url, why] of [["redis://:hunter2@127.0.0.1:99999", "port 99999 is not an integer in 1–65535"], ["redis://:hunter2@h:0/0", "port 0 is not an integer in 1–65535"],
    ["redis://:hunter2@h:63x79", "port 63x79 is not an integer in 1–65535"], ["redis://:%zz@127.0.0.1:6399", "the password has a malformed %-escape"],
    ["redis://us%zer:hunter2@h", "the user name has a malformed %-escape"]]) {
    assert.throws(() => parseQueueUrl(url), (e: Error) => e.message.startsWith(`--queue ${redactUrl(url)}: ${why}`) && !e.message.includes("hunter2") && !e.message.includes("%zz"), url);
  }
  const db = join(work, "faults.sqlite");
  const commands = (url: string[]): string[][] => [["sweep", "submit", sweepPath, ...url], ["sweep", "collect", "--db", db, ...url], ["sweep", "collect", "--wait", "--db", db, ...url],
    ["worker", ...url]];
  const prefix = (args: string[]) => `randmask ${args[0] === "sweep" ? `sweep ${args[1]}` : args[0]}: `;
  assert.throws(() => parseQueueUrl("redis://:hunter2@loc%zzalhost:6379/0"),
    (e: Error) => e.message.startsWith("--queue redis://:***@loc%zzalhost:6379/0: the host loc%zzalhost has a '%'") && !e.message.includes("hunter2"));
  for (const args of commands(["--queue", ""])) {
    // an empty --queue is named as such, and does not fall back to a RANDMASK_QUEUE that is set
    const r = spawnSync(process.execPath, [cli, ...args], { encoding: "utf8", env: { ...env, RANDMASK_QUEUE: "redis://127.0.0.1:1/0" } });
    assert.equal(r.status, 2, r.stderr);
    assert.equal(r.stderr, `${prefix(args)}--queue is empty: expected a URL, e.g. --queue redis://127.0.0.1:6379/0 (an empty --queue does not fall back to RANDMASK_QUEUE)\n`,
      "the command is named once");
  }
  for (const args of commands([]).slice(0, 1)) {
    const r = spawnSync(process.execPath, [cli, ...args], { encoding: "utf8", env: { ...env, RANDMASK_QUEUE: "" } });
    assert.equal(r.stderr, `${prefix(args)}--queue URL is required (or set RANDMASK_QUEUE), e.g. --queue redis://127.0.0.1:6379/0\n`);
  }
  for (const [url, shown, why] of [["redis://:%zz@127.0.0.1:6399", "redis://:***@127.0.0.1:6399", "the password has a malformed %-escape"],
    [`redis://:${PASSWORD}@127.0.0.1:99999`, "redis://:***@127.0.0.1:99999", "port 99999 is not an integer in 1–65535"]]) {
    for (const args of commands(["--queue", url])) {
      const r = spawnSync(process.execPath, [cli, ...args], { encoding: "utf8", env });
      assert.equal(r.status, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.ok(r.stderr.startsWith(`${prefix(args)}--queue ${shown}: ${why}`) && r.stderr.split("\n").length === 2, r.stderr);
      assert.ok(!r.stderr.includes(PASSWORD) && !r.stderr.includes("URI malformed"), r.stderr);
    }
  }
  assert.ok(!existsSync(db), "nothing written");
});

test("a well-formed queue address where nothing answers exits 1 from every queue command, after its few tries, naming --queue", async () => {
  const port = await freePort(); // nothing listens there
  const url = `redis://:${PASSWORD}@127.0.0.1:${port}/0`;
  const db = join(work, "unreachable.sqlite"), dbWait = join(work, "unreached-db", "sub", "unreachable-wait.sqlite");
  const runs = [["sweep", "submit", sweepPath], ["sweep", "collect", "--db", db], ["sweep", "collect", "--wait", "--db", dbWait],
    ["worker", "--artifacts", join(work, "unreached-artifacts", "a")]].map((args) => {
    const p = start([...args, "--queue", url]);
    return Promise.race([p.exit, sleep(40_000).then(() => { p.p.kill("SIGKILL"); return "hung"; })]).then((code) => ({ args, code, out: p.out() }));
  });
  for (const { args, code, out } of await Promise.all(runs)) {
    assert.equal(code, 1, `${args.join(" ")}: ${out}`);
    assert.match(out, new RegExp(`--queue redis://:\\*\\*\\*@127\\.0\\.0\\.1:${port}/0: connect ECONNREFUSED`), args.join(" "));
    assert.ok(!out.includes(PASSWORD));
  }
  for (const f of [db, dbWait]) assert.ok(!existsSync(f), `collect left an empty ${f} behind`);
  assert.ok(!existsSync(join(work, "unreached-db")), "collect left the folders it made for --db behind");
  assert.ok(!existsSync(join(work, "unreached-artifacts")), "the worker left its --artifacts folder behind");
});

test("a job's payload is checked before anything runs: only runs of a sweep file's own schema pass", () => {
  const [job] = runJobs(loadSweep(sweepPath));
  assert.equal(validateRunJob(jobIdOf(job.id), JSON.parse(JSON.stringify(job))).id, job.id);
  const bad = (jobId: string, data: unknown, re: RegExp) =>
    assert.throws(() => validateRunJob(jobId, data), (e: Error) => e instanceof MalformedJobError && re.test(e.message) && /not executed$/.test(e.message), String(re));
  bad("x", "rm -rf /", /malformed job "x": the data is not an object/);
  bad(jobIdOf(job.id), { ...job, schema: "other/1" }, /schema "other\/1", expected "randmask-run\/1"/);
  bad(jobIdOf(job.id), { ...job, command: "sh" }, /unknown field\(s\) command/);
  bad("run-0123456789abcdef", job, /id [0-9a-f]{16} differs from the job id/);
  bad(job.id, job, /id [0-9a-f]{16} differs from the job id/); // the bare run id is no job id of ours
  bad(jobIdOf(job.id), { ...job, config: { ...job.config, method: "nope" } }, /config: methods\[0\]\.method: unknown method 'nope'/);
  bad(jobIdOf(job.id), { ...job, config: { ...job.config, model: "/nowhere" } }, /config: models: \/nowhere has no config\.json/);
  bad(jobIdOf(job.id), { ...job, config: { ...job.config, train: { ...job.config.train, lr: 0.5 } } }, /its hash is not the job id/);
  bad(jobIdOf(job.id), { ...job, config: { ...job.config, extra: 1 } }, /its hash is not the job id/);
  bad(jobIdOf(job.id), { ...job, config: { ...job.config, train: { ...job.config.train, batchSize: -1 } } }, /train\.batchSize: expected a positive integer/);
});

test("the CLI: a queue that cannot be reached is one error without the password; --device cuda is refused", { skip: noRedis }, async () => {
  const port = await freePort(); // nothing listens there
  const r = spawnSync(process.execPath, [cli, "sweep", "submit", sweepPath, "--queue", `redis://:${PASSWORD}@127.0.0.1:${port}/0`], { encoding: "utf8", env });
  assert.equal(r.status, 1);
  assert.match(r.stderr, new RegExp(`--queue redis://:\\*\\*\\*@127\\.0\\.0\\.1:${port}/0: connect ECONNREFUSED`));
  assert.ok(!(r.stdout + r.stderr).includes(PASSWORD));
  const d = spawnSync(process.execPath, [cli, "worker", "--queue", "redis://127.0.0.1:1/0", "--device", "cuda:0"], { encoding: "utf8", env });
  assert.equal(d.status, 2);
  assert.match(d.stderr, /--device cuda:0: each run trains on the device its sweep file's "device" key names; set "device": "cuda:0" there/);
  const q = spawnSync(process.execPath, [cli, "sweep", "collect", "--db", join(work, "none.sqlite")], { encoding: "utf8", env: { ...env, RANDMASK_QUEUE: "" } });
  assert.equal(q.status, 2);
  assert.match(q.stderr, /sweep collect: --queue URL is required \(or set RANDMASK_QUEUE\)/);
});

test("a wrong password, rediss:// to a plain Redis, nothing listening: one error naming --queue; submit and worker exit 1 instead of retrying", { skip: noRedis, timeout: 180_000 }, async () => {
  const redisDir = mkdtempSync(join(work, "redis-"));
  const port = await freePort();
  const redis = await startRedis(redisDir, port);
  try {
    const url = `redis://:not-${PASSWORD}@127.0.0.1:${port}/0`;
    const s = spawnSync(process.execPath, [cli, "sweep", "submit", sweepPath, "--queue", url], { encoding: "utf8", env, timeout: 30_000 });
    assert.equal(s.status, 1, s.stderr);
    assert.match(s.stderr, new RegExp(`--queue redis://:\\*\\*\\*@127\\.0\\.0\\.1:${port}/0: .*(WRONGPASS|invalid)`));
    const w = start(["worker", "--queue", url]);
    const code = await Promise.race([w.exit, sleep(30_000).then(() => "hung")]);
    if (code === "hung") w.p.kill("SIGKILL");
    assert.equal(code, 1, w.out());
    assert.match(w.out(), /--queue redis:\/\/:\*\*\*@.*(WRONGPASS|invalid)/);
    assert.ok(!(s.stderr + w.out()).includes(PASSWORD));
    // rediss:// against this plain server: the TLS hello is never answered; a worker that never connected gives up
    const tls = `rediss://:${PASSWORD}@127.0.0.1:${port}/0`;
    const t0 = Date.now();
    const st = spawnSync(process.execPath, [cli, "sweep", "submit", sweepPath, "--queue", tls], { encoding: "utf8", env, timeout: 40_000 });
    assert.equal(st.status, 1, st.stderr);
    assert.ok(Date.now() - t0 < 30_000, `submit gave up after ${Date.now() - t0} ms`);
    assert.match(st.stderr, /ETIMEDOUT \(rediss:\/\/ needs a Redis that speaks TLS; for a plain one use redis:\/\/\)/);
    const wt = start(["worker", "--queue", tls]);
    const tcode = await Promise.race([wt.exit, sleep(50_000).then(() => "hung")]);
    if (tcode === "hung") wt.p.kill("SIGKILL");
    assert.equal(tcode, 1, wt.out());
    assert.match(wt.out(), /rediss:\/\/ needs a Redis that speaks TLS/);
    assert.ok(!(st.stderr + wt.out()).includes(PASSWORD));
  } finally {
    redis.kill("SIGKILL");
  }
  // nothing listening: a worker that never reached the queue exits instead of retrying forever
  const none = start(["worker", "--queue", `redis://127.0.0.1:${await freePort()}/0`]);
  const ncode = await Promise.race([none.exit, sleep(30_000).then(() => "hung")]);
  if (ncode === "hung") none.p.kill("SIGKILL");
  assert.equal(ncode, 1, none.out());
  assert.match(none.out(), /ECONNREFUSED/);
});

test("13 runs over 3 workers, one SIGKILLed mid-run and Redis killed and restarted: each result arrives once and equals a local sweep's", { skip: noRedis, timeout: 300_000 }, async () => {
  const redisDir = mkdtempSync(join(work, "redis-"));
  const port = await freePort();
  let redis = await startRedis(redisDir, port);
  const url = `redis://:${PASSWORD}@127.0.0.1:${port}/1`;
  const queue = new Queue(QUEUE_NAME, { connection: { ...parseQueueUrl(url).connection } });
  queue.on("error", () => {}); // the restart below
  const procs: ChildProcess[] = [];
  try {
    // the reference: the same sweep run locally, meanwhile (two processes of one thread each)
    const local = start(["sweep", "run", sweepPath, "--db", join(work, "local.sqlite"), "--workers", "2"]);
    procs.push(local.p);

    const submit = () => spawnSync(process.execPath, [cli, "sweep", "submit", sweepPath, "--queue", url], { encoding: "utf8", env });
    const first = submit();
    assert.equal(first.status, 0, first.stderr);
    assert.match(first.stdout, /sweep grid: 13 runs · 13 queued, 0 already in the queue · redis:\/\/:\*\*\*@127\.0\.0\.1/);
    // a malformed job: a real run's payload with its command line swapped in; and one that is no run at all
    const [real] = runJobs(loadSweep(sweepPath));
    const evil = jobIdOf("0000000000000000");
    await queue.add("run", { ...real, id: runIdOfJob(evil), config: { ...real.config, method: "sh -c 'touch pwned'" } }, { jobId: evil });
    await queue.add("run", { schema: RUN_SCHEMA, id: "junk" }, { jobId: "junk" });

    const workerArgs = ["worker", "--queue", url, "--lock-s", "10", "--max-retries", "2"];
    const workers = [start(workerArgs), start(workerArgs), start(workerArgs)];
    procs.push(...workers.map((w) => w.p));
    const coordinator = start(["sweep", "collect", "--wait", "--queue", url, "--db", join(work, "dist.sqlite")]);
    procs.push(coordinator.p);

    // worker 0 is killed in the middle of a run (runs last seconds; the kill comes 0.5 s after the start);
    // its run goes back to the queue once its lock (10 s) expires
    const training = /^start ([0-9a-f]{16}) jsonl random-mask/m;
    await until("worker 0 starts a run", () => training.test(workers[0].out()));
    const victim = training.exec(workers[0].out())![1];
    await sleep(500);
    workers[0].p.kill("SIGKILL");
    await workers[0].exit;
    assert.ok(!workers[0].out().includes(`stored ${victim}`), "the kill landed after the run had finished");

    // submitting again adds nothing: every run is queued, running or done
    const again = submit();
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stdout, /0 queued, 13 already in the queue/);

    // Redis dies (SIGKILL) once some results are acknowledged, and comes back on the same folder
    const stored = () => workers.map((w) => w.out()).join("\n").match(/^stored [0-9a-f]{16} /gm)?.length ?? 0;
    await until("4 results are stored", () => stored() >= 4, 180);
    const before = new Map((await queue.getJobs(["completed"])).map((j) => [j.id!, JSON.stringify(j.returnvalue)]));
    assert.ok(before.size >= 4);
    redis.kill("SIGKILL");
    await new Promise((r) => redis.once("exit", r));
    await sleep(1500);
    redis = await startRedis(redisDir, port);

    // the coordinator ends once nothing is queued or running
    const code = await Promise.race([coordinator.exit, sleep(200_000, "timeout", { ref: false })]);
    assert.equal(code, 0, coordinator.out());
    for (const [id, value] of before) {
      const job = (await queue.getJob(id))!;
      assert.equal(await job.getState(), "completed", `${id} was acknowledged before the restart`);
      assert.equal(JSON.stringify(job.returnvalue), value, `${id}: its result changed over the restart`);
    }

    // exactly once: each run's result was acknowledged by one worker, the victim's by another one, as its second start
    const logs = workers.slice(1).map((w) => w.out()).join("\n");
    const ids = loadSweep(sweepPath).runs.map((r) => r.id);
    for (const id of ids) assert.equal(logs.match(new RegExp(`^stored ${id} `, "gm"))?.length, 1, `${id} stored once`);
    assert.match(logs, new RegExp(`^start ${victim} .*\\(attempt 2\\)$`, "m"), "the killed run is retried elsewhere");
    // the malformed jobs were rejected, never started
    for (const id of [evil, "junk"]) {
      const job = (await queue.getJob(id))!;
      assert.equal(await job.getState(), "failed");
      assert.match(job.failedReason, new RegExp(`^malformed job "${id}": .*; not executed$`));
      assert.ok(!new RegExp(`^start ${id}`, "m").test(logs));
    }
    assert.match((await queue.getJob(evil))!.failedReason, /config: methods\[0\]\.method: unknown method 'sh -c 'touch pwned''/);
    assert.match(coordinator.out(), /rejected job junk: malformed job "junk"/);
    assert.match(coordinator.out(), /13 runs · 13 results stored now, 0 stored before, 0 queued or running/, "every pass of --wait counts");
    assert.ok(!existsSync(join(work, "pwned")) && !existsSync("pwned"));
    for (const p of [...workers.map((w) => w.out()), coordinator.out(), first.stdout, first.stderr]) assert.ok(!p.includes(PASSWORD), "the password is printed");

    // the distributed database equals the local one in configuration and metrics
    assert.equal(await local.exit, 0, local.out());
    const dist = rowsOf(join(work, "dist.sqlite"));
    const loc = rowsOf(join(work, "local.sqlite"));
    assert.equal(dist.length, 13);
    assert.deepEqual(dist.map((r) => r.status), [...Array(12).fill("completed"), "failed"], dist.map((r) => `${r.status} ${r.error}`).join("\n"));
    assert.match(dist[12].error!, /option " (no|yes)" is longer than the model's 2 positions/, "a failed run is a result, with its reason");
    assert.deepEqual(dist.map((r) => r.attempts).sort(), [...Array(12).fill(1), 2], "one run was started twice, the failed one once");
    const same = (r: RunRow) => {
      const { attempts, owner_host, owner_pid, child_pid, heartbeat_at, started_at, finished_at, wall_time_s, host, run_dir, adapter_dir, log_path, ...rest } = r;
      return rest;
    };
    assert.deepEqual(dist.map(same), loc.map(same));
    for (let i = 0; i < 12; i++) {
      for (const f of ["adapter/adapter_model.safetensors", "adapter/adapter_config.json", "predictions.jsonl"]) {
        assert.ok(readFileSync(join(dist[i].run_dir!, f)).equals(readFileSync(join(loc[i].run_dir!, f))), `${dist[i].id}: ${f} differs`);
      }
      assert.equal(dist[i].adapter_dir, join(dist[i].run_dir!, "adapter"));
    }
    const results = (db: string) => spawnSync(process.execPath, [cli, "sweep", "results", "--db", db, "--format", "csv"], { encoding: "utf8" }).stdout;
    assert.equal(results(join(work, "dist.sqlite")), results(join(work, "local.sqlite")));
    // collecting again stores nothing twice
    const re = spawnSync(process.execPath, [cli, "sweep", "collect", "--queue", url, "--db", join(work, "dist.sqlite")], { encoding: "utf8", env });
    assert.equal(re.status, 0, re.stderr);
    assert.match(re.stderr, /13 runs · 0 results stored now, 13 stored before, 0 queued or running · 2 rejected job\(s\)/);
  } finally {
    for (const p of procs) if (p.exitCode === null) p.kill("SIGKILL");
    await queue.close().catch(() => {});
    redis.kill("SIGKILL");
  }
});

test("a run whose worker is lost more often than --max-retries allows is failed with the reason", { skip: noRedis, timeout: 120_000 }, async () => {
  const redisDir = mkdtempSync(join(work, "redis-"));
  const port = await freePort();
  const redis = await startRedis(redisDir, port);
  const url = `redis://:${PASSWORD}@127.0.0.1:${port}/2`;
  const procs: ChildProcess[] = [];
  try {
    const file = join(work, "one.json");
    writeFileSync(file, JSON.stringify({ name: "one", models: ["model"], tasks: ["jsonl"], dataDir: "data", sizes: { train: 16, dev: 8, test: 8 },
      epochs: [20], train: { batchSize: 8 }, lrs: [1e-3], methods: [{ method: "random-mask", trainableRatios: [1e-3] }] }));
    assert.equal(spawnSync(process.execPath, [cli, "sweep", "submit", file, "--queue", url], { encoding: "utf8", env }).status, 0);
    const args = ["worker", "--queue", url, "--lock-s", "2", "--max-retries", "0"];
    const doomed = start(args);
    procs.push(doomed.p);
    await until("the worker starts the run", () => /^start /m.test(doomed.out()), 60);
    await sleep(300);
    doomed.p.kill("SIGKILL");
    const other = start(args); // its stalled-job check finds the run's lock expired
    procs.push(other.p);
    const db = join(work, "lost.sqlite");
    await until("the run is failed", () => {
      spawnSync(process.execPath, [cli, "sweep", "collect", "--queue", url, "--db", db], { env });
      return existsSync(db) && rowsOf(db)[0]?.status === "failed";
    }, 90);
    const [row] = rowsOf(db);
    assert.match(row.error!, /stalled more than allowable limit.*\(its worker was lost 1 time\(s\)\)/);
    assert.equal(row.attempts, 1, `${other.out()}\n---\n${doomed.out()}`);
    assert.ok(!/^start /m.test(other.out()), "never started again");
  } finally {
    for (const p of procs) if (p.exitCode === null) p.kill("SIGKILL");
    redis.kill("SIGKILL");
  }
});

test("a run whose id is all digits is queued (BullMQ refuses integer job ids); Ctrl-C on a worker hands its run back at once; --artifacts keeps run folders in a shared folder, named in the database", { skip: noRedis, timeout: 120_000 }, async () => {
  const redisDir = mkdtempSync(join(work, "redis-"));
  const port = await freePort();
  const redis = await startRedis(redisDir, port);
  const url = `redis://:${PASSWORD}@127.0.0.1:${port}/4`;
  const queue = new Queue(QUEUE_NAME, { connection: { ...parseQueueUrl(url).connection } });
  const procs: ChildProcess[] = [];
  try {
    const file = join(work, "art.json");
    const spec = { name: "art", models: ["model"], tasks: ["jsonl"], dataDir: "data", sizes: { train: 16, dev: 8, test: 8 },
      epochs: [4], train: { batchSize: 8 }, lrs: [1e-3], methods: [{ method: "random-mask", trainableRatios: [1e-3] }] };
    writeFileSync(file, JSON.stringify(spec));
    // the seed that makes this run's id all decimal digits, which BullMQ refuses as a job id ("Custom Id cannot be
    // integers"); about one id in 2,000 is one
    const { config } = loadSweep(file).runs[0];
    let seed = 0;
    const withSeed = (s: number) => ({ ...config, train: { ...config.train, seed: s }, methodOptions: { ...config.methodOptions, seed: s } });
    while (!/^[1-9][0-9]{15}$/.test(runId(withSeed(seed)))) seed++;
    writeFileSync(file, JSON.stringify({ ...spec, seeds: [seed] }));
    const [id] = loadSweep(file).runs.map((r) => r.id);
    assert.match(id, /^[0-9]{16}$/);
    const submitted = spawnSync(process.execPath, [cli, "sweep", "submit", file, "--queue", url], { encoding: "utf8", env });
    assert.equal(submitted.status, 0, submitted.stderr);
    const shared = join(work, "shared-artifacts");
    const args = ["worker", "--queue", url, "--artifacts", shared];
    const first = start(args);
    procs.push(first.p);
    await until("the worker starts the run", () => /^start /m.test(first.out()), 60);
    first.p.kill("SIGINT");
    assert.equal(await first.exit, 0, first.out());
    assert.match(first.out(), /stopping: runs in flight go back to the queue/);
    assert.equal(await (await queue.getJob(jobIdOf(id)))!.getState(), "waiting", "handed back without waiting for its lock to expire");
    const second = start(args);
    procs.push(second.p);
    await until("the run is stored", () => new RegExp(`^stored ${id} completed`, "m").test(second.out()), 90);
    const db = join(work, "collected", "art.sqlite"); // a folder collect makes
    const c = spawnSync(process.execPath, [cli, "sweep", "collect", "--queue", url, "--db", db], { encoding: "utf8", env });
    assert.equal(c.status, 0, c.stderr);
    const [row] = rowsOf(db);
    assert.deepEqual([row.status, row.attempts, row.run_dir, row.adapter_dir], ["completed", 2, join(shared, id), join(shared, id, "adapter")]);
    assert.ok(existsSync(join(shared, id, "adapter", "adapter_model.safetensors")));
    assert.equal(JSON.parse(readFileSync(join(shared, id, "metrics.json"), "utf8")).dev_per_epoch.length, 4);
    assert.equal((await queue.getJob(jobIdOf(id)))!.returnvalue.files, null, "the files are not in the result");
  } finally {
    for (const p of procs) if (p.exitCode === null) p.kill("SIGKILL");
    await queue.close().catch(() => {});
    redis.kill("SIGKILL");
  }
});
