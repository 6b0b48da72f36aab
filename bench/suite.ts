// `npm run bench`: training-step time, throughput and memory of randmask's
// methods against a plain PyTorch peer (/usr/bin/python3 + Debian's
// python3-torch, same threads and BLAS) in the same run, on OPT-125m's shapes.
// Markdown tables by default; `-- --json` prints one JSON object per line;
// `-- --quick` is a smoke run (< 3 minutes); `-- --peer hf` adds the peer users
// compare against, Hugging Face transformers + PEFT LoRA (scripts/hf-peer-venv.sh);
// The CPU speed targets have their own drift-robust run: bench/targets.ts.
// Each configuration runs in its own process so peak RSS belongs to it alone.
import { execFileSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { buildInfo, getNumThreads } from "../src/engine/index.js";
import { presetConfig } from "../src/models/presets.js";
import { shapesOf } from "../src/peft/shapes.js";
import { HF_PEER_PYTHON, peerAvailable, runPeer } from "./peer/python.js";
import { parseFlags } from "./timing.js";

const { json, quick, hfPeer } = parseFlags(process.argv.slice(2));
const here = dirname(fileURLToPath(import.meta.url));
const steps = quick ? 2 : 10;
const warmup = quick ? 1 : 3;
const info = buildInfo();
const noPeer = peerAvailable();
const noHfPeer = hfPeer ? peerAvailable(HF_PEER_PYTHON, "torch, transformers, peft", "run scripts/hf-peer-venv.sh") : "not asked for (--peer hf)";

interface Probe { step_ms: number; peak_rss_mib: number; trainable: number; loss_first: number; loss_last: number; losses: number[] }
type Dtype = "float32" | "bfloat16";

function ours(args: Record<string, unknown>): Probe {
  const out = execFileSync(process.execPath, [join(here, "step-probe.js"), JSON.stringify({ steps, warmup, logits: "needed", options: {}, mode: "train", ...args })],
    { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], maxBuffer: 16 << 20 });
  return JSON.parse(out.trim().split("\n").pop()!);
}
function peer(args: Record<string, unknown>): Probe | null {
  if (noPeer) return null;
  return runPeer<Probe>("opt_peer.py", { steps, warmup, ...args })[0];
}
function hf(args: Record<string, unknown>): Probe | null {
  if (noHfPeer) return null;
  return runPeer<Probe>("hf_peer.py", { steps, warmup, ...args }, HF_PEER_PYTHON)[0];
}

// ---------------------------------------------------------------- useful FLOPs
const shapes = shapesOf(presetConfig("opt-125m"));
function stepGflop(trainsWeights: boolean, hidden = 768, layers = 12, logitsAll = false): number {
  const B = 8, T = 64, tokens = B * T, d = hidden;
  const linear = layers * (4 * d * d + 2 * d * 4 * d);
  const attention = layers * 2 * 2 * B * T * T * d;
  const head = 2 * (logitsAll ? tokens : B * 2) * d * 50272;
  const forward = 2 * tokens * linear + attention + head;
  // backward: input gradients everywhere; weight gradients only when the weights train
  return (forward * (trainsWeights ? 3 : 2)) / 1e9;
}
const PEAK_FP32 = 230; // GFLOP/s, measured ceiling of this 2-core Zen 4 (see bench/RESULTS.md)

interface Row { bench: string; method: string; ratio: number | null; dtype: string; logits: string; step_ms: number; peer: string | null;
  peer_step_ms: number | null; speedup: number | null; examples_per_s: number; peak_rss_mib: number; trainable: number; gflops: number;
  pct_of_fp32_peak: number }
const rows: Row[] = [];
function emit(r: Row): void {
  rows.push(r);
  if (json) console.log(JSON.stringify(r));
  else process.stderr.write(`  ${r.method} ${r.ratio ?? ""} ${r.dtype} ${r.logits}: ${r.step_ms.toFixed(0)} ms` +
    (r.peer ? ` | ${r.peer} ${r.peer_step_ms?.toFixed(0)} ms → ×${r.speedup?.toFixed(2)}` : "") + "\n");
}

function record(method: string, ratio: number | null, dtype: Dtype, logits: string, p: Probe, peerName: string | null, q: Probe | null, trainsWeights: boolean): void {
  const gflop = stepGflop(trainsWeights, 768, 12, logits === "all");
  const gflops = gflop / (p.step_ms / 1000);
  emit({ bench: "train_step", method, ratio, dtype, logits, step_ms: p.step_ms, peer: peerName, peer_step_ms: q?.step_ms ?? null,
    speedup: q ? q.step_ms / p.step_ms : null, examples_per_s: 8000 / p.step_ms, peak_rss_mib: p.peak_rss_mib, trainable: p.trainable,
    gflops, pct_of_fp32_peak: (100 * gflops) / PEAK_FP32 });
}

