// Timing helpers shared by the benchmarks: warm up, then the median of repeats.
import { settle } from "../src/engine/index.js";

export interface Timing { medianMs: number; runs: number }

/** Median wall time of fn after `warmup` calls, repeating at least `minRuns` times and ~minSeconds. */
export async function timeIt(fn: () => void, opts: { warmup?: number; minRuns?: number; minSeconds?: number } = {}): Promise<Timing> {
  const warmup = opts.warmup ?? 3;
  const minRuns = opts.minRuns ?? 5;
  const minMs = (opts.minSeconds ?? 0.5) * 1000;
  for (let i = 0; i < warmup; i++) { fn(); await settle(); }
  const times: number[] = [];
  const start = performance.now();
  while (times.length < minRuns || performance.now() - start < minMs) {
    const t0 = performance.now();
    fn();
    times.push(performance.now() - t0);
    await settle();
  }
  times.sort((a, b) => a - b);
  return { medianMs: times[Math.floor(times.length / 2)], runs: times.length };
}

/** `--json`, `--quick`, and `--peer hf` (also measure the Hugging Face transformers + PEFT peer). */
export function parseFlags(argv: string[]): { json: boolean; quick: boolean; hfPeer: boolean } {
  const peer = argv.indexOf("--peer");
  if (peer >= 0 && argv[peer + 1] !== "hf") throw new Error(`--peer ${argv[peer + 1] ?? ""}: expected 'hf'`);
  return { json: argv.includes("--json"), quick: argv.includes("--quick"), hfPeer: peer >= 0 };
}
