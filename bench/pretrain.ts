// `npm run bench:pretrain`: training tokens/s of `randmask pretrain`'s step
// (fp32 masters, bf16 compute, AdamW, clipping) against the same step in a
// plain PyTorch loop (bench/peer/pretrain_peer.py: autocast bf16) in the same
// run, on a 4-layer d=256 OPT with OPT's vocabulary and 128-token blocks.
// Issue 11's target: within 10% of PyTorch. `-- --quick` for a smoke run,
// `-- --json` for one JSON line.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { getNumThreads, type DType } from "../src/engine/index.js";
import { parseConfig, toHfConfig } from "../src/models/config.js";
import { OPTForCausalLM } from "../src/models/opt.js";
import { PackedCorpus } from "../src/train/packing.js";
import { Pretrainer, asMasters, type PretrainConfig, type RunRecord } from "../src/train/pretrain.js";
import { peerAvailable, runPeer } from "./peer/python.js";
import { parseFlags, timeIt } from "./timing.js";

const { json, quick } = parseFlags(process.argv.slice(2));
const shape = { layers: 4, hidden: 256, heads: 4, ffn: 1024, vocab: 50272, block: 128, batch: 16 };
const dtype: DType = "bfloat16";
const steps = quick ? 3 : 10;
const warmup = quick ? 1 : 3;

/** Useful FLOPs per trained token: 6 per matmul weight (forward + both backward matmuls; the tied head counts once) plus causal attention. */
function flopPerToken(): number {
  const { layers: L, hidden: d, ffn, vocab, block: T } = shape;
  const matmulParams = L * (4 * d * d + 2 * d * ffn) + vocab * d;
  return 6 * matmulParams + 6 * L * T * d; // QKᵀ and PV: 2·T·d each per token forward (×½ causal), ×3 with backward
}

const cfg = parseConfig({ model_type: "opt", vocab_size: shape.vocab, hidden_size: shape.hidden, num_hidden_layers: shape.layers,
  num_attention_heads: shape.heads, ffn_dim: shape.ffn, max_position_embeddings: shape.block, dropout: 0, attention_dropout: 0 });
const train: PretrainConfig = { blockSize: shape.block, batchSize: shape.batch, gradAccum: 1, lr: 1e-3, minLr: 1e-4, warmupSteps: 0,
  maxSteps: 1_000_000, weightDecay: 0.1, beta1: 0.9, beta2: 0.95, maxGradNorm: 1, dtype, seed: 0, evalEvery: 1_000_000, checkpointMinutes: 1e9 };
const tokens = new Uint16Array(shape.block * shape.batch * 8).map((_, i) => 3 + ((i * 7919) % (shape.vocab - 3)));
const corpus = new PackedCorpus([{ name: "synthetic", tokens, weight: 1 }], shape.block, 0, 0);
const run: RunRecord = { kind: "randmask-pretrain", model: toHfConfig(cfg), init: null, train, data: [], holdoutTokens: 0, holdout: corpus.holdout, tokenizer: "" };
const trainer = new Pretrainer(mkdtempSync(join(tmpdir(), "randmask-bench-")), asMasters(OPTForCausalLM.random(cfg, { seed: 0, dtype: "float32" })), corpus, run, "", null);
const ours = await timeIt(() => { trainer.step(); }, { warmup, minRuns: steps, minSeconds: 0 });

const tokensPerStep = shape.batch * shape.block;
const rate = (ms: number) => (tokensPerStep / ms) * 1000;
const gflops = (ms: number) => (rate(ms) * flopPerToken()) / 1e9;
const noPeer = peerAvailable();
const peer = noPeer ? null : runPeer<{ step_ms: number; torch: string }>("pretrain_peer.py", { ...shape, dtype, steps, warmup })[0];

const result = {
  bench: "pretrain-step", ...shape, dtype, threads: getNumThreads(), steps,
  randmask_step_ms: ours.medianMs, randmask_tokens_per_s: rate(ours.medianMs), randmask_gflops: gflops(ours.medianMs),
  pytorch_step_ms: peer?.step_ms ?? null, pytorch_tokens_per_s: peer ? rate(peer.step_ms) : null, pytorch_gflops: peer ? gflops(peer.step_ms) : null,
  pytorch_version: peer?.torch ?? null, ratio_vs_pytorch: peer ? rate(ours.medianMs) / rate(peer.step_ms) : null, peer_missing: noPeer,
  gflop_per_token: flopPerToken() / 1e9,
};
if (json) console.log(JSON.stringify(result));
else {
  console.log(`pretraining step, OPT ${shape.layers}×${shape.hidden} (vocab ${shape.vocab}), ${shape.batch}×${shape.block} tokens, ${dtype}, ${result.threads} thread(s):`);
  console.log(`  randmask: ${ours.medianMs.toFixed(0)} ms/step, ${result.randmask_tokens_per_s.toFixed(0)} tokens/s, ${result.randmask_gflops.toFixed(1)} GFLOP/s`);
  if (peer) {
    console.log(`  PyTorch ${peer.torch}: ${peer.step_ms.toFixed(0)} ms/step, ${result.pytorch_tokens_per_s!.toFixed(0)} tokens/s, ${result.pytorch_gflops!.toFixed(1)} GFLOP/s`);
    console.log(`  randmask / PyTorch tokens/s: ${result.ratio_vs_pytorch!.toFixed(2)} (target ≥ 0.90)`);
  } else console.log(`  PyTorch peer not run: ${noPeer}`);
}