if (!json) {
  console.log(`# randmask benchmark suite${quick ? " (quick)" : ""} — ${new Date().toISOString().slice(0, 10)}, libtorch ${info.torchVersion}, ` +
    `${getNumThreads()} threads, BLAS ${info.blasLibraries.join(", ")}`);
  console.log(`OPT-125m shapes (${shapes.totalParams.toLocaleString("en-US")} parameters), random weights, batch 8 × 64, loss on the last 2 positions; ` +
    `median of ${steps} steps after ${warmup} warm-ups.${noPeer ? ` PyTorch peer skipped: ${noPeer}.` : ""}` +
    `${hfPeer && noHfPeer ? ` Hugging Face peer skipped: ${noHfPeer}.` : ""}\n`);
}

// ---------------------------------------------------------------- 1, 2: methods vs peers
const densityOf = (ratio: number) => (ratio * shapes.totalParams) / (24 * 768 * 768);
const dtypes: Dtype[] = quick ? ["float32"] : ["float32", "bfloat16"];
const maskRatios = quick ? [1e-4] : [1e-3, 1e-4, 1e-5];
for (const dtype of dtypes) {
  if (!json) process.stderr.write(`${dtype}:\n`);
  const lora = peer({ method: "lora", dtype });
  const hfLora = hf({ dtype });
  const hfLoraKeep = hf({ dtype, logits_to_keep: true });
  for (const ratio of maskRatios) {
    const p = ours({ method: "random-mask", options: { trainableRatio: ratio }, dtype });
    record("random-mask", ratio, dtype, "needed", p, "pytorch-lora", lora, false);
    if (hfLora) record("random-mask", ratio, dtype, "needed", p, "hf-peft-lora", hfLora, false);
    if (hfLoraKeep) record("random-mask", ratio, dtype, "needed", p, "hf-peft-lora-keep3", hfLoraKeep, false);
    record("random-mask", ratio, dtype, "needed", p, "pytorch-dense-mask", peer({ method: "dense-mask", density: densityOf(ratio), dtype }), false);
    if (!quick) record("random-mask", ratio, dtype, "needed", p, "pytorch-shira", peer({ method: "shira", density: densityOf(ratio), dtype }), false);
    if (dtype === "float32" && ratio === maskRatios[0]) {
      const all = ours({ method: "random-mask", options: { trainableRatio: ratio }, dtype, logits: "all" });
      record("random-mask", ratio, dtype, "all", all, "pytorch-lora", lora, false);
    }
  }
  if (dtype === "float32") {
    const ck = ours({ method: "random-mask", options: { trainableRatio: 1e-4 }, dtype, gradientCheckpointing: true });
    record("random-mask+checkpointing", 1e-4, dtype, "needed", ck, "pytorch-lora", lora, false);
  }
  if (quick) record("lora", null, dtype, "needed", ours({ method: "lora", dtype }), "pytorch-lora", lora, false);
  if (quick) continue;
  record("structured-mask", 1e-3, dtype, "needed", ours({ method: "structured-mask", options: { trainableRatio: 1e-3 }, dtype }),
    "pytorch-structured", peer({ method: "structured", density: densityOf(1e-3), dtype }), false);
  record("lora", null, dtype, "needed", ours({ method: "lora", dtype }), "pytorch-lora", lora, false);
  record("bitfit", null, dtype, "needed", ours({ method: "bitfit", dtype }), "pytorch-bitfit", peer({ method: "bitfit", dtype }), false);
  record("full", null, dtype, "needed", ours({ method: "full", dtype }), "pytorch-full", peer({ method: "full", dtype }), true);
}

// ---------------------------------------------------------------- bf16 vs fp32 loss trajectory
// Random Masking 1e-4 at LR 1e-2 for a short run: the same trajectory within bf16 noise?
let trajectory: { fp32: number[]; bf16: number[]; maxRelDiff: number } | null = null;
if (!quick) {
  const run = (dtype: Dtype) => ours({ method: "random-mask", options: { trainableRatio: 1e-4 }, dtype, lr: 1e-2, steps: 12, warmup: 0 }).losses;
  const fp32 = run("float32");
  const bf16 = run("bfloat16");
  trajectory = { fp32, bf16, maxRelDiff: Math.max(...fp32.map((l, i) => Math.abs(l - bf16[i]) / Math.abs(l))) };
  if (json) console.log(JSON.stringify({ bench: "bf16_trajectory", method: "random-mask", ratio: 1e-4, lr: 1e-2, ...trajectory }));
}

