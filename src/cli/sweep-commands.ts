// `randmask sweep run|status|results` and `randmask report`.
import { mkdirSync } from "node:fs";
import { availableParallelism } from "node:os";
import { resolve } from "node:path";
import { ResultsDb, STATUSES } from "../sweep/db.js";
import { loadSweep } from "../sweep/spec.js";
import { runSweep, clock } from "../sweep/runner.js";
import { selectBest } from "../sweep/select.js";
import { resultsCsv, resultsTable } from "../sweep/tables.js";
import { UsageError, numberFlag, parseFlags, requireString } from "./args.js";

/**
 * One single-threaded run per core (at most 8, to bound memory): on the project's 2-core machine
 * 2 workers × 1 thread finished small runs far sooner than 1 × 2 threads (README, Sweeps).
 */
export function defaultWorkers(): number {
  return Math.min(8, Math.max(1, Number(process.env.RANDMASK_THREADS) || availableParallelism()));
}

const positiveInt = (v: number) => Number.isSafeInteger(v) && v > 0;

export async function sweepCommand(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  if (sub === "run") return sweepRun(rest);
  if (sub === "status") return sweepStatus(rest);
  if (sub === "results") return sweepResults(rest);
  throw new UsageError(`sweep: expected run, status or results, got ${JSON.stringify(sub ?? "")}`);
}

async function sweepRun(argv: string[]): Promise<void> {
  const [file, ...rest] = argv;
  if (!file || file.startsWith("--")) throw new UsageError("sweep run: expected the sweep file first (sweep run FILE --db results.sqlite)");
  const flags = parseFlags(rest, { db: { type: "string" }, workers: { type: "string" }, "out-dir": { type: "string" },
    "retry-failed": { type: "boolean" }, "lease-s": { type: "string" } });
  const dbPath = requireString(flags, "db");
  const workers = numberFlag(flags, "workers", defaultWorkers(), positiveInt, "a positive integer");
  const leaseS = numberFlag(flags, "lease-s", 120, (v) => v > 0, "a positive number of seconds");
  const sweep = loadSweep(file); // validates everything before the database is touched
  const outDir = resolve((flags["out-dir"] as string | undefined) ?? dbPath.replace(/\.(sqlite3?|db)$/i, "") + "-runs");
  mkdirSync(outDir, { recursive: true });
  const db = ResultsDb.open(dbPath, { create: true });
  try {
    const added = db.addRuns(sweep);
    process.stderr.write(`sweep ${sweep.name}: ${sweep.runs.length} runs (${added} new) · db ${dbPath} · runs in ${outDir} · ${workers} worker(s)\n`);
    await runSweep(sweep, db, { workers, outDir, leaseS, retryFailed: Boolean(flags["retry-failed"]) });
    printStatus(db, sweep.runs.map((r) => r.id));
  } finally {
    db.close();
  }
}

function sweepStatus(argv: string[]): void {
  const flags = parseFlags(argv, { db: { type: "string" } });
  const db = ResultsDb.open(requireString(flags, "db"));
  try { printStatus(db); } finally { db.close(); }
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

function sweepResults(argv: string[]): void {
  const flags = parseFlags(argv, { db: { type: "string" }, format: { type: "string" } });
  const format = (flags.format as string | undefined) ?? "table";
  if (!["table", "csv", "json"].includes(format)) throw new UsageError(`--format ${JSON.stringify(format)}: expected table, csv or json`);
  const db = ResultsDb.open(requireString(flags, "db"));
  try {
    const sel = selectBest(db.rows());
    process.stdout.write(format === "json" ? JSON.stringify(sel, null, 2) + "\n" : format === "csv" ? resultsCsv(sel) : resultsTable(sel));
  } finally {
    db.close();
  }
}

export async function reportCommand(argv: string[]): Promise<void> {
  const flags = parseFlags(argv, { db: { type: "string" }, out: { type: "string" }, "small-lr": { type: "string" } });
  const db = ResultsDb.open(requireString(flags, "db"));
  try {
    const smallLr = flags["small-lr"] === undefined ? undefined : numberFlag(flags, "small-lr", 0, (v) => v > 0, "a positive number");
    const { writeReport } = await import("../sweep/report.js"); // Vega and resvg load only for reports
    const files = await writeReport(db.rows(), requireString(flags, "out"), { smallLr });
    process.stdout.write(files.map((f) => `${f}\n`).join(""));
  } finally {
    db.close();
  }
}
