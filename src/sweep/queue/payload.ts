// What travels through the queue. A job's data is one run of a sweep
// (randmask-run/1); its return value is that run's result (randmask-result/1).
// Workers execute nothing else: every job's data is checked here first, and its
// configuration is rebuilt through the sweep file's own validation (src/sweep/spec.ts),
// so the run a worker starts is exactly one a sweep file could have produced.
import type { RunRecord } from "../../train/run.js";
import { isObject } from "../../io/json-value.js";
import { expandSweep, runId, type RunConfig, type Sweep } from "../spec.js";

export const QUEUE_NAME = "randmask-runs";
export const RUN_SCHEMA = "randmask-run/1";
export const RESULT_SCHEMA = "randmask-result/1";

/**
 * The BullMQ job id of a run: its id behind a prefix. BullMQ refuses a custom id that reads as an
 * integer ("Custom Id cannot be integers"), and a 16-hex-digit hash is all decimal digits about once
 * in 2,000 runs; a prefix makes every run's job id valid.
 */
export const jobIdOf = (runId: string): string => `run-${runId}`;

/** The run id inside a job id made by jobIdOf; undefined for any other job id (not one of randmask's runs). */
export function runIdOfJob(jobId: string | undefined): string | undefined {
  const m = /^run-([0-9a-f]{16})$/.exec(jobId ?? "");
  return m ? m[1] : undefined;
}

export interface RunJob {
  schema: typeof RUN_SCHEMA;
  /** The run's id (sha256 of its configuration, src/sweep/spec.ts runId); the BullMQ job id is jobIdOf(id). */
  id: string;
  sweep: string;
  /** Position in the sweep file's expansion, so the results database keeps the file's order. */
  index: number;
  config: RunConfig;
}

/** A run's files as base64, keyed by their path inside the run folder (adapter/adapter_model.safetensors, ...). */
export type EmbeddedFiles = Record<string, string>;

export interface RunResult {
  schema: typeof RESULT_SCHEMA;
  id: string;
  /** completed / diverged: `record` is the run's metrics.json; failed: the run's process failed, `error` says why. */
  status: "completed" | "diverged" | "failed";
  record: RunRecord | null;
  error: string | null;
  /** Seconds of the run's process. */
  wallS: number;
  /** Which worker ran it (host name and process id) and which start of the job this was (2 = retried once). */
  host: string;
  pid: number;
  attempt: number;
  randmaskVersion: string;
  /** Where the run's files are: embedded here, or in `dir`: a shared folder (`--artifacts DIR`), or one on `host` when too large to embed. */
  files: EmbeddedFiles | null;
  dir: string | null;
  shared: boolean;
}

export class MalformedJobError extends Error {
  constructor(jobId: string | undefined, message: string) {
    super(`malformed job ${JSON.stringify(jobId ?? "?")}: ${message}; not executed`);
    this.name = "MalformedJobError";
  }
}

export function runJobs(sweep: Sweep): RunJob[] {
  return sweep.runs.map((r, index) => ({ schema: RUN_SCHEMA, id: r.id, sweep: sweep.name, index, config: r.config }));
}

/**
 * Checks a job's data before anything runs: the schema tag, the id (= hash of the configuration,
 * and the one in the job id), and the configuration itself through the sweep file's checks (known task,
 * method and options, an existing model folder on this machine, valid training options).
 * Throws MalformedJobError naming the job and the first problem.
 */
