// `randmask sweep collect`: reads the queue's runs and their results into the results database
// of local sweeps (src/sweep/db.ts), so `sweep status|results` and `report` read both alike.
// Each result is stored once: a row that already holds one is left alone.
import { Queue, type Job } from "bullmq";
import { mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { ResultsDb } from "../db.js";
import type { Sweep } from "../spec.js";
import { QUEUE_NAME, readRunJob, runIdOfJob, validateRunResult, type RunJob } from "./payload.js";
import { oneShot, redactError, untilReached, type QueueAddress } from "./redis-url.js";

export interface Collected {
  /** Runs the queue holds, and of those: results stored by this call (every pass of a --wait), results in the database before it, runs still queued or running. */
  runs: number; stored: number; known: number; unfinished: number;
  /** Jobs that are not randmask runs, or that workers refused: their ids and reasons. */
  rejected: { id: string; reason: string }[];
}

export interface CollectOptions {
  /** Where embedded run files are written: OUT_DIR/<run id>/ (as `sweep run`'s run folders). */
  outDir: string;
  /** Poll until no run is queued or running (seconds between passes). */
  waitS?: number;
  log?: (line: string) => void;
}

/** One pass, or (waitS) passes until the queue has no unfinished run; returns the last pass's counts. */
export async function collectResults(address: QueueAddress, db: ResultsDb, o: CollectOptions): Promise<Collected> {
  const log = o.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  // a coordinator (waitS) waits out a Redis restart once it has reached the queue; a single pass, or a
  // coordinator that never reached it, gives up after STARTUP_ATTEMPTS tries (as a worker does)
  let everReady = false;
  const queue = new Queue(QUEUE_NAME, { connection: o.waitS ? untilReached(address, () => everReady) : oneShot(address) });
  let lastError = "";
  queue.on("error", (e) => {
    const msg = redactError(e, address);
    if (o.waitS && everReady && msg !== lastError) log(`queue ${address.shown}: ${msg} (retrying)`);
    lastError = msg;
  });
  try {
    await queue.waitUntilReady();
    everReady = true;
    let storedEarlier = 0; // by this call's earlier passes: the last pass counts them as known
    for (;;) {
      let c: Collected;
      try {
        c = await collectOnce(queue, db, o.outDir, log);
      } catch (e) {
        if (!o.waitS) throw e;
        log(`queue ${address.shown}: ${redactError(e, address)} (retrying)`);
        await sleep(o.waitS * 1000);
        continue;
      }
      // the lists are read one after another: a job moving between them may be missed, the counts are exact
      if (!o.waitS || (c.unfinished === 0 && Object.values(await queue.getJobCounts("waiting", "active", "delayed", "prioritized")).every((n) => n === 0))) {
        return { ...c, stored: c.stored + storedEarlier, known: c.known - storedEarlier };
      }
      storedEarlier += c.stored;
      await sleep(o.waitS * 1000);
    }
  } catch (e) {
    throw new Error(`--queue ${address.shown}: ${redactError(e, address)}`);
  } finally {
    await queue.close();
  }
}

/**
 * One pass. Only job ids are listed; a job's data is fetched when its run is new to the database,
 * and its result when it finished and its row has none yet, so a pass over a collected sweep is cheap.
 */
async function collectOnce(queue: Queue, db: ResultsDb, outDir: string, log: (l: string) => void): Promise<Collected> {
  const finishedIds = await queue.getRanges(["completed", "failed"], 0, -1, true);
  const done = new Set(finishedIds);
  const openIds = (await queue.getRanges(["active", "waiting", "delayed", "prioritized"], 0, -1, true)).filter((id) => !done.has(id));
  const all = [...new Set([...finishedIds, ...openIds])];
  // rows are keyed by run id; a job id without one (runIdOfJob: undefined) is no randmask run
  const status = () => new Map(db.rows(all.map(runIdOfJob).filter((r): r is string => r !== undefined)).map((r) => [r.id, r.status]));
  let rows = status();
  const inDb = (jobId: string) => rows.has(runIdOfJob(jobId) ?? "");
  const rejected: Collected["rejected"] = [];
  const fresh: { job: Job; run: RunJob }[] = [];
  for (const id of all.filter((i) => !inDb(i))) {
    const job = await queue.getJob(id);
    if (!job) continue; // removed meanwhile
    const run = readRunJob(id, job.data);
    if (run) fresh.push({ job, run });
    else rejected.push({ id, reason: job.failedReason || "not a randmask run" });
  }
  // new rows in sweep-file order (first submitted sweep first), as `sweep run` adds them
  fresh.sort((a, b) => a.job.timestamp - b.job.timestamp || a.run.index - b.run.index);
  const sweeps = new Map<string, Sweep>();
  for (const { run } of fresh) {
    if (!sweeps.has(run.sweep)) sweeps.set(run.sweep, { name: run.sweep, file: "", runs: [] });
    sweeps.get(run.sweep)!.runs.push({ id: run.id, config: run.config });
  }
  for (const s of sweeps.values()) db.addRuns(s);
  rows = status();
  let stored = 0, known = 0;
  for (const id of finishedIds.filter(inDb)) {
    const row = rows.get(runIdOfJob(id)!);
    if (row !== "pending" && row !== "running") { known++; continue; }
    const job = await queue.getJob(id);
    if (job && storeJob(job, db, outDir, log)) stored++;
  }
  return { runs: rows.size, stored, known, unfinished: openIds.filter(inDb).length, rejected };
}

/** Stores a finished job's result (or its failure) in its row; false when the row already had one. */
function storeJob(job: Job, db: ResultsDb, outDir: string, log: (l: string) => void): boolean {
  const id = runIdOfJob(job.id)!;
  const finishedAt = (job.finishedOn ?? Date.now()) / 1000;
  if (job.failedReason && !job.returnvalue) {
    // lost more often than allowed, or refused by a worker (e.g. a model folder it lacks): a failure without a run folder
    const stalled = job.stalledCounter > 0 && /stalled more than allowable limit/.test(job.failedReason);
    const reason = job.stalledCounter > 0 ? `${job.failedReason} (its worker was lost ${job.stalledCounter} time(s))` : job.failedReason;
    // BullMQ fails a job lost too often when a worker next fetches it: that fetch counts as a start, yet runs nothing
    const ok = db.storeResult(id, { record: null, error: reason, attempts: job.attemptsStarted - (stalled ? 1 : 0), wallS: null, host: "", version: "",
      finishedAt, runDir: null, adapterDir: null, logPath: null });
    if (ok) log(`${id}: failed: ${reason}`);
    return ok;
  }
  const res = validateRunResult(job.id, job.returnvalue);
  const runDir = res.files ? writeFiles(join(outDir, id), res.files) : res.dir === null ? null : res.shared ? res.dir : `${res.host}:${res.dir}`;
  const has = (p: string) => (res.files ? Object.keys(res.files).some((f) => f === p || f.startsWith(`${p}/`)) : res.status !== "failed");
  const ok = db.storeResult(id, { record: res.record, error: res.error, attempts: res.attempt, wallS: res.wallS, host: res.host, version: res.randmaskVersion,
    finishedAt, runDir, adapterDir: runDir && has("adapter") ? join(runDir, "adapter") : null, logPath: runDir && has("train.log") ? join(runDir, "train.log") : null });
  if (ok) log(`${id}: ${res.status}${res.error ? `: ${res.error.split("\n").at(-1)}` : ""} (worker ${res.host}:${res.pid}, attempt ${res.attempt})`);
  return ok;
}

/** Writes a run's embedded files into a fresh folder (written beside it, then renamed into place). */
function writeFiles(dir: string, files: Record<string, string>): string {
  const tmp = `${dir}.part`;
  rmSync(tmp, { recursive: true, force: true });
  for (const [rel, b64] of Object.entries(files)) {
    mkdirSync(dirname(join(tmp, rel)), { recursive: true });
    writeFileSync(join(tmp, rel), Buffer.from(b64, "base64"));
  }
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
  return dir;
}
