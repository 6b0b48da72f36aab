// `randmask sweep run`: N workers, each claiming the next pending run from the
// database and running it in a child process with its share of the cores.
import { spawn } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ResultsDb, readRecord, thisProcess, type RunRow } from "./db.js";
import type { RunConfig, Sweep } from "./spec.js";

const CHILD = fileURLToPath(new URL("./child.js", import.meta.url));

export interface SweepRunOptions {
  /** Concurrent runs; the cores are split between them (RANDMASK_THREADS per child). */
  workers: number;
  /** Where each run's folder (adapter/, metrics.json, train.log) goes: OUT_DIR/<run id>/. */
  outDir: string;
  /** Seconds without a heartbeat after which another process may take a running row over. */
  leaseS?: number;
  heartbeatS?: number;
  retryFailed?: boolean;
  log?: (line: string) => void;
}

/**
 * Runs every pending run of the sweep; returns how many this process finished, and the signal that stopped it
 * (null when every run is done). Resolves early (runs released) on SIGINT/SIGTERM.
 */
export async function runSweep(sweep: Sweep, db: ResultsDb, o: SweepRunOptions): Promise<{ finished: number; signal: NodeJS.Signals | null }> {
  const owner = thisProcess();
  const ids = sweep.runs.map((r) => r.id);
  const leaseS = o.leaseS ?? 120;
  const log = o.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const threads = Math.max(1, Math.floor(Number(process.env.RANDMASK_THREADS ?? availableParallelism()) / o.workers));
  const children = new Map<string, ReturnType<typeof spawn>>();
  let stopping = false;
  let signal: NodeJS.Signals | null = null;
  const stop = (sig: NodeJS.Signals) => {
    stopping = true;
    signal = sig;
    for (const [id, c] of children) { c.kill("SIGTERM"); db.release(id, owner); }
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  const started = Date.now();
  let finished = 0;
  const total = db.rows(ids).filter((r) => r.status === "pending" || r.status === "running" || (o.retryFailed && r.status === "failed")).length;

  const worker = async () => {
    while (!stopping) {
      const claim = db.claim(ids, owner, leaseS, o.retryFailed, (r) => reclaimed(r, log));
      if (!claim) return;
      const dir = join(o.outDir, claim.id);
      rmSync(dir, { recursive: true, force: true }); // a redone run starts from scratch
      const t0 = Date.now();
      const { code, stderr } = await runChild(claim.id, claim.config, dir, threads, o.heartbeatS ?? 10, children,
        (pid) => db.heartbeat(claim.id, owner, pid));
      if (stopping) return;
      const wall = (Date.now() - t0) / 1000;
      const metrics = join(dir, "metrics.json");
      let line: string;
      if (code === 0 && existsSync(metrics)) {
        const rec = readRecord(metrics);
        const adapter = join(dir, "adapter");
        const kept = db.finish(claim.id, owner, rec, wall, { runDir: dir, adapterDir: existsSync(adapter) ? adapter : null, logPath: join(dir, "train.log") });
        line = `${kept ? "" : "(claim lost to another process: result not recorded) "}${rec.status} dev ${fmt(rec.best_dev)} test ${fmt(rec.test)} ‖ΔW‖ ${rec.distance_from_init.weight?.toPrecision(3) ?? "-"}`;
      } else {
        const error = stderr.trim().split("\n").slice(-20).join("\n") || `exit code ${code}`;
        db.fail(claim.id, owner, error, wall, dir);
        line = `failed: ${error.split("\n").at(-1)}`;
      }
      finished++;
      const eta = ((Date.now() - started) / 1000 / finished) * Math.max(0, total - finished); // elapsed per finished run already reflects the workers
      log(`[${finished}/${total}] ${claim.id} ${describe(claim.config)} (attempt ${claim.attempts}, ${wall.toFixed(1)} s): ${line} · ETA ${clock(eta)}`);
    }
  };
  try {
    await Promise.all(Array.from({ length: o.workers }, worker));
  } finally {
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
  }
  return { finished, signal };
}

/** Runs one child to its end, renewing the lease meanwhile; stderr is kept for the error message. */
export function runChild(id: string, config: RunConfig, dir: string, threads: number, heartbeatS: number,
  children: Map<string, ReturnType<typeof spawn>>, beat: (pid?: number) => boolean): Promise<{ code: number | null; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [CHILD, id, JSON.stringify(config), dir], {
      stdio: ["pipe", "ignore", "pipe"], env: { ...process.env, RANDMASK_THREADS: String(threads) },
    });
    children.set(id, child);
    beat(child.pid);
    // a lost claim (another process took the row over) means another copy runs it: stop ours
    const timer = setInterval(() => { if (!beat()) child.kill("SIGKILL"); }, heartbeatS * 1000);
    let stderr = "";
    child.stderr!.on("data", (d: Buffer) => { stderr = (stderr + d.toString()).slice(-8000); });
    child.on("close", (code, signal) => {
      clearInterval(timer);
      children.delete(id);
      done({ code, stderr: signal ? `${stderr}\nkilled by ${signal}` : stderr });
    });
  });
}

/** A reclaimed row's child may still run if its sweep was killed between our checks: stop it, by pid, if it is that run's child. */
function reclaimed(row: RunRow, log: (l: string) => void): void {
  log(`reclaiming ${row.id} (owner ${row.owner_host}:${row.owner_pid} is gone or its lease expired): redone from scratch`);
  if (row.child_pid === null) return;
  try {
    const cmd = readFileSync(`/proc/${row.child_pid}/cmdline`, "utf8").split("\0");
    if (cmd[1] === CHILD && cmd[2] === row.id) process.kill(row.child_pid, "SIGKILL");
  } catch { /* gone, or not on this host */ }
}

export function describe(c: RunConfig): string {
  const ratio = c.methodOptions.trainableRatio;
  return `${c.task} ${c.method}${ratio === undefined ? "" : ` ratio ${ratio}`} lr ${c.train.lr} seed ${c.train.seed}`;
}

function fmt(m: { accuracy?: number; f1?: number } | null): string {
  if (!m) return "-";
  return (m.accuracy ?? m.f1 ?? 0).toFixed(4);
}

export function clock(seconds: number): string {
  if (!Number.isFinite(seconds)) return "--:--";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${h ? `${h}:` : ""}${pad(Math.floor((s % 3600) / 60))}:${pad(s % 60)}`;
}