export function validateRunJob(jobId: string | undefined, data: unknown): RunJob {
  const fail = (msg: string): never => { throw new MalformedJobError(jobId, msg); };
  if (!isObject(data)) fail("the data is not an object");
  const d = data as Record<string, unknown>;
  const extra = Object.keys(d).filter((k) => !["schema", "id", "sweep", "index", "config"].includes(k));
  if (extra.length) fail(`unknown field(s) ${extra.join(", ")}`);
  if (d.schema !== RUN_SCHEMA) fail(`schema ${JSON.stringify(d.schema)}, expected ${JSON.stringify(RUN_SCHEMA)}`);
  if (typeof d.id !== "string" || !/^[0-9a-f]{16}$/.test(d.id)) fail("id: expected 16 hex digits");
  if (d.id !== runIdOfJob(jobId)) fail(`id ${d.id} differs from the job id`);
  if (typeof d.sweep !== "string" || d.sweep === "") fail("sweep: expected a name");
  if (!Number.isSafeInteger(d.index) || (d.index as number) < 0) fail("index: expected a non-negative integer");
  const c = d.config;
  if (!isObject(c) || !isObject(c.train) || !isObject(c.methodOptions)) fail("config: expected a run configuration with train and methodOptions objects");
  const cfg = c as unknown as RunConfig;
  // image runs have no epochs (they count steps): the rebuilt sweep then leaves the grid at its default, which they ignore
  const { lr, epochs, seed, ...train } = cfg.train as { lr: number; epochs?: number; seed: number };
  // a one-run sweep holding exactly this configuration: spec.ts checks every field the way it checks sweep files
  let rebuilt: Sweep;
  try {
    rebuilt = expandSweep({ models: [cfg.model], tokenizer: cfg.tokenizer, tasks: [cfg.task], dataDir: cfg.dataDir, dtype: cfg.dtype,
      sizes: cfg.sizes, gradientCheckpointing: cfg.gradientCheckpointing, device: cfg.device,
      methods: [{ method: cfg.method, options: cfg.methodOptions, lrs: [lr], epochs: epochs === undefined ? undefined : [epochs], seeds: [seed], train, hessian: cfg.hessian }] }, `job ${d.id}`);
  } catch (e) {
    return fail(`config: ${(e as Error).message.replace(/^job [0-9a-f]+: /, "")}`);
  }
  // anything the checks did not read (an unknown key, a different default) changes the hash
  if (rebuilt.runs.length !== 1 || rebuilt.runs[0].id !== d.id || runId(cfg) !== d.id) fail("config: its hash is not the job id (fields beyond a run configuration, or altered values)");
  return { schema: RUN_SCHEMA, id: d.id as string, sweep: d.sweep as string, index: d.index as number, config: rebuilt.runs[0].config };
}

/**
 * The collector's check of a job's data (it may lack the model folders): the schema tag and an id
 * equal to the one in the job id and to the configuration's hash. Null when the job is not one of randmask's runs.
 */
export function readRunJob(jobId: string | undefined, data: unknown): RunJob | null {
  const id = runIdOfJob(jobId);
  if (id === undefined || !isObject(data) || data.schema !== RUN_SCHEMA || data.id !== id || !isObject(data.config)) return null;
  if (typeof data.sweep !== "string" || !Number.isSafeInteger(data.index)) return null;
  return runId(data.config as unknown as RunConfig) === id ? (data as unknown as RunJob) : null;
}

/** Checks a job's return value as the collector reads it; throws naming the job when it is not a result. */
export function validateRunResult(jobId: string | undefined, v: unknown): RunResult {
  const fail = (msg: string): never => { throw new Error(`job ${JSON.stringify(jobId ?? "?")}: result ${msg}`); };
  if (!isObject(v) || v.schema !== RESULT_SCHEMA) fail(`is not a ${RESULT_SCHEMA}`);
  const r = v as unknown as RunResult;
  if (r.id !== runIdOfJob(jobId)) fail("names another run");
  if (!["completed", "diverged", "failed"].includes(r.status)) fail(`status ${JSON.stringify(r.status)}`);
  if (r.status !== "failed" && !isObject(r.record)) fail("has no record");
  if (r.files !== null && !isObject(r.files)) fail("files: expected an object");
  if (typeof r.shared !== "boolean") fail("shared: expected true or false");
  if (r.files) {
    for (const p of Object.keys(r.files)) {
      if (p.split("/").some((s) => s === ".." || s === "" || s === ".") || p.startsWith("/")) fail(`files: path ${JSON.stringify(p)} leaves the run folder`);
    }
  }
  return r;
}
