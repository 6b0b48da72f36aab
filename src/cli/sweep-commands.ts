// `randmask sweep run|status|results` and `randmask report`.
import { existsSync, mkdirSync, rmSync, rmdirSync, statSync } from "node:fs";
import { availableParallelism } from "node:os";
import { dirname, resolve } from "node:path";
import { ResultsDb, STATUSES } from "../sweep/db.js";
import { SweepFileError, checkSweepData, loadSweep, type Sweep } from "../sweep/spec.js";
import { runSweep, clock } from "../sweep/runner.js";
import { selectBest } from "../sweep/select.js";
import { resultsCsv, resultsTable } from "../sweep/tables.js";
import { REPORT_MARKER, reportFolderFault } from "../sweep/report-folder.js";
import { UsageError, signalExitCode, defineCommand, positiveInt } from "./args.js";
import { QUEUE_FLAG, queueAddress } from "./worker-command.js";
import { checkOutputFolder } from "./shared-flags.js";
import { outputFolderFault } from "../io/output-folder.js";

/**
 * One single-threaded run per core (at most 8, to bound memory): on the project's 2-core machine
 * 2 workers × 1 thread finished small runs far sooner than 1 × 2 threads (README, Sweeps).
 */
export function defaultWorkers(): number {
  return Math.min(8, Math.max(1, Number(process.env.RANDMASK_THREADS) || availableParallelism()));
}

/** The actions that read each flag (the flags' descriptions say the same in brackets). */
export const FLAG_ACTIONS: Record<string, string[]> = {
  db: ["run", "status", "results", "collect"], queue: ["submit", "collect"], wait: ["collect"], workers: ["run"],
  "out-dir": ["run", "collect"], "retry-failed": ["run", "submit"], "lease-s": ["run"], format: ["results"],
};

export const sweepCommand = defineCommand({
  name: "sweep",
  summary: "Run the paper's grids from one sweep file into a SQLite results database (resumable after any kill; several " +
    "processes may share one database), show their status, or print the selected results (best LR on dev per setting). " +
    "Across machines: submit the runs to a Redis queue, start `randmask worker` anywhere, collect the results into the same database.",
  positionals: [
    { name: "ACTION", description: "what to do", choices: ["run", "status", "results", "submit", "collect"] },
    { name: "FILE", description: "the sweep file (JSON or YAML), for run and submit", optional: true },
  ],
  flags: {
    db: { type: "string", arg: "FILE", defaultText: "none; run, status, results and collect need it", description: "SQLite results database (created by run and collect)" },
    queue: { ...QUEUE_FLAG, description: `${QUEUE_FLAG.description} (submit, collect)` },
    wait: { type: "boolean", description: "keep collecting until no run is queued or running (collect)" },
    workers: { type: "integer", check: positiveInt, expected: "a positive integer", defaultText: "one per core, at most 8",
      description: "runs at once, the cores split between them (run)" },
    "out-dir": { type: "string", arg: "DIR", defaultText: "<db>-runs", description: "where each run's folder goes (run, collect)" },
    "retry-failed": { type: "boolean", description: "queue failed runs again (run, submit)" },
    "lease-s": { type: "number", defaultText: "120", check: (v) => v > 0, expected: "a positive number of seconds",
      description: "a running row whose owner has not renewed its claim for this long is taken back (run)" },
    format: { type: "string", choices: ["table", "csv", "json"], defaultText: "table", description: "output format (results)" },
  },
  example: "sweep run sweep.json --db results.sqlite --workers 2",
  async run(v, [action, file]) {
    // a flag another action reads would be ignored here without a word
    for (const [flag, actions] of Object.entries(FLAG_ACTIONS)) {
      const value = v[flag as keyof typeof v];
      if (value !== undefined && value !== false && !actions.includes(action)) {
        const list = actions.length > 1 ? `${actions.slice(0, -1).join(", ")} and ${actions.at(-1)}` : actions[0];
        throw new UsageError(`--${flag} does not apply to sweep ${action} (it is for sweep ${list})`);
      }
    }
    if (action === "submit") {
      if (!file) throw new UsageError("expected the sweep file (sweep submit FILE --queue redis://HOST:PORT/N)");
      return sweepSubmit(file, queueAddress(v.queue), v["retry-failed"]);
    }
    if (v.db === undefined) throw new UsageError("--db FILE is required (the SQLite results database)");
    checkDbNotFolder(v.db);
    if (action === "run" || action === "collect") checkRunFolders(v.db, v["out-dir"]);
    if (action === "run") {
      if (!file) throw new UsageError("expected the sweep file (sweep run FILE --db results.sqlite)");
      return sweepRun(file, v.db, v.workers ?? defaultWorkers(), v["out-dir"], v["lease-s"] ?? 120, v["retry-failed"]);
    }
    if (file) throw new UsageError(`takes no FILE (got ${JSON.stringify(file)})`);
    if (action === "collect") return sweepCollect(queueAddress(v.queue), v.db, v["out-dir"], v.wait);
    const db = ResultsDb.open(v.db);
    try {
      if (action === "status") return printStatus(db);
      const sel = selectBest(db.rows());
      process.stdout.write(v.format === "json" ? JSON.stringify(sel, null, 2) + "\n" : v.format === "csv" ? resultsCsv(sel) : resultsTable(sel));
    } finally {
      db.close();
    }
  },
});

