// The CUDA subset: every engine op, the sparse-delta kernel (forward, backward,
// double backward), one training step of every PEFT method, KV-cached generation
// and a finetune run, each on the device against the same computation on the CPU.
// The device is RANDMASK_TEST_DEVICE, else "cuda" when the addon sees a GPU; without
// either the device tests are skipped. RANDMASK_TEST_DEVICE=cpu runs them as a dry run
// (CPU against CPU: it exercises this file and the plumbing, not CUDA).
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import {
  Tensor, tensor, tidy, noGrad, keep, grad, AdamW, clipGradNorm, buildInfo, manualSeed,
  full, zeros, ones, arange, randn, rand, eye, cat, stack, where, checkpoint,
  getDefaultDevice, setDefaultDevice,
  linear, frozenLinear, reluMask, baddbmm, layerNorm, embedding, dropout, crossEntropy, sparseDeltaLinear, sddmm,
  type DType,
} from "../src/engine/index.js";
import { saveFile } from "../src/io/safetensors.js";
import { loadCausalLM, parseModelConfig, randomCausalLM, toHfModelConfig } from "../src/models/registry.js";
import { causalLmLoss } from "../src/models/lm-loss.js";
import { greedyGenerate } from "../src/models/generate.js";
import { METHODS } from "../src/peft/registry.js";
import { PeftModel } from "../src/peft/peft-model.js";
import { finetune } from "../src/train/run.js";
import { TRAIN_DEFAULTS } from "../src/train/trainer.js";
import { det, methodTestOptions, parityTask, repoRoot, sharedDir, tinyTextModel } from "./helpers.js";

const info = buildInfo();
const DEVICE = process.env.RANDMASK_TEST_DEVICE || (info.cudaAvailable ? "cuda" : "");
const skip = DEVICE === "" ? "no CUDA device (RANDMASK_TEST_DEVICE=cpu runs these as a CPU dry run)" : false;
const tmp = () => mkdtempSync(join(tmpdir(), "randmask-cuda-"));
const cli = join(repoRoot, "dist", "src", "cli", "main.js");

/** Runs fn with DEVICE as the default device (inputs, weights and temporaries land there). */
function onDevice<T>(fn: () => T): T {
  const outer = getDefaultDevice();
  setDefaultDevice(DEVICE);
  try { return fn(); } finally { setDefaultDevice(outer); }
}

function toDev(t: Tensor): Tensor { return t.to(undefined, DEVICE); }

const numbers = (t: Tensor): number[] => (t.dtype === "bool" ? t.to("uint8") : t).toNumbers();

/** |a − b| ≤ atol + rtol·|b| elementwise, with a message naming the worst entry. */
function assertClose(name: string, dev: Tensor, cpu: Tensor, rtol: number, atol: number): void {
  assert.ok(dev.device.startsWith(DEVICE.split(":")[0]), `${name}: result on ${dev.device}, expected ${DEVICE}`);
  assert.deepEqual(dev.shape, cpu.shape, `${name}: shape`);
  assert.equal(dev.dtype, cpu.dtype, `${name}: dtype`);
  const a = numbers(dev);
  const b = numbers(cpu);
  let worst = -1;
  let excess = 0;
  for (let i = 0; i < a.length; i++) {
    const e = Math.abs(a[i] - b[i]) - (atol + rtol * Math.abs(b[i]));
    if (e > excess || (Number.isNaN(a[i]) !== Number.isNaN(b[i]))) { excess = Math.max(e, excess); worst = i; }
  }
  assert.ok(worst < 0, `${name}: entry ${worst}: ${DEVICE} ${a[worst]} vs cpu ${b[worst]}`);
}

interface Input { shape: number[]; dtype?: DType; data?: ArrayLike<number>; grad?: boolean }
interface OpCase { name: string; inputs: Input[]; f: (xs: Tensor[]) => Tensor | Tensor[]; rtol?: number; atol?: number }

const F: Input = { shape: [3, 4] };
const P: Input = { shape: [3, 4], data: Array.from(det(12, 7), (v) => v + 1.5) };
const ints = (shape: number[], data: number[]): Input => ({ shape, dtype: "int64", data, grad: false });

