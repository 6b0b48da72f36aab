// `npm run bench:breakdown`: where a Random Masking training step's time goes,
// on OPT-125m shapes (random weights, batch 8 × 64, loss on the last 2
// positions), fp32 or bf16. Phases (forward, backward, optimizer) are timed
// inside real steps; components (attention core, LM head, the frozen linears,
// the sparse-delta q/v projections and their SDDMM, layer norms) are timed
// alone at the step's exact shapes, forward + backward, and multiplied by how
// often a step runs them, so they sum to an estimate that the measured step
// time checks ("other" = step − sum: residual adds, ReLU, embeddings, losses,
// per-op overhead). Prints Markdown, or one JSON line with `--json`.
//   node dist/bench/breakdown.js [--dtype fp32|bf16] [--ratio 1e-3] [--quick] [--json]
import {
  AdamW, crossEntropy, frozenLinear, layerNorm, noGrad, randn, settle, sparseDeltaLinear, sddmm, tensor, tidy, getNumThreads,
  type DType, type Tensor,
} from "../src/engine/index.js";
import { OPTForCausalLM } from "../src/models/opt.js";
import { presetConfig } from "../src/models/presets.js";
import { attend, attentionBias } from "../src/models/attention.js";
import { PeftModel } from "../src/peft/peft-model.js";
import { timeIt } from "./timing.js";

const argv = process.argv.slice(2);
const flag = (name: string, fallback: string) => { const i = argv.indexOf(name); return i >= 0 ? argv[i + 1] : fallback; };
const dtype: DType = flag("--dtype", "fp32") === "bf16" ? "bfloat16" : "float32";
const ratio = Number(flag("--ratio", "1e-3"));
const quick = argv.includes("--quick");
const json = argv.includes("--json");
const B = 8, T = 64, K = 2, d = 768, heads = 12, ffn = 3072, layers = 12, vocab = 50272;
const timing = { warmup: quick ? 1 : 3, minRuns: quick ? 3 : 10, minSeconds: 0 };

// ---- phases, inside real steps
const config = presetConfig("opt-125m", { dropout: 0 });
const model = OPTForCausalLM.random(config, { dtype });
const ids = tensor(Array.from({ length: B * T }, (_, i) => (i * 7919) % 50000 + 3), [B, T], "int64");
const lastTwo = tensor(Array.from({ length: B * K }, (_, i) => T - K + (i % K)), [B, K], "int64");
const targets = tensor(Array.from({ length: B * K }, (_, i) => (i * 31) % 50000), [B * K], "int64");
const peft = PeftModel.create(model, "random-mask", { trainableRatio: ratio, seed: 0 });
const opt = new AdamW(peft.trainableParams(), { lr: 1e-4 });
const phase = { forward: [] as number[], backward: [] as number[], optimizer: [] as number[], step: [] as number[] };
for (let i = 0; i < timing.warmup + timing.minRuns; i++) {
  const t0 = performance.now();
  let t1 = 0, t2 = 0;
  tidy(() => {
    const { logits } = model.forward(ids, { logitsAt: lastTwo });
    const l = crossEntropy(logits.reshape([B * K, -1]).to("float32"), targets);
    l.item();
    t1 = performance.now();
    l.backward();
    t2 = performance.now();
  });
  opt.step();
  opt.zeroGrad();
  const t3 = performance.now();
  if (i >= timing.warmup) {
    phase.forward.push(t1 - t0); phase.backward.push(t2 - t1); phase.optimizer.push(t3 - t2); phase.step.push(t3 - t0);
  }
  await settle();
}
const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
const nnzPerMatrix = Math.round(peft.trainableCount() / (2 * layers));
peft.remove();
model.dispose();

// ---- components alone, forward + backward, at the step's shapes
const leaf = (shape: number[]) => { const t = randn(shape, dtype); t.setRequiresGrad(true); return t; };
const frozen = (shape: number[]) => randn(shape, dtype).mul(0.02);
async function fwdBwd(make: () => { out: Tensor; inputs: Tensor[] }): Promise<number> {
  const t = await timeIt(() => tidy(() => {
    const { out, inputs } = make();
    out.to("float32").sum().backward();
    for (const t of inputs) t.clearGrad();
  }), timing);
  return t.medianMs;
}
const x = leaf([B * T, d]);
const wSq = frozen([d, d]), wUp = frozen([ffn, d]), wDown = frozen([d, ffn]), bias = frozen([d]);
const xUp = leaf([B * T, ffn]);
const flat = tensor(Array.from({ length: nnzPerMatrix }, (_, i) => Math.floor((i * d * d) / nnzPerMatrix)), [nnzPerMatrix], "int64");
const values = leaf([nnzPerMatrix]);
const q = leaf([B, heads, T, d / heads]), k = leaf([B, heads, T, d / heads]), v = leaf([B, heads, T, d / heads]);
const attnBias = attentionBias(tensor(Array(B * T).fill(1), [B, T], "int64"), T, 0);
const hiddenAtLoss = leaf([B * K, d]);
const embed = frozen([vocab, d]);
const lnW = frozen([d]).add(1), lnB = frozen([d]);
const rows = tensor(Array.from({ length: nnzPerMatrix }, (_, i) => Math.floor((i * d) / nnzPerMatrix)), [nnzPerMatrix], "int64");
const cols = tensor(Array.from({ length: nnzPerMatrix }, (_, i) => (i * 131) % d), [nnzPerMatrix], "int64");
const gOut = randn([B * T, d], dtype);