/**
 * The folders `run` and `collect` write, the database's and the run folders' (--out-dir, or beside the database),
 * can be made: no file in their way. Throws UsageError naming the flag.
 */
function checkRunFolders(db: string, outDir: string | undefined): void {
  const dirs: [string, string][] = [[dirname(resolve(db)), "the database"]];
  if (outDir === undefined) dirs.push([runsFolder(db, outDir), "the run folders, --out-dir's default"]);
  for (const [dir, what] of dirs) {
    const fault = outputFolderFault(dir);
    if (fault) throw new UsageError(`--db ${db}: ${fault.path} ${fault.what}, expected a folder${fault.kind === "not-writable" ? " it may write" : ""} (for ${what})`);
  }
  if (outDir !== undefined) checkOutputFolder("out-dir", outDir, "the run folders");
}

/**
 * A --db naming a folder, or empty, is a usage error (SQLite's own message, "unable to open database file", says
 * nothing of it; an empty path read as "not found").
 */
function checkDbNotFolder(db: string): void {
  if (db.trim() === "") throw new UsageError(`--db ${JSON.stringify(db)}: expected the results database file (SQLite)`);
  if (existsSync(db) && statSync(db).isDirectory()) throw new UsageError(`--db ${db}: is a folder, expected the results database file (SQLite)`);
}

/** --out-dir, or `<db without its extension>-runs`. */
function runsFolder(db: string, outDir: string | undefined): string {
  return resolve(outDir ?? db.replace(/\.(sqlite3?|db)$/i, "") + "-runs");
}

/**
 * The sweep file expanded and checked, then its data read once. Anything it gives or names that a run
 * would refuse is a usage error (exit 2) naming the file, as a bad finetune flag is; nothing is written before.
 */
function loadChecked(file: string): Sweep {
  try {
    const sweep = loadSweep(file);
    checkSweepData(sweep);
    return sweep;
  } catch (e) {
    throw e instanceof SweepFileError ? new UsageError(e.message) : e;
  }
}

async function sweepRun(file: string, dbPath: string, workers: number, outDirFlag: string | undefined, leaseS: number, retryFailed: boolean): Promise<number> {
  const sweep = loadChecked(file); // validates everything before the database is touched
  const outDir = runsFolder(dbPath, outDirFlag);
  mkdirSync(dirname(resolve(dbPath)), { recursive: true });
  const db = ResultsDb.open(dbPath, { create: true }); // first: a database it refuses leaves no run folder behind
  mkdirSync(outDir, { recursive: true });
  try {
    const added = db.addRuns(sweep);
    process.stderr.write(`sweep ${sweep.name}: ${sweep.runs.length} runs (${added} new) · db ${dbPath} · runs in ${outDir} · ${workers} worker(s)\n`);
    const { signal } = await runSweep(sweep, db, { workers, outDir, leaseS, retryFailed });
    printStatus(db, sweep.runs.map((r) => r.id));
    if (!signal) return 0;
    // not 0: a script (`sweep run … && report …`) must not go on as if the sweep were done
    process.stderr.write(`stopped (${signal}); run the same command again to continue\n`);
    return signalExitCode(signal);
  } finally {
    db.close();
  }
}

async function sweepSubmit(file: string, address: ReturnType<typeof queueAddress>, retryFailed: boolean): Promise<void> {
  const sweep = loadChecked(file); // validates everything before the queue is touched
  const { submitSweep } = await import("../sweep/queue/submit.js"); // BullMQ loads only for queue commands
  const s = await submitSweep(sweep, address, retryFailed);
  process.stdout.write(`sweep ${sweep.name}: ${sweep.runs.length} runs · ${s.added} queued, ${s.present} already in the queue` +
    `${retryFailed ? `, ${s.retried} failed ones queued again` : ""} · ${address.shown}\n`);
}