const OPS: OpCase[] = [
  { name: "add", inputs: [F, F], f: ([a, b]) => a.add(b, 0.5) },
  { name: "add scalar", inputs: [F], f: ([a]) => a.add(2) },
  { name: "sub", inputs: [F, F], f: ([a, b]) => a.sub(b) },
  { name: "mul", inputs: [F, { shape: [4] }], f: ([a, b]) => a.mul(b) },
  { name: "div", inputs: [F, P], f: ([a, b]) => a.div(b) },
  { name: "pow", inputs: [P], f: ([a]) => a.pow(1.7) },
  { name: "maximum", inputs: [F, F], f: ([a, b]) => a.maximum(b) },
  { name: "minimum", inputs: [F, F], f: ([a, b]) => a.minimum(b) },
  { name: "neg", inputs: [F], f: ([a]) => a.neg() },
  { name: "exp", inputs: [F], f: ([a]) => a.exp() },
  { name: "log", inputs: [P], f: ([a]) => a.log() },
  { name: "sqrt", inputs: [P], f: ([a]) => a.sqrt() },
  { name: "rsqrt", inputs: [P], f: ([a]) => a.rsqrt() },
  { name: "abs", inputs: [F], f: ([a]) => a.abs() },
  { name: "tanh", inputs: [F], f: ([a]) => a.tanh() },
  { name: "sigmoid", inputs: [F], f: ([a]) => a.sigmoid() },
  { name: "relu", inputs: [F], f: ([a]) => a.relu() },
  { name: "gelu", inputs: [F], f: ([a]) => a.gelu() },
  { name: "gelu tanh", inputs: [F], f: ([a]) => a.gelu(true) },
  { name: "clamp", inputs: [F], f: ([a]) => a.clamp(-0.3, 0.4) },
  { name: "isfinite", inputs: [F], f: ([a]) => a.div(a.gt(0)).isfinite() },
  { name: "comparisons", inputs: [F, F], f: ([a, b]) => [a.eq(b), a.ne(b), a.lt(b), a.le(b), a.gt(0), a.ge(b)] },
  { name: "logical", inputs: [F, F], f: ([a, b]) => [a.gt(0).logicalNot(), a.gt(0).logicalAnd(b.gt(0))] },
  { name: "maskedFill", inputs: [F], f: ([a]) => a.maskedFill(a.lt(0), -1e4) },
  { name: "where", inputs: [F, F], f: ([a, b]) => where(a.gt(b), a, b) },
  { name: "sum", inputs: [F], f: ([a]) => [a.sum(), a.sum(1), a.sum([0], true)] },
  { name: "mean", inputs: [F], f: ([a]) => [a.mean(), a.mean(0)] },
  { name: "amax", inputs: [F], f: ([a]) => a.amax(1) },
  { name: "argmax", inputs: [F], f: ([a]) => a.argmax(1) },
  { name: "logsumexp", inputs: [F], f: ([a]) => a.logsumexp(1) },
  { name: "norm", inputs: [F], f: ([a]) => a.norm() },
  { name: "cumsum", inputs: [F], f: ([a]) => a.cumsum(1) },
  { name: "softmax", inputs: [F], f: ([a]) => a.softmax(1) },
  { name: "logSoftmax", inputs: [F], f: ([a]) => a.logSoftmax(0) },
  { name: "matmul", inputs: [{ shape: [2, 3, 5] }, { shape: [5, 4] }], f: ([a, b]) => a.matmul(b) },
  { name: "bmm", inputs: [{ shape: [2, 3, 5] }, { shape: [2, 5, 4] }], f: ([a, b]) => a.bmm(b) },
  { name: "eigh", inputs: [{ shape: [4, 4], grad: false }], f: ([a]) => {
    const s = a.add(a.transpose(0, 1));
    const [l, v] = s.eigh();
    return [l, v.abs()]; // eigenvectors are defined up to sign
  } },
  { name: "views", inputs: [{ shape: [2, 3, 4] }], f: ([a]) => [a.reshape([6, 4]), a.transpose(0, 2).contiguous(), a.permute([2, 0, 1]),
    a.narrow(2, 1, 2), a.select(1, 2), a.unsqueeze(0).squeeze(0), a.asStrided([3, 2], [4, 1], 1), a.clone(), a.detach()] },
  { name: "expand", inputs: [{ shape: [3, 1] }], f: ([a]) => a.expand([3, 4]) },
  { name: "tril/triu", inputs: [{ shape: [4, 4] }], f: ([a]) => [a.tril(), a.triu(1)] },
  { name: "indexSelect", inputs: [F, ints([2], [2, 0])], f: ([a, i]) => a.indexSelect(0, i) },
  { name: "gather", inputs: [F, ints([3, 2], [0, 3, 1, 1, 2, 0])], f: ([a, i]) => a.gather(1, i) },
  { name: "scatterAdd", inputs: [F, ints([3, 2], [0, 3, 1, 1, 2, 0]), { shape: [3, 2] }], f: ([a, i, s]) => a.scatterAdd(1, i, s) },
  { name: "indexAdd", inputs: [F, ints([2], [2, 0]), { shape: [2, 4] }], f: ([a, i, s]) => a.indexAdd(0, i, s) },
  { name: "indexPut", inputs: [{ shape: [12] }, ints([3], [5, 1, 5]), { shape: [3] }], f: ([a, i, v]) => a.indexPut([i], v, true) },
  { name: "sort", inputs: [F], f: ([a]) => a.sort(1, true) },
  { name: "topk", inputs: [F], f: ([a]) => a.topk(2, 1) },
  { name: "cat/stack", inputs: [F, F], f: ([a, b]) => [cat([a, b], 1), stack([a, b], 0)] },
  { name: "to dtype", inputs: [F], f: ([a]) => [a.to("bfloat16").to("float64"), a.mul(10).to("int64")] },
  { name: "linear", inputs: [{ shape: [2, 3, 4] }, { shape: [5, 4] }, { shape: [5] }], f: ([x, w, b]) => linear(x, w, b) },
  { name: "frozenLinear", inputs: [{ shape: [2, 3, 4] }, { shape: [5, 4], grad: false }, { shape: [5] }], f: ([x, w, b]) => frozenLinear(x, w, b) },
  { name: "reluMask", inputs: [F], f: ([a]) => reluMask(a) },
  { name: "baddbmm", inputs: [{ shape: [2, 3, 4] }, { shape: [2, 3, 5] }, { shape: [2, 5, 4] }], f: ([i, a, b]) => baddbmm(i, a, b, 0.5, 2) },
  { name: "layerNorm", inputs: [F, { shape: [4] }, { shape: [4] }], f: ([x, w, b]) => layerNorm(x, [4], w, b) },
  { name: "embedding", inputs: [{ shape: [6, 4] }, ints([2, 3], [0, 5, 2, 2, 1, 3])], f: ([w, i]) => embedding(w, i) },
  { name: "crossEntropy", inputs: [{ shape: [4, 6] }, ints([4], [1, -100, 5, 0])], f: ([l, t]) => [crossEntropy(l, t), crossEntropy(l, t, { reduction: "none" })] },
  { name: "sddmm", inputs: [{ shape: [7, 5] }, { shape: [7, 6] }, ints([4], [0, 1, 1, 4]), ints([4], [3, 0, 5, 2])], f: ([a, b, r, c]) => sddmm(a, b, r, c) },
];