// ---------------------------------------------------------------- 3: evaluation throughput
const evalOut = JSON.parse(execFileSync(process.execPath, [join(here, "eval-probe.js"), JSON.stringify({ quick })],
  { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] }).trim().split("\n").pop()!);
if (json) console.log(JSON.stringify({ bench: "eval", ...evalOut }));

// ---------------------------------------------------------------- 4: scaling
const scaling: { what: string; value: number; step_ms: number }[] = [];
if (!quick) {
  for (const ratio of [1e-1, 1e-2, 1e-3, 1e-4, 1e-5]) {
    const ms = ours({ method: "random-mask", options: { density: Math.min(1, densityOf(ratio)) }, dtype: "float32", steps: 5, warmup: 2 }).step_ms;
    scaling.push({ what: "ratio", value: ratio, step_ms: ms });
  }
  for (const hidden of [256, 512, 768, 1024]) {
    const ms = ours({ method: "random-mask", options: { density: 1e-3 }, dtype: "float32", hidden, steps: 5, warmup: 2 }).step_ms;
    scaling.push({ what: "width", value: hidden, step_ms: ms });
  }
  if (json) scaling.forEach((s) => console.log(JSON.stringify({ bench: `scaling_${s.what}`, method: "random-mask", ...s })));
}

// ---------------------------------------------------------------- 5: memory
const inference = JSON.parse(execFileSync(process.execPath, [join(here, "step-probe.js"),
  JSON.stringify({ mode: "inference", method: "none", options: {}, dtype: "float32", logits: "needed", steps, warmup })],
  { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] }).trim().split("\n").pop()!) as Probe;
if (json) console.log(JSON.stringify({ bench: "inference_rss", dtype: "float32", peak_rss_mib: inference.peak_rss_mib, step_ms: inference.step_ms }));

// ---------------------------------------------------------------- tables
if (!json) {
  const f = (v: number | null, digits = 0) => (v === null ? "—" : v.toFixed(digits));
  console.log("## Training step (forward + backward + AdamW)\n");
  console.log("| method | ratio | dtype | logits | randmask ms | peer | peer ms | speedup | ex/s | GFLOP/s | % fp32 peak | peak RSS MiB | trainable |");
  console.log("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
  for (const r of rows) {
    console.log(`| ${r.method} | ${r.ratio ?? "—"} | ${r.dtype} | ${r.logits} | ${f(r.step_ms)} | ${r.peer ?? "—"} | ${f(r.peer_step_ms)} | ` +
      `${f(r.speedup, 2)} | ${f(r.examples_per_s, 1)} | ${f(r.gflops)} | ${f(r.pct_of_fp32_peak)} | ${f(r.peak_rss_mib)} | ${r.trainable} |`);
  }
  console.log(`\nUseful work per step: ${stepGflop(false).toFixed(0)} GFLOP (logits where needed), ${stepGflop(true).toFixed(0)} GFLOP for full fine-tuning; ` +
    `fp32 peak ${PEAK_FP32} GFLOP/s.`);
  if (trajectory) {
    const fmt = (xs: number[]) => xs.map((x) => x.toFixed(3)).join(", ");
    console.log(`\n## bf16 vs fp32 loss trajectory (random-mask 1e-4, LR 1e-2, 12 steps)\n\n- fp32: ${fmt(trajectory.fp32)}\n- bf16: ${fmt(trajectory.bf16)}` +
      `\n- largest relative difference: ${(100 * trajectory.maxRelDiff).toFixed(2)}%`);
  }
  console.log(`\n## Evaluation throughput\n\n- option scoring, SST-2-shaped prompts (2 options): ${evalOut.score_examples_per_s.toFixed(1)} examples/s` +
    `\n- greedy generation with KV cache, batch ${evalOut.gen_batch}: ${evalOut.gen_tokens_per_s.toFixed(1)} tokens/s`);
  if (scaling.length) {
    console.log("\n## Scaling of Random Masking (fp32)\n\n| varied | value | step ms |\n|---|---|---|");
    for (const s of scaling) console.log(`| ${s.what} | ${s.value} | ${s.step_ms.toFixed(0)} |`);
  }
  console.log(`\n## Memory\n\n- inference only (fp32, same model and batch): peak RSS ${inference.peak_rss_mib.toFixed(0)} MiB`);
  for (const r of rows.filter((x) => x.dtype === "float32" && x.logits === "needed" && (x.method !== "random-mask" || x.ratio === 1e-4))) {
    if (r.peer !== "pytorch-lora" && r.method === "random-mask") continue;
    console.log(`- ${r.method}${r.ratio ? ` ${r.ratio}` : ""}: peak RSS ${r.peak_rss_mib.toFixed(0)} MiB (${(r.peak_rss_mib / inference.peak_rss_mib).toFixed(2)}× inference)`);
  }
}