const per = {
  // The last layer runs at the 2 loss positions only (queries, out, MLP: the model's logitsAt path), so
  // those components count layers − 1 full-size calls; the last layer's 16-row calls are left in "other".
  "attention core (QKᵀ, softmax, PV)": { count: layers - 1, ms: await fwdBwd(() => ({ out: attend(q, k, v, attnBias, 0, false), inputs: [q, k, v] })) },
  "LM head (2 positions × 50272)": { count: 1, ms: await fwdBwd(() => ({ out: frozenLinear(hiddenAtLoss, embed), inputs: [hiddenAtLoss] })) },
  "q, v projections (sparse delta)": { count: 2 * layers - 1, ms: await fwdBwd(() => ({ out: sparseDeltaLinear(x, wSq, bias, flat, values), inputs: [x, values] })) },
  "k, out projections (frozen)": { count: 2 * layers - 1, ms: await fwdBwd(() => ({ out: frozenLinear(x, wSq, bias), inputs: [x] })) },
  "fc1 (frozen)": { count: layers - 1, ms: await fwdBwd(() => ({ out: frozenLinear(x, wUp), inputs: [x] })) },
  "fc2 (frozen)": { count: layers - 1, ms: await fwdBwd(() => ({ out: frozenLinear(xUp, wDown), inputs: [xUp] })) },
  "layer norms": { count: 2 * layers - 1, ms: await fwdBwd(() => ({ out: layerNorm(x, [d], lnW, lnB), inputs: [x] })) },
};
// The SDDMM alone (the values' gradient inside the q, v rows above), for scale.
const sddmmMs = (await timeIt(() => noGrad(() => tidy(() => { sddmm(gOut, x, rows, cols); })), timing)).medianMs;

const step = median(phase.step);
const rowsOut = Object.entries(per).map(([name, c]) => ({ name, count: c.count, each_ms: c.ms, total_ms: c.ms * c.count, share: (c.ms * c.count) / step }));
const accounted = rowsOut.reduce((a, r) => a + r.total_ms, 0);
const result = {
  bench: "step-breakdown", method: "random-mask", ratio, dtype, threads: getNumThreads(), nnz_per_matrix: nnzPerMatrix,
  step_ms: step, forward_ms: median(phase.forward), backward_ms: median(phase.backward), optimizer_ms: median(phase.optimizer),
  components: rowsOut, sddmm_each_ms: sddmmMs, sddmm_total_ms: sddmmMs * 2 * layers, other_ms: step - accounted,
};
if (json) console.log(JSON.stringify(result));
else {
  console.log(`Random Masking ${ratio} step, OPT-125m shapes, batch ${B} × ${T}, ${dtype}, ${result.threads} thread(s): ${step.toFixed(0)} ms`);
  console.log(`phases: forward ${result.forward_ms.toFixed(0)} ms, backward ${result.backward_ms.toFixed(0)} ms, optimizer ${result.optimizer_ms.toFixed(1)} ms\n`);
  console.log("| component (forward + backward) | per step | ms each | ms per step | share of step |\n|---|---:|---:|---:|---:|");
  for (const r of rowsOut) console.log(`| ${r.name} | ${r.count} | ${r.each_ms.toFixed(2)} | ${r.total_ms.toFixed(0)} | ${(r.share * 100).toFixed(0)}% |`);
  console.log(`| other (residuals, ReLU, embeddings, loss, op overhead) | | | ${result.other_ms.toFixed(0)} | ${((result.other_ms / step) * 100).toFixed(0)}% |`);
  console.log(`\nSDDMM alone (values' gradient, ${nnzPerMatrix} entries of a ${d}×${d} matrix): ${sddmmMs.toFixed(3)} ms each, ${result.sddmm_total_ms.toFixed(1)} ms per step (inside the q, v row).`);
}