function materialise(inp: Input, k: number, device: boolean): Tensor {
  const n = inp.shape.reduce((a, b) => a * b, 1);
  const t = tensor(inp.data ?? det(n, 31 + k), inp.shape, inp.dtype ?? "float64");
  const moved = device ? toDev(t) : t;
  if ((inp.grad ?? true) && (inp.dtype ?? "float64") === "float64") moved.setRequiresGrad(true);
  return moved;
}

/** Outputs and the gradients of Σ outputs·w for every float input that wants one. */
function evaluate(c: OpCase, device: boolean): Tensor[] {
  const xs = c.inputs.map((inp, k) => materialise(inp, k, device));
  const out = [c.f(xs)].flat();
  const loss = out.filter((o) => o.dtype === "float64" && o.requiresGrad)
    .map((o, j) => o.mul(device ? toDev(tensor(det(o.numel, 90 + j), o.shape, "float64")) : tensor(det(o.numel, 90 + j), o.shape, "float64")).sum());
  const wants = xs.filter((x) => x.requiresGrad);
  const grads = loss.length && wants.length
    ? grad([loss.reduce((a, b) => a.add(b))], wants, { allowUnused: true }).map((g, k) => g ?? zeros(wants[k].shape, "float64", wants[k].device))
    : [];
  return [...out.map((o) => o.detach()), ...grads];
}

