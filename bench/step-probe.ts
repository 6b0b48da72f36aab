// One benchmark configuration in a fresh process (peak RSS is per process):
// median training-step time (forward + backward + AdamW) of an OPT with
// OPT-125m's shapes (or another width), random weights, batch 8 × 64 (or
// batch × seq), loss on the last 2 positions of each sequence, on the CPU or
// args.device (bench/gpu.ts). Prints one JSON line.
import { readFileSync, writeFileSync } from "node:fs";
import { tensor, tidy, noGrad, AdamW, settle, crossEntropy, setDefaultDevice, type DType } from "../src/engine/index.js";
import { OPTForCausalLM } from "../src/models/opt.js";
import { presetConfig } from "../src/models/presets.js";
import { PeftModel } from "../src/peft/peft-model.js";

interface ProbeArgs {
  mode: "train" | "inference";
  method: string;
  options: Record<string, unknown>;
  dtype: DType;
  /** "needed": logits at the 2 loss positions only; "all": every position, as Hugging Face models do. */
  logits: "needed" | "all";
  hidden?: number;
  layers?: number;
  steps: number;
  warmup: number;
  lr?: number;
  gradientCheckpointing?: boolean;
  /** "cpu" (default), "cuda", "cuda:N": where the model, batch and optimizer live. */
  device?: string;
  batch?: number;
  seq?: number;
}

const args = JSON.parse(process.argv[2]) as ProbeArgs;
const B = args.batch ?? 8, T = args.seq ?? 64, K = 2;
setDefaultDevice(args.device ?? "cpu");

/** Peak RSS since the last reset, from /proc (Linux); writing 5 to clear_refs resets it. */
function resetPeak(): void { try { writeFileSync("/proc/self/clear_refs", "5"); } catch { /* not Linux */ } }
function peakMiB(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"));
  return m ? Number(m[1]) / 1024 : process.resourceUsage().maxRSS / 1024;
}

const d = args.hidden ?? 768;
const config = presetConfig("opt-125m", {
  dropout: 0, hidden_size: d, word_embed_proj_dim: d, ffn_dim: 4 * d, num_attention_heads: d / 64,
  num_hidden_layers: args.layers ?? 12,
});
const model = OPTForCausalLM.random(config, { dtype: args.dtype });
model.gradientCheckpointing = args.gradientCheckpointing ?? false;
const ids = tensor(Array.from({ length: B * T }, (_, i) => (i * 7919) % 50000 + 3), [B, T], "int64");
const lastTwo = tensor(Array.from({ length: B * K }, (_, i) => T - K + (i % K)), [B, K], "int64");
const targets = tensor(Array.from({ length: B * K }, (_, i) => (i * 31) % 50000), [B * K], "int64");

function loss(): ReturnType<typeof crossEntropy> {
  const { logits } = model.forward(ids, args.logits === "needed" ? { logitsAt: lastTwo } : {});
  const picked = args.logits === "needed" ? logits : logits.narrow(1, T - K, K);
  return crossEntropy(picked.reshape([B * K, -1]).to("float32"), targets);
}

const times: number[] = [];
const losses: number[] = [];
let trainable = 0;
if (args.mode === "inference") {
  resetPeak();
  for (let i = 0; i < args.warmup + args.steps; i++) {
    const t0 = performance.now();
    noGrad(() => tidy(() => { losses.push(loss().item()); }));
    if (i >= args.warmup) times.push(performance.now() - t0);
    await settle();
  }
} else {
  const peft = PeftModel.create(model, args.method, args.options);
  trainable = peft.trainableCount();
  const opt = new AdamW(peft.trainableParams(), { lr: args.lr ?? 1e-4 });
  const first = peft.trainableParams()[0];
  const onGpu = (args.device ?? "cpu") !== "cpu";
  resetPeak();
  for (let i = 0; i < args.warmup + args.steps; i++) {
    const t0 = performance.now();
    tidy(() => {
      const l = loss();
      losses.push(l.item());
      l.backward();
    });
    opt.step();
    opt.zeroGrad();
    // on a GPU the step's kernels run after the calls return: wait for them (as .item() does for the peer)
    if (onGpu) tidy(() => first.narrow(0, 0, 1).sum().item());
    if (i >= args.warmup) times.push(performance.now() - t0);
    await settle();
  }
}
times.sort((a, b) => a - b);
console.log(JSON.stringify({
  step_ms: times[Math.floor(times.length / 2)], peak_rss_mib: peakMiB(), trainable,
  loss_first: losses[0], loss_last: losses[losses.length - 1], losses,
}));
