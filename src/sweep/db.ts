// The results database (SQLite through better-sqlite3, WAL mode): one row per
// run with its configuration, status and results. Rows are claimed in
// BEGIN IMMEDIATE transactions, so several sweep processes never run the same
// run; a claim holds a lease that the owner's heartbeat renews, and a running
// row whose owner died (same host, pid gone) or whose lease expired goes back
// to pending. A result is written in one transaction after the run's files are
// complete, so no row claims a completion that is not on disk.
import Database from "better-sqlite3";
import { existsSync, readFileSync } from "node:fs";
import { hostname } from "node:os";
import { headline, type Metrics } from "../eval/evaluate.js";
import type { RunRecord } from "../train/run.js";
import { RANDMASK_VERSION } from "../version.js";
import { alive } from "../io/process-alive.js";
import type { RunConfig, Sweep } from "./spec.js";

export type RunStatus = "pending" | "running" | "completed" | "diverged" | "failed";
export const STATUSES: RunStatus[] = ["pending", "running", "completed", "diverged", "failed"];
const SCHEMA_VERSION = 1;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
  id TEXT PRIMARY KEY,               -- sha256 of the canonical configuration (16 hex digits)
  ord INTEGER NOT NULL,              -- order of addition: runs are claimed in sweep-file order
  sweep TEXT NOT NULL,               -- name of the sweep that added it
  config TEXT NOT NULL,              -- the full RunConfig as JSON
  model TEXT NOT NULL, task TEXT NOT NULL, method TEXT NOT NULL,
  trainable_ratio REAL,              -- requested ratio of the whole model (masking methods), else NULL
  lr REAL NOT NULL, seed INTEGER NOT NULL, epochs INTEGER NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('pending','running','completed','diverged','failed')),
  error TEXT,
  attempts INTEGER NOT NULL DEFAULT 0,
  owner_host TEXT, owner_pid INTEGER, child_pid INTEGER,
  heartbeat_at REAL, started_at REAL, finished_at REAL,   -- unix seconds
  metric TEXT,                       -- the headline metric's name (accuracy or f1)
  dev_metric REAL, test_metric REAL, -- headline of the best dev epoch and of test with its weights
  dev_metrics TEXT, test_metrics TEXT,
  best_epoch INTEGER,
  epoch_records TEXT,                -- JSON [{epoch, train_loss, dev, distance}]
  train_loss TEXT,                   -- JSON [{step, loss}]
  diverged TEXT,                     -- JSON {step, epoch, reason} when diverged
  trainable_params INTEGER, actual_ratio REAL, total_params INTEGER,
  wall_time_s REAL,                  -- seconds of the run's process (start-up, training, evaluation, saving)
  distance_trainable REAL, distance_weight REAL,          -- ℓ2 distance from init of the saved weights
  hessian_before REAL, hessian_after REAL,                -- Hessian ℓ2 norm at init / of the saved weights (sweep file's hessian option)
  host TEXT, randmask_version TEXT,
  run_dir TEXT, adapter_dir TEXT, log_path TEXT
);
CREATE INDEX IF NOT EXISTS runs_status ON runs (status, ord);
`;

/** Where and when a run ended: wall time of its process (s), host, randmask version, unix time (s), its folder. */
interface Finished { wallS: number | null; host: string; version: string; finishedAt: number; runDir: string | null }

/** A running sweep process: who holds a claim. */
export interface Owner { host: string; pid: number }
export const thisProcess = (): Owner => ({ host: hostname(), pid: process.pid });

export interface RunRow {
  id: string; ord: number; sweep: string; config: string; model: string; task: string; method: string;
  trainable_ratio: number | null; lr: number; seed: number; epochs: number; status: RunStatus; error: string | null;
  attempts: number; owner_host: string | null; owner_pid: number | null; child_pid: number | null;
  heartbeat_at: number | null; started_at: number | null; finished_at: number | null;
  metric: string | null; dev_metric: number | null; test_metric: number | null; dev_metrics: string | null; test_metrics: string | null;
  best_epoch: number | null; epoch_records: string | null; train_loss: string | null; diverged: string | null;
  trainable_params: number | null; actual_ratio: number | null; total_params: number | null; wall_time_s: number | null;
  distance_trainable: number | null; distance_weight: number | null; hessian_before: number | null; hessian_after: number | null;
  host: string | null; randmask_version: string | null; run_dir: string | null; adapter_dir: string | null; log_path: string | null;
}

const now = () => Date.now() / 1000;


/** Whether `ok()` holds now or within `ms` milliseconds (checked every 50 ms; a check that throws counts as not yet). */
function eventually(ok: () => boolean, ms: number): boolean {
  const until = Date.now() + ms;
  for (;;) {
    try { if (ok()) return true; } catch { /* not yet */ }
    if (Date.now() >= until) return false;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
  }
}

export class ResultsDb {
  private constructor(readonly db: Database.Database, readonly path: string) {}

  /** Opens a results database (creating it when `create`); refuses a file that is not one, and never writes to it then. */
  static open(path: string, opts: { create?: boolean } = {}): ResultsDb {
    const existed = existsSync(path);
    if (!opts.create && !existed) throw new Error(`--db ${path}: not found`);
    let db: Database.Database;
    try {
      db = new Database(path);
      db.pragma("busy_timeout = 30000");
      // No command turns someone else's file (or an empty one) into a results database: only a new path is created.
      // Another `sweep run` may be creating this one at this moment (its file exists before its tables): wait for them a little.
      if (existed && !eventually(() => db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'runs'").get() !== undefined, 3000)) {
        db.close();
        throw new Error("it has no runs table; nothing was written to it");
      }
      db.pragma("journal_mode = WAL");
      db.exec(SCHEMA);
    } catch (e) {
      throw new Error(`--db ${path}: not a randmask results database (${(e as Error).message})`);
    }
    const v = db.prepare("SELECT value FROM meta WHERE key = 'schema_version'").get() as { value: string } | undefined;
    if (v && Number(v.value) !== SCHEMA_VERSION) throw new Error(`--db ${path}: schema version ${v.value}, this randmask reads ${SCHEMA_VERSION}`);
    if (!v) db.prepare("INSERT INTO meta (key, value) VALUES ('schema_version', ?)").run(String(SCHEMA_VERSION));
    return new ResultsDb(db, path);
  }

  close(): void { this.db.close(); }

  /** Adds the sweep's runs that the database lacks (as pending); returns how many were new. */
  addRuns(sweep: Sweep): number {
    const insert = this.db.prepare(`INSERT OR IGNORE INTO runs (id, ord, sweep, config, model, task, method, trainable_ratio, lr, seed, epochs, status)
      VALUES (?, (SELECT COALESCE(MAX(ord), 0) + 1 FROM runs), ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending')`);
    return this.db.transaction(() => sweep.runs.reduce((n, { id, config: c }) => n + insert.run(id, sweep.name, JSON.stringify(c), c.model, c.task,
      c.method, (c.methodOptions.trainableRatio as number | undefined) ?? null, c.train.lr, c.train.seed,
      "epochs" in c.train ? c.train.epochs : 0 /* image runs count steps */).changes, 0)).immediate();
  }

  /**
   * Claims the first pending run among `ids` for `owner` (BEGIN IMMEDIATE: one writer at a time),
   * first returning to pending the running rows whose owner is dead or whose lease (seconds since
   * the last heartbeat) expired, and `failed` ones when `retryFailed`. Returns null when none is left.
   * `reclaimed` gets the rows taken back, with the pid of their orphaned child if it still runs.
   */
  claim(ids: string[], owner: Owner, leaseS: number, retryFailed = false,
    reclaimed: (row: RunRow) => void = () => {}): { id: string; config: RunConfig; attempts: number } | null {
    const idList = JSON.stringify(ids);
    return this.db.transaction(() => {
      const running = this.db.prepare(`SELECT * FROM runs WHERE status = 'running' AND id IN (SELECT value FROM json_each(?))`).all(idList) as RunRow[];
      for (const r of running) {
        const dead = r.owner_host === owner.host && r.owner_pid !== null && r.owner_pid !== owner.pid && !alive(r.owner_pid);
        if (dead || (r.heartbeat_at ?? 0) < now() - leaseS) {
          this.db.prepare("UPDATE runs SET status = 'pending', owner_host = NULL, owner_pid = NULL, child_pid = NULL WHERE id = ?").run(r.id);
          reclaimed(r);
        }
      }
      if (retryFailed) this.db.prepare(`UPDATE runs SET status = 'pending', error = NULL WHERE status = 'failed' AND id IN (SELECT value FROM json_each(?))`).run(idList);
      const row = this.db.prepare(`SELECT id, config, attempts FROM runs WHERE status = 'pending' AND id IN (SELECT value FROM json_each(?)) ORDER BY ord LIMIT 1`)
        .get(idList) as { id: string; config: string; attempts: number } | undefined;
      if (!row) return null;
      this.db.prepare(`UPDATE runs SET status = 'running', owner_host = ?, owner_pid = ?, child_pid = NULL, heartbeat_at = ?, started_at = ?,
        attempts = attempts + 1, error = NULL WHERE id = ?`).run(owner.host, owner.pid, now(), now(), row.id);
      return { id: row.id, config: JSON.parse(row.config) as RunConfig, attempts: row.attempts + 1 };
    }).immediate();
  }

  /** Renews the lease and records the run's child process; false when the claim was lost. */
  heartbeat(id: string, owner: Owner, childPid?: number): boolean {
    return this.db.prepare(`UPDATE runs SET heartbeat_at = ?, child_pid = COALESCE(?, child_pid)
      WHERE id = ? AND status = 'running' AND owner_host = ? AND owner_pid = ?`).run(now(), childPid ?? null, id, owner.host, owner.pid).changes === 1;
  }

  /**
   * Stores a finished run's record (metrics.json) in one transaction; false when the claim was lost meanwhile.
   * `wallS` is the run process's wall time in seconds (start-up, training, evaluation, saving).
   */
  finish(id: string, owner: Owner, rec: RunRecord, wallS: number, paths: { runDir: string; adapterDir: string | null; logPath: string }): boolean {
    return this.writeRecord(rec, { wallS, host: owner.host, version: RANDMASK_VERSION, finishedAt: now(), ...paths },
      "id = ? AND status = 'running' AND owner_host = ? AND owner_pid = ?", [id, owner.host, owner.pid]);
  }

  /** Marks a run failed with its error (a crash is a result of the sweep, which goes on). */
  fail(id: string, owner: Owner, error: string, wallS: number, runDir: string): boolean {
    return this.writeFailure(error, { wallS, host: owner.host, version: RANDMASK_VERSION, finishedAt: now(), runDir },
      "id = ? AND status = 'running' AND owner_host = ? AND owner_pid = ?", [id, owner.host, owner.pid]);
  }

  /**
   * Stores a result computed elsewhere (a queue worker, src/sweep/queue/collect.ts) unless the row already
   * holds one: `record` for a completed or diverged run, else `error`. False when the row had a result.
   */
  storeResult(id: string, r: { record: RunRecord | null; error: string | null; attempts: number } & Finished
    & { adapterDir: string | null; logPath: string | null }): boolean {
    const where = "id = ? AND status IN ('pending', 'running')";
    return this.db.transaction(() => {
      const ok = r.record ? this.writeRecord(r.record, r, where, [id]) : this.writeFailure(r.error ?? "failed", r, where, [id]);
      if (ok) this.db.prepare("UPDATE runs SET attempts = ?, owner_host = NULL, owner_pid = NULL WHERE id = ?").run(r.attempts, id);
      return ok;
    }).immediate();
  }

  private writeRecord(rec: RunRecord, f: Finished & { adapterDir: string | null; logPath: string | null }, where: string, args: unknown[]): boolean {
    const h = (m: Metrics | null) => (m ? headline(m) : null);
    const metric = rec.best_dev ? (rec.best_dev.accuracy !== undefined ? "accuracy" : "f1") : null;
    return this.db.prepare(`UPDATE runs SET status = ?, error = NULL, finished_at = ?, heartbeat_at = ?, child_pid = NULL,
      metric = ?, dev_metric = ?, test_metric = ?, dev_metrics = ?, test_metrics = ?, best_epoch = ?, epoch_records = ?, train_loss = ?, diverged = ?,
      trainable_params = ?, actual_ratio = ?, total_params = ?, wall_time_s = ?, distance_trainable = ?, distance_weight = ?,
      hessian_before = ?, hessian_after = ?, host = ?, randmask_version = ?, run_dir = ?, adapter_dir = ?, log_path = ?
      WHERE ${where}`).run(
      rec.status, f.finishedAt, f.finishedAt, metric, h(rec.best_dev), h(rec.test), json(rec.best_dev), json(rec.test), rec.best_epoch,
      JSON.stringify(rec.dev_per_epoch), JSON.stringify(rec.train_loss), json(rec.diverged), rec.trainable_params, rec.trainable_ratio,
      rec.total_params, f.wallS, rec.distance_from_init.trainable, rec.distance_from_init.weight,
      rec.hessian?.before?.norm ?? null, rec.hessian?.after?.norm ?? null, f.host, f.version,
      f.runDir, f.adapterDir, f.logPath, ...args).changes === 1;
  }

  private writeFailure(error: string, f: Finished, where: string, args: unknown[]): boolean {
    return this.db.prepare(`UPDATE runs SET status = 'failed', error = ?, finished_at = ?, child_pid = NULL, wall_time_s = ?, host = ?,
      randmask_version = ?, run_dir = ? WHERE ${where}`).run(error, f.finishedAt, f.wallS, f.host, f.version, f.runDir, ...args).changes === 1;
  }

  /** Gives a claimed run back (the sweep was interrupted): it is redone from scratch later. */
  release(id: string, owner: Owner): void {
    this.db.prepare(`UPDATE runs SET status = 'pending', owner_host = NULL, owner_pid = NULL, child_pid = NULL
      WHERE id = ? AND status = 'running' AND owner_host = ? AND owner_pid = ?`).run(id, owner.host, owner.pid);
  }

  /** Rows in sweep order, optionally only those of the given ids. */
  rows(ids?: string[]): RunRow[] {
    if (!ids) return this.db.prepare("SELECT * FROM runs ORDER BY ord").all() as RunRow[];
    return this.db.prepare("SELECT * FROM runs WHERE id IN (SELECT value FROM json_each(?)) ORDER BY ord").all(JSON.stringify(ids)) as RunRow[];
  }
}

function json(v: unknown): string | null { return v === null || v === undefined ? null : JSON.stringify(v); }

/** Reads a finished run's metrics.json. */
export function readRecord(file: string): RunRecord {
  return JSON.parse(readFileSync(file, "utf8")) as RunRecord;
}