for (const c of OPS) {
  test(`${DEVICE || "cuda"} · engine op ${c.name}: outputs and gradients equal the CPU's`, { skip }, () => tidy(() => {
    const cpu = evaluate(c, false);
    const dev = evaluate(c, true);
    assert.equal(dev.length, cpu.length);
    dev.forEach((d, i) => assertClose(`${c.name} #${i}`, d, cpu[i], c.rtol ?? 1e-9, c.atol ?? 1e-9));
  }));
}

test(`${DEVICE || "cuda"} · creation functions and tensor() land on the default device`, { skip }, () => tidy(() => {
  const made = onDevice(() => [full([2], 3), zeros([2]), ones([2], "int64"), arange(0, 4), randn([8]), rand([8]),
    eye(3), tensor([1, 2], [2], "bfloat16"), tensor([1, 2], [2], "int64")]);
  for (const t of made) assert.ok(t.device.startsWith(DEVICE.split(":")[0]), `${t} not on ${DEVICE}`);
  assert.deepEqual(made[3].toNumbers(), [0, 1, 2, 3]);
  assert.deepEqual(made[6].toNumbers(), [1, 0, 0, 0, 1, 0, 0, 0, 1]);
  assert.equal(getDefaultDevice(), "cpu");
  assert.equal(zeros([1]).device, "cpu");
}));

test(`${DEVICE || "cuda"} · dropout keeps the expected share, scaled by 1/(1−p)`, { skip }, () => tidy(() => {
  manualSeed(1);
  const y = dropout(toDev(ones([200000])), 0.25, true);
  const kept = y.gt(0).to("float32").mean().item();
  assert.ok(Math.abs(kept - 0.75) < 0.01, `kept ${kept}`);
  assert.ok(Math.abs(y.amax(0).item() - 1 / 0.75) < 1e-6);
}));

test(`${DEVICE || "cuda"} · in-place ops, AdamW and clipGradNorm equal the CPU's`, { skip }, () => tidy(() => {
  const run = (device: boolean): Tensor[] => {
    const mv = (t: Tensor) => (device ? toDev(t) : t);
    const p = mv(tensor(det(20, 3), [4, 5], "float32")).setRequiresGrad(true);
    const q = mv(tensor(det(5, 4), [5], "float32")).setRequiresGrad(true);
    const opt = new AdamW([p, q], { lr: 1e-2, weightDecay: 0.1 });
    for (let s = 0; s < 3; s++) {
      tidy(() => p.matmul(q).pow(2).sum().backward());
      clipGradNorm([p, q], 0.5);
      opt.step();
      opt.zeroGrad();
    }
    const b = mv(tensor(det(20, 5), [4, 5], "float32"));
    noGrad(() => {
      b.mul_(2).addScaled_(p.detach(), -0.5);
      b.indexAdd_(0, mv(tensor([3, 0], [2], "int64")), mv(ones([2, 5])));
    });
    const c = mv(zeros([4, 5])).copy_(b);
    return [p.detach(), q.detach(), c, mv(ones([3])).zero_()];
  };
  const cpu = run(false);
  run(true).forEach((d, i) => assertClose(`state #${i}`, d, cpu[i], 1e-5, 1e-6));
}));

test(`${DEVICE || "cuda"} · Hessian-vector product (grad with createGraph) equals the CPU's`, { skip }, () => tidy(() => {
  const hvp = (device: boolean) => {
    const mv = (t: Tensor) => (device ? toDev(t) : t);
    const x = mv(tensor(det(6, 8), [6], "float64")).setRequiresGrad(true);
    const v = mv(tensor(det(6, 9), [6], "float64"));
    const [g] = grad([x.tanh().pow(3).sum()], [x], { createGraph: true });
    return grad([g!.mul(v).sum()], [x])[0]!;
  };
  assertClose("hvp", hvp(true), hvp(false), 1e-10, 1e-12);
}));

