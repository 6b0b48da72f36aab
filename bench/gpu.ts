// GPU benchmark (issue 14): one training step (forward + backward + AdamW) of an OPT
// with OPT-1.3b's shapes (hidden 2048, 24 layers, random weights), batch 8 × 128,
// bf16, loss on the last 2 positions: Random Masking at trainable ratios 1e-3, 1e-4,
// 1e-5 and randmask's LoRA against Hugging Face PEFT's LoRA (r=8, α=16, q_proj and
// v_proj; bench/peer/hf_peer.py), each in its own process. Reports the median step
// time and the peak device memory: nvidia-smi's memory.used sampled every 50 ms,
// minus its value before the process started (CUDA context and allocator cache
// included, the same yardstick for both), and for the peer torch.cuda's peak
// allocated. Configurations that would not finish inside --budget-s are skipped
// and say so. Writes markdown to --out (and stdout).
//   node dist/bench/gpu.js [--device cuda] [--hidden 2048 --layers 24 --batch 8 --seq 128]
//        [--steps 10 --warmup 3] [--budget-s 300] [--python python3] [--out gpu-results.md]
// --device cpu with small shapes is a dry run of the script (peak RSS instead of GPU memory).
import { execFileSync, spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { buildInfo } from "../src/engine/index.js";

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = join(here, "..", "..");
const { values: v } = parseArgs({
  options: {
    device: { type: "string", default: "cuda" }, hidden: { type: "string", default: "2048" }, layers: { type: "string", default: "24" },
    batch: { type: "string", default: "8" }, seq: { type: "string", default: "128" }, steps: { type: "string", default: "10" },
    warmup: { type: "string", default: "3" }, "budget-s": { type: "string", default: "300" }, python: { type: "string", default: "python3" },
    ratios: { type: "string", default: "1e-3,1e-4,1e-5" }, out: { type: "string" },
  },
});
const num = (flag: string, x: string) => {
  const n = Number(x);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${flag} ${x}: expected a positive number`);
  return n;
};
const device = v.device!;
const shape = { hidden: num("hidden", v.hidden!), layers: num("layers", v.layers!), batch: num("batch", v.batch!), seq: num("seq", v.seq!) };
const steps = num("steps", v.steps!), warmup = num("warmup", v.warmup!), budgetMs = num("budget-s", v["budget-s"]!) * 1000;
const ratios = v.ratios!.split(",").map((r) => num("ratios", r));
const gpuIndex = /^cuda:(\d+)$/.exec(device)?.[1] ?? "0";
const started = performance.now();

interface Probe { step_ms: number; peak_rss_mib: number; trainable: number; loss_first: number; loss_last: number;
  cuda_peak_allocated_mib?: number; versions?: Record<string, string>; gpu?: string }
interface Row { name: string; probe: Probe | null; gpuPeakMiB: number | null; wallS: number; note?: string }

function nvidiaSmi(query: string): string | null {
  try {
    return execFileSync("nvidia-smi", [`--query-gpu=${query}`, "--format=csv,noheader,nounits", "-i", gpuIndex],
      { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"], timeout: 10000 }).trim();
  } catch { return null; }
}

/** Runs one probe process while sampling the GPU's used memory; the peak minus the idle value before it. */
async function measure(cmd: string, args: string[]): Promise<{ probe: Probe | null; gpuPeakMiB: number | null; err: string }> {
  const sampleGpu = device !== "cpu" && nvidiaSmi("memory.used") !== null;
  const idle = sampleGpu ? Number(nvidiaSmi("memory.used")) : 0;
  let peak = idle;
  const sampler = sampleGpu
    ? spawn("nvidia-smi", ["--query-gpu=memory.used", "--format=csv,noheader,nounits", "-i", gpuIndex, "-lms", "50"], { stdio: ["ignore", "pipe", "ignore"] })
    : null;
  sampler?.stdout.on("data", (b: Buffer) => { for (const l of b.toString().split("\n")) if (l.trim()) peak = Math.max(peak, Number(l)); });
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
  let out = "", err = "";
  child.stdout.on("data", (b: Buffer) => { out += b; });
  child.stderr.on("data", (b: Buffer) => { err += b; });
  const code: number = await new Promise((res) => child.on("close", (c) => res(c ?? 1)));
  sampler?.kill();
  const last = out.trim().split("\n").pop() ?? "";
  return { probe: code === 0 && last.startsWith("{") ? JSON.parse(last) as Probe : null, gpuPeakMiB: sampleGpu ? peak - idle : null, err: err.trim().split("\n").slice(-3).join(" ") };
}

const rows: Row[] = [];
async function runAndSave(name: string, cmd: string, args: string[]): Promise<void> {
  await run(name, cmd, args);
  if (v.out) writeFileSync(v.out, render());
}
async function run(name: string, cmd: string, args: string[]): Promise<void> {
  const elapsed = performance.now() - started;
  // a probe of this size has taken about as long as the slowest so far; leave room for one more
  const slowest = Math.max(0, ...rows.map((r) => r.wallS * 1000));
  if (elapsed + slowest > budgetMs) {
    rows.push({ name, probe: null, gpuPeakMiB: null, wallS: 0, note: `skipped: --budget-s ${budgetMs / 1000} reached` });
    return;
  }
  process.stderr.write(`gpu bench: ${name} …\n`);
  const t0 = performance.now();
  const r = await measure(cmd, args);
  rows.push({ name, probe: r.probe, gpuPeakMiB: r.gpuPeakMiB, wallS: (performance.now() - t0) / 1000, note: r.probe ? undefined : `failed: ${r.err}` });
}

const common = { steps, warmup, device, dtype: "bfloat16", ...shape };
const ours = (options: Record<string, unknown>, method: string) =>
  [join(here, "step-probe.js"), JSON.stringify({ mode: "train", logits: "needed", method, options, ...common })];
const hf = (extra: Record<string, unknown>) => [join(repoRoot, "bench", "peer", "hf_peer.py"), JSON.stringify({ threads: 4, ...common, ...extra })];

// ------------------------------------------------------------ markdown
const info = buildInfo();

/** The markdown so far (written after every configuration, so a run cut short keeps what it measured). */
function render(): string {
  const peerRow = rows[0]?.probe;
  const gpu = peerRow?.gpu ?? nvidiaSmi("name") ?? (device === "cpu" ? "cpu (dry run)" : "?");
  const f = (x: number | null | undefined, d = 0) => (x === null || x === undefined ? "—" : x.toFixed(d));
  const lines = [
    `### GPU benchmark (${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC)`,
    "",
    `${gpu}; libtorch ${info.torchVersion} (addon), peer: ${peerRow?.versions ? Object.entries(peerRow.versions).map(([k, x]) => `${k} ${x}`).join(", ") : "—"}. ` +
      `OPT shapes hidden ${shape.hidden}, ${shape.layers} layers (random weights), batch ${shape.batch} × ${shape.seq}, bf16, device ${device}; ` +
      `loss on the last 2 positions; median of ${steps} steps after ${warmup} warm-ups, each configuration in its own process.`,
    "",
    `| configuration | trainable | step ms | vs HF LoRA | peak GPU MiB (nvidia-smi Δ) | torch peak allocated MiB | peak RSS MiB | loss first → last |`,
    "|---|---|---|---|---|---|---|---|",
    ...rows.map((r) => {
      if (!r.probe) return `| ${r.name} | ${r.note} | | | | | | |`;
      const p = r.probe;
      const vs = peerRow && r.probe !== peerRow ? `×${(peerRow.step_ms / p.step_ms).toFixed(2)} speed` : "—";
      return `| ${r.name} | ${p.trainable.toLocaleString("en")} | ${f(p.step_ms, 1)} | ${vs} | ${f(r.gpuPeakMiB)} | ${f(p.cuda_peak_allocated_mib)} | ` +
        `${f(p.peak_rss_mib)} | ${f(p.loss_first, 3)} → ${f(p.loss_last, 3)} |`;
    }),
    "",
    `"vs HF LoRA": the first row's step time ÷ this row's (> 1: faster than the peer). Wall time of the benchmark: ${((performance.now() - started) / 1000).toFixed(0)} s.`,
    "",
  ];
  return lines.join("\n");
}

await runAndSave("hf-peft lora (r=8, q,v; logits at last 3 positions)", v.python!, hf({ logits_to_keep: true }));
for (const ratio of ratios) await runAndSave(`randmask random-mask ${ratio}`, process.execPath, ours({ trainableRatio: ratio }, "random-mask"));
await runAndSave("randmask lora (r=8, q,v)", process.execPath, ours({ r: 8, alpha: 16 }, "lora"));
await runAndSave("hf-peft lora (r=8, q,v; logits at every position, HF's default)", v.python!, hf({}));

process.stdout.write(render());
