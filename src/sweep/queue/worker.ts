// `randmask worker`: pulls runs from the queue (BullMQ on Redis) and executes each in its own
// process, exactly as `sweep run` does (src/sweep/runner.ts runChild), then returns the run's
// result (metrics.json and, when small enough, its files) as the job's return value.
// A worker killed mid-run stops renewing its job's lock; when the lock expires another worker's
// stalled-job check puts the job back in the queue (at most --max-retries times, then failed).
import { Worker, UnrecoverableError, WaitingError, type Job } from "bullmq";
import type { ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { availableParallelism, hostname, tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { RANDMASK_VERSION } from "../../version.js";
import { readRecord } from "../db.js";
import { describe, runChild } from "../runner.js";
import { QUEUE_NAME, RESULT_SCHEMA, validateRunJob, type EmbeddedFiles, type RunResult } from "./payload.js";
import { redactError, STARTUP_ATTEMPTS, type QueueAddress } from "./redis-url.js";

export interface WorkerOptions {
  /** Runs at once; the cores (RANDMASK_THREADS, else all) are split between them. */
  concurrency: number;
  /** Shared folder: each run's files go to DIR/<run id>/ and the result carries that path instead of the files. */
  artifactsDir?: string;
  /** Run folders larger than this many bytes are not embedded in the result but kept on this machine. */
  embedLimitBytes?: number;
  /** Seconds a job's lock lives without renewal: a killed worker's run goes back to the queue after about this long. */
  lockS?: number;
  /** How many times a run may be taken back from a lost worker before it is marked failed. */
  maxRetries?: number;
  log?: (line: string) => void;
}

const DEFAULT_EMBED_LIMIT = 16 * 2 ** 20;

/** Runs until SIGINT/SIGTERM (runs in flight are stopped and handed back to the queue). */
export async function runWorker(address: QueueAddress, o: WorkerOptions): Promise<void> {
  const log = o.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const threads = Math.max(1, Math.floor(Number(process.env.RANDMASK_THREADS || availableParallelism()) / o.concurrency));
  const workDir = o.artifactsDir ? resolve(o.artifactsDir) : join(tmpdir(), `randmask-worker-${process.pid}`);
  const children = new Map<string, ChildProcess>();
  let stopping = false;
  const lockMs = (o.lockS ?? 30) * 1000;

  const processor = async (job: Job, token?: string): Promise<RunResult> => {
    let run;
    try {
      run = validateRunJob(job.id, job.data);
    } catch (e) {
      log(`rejected ${(e as Error).message}`);
      throw new UnrecoverableError((e as Error).message); // failed at once, never retried
    }
    const dir = join(workDir, run.id);
    rmSync(dir, { recursive: true, force: true }); // a retried run starts from scratch
    log(`start ${run.id} ${describe(run.config)} (attempt ${job.attemptsStarted})`);
    const t0 = Date.now();
    const { code, stderr } = await runChild(run.id, run.config, dir, threads, 3600, children, () => true);
    const wallS = (Date.now() - t0) / 1000;
    if (stopping) {
      await job.moveToWait(token);
      throw new WaitingError();
    }
    const metrics = join(dir, "metrics.json");
    const ok = code === 0 && existsSync(metrics);
    const record = ok ? readRecord(metrics) : null;
    let files: EmbeddedFiles | null = null;
    let kept: string | null = o.artifactsDir ? dir : null;
    if (!o.artifactsDir && existsSync(dir)) {
      const all = listFiles(dir);
      if (all.reduce((n, f) => n + statSync(f).size, 0) <= (o.embedLimitBytes ?? DEFAULT_EMBED_LIMIT)) {
        files = Object.fromEntries(all.map((f) => [relative(dir, f), readFileSync(f).toString("base64")]));
        rmSync(dir, { recursive: true, force: true });
      } else {
        kept = dir;
        log(`${run.id}: files over ${(o.embedLimitBytes ?? DEFAULT_EMBED_LIMIT) / 2 ** 20} MiB stay in ${dir} on ${hostname()} (use --artifacts DIR for a shared folder)`);
      }
    }
    const error = ok ? null : stderr.trim().split("\n").slice(-20).join("\n") || `exit code ${code}`;
    return { schema: RESULT_SCHEMA, id: run.id, status: record ? record.status : "failed", record, error, wallS, host: hostname(), pid: process.pid,
      attempt: job.attemptsStarted, randmaskVersion: RANDMASK_VERSION, files, dir: kept, shared: Boolean(o.artifactsDir) };
  };

  // Stop handlers go in before the worker exists: it may take a job before waitUntilReady resolves.
  let worker: Worker | undefined;
  let fatal: Error | undefined;
  let closed!: () => void;
  const finished = new Promise<void>((done) => (closed = done));
  const stop = (why = "stopping: runs in flight go back to the queue") => {
    if (stopping) return;
    stopping = true;
    log(why);
    for (const c of children.values()) c.kill("SIGTERM");
    (worker ? worker.close() : Promise.resolve()).then(closed, closed);
  };
  /** Stops the worker; runWorker then throws this (already redacted) message naming --queue. */
  const giveUp = (msg: string) => {
    fatal ??= new Error(`--queue ${address.shown}: ${msg}`);
    stop(`queue ${address.shown}: ${msg}`);
  };
  const onSignal = () => stop();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    worker = new Worker(QUEUE_NAME, processor, {
      connection: address.connection, concurrency: o.concurrency, lockDuration: lockMs, autorun: false,
      stalledInterval: Math.max(1000, Math.floor(lockMs / 2)), maxStalledCount: o.maxRetries ?? 2,
    });
    // logged once Redis has stored the result: each run's line appears once over all workers
    worker.on("completed", (_job, r: RunResult) => log(`stored ${r.id} ${r.status}${r.error ? `: ${r.error.split("\n").at(-1)}` : ""} (${r.wallS.toFixed(1)} s)`));
    worker.on("failed", (job, e) => { if (!(e instanceof UnrecoverableError)) log(`failed ${job?.id}: ${redactError(e, address)}`); });
    let lastError = "";
    let everReady = false;
    let startupErrors = 0;
    worker.on("error", (e) => {
      const msg = redactError(e, address);
      // Retrying cannot fix a wrong user or password, nor an address never reached: stop with the error.
      // Once connected, errors are a Redis restart or a network blip, and ioredis reconnects by itself.
      if (isAuthError(msg) || (!everReady && ++startupErrors >= STARTUP_ATTEMPTS)) return giveUp(msg);
      if (msg !== lastError) log(`queue ${address.shown}: ${msg}${everReady ? "" : ` (attempt ${startupErrors} of ${STARTUP_ATTEMPTS}, trying again)`}`);
      lastError = msg;
    });
    worker.on("ready", () => { lastError = ""; everReady = true; });
    await Promise.race([worker.waitUntilReady(), finished]).catch((e) => { throw new Error(`--queue ${address.shown}: ${redactError(e, address)}`); });
    if (!stopping) {
      mkdirSync(workDir, { recursive: true }); // only once the queue answered: a worker that gives up leaves no folder
      log(`worker ${hostname()}:${process.pid} on ${address.shown}: ${o.concurrency} run(s) at once, ${threads} thread(s) each, lock ${lockMs / 1000} s, ` +
        `at most ${o.maxRetries ?? 2} retries of a lost run, files ${o.artifactsDir ? `in ${workDir}` : "in the results"}`);
      worker.run().catch((e) => giveUp(redactError(e, address)));
    }
    await finished;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
  if (!o.artifactsDir) rmSync(workDir, { recursive: true, force: true });
  if (fatal) throw fatal;
}

/** Redis's answers to a wrong user name or password (Redis 6+ ACL and the older requirepass). */
function isAuthError(msg: string): boolean {
  return /WRONGPASS|NOAUTH|invalid password|invalid username-password/i.test(msg);
}

function listFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? listFiles(join(dir, e.name)) : [join(dir, e.name)]));
}