test(`${DEVICE || "cuda"} · activation checkpointing refuses device tensors with a clear error`, { skip: skip || (DEVICE === "cpu" && "CPU checkpointing is tested elsewhere") }, () => tidy(() => {
  const x = toDev(ones([2])).setRequiresGrad(true);
  assert.throws(() => checkpoint((t) => t.mul(2), x), /checkpoint: CPU tensors only/);
}));

// ------------------------------------------------------------ the sparse-delta kernel

/** y, dX, dValues, the double-backward grads (of Σ dValues·r + ‖dX‖² w.r.t. x and the upstream gradient), first-order dX, dValues. */
function sparseDelta(device: boolean, dtype: DType, out: number, inF: number, tokens: number, nnz: number): Tensor[] {
  const mv = (t: Tensor) => (device ? toDev(t) : t);
  const step = Math.floor((out * inF) / nnz);
  const idx = mv(tensor(Array.from({ length: nnz }, (_, k) => k * step + (k % step)), [nnz], "int64"));
  const w = mv(tensor(det(out * inF, 1), [out, inF], dtype));
  const b = mv(tensor(det(out, 2), [out], dtype));
  const x = mv(tensor(det(tokens * inF, 3), [2, tokens / 2, inF], dtype)).setRequiresGrad(true);
  const v = mv(tensor(det(nnz, 4), [nnz], dtype)).setRequiresGrad(true);
  const g = mv(tensor(det(tokens * out, 5), [2, tokens / 2, out], dtype)).setRequiresGrad(true);
  const r = mv(tensor(det(nnz, 6), [nnz], dtype));
  const y = sparseDeltaLinear(x, w, b, idx, v);
  const [dx, dv] = grad([y], [x, v], { gradOutputs: [g], createGraph: true });
  const [ddx, ddg] = grad([dv!.mul(r).sum().add(dx!.pow(2).sum())], [x, g]);
  // without createGraph the CPU takes its own kernels (no [T, nnz] gathers): the GPU against those too
  const [dx1, dv1] = grad([sparseDeltaLinear(x, w, b, idx, v)], [x, v], { gradOutputs: [g.detach()] });
  return [y, dx!, dv!, ddx!, ddg!, dx1!, dv1!].map((t) => t.detach());
}

for (const [layout, out, inF, tokens, nnz] of [["gathered columns", 96, 64, 8, 40], ["merged weight", 48, 32, 200, 300]] as const) {
  for (const dtype of ["float64", "float32"] as const) {
    test(`${DEVICE || "cuda"} · sparse-delta linear (${layout}, ${dtype}): forward, backward, double backward equal the CPU's`, { skip }, () => tidy(() => {
      const cpu = sparseDelta(false, dtype, out, inF, tokens, nnz);
      const dev = sparseDelta(true, dtype, out, inF, tokens, nnz);
      const tol = dtype === "float64" ? 1e-10 : 2e-4;
      ["y", "dX", "dValues", "d²/dx", "d²/dgradOut", "dX (first order)", "dValues (first order)"]
        .forEach((n, i) => assertClose(n, dev[i], cpu[i], tol, tol));
    }));
  }
}

test(`${DEVICE || "cuda"} · sparse-delta linear in bfloat16 stays within bf16 rounding of the CPU`, { skip }, () => tidy(() => {
  const cpu = sparseDelta(false, "float32", 96, 64, 8, 40);
  const dev = sparseDelta(true, "bfloat16", 96, 64, 8, 40).map((t) => t.to("float32"));
  ["y", "dX", "dValues"].forEach((n, i) => assertClose(n, dev[i], cpu[i], 5e-2, 5e-2));
}));

// ------------------------------------------------------------ models: training and generation