async function sweepCollect(address: ReturnType<typeof queueAddress>, dbPath: string, outDirFlag: string | undefined, wait: boolean): Promise<void> {
  const { collectResults } = await import("../sweep/queue/collect.js");
  const outDir = runsFolder(dbPath, outDirFlag);
  const created = !existsSync(dbPath);
  const madeFolder = mkdirSync(dirname(resolve(dbPath)), { recursive: true }); // the first folder made, if any
  const db = ResultsDb.open(dbPath, { create: true });
  let collected = false;
  try {
    const c = await collectResults(address, db, { outDir, waitS: wait ? 2 : undefined });
    collected = true;
    for (const r of c.rejected) process.stderr.write(`rejected job ${r.id}: ${r.reason}\n`);
    process.stderr.write(`${address.shown}: ${c.runs} runs · ${c.stored} results stored now, ${c.known} stored before, ${c.unfinished} queued or running` +
      ` · ${c.rejected.length} rejected job(s) · db ${dbPath} · run folders in ${outDir}\n`);
    printStatus(db);
  } finally {
    db.close();
    // A queue never reached leaves no empty database behind (one the user had is kept as it was).
    if (created && !collected) {
      for (const f of [dbPath, `${dbPath}-wal`, `${dbPath}-shm`]) rmSync(f, { force: true });
      if (madeFolder) removeEmptyFolders(dirname(resolve(dbPath)), madeFolder);
    }
  }
}

/** Removes `dir` and the folders above it up to `top`, while they are empty (rmdir refuses a folder holding anything). */
function removeEmptyFolders(dir: string, top: string): void {
  for (let d = dir; ; d = dirname(d)) {
    try { rmdirSync(d); } catch { return; }
    if (d === top) return;
  }
}

/** Counts by status and an ETA from the mean wall time of finished runs (over the runs in flight, at least one at a time). */
function printStatus(db: ResultsDb, ids?: string[]): void {
  const rows = db.rows(ids);
  const counts = Object.fromEntries(STATUSES.map((s) => [s, rows.filter((r) => r.status === s).length]));
  const walls = rows.filter((r) => r.status !== "pending" && r.status !== "running" && r.wall_time_s !== null).map((r) => r.wall_time_s!);
  const meanWall = walls.length ? walls.reduce((a, b) => a + b, 0) / walls.length : NaN;
  const left = counts.pending + counts.running;
  const eta = left === 0 ? 0 : (meanWall * left) / Math.max(1, counts.running);
  process.stdout.write(`${rows.length} runs: ${STATUSES.map((s) => `${counts[s]} ${s}`).join(", ")}` +
    ` · mean wall time ${Number.isFinite(meanWall) ? `${meanWall.toFixed(1)} s` : "-"} · ETA ${clock(eta)}\n`);
}

export const reportCommand = defineCommand({
  name: "report",
  summary: "Tables (the paper's Tables 5/6) and figures (3, 4a–c, 5) from a results database, as markdown, CSV, SVG and PNG.",
  flags: {
    db: { type: "string", required: true, arg: "FILE", description: "SQLite results database of `sweep run`" },
    out: { type: "string", required: true, arg: "DIR", description: "folder for report.md, results.csv and the figures" },
    "small-lr": { type: "number", check: (x) => x > 0, expected: "a positive number", defaultText: "the smallest Random Masking LR in the database",
      description: "Figure 4b (Random Masking's dev metric against epochs) shows the LRs up to this" },
  },
  example: "report --db results.sqlite --out report/",
  async run(v) {
    checkOutputFolder("out", v.out, "report.md, results.csv and the figures");
    if (reportFolderFault(v.out)) {
      throw new UsageError(`--out ${v.out}: holds files and is not a report folder randmask wrote (no ${REPORT_MARKER} there); nothing was written ` +
        "(expected an absent or empty folder, or an earlier report's)");
    }
    checkDbNotFolder(v.db);
    const db = ResultsDb.open(v.db);
    try {
      const { writeReport } = await import("../sweep/report.js"); // Vega and resvg load only for reports
      const files = await writeReport(db.rows(), v.out, { smallLr: v["small-lr"] });
      process.stdout.write(files.map((f) => `${f}\n`).join(""));
    } finally {
      db.close();
    }
  },
});