/** Tiny random OPT and Llama folders (no ../shared needed on a GPU machine). */
const MODEL_DIRS: [string, string][] = skip ? [] : [
  ["opt", { model_type: "opt", vocab_size: 256, hidden_size: 32, num_hidden_layers: 2, ffn_dim: 64, num_attention_heads: 4,
    max_position_embeddings: 64, dropout: 0, do_layer_norm_before: true }],
  ["llama", { model_type: "llama", vocab_size: 256, hidden_size: 32, intermediate_size: 48, num_hidden_layers: 2,
    num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 64, tie_word_embeddings: false }],
].map(([family, raw]) => {
  const dir = tmp();
  const cfg = parseModelConfig(raw as Record<string, unknown>);
  const m = randomCausalLM(cfg, { seed: 5, std: 0.1 });
  noGrad(() => { for (const [k, t] of m.params) if (k.endsWith(".bias")) t.copy_(tidy(() => t.add(0.05))); });
  saveFile(join(dir, "model.safetensors"), m.stateDict());
  writeFileSync(join(dir, "config.json"), JSON.stringify(toHfModelConfig(cfg)));
  m.dispose();
  return [family as string, dir];
});

const OPTIONS = methodTestOptions(0.02);

test("every registered method is in the CUDA training test", () => {
  assert.deepEqual(METHODS.map((m) => m.name).sort(), Object.keys(OPTIONS).sort());
});

/** One AdamW step: the loss, the gradients and the stepped parameters. `init` (the CPU's initial values) replaces libtorch-random inits. */
function trainStep(dir: string, method: string, init?: number[][]): { loss: number; out: Tensor[]; init: number[][] } {
  const model = loadCausalLM(dir);
  try {
    const peft = PeftModel.create(model, method, OPTIONS[method]);
    const params = peft.trainableParams();
    if (init) noGrad(() => params.forEach((p, k) => p.copy_(tensor(init[k], p.shape, p.dtype))));
    const start = params.map((p) => p.toNumbers());
    const ids = tensor([2, 10, 20, 30, 40, 50, 60, 70, 1, 1, 2, 200, 201, 202, 203, 204], [2, 8], "int64");
    const mask = tensor([1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1], [2, 8], "int64");
    const labels = tensor([-100, 10, 20, 30, 40, 50, 60, 70, -100, -100, -100, 201, 202, 203, 204, -100], [2, 8], "int64");
    // eps well above float32 noise in the gradients, so a gradient that is ~0 on both devices steps both alike
    const opt = new AdamW(params, { lr: 1e-3, eps: 1e-4 });
    const lossT = causalLmLoss(model.forward(ids, { attentionMask: mask }).logits, labels);
    const reg = peft.instance.regularizationLoss?.();
    (reg ? lossT.add(reg) : lossT).backward();
    const grads = params.map((p) => keep(p.grad!.clone()));
    opt.step();
    peft.instance.afterOptimizerStep?.(1);
    const out = [...grads, ...params.map((p) => keep(p.detach().clone()))];
    peft.remove();
    return { loss: lossT.item(), out, init: start };
  } finally {
    model.dispose();
  }
}

for (const [family, dir] of MODEL_DIRS) for (const def of METHODS) {
  if (def.name === "bitfit" && family === "llama") continue; // Llama has no biases
  test(`${DEVICE} · ${family} · ${def.name}: one training step (loss, gradients, stepped weights) equals the CPU's`, { skip }, () => tidy(() => {
    const cpu = trainStep(dir, def.name);
    const dev = onDevice(() => trainStep(dir, def.name, cpu.init));
    assert.ok(Math.abs(dev.loss - cpu.loss) < 1e-4 * Math.max(1, Math.abs(cpu.loss)), `loss ${dev.loss} vs ${cpu.loss}`);
    const n = cpu.out.length / 2;
    cpu.out.forEach((c, i) => {
      const scale = Math.max(1e-6, ...c.abs().toNumbers());
      assertClose(i < n ? `grad ${i}` : `param ${i - n}`, dev.out[i], c, 1e-4, i < n ? 1e-4 * scale : 2e-5);
    });
  }));
}

for (const [family, dir] of MODEL_DIRS) {
  test(`${DEVICE} · ${family}: KV-cached greedy generation equals uncached, and the CPU's tokens`, { skip }, () => tidy(() => {
    const prompts = [[2, 17, 33, 90], [2, 5], [2, 200, 201, 202, 203, 7]];
    const opts = { maxNewTokens: 12 };
    const cpuModel = loadCausalLM(dir);
    const cpuTokens = greedyGenerate(cpuModel, prompts, opts);
    cpuModel.dispose();
    onDevice(() => {
      const model = loadCausalLM(dir);
      try {
        assert.ok(model.params.values().next().value!.device.startsWith(DEVICE.split(":")[0]), "weights not on the device");
        const cached = greedyGenerate(model, prompts, opts);
        assert.deepEqual(greedyGenerate(model, prompts, { ...opts, noCache: true }), cached, "cached vs uncached");
        assert.deepEqual(cached, cpuTokens, "device vs cpu");
        // logits of the last step: cached forward against a full recompute, on the device
        const ids = tensor([2, 17, 33, 90, 5, 6], [1, 6], "int64");
        const full6 = noGrad(() => model.forward(ids).logits.narrow(1, 5, 1));
        const first = noGrad(() => model.forward(ids.narrow(1, 0, 5), { useCache: true }));
        const step = noGrad(() => model.forward(ids.narrow(1, 5, 1), { past: first.cache, useCache: true }).logits);
        assertClose("cached logits", step, full6, 1e-4, 1e-4);
      } finally {
        model.dispose();
      }
    });
  }));
}

// ------------------------------------------------------------ the command line

const tokenizerThere = existsSync(join(sharedDir, "tokenizers", "opt", "vocab.json"));

test(`${DEVICE} · finetune --device runs Random Masking end to end and records the device`, { skip: skip || (!tokenizerThere && `no OPT tokenizer under ${sharedDir}`) }, () => {
  const root = tmp();
  const model = tinyTextModel(join(root, "model"));
  const data = parityTask(join(root, "data"));
  const out = join(root, "run");
  const r = spawnSync(process.execPath, [cli, "finetune", "--model", model, "--task", "jsonl", "--data-dir", data, "--device", DEVICE,
    "--method", "random-mask", "--trainable-ratio", "1e-3", "--lr", "1e-2", "--epochs", "1", "--train-size", "32", "--dev-size", "16",
    "--test-size", "16", "--out", out, "--quiet"], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  const metrics = JSON.parse(readFileSync(join(out, "metrics.json"), "utf8"));
  assert.equal(metrics.status, "completed");
  assert.equal(metrics.config.device, DEVICE);
  assert.ok(existsSync(join(out, "adapter", "adapter_model.safetensors")));
});

// ------------------------------------------------------------ errors (run everywhere)

test("--device names itself when malformed (exit 2) or when CUDA is missing (exit 1), before anything is written", { skip: info.cudaAvailable && "this machine has CUDA" }, () => {
  const root = tmp();
  const bad = spawnSync(process.execPath, [cli, "logits", "--model", root, "--input-ids", "[[1]]", "--device", "gpu"], { encoding: "utf8" });
  assert.equal(bad.status, 2, bad.stderr);
  assert.match(bad.stderr, /--device "gpu": expected cpu, cuda or cuda:N/);
  const out = join(root, "run");
  const missing = spawnSync(process.execPath, [cli, "finetune", "--model", root, "--task", "sst2", "--data-dir", root, "--device", "cuda",
    "--method", "lora", "--out", out], { encoding: "utf8" });
  assert.equal(missing.status, 1, missing.stderr);
  assert.match(missing.stderr, /--device cuda: CUDA is not available/);
  assert.ok(!existsSync(out), "--out was created");
  assert.throws(() => setDefaultDevice("cuda:0"), /device cuda:0: CUDA is not available/);
  assert.equal(getDefaultDevice(), "cpu");
});

test("finetune refuses --gradient-checkpointing off the CPU before --out exists", async () => {
  const root = tmp();
  const out = join(root, "run");
  await assert.rejects(finetune({ modelDir: root, task: "sst2", dataDir: root, method: "lora", methodOptions: {}, dtype: "float32", device: "cuda",
    gradientCheckpointing: true, out, train: TRAIN_DEFAULTS }), /--gradient-checkpointing: CPU only; drop it with --device cuda/);
  assert.ok(!existsSync(out));
});
