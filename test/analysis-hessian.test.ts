// The Hessian's ℓ2 norm by power iteration, against exact answers: a quadratic
// with a known (negative) dominant eigenvalue, and a tiny float64 OPT whose full
// Hessian in the random mask's values is built column by column from HVPs and
// by finite differences of the gradient, then diagonalised.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Tensor, grad, noGrad, tensor, tidy, zeros } from "../src/engine/index.js";
import { parseConfig } from "../src/models/config.js";
import { OPTForCausalLM } from "../src/models/opt.js";
import { causalLmLoss } from "../src/models/lm-loss.js";
import { PeftModel } from "../src/peft/peft-model.js";
import { BpeTokenizer } from "../src/tokenizer/bpe-tokenizer.js";
import { loadTaskData } from "../src/tasks/sampling.js";
import { getTask } from "../src/tasks/registry.js";
import { hessianNorm, hessianTopEigenvalue, hessianVectorProduct } from "../src/analysis/hessian.js";
import { det, parityTask, repoRoot, sharedDir, tinyTextModel } from "./helpers.js";

test("power iteration finds a negative dominant eigenvalue with its sign (quadratic, known spectrum)", () => tidy(() => {
  // A = Q diag(−5, 3, 1) Qᵀ with Q from the eigenvectors of a random symmetric matrix
  const b = tensor(det(9, 21), [3, 3], "float64");
  const q = b.add(b.transpose(0, 1)).eigh()[1];
  const a = q.mul(tensor([-5, 3, 1], [1, 3], "float64")).matmul(q.transpose(0, 1));
  const w = tensor([0.3, -0.2, 0.9], [3], "float64").setRequiresGrad(true);
  const loss = () => w.reshape([1, 3]).matmul(a).matmul(w.reshape([3, 1])).sum().mul(0.5);
  const u = tensor([1, 2, -1], [3], "float64");
  const [hu] = hessianVectorProduct([w], [loss], [u]);
  assert.ok(hu.allclose(a.matmul(u.reshape([3, 1])).reshape([3]), 1e-12, 1e-12), "H·u = A·u");
  const est = hessianTopEigenvalue([w], [loss], { maxIters: 200, tol: 1e-10, seed: 1 });
  assert.ok(est.converged);
  assert.ok(Math.abs(est.eigenvalue + 5) < 1e-8, `eigenvalue ${est.eigenvalue}`);
  assert.ok(Math.abs(est.norm - 5) < 1e-8);
  assert.ok(est.relativeChange < 1e-10 && est.iterations === est.history.length);
}));

/**
 * A two-layer float64 OPT small enough to build its Hessian in the mask's values.
 * GELU rather than OPT's ReLU: the loss must be smooth for finite differences to
 * be a reference (a step across a ReLU kink adds a jump to the difference quotient
 * that no Hessian has; this happened with ReLU at step 1e-3).
 */
function tinyOpt(dropout = 0): OPTForCausalLM {
  const cfg = parseConfig({ model_type: "opt", vocab_size: 24, hidden_size: 8, num_hidden_layers: 2, ffn_dim: 16,
    num_attention_heads: 2, max_position_embeddings: 16, dropout, word_embed_proj_dim: 8, activation_function: "gelu" });
  return OPTForCausalLM.random(cfg, { seed: 3, dtype: "float64", std: 0.5 });
}

test("tiny OPT: HVP columns equal finite differences of the gradient, and power iteration matches the exact ‖H‖₂ (≤ 1%)", () => tidy(() => {
  const model = tinyOpt();
  const peft = PeftModel.create(model, "random-mask", { density: 0.06, seed: 5, targetModules: ["q_proj", "v_proj"] });
  const params = peft.trainableParams();
  const sizes = params.map((p) => p.numel);
  const k = sizes.reduce((s, x) => s + x, 0);
  assert.ok(k >= 8 && k <= 60, `trainable ${k}`);
  // move off the all-zero start so the Hessian has no special structure
  noGrad(() => params.forEach((p, i) => p.copy_(tensor(det(p.numel, 40 + i).map((v) => 0.5 * v), p.shape, "float64").to(p.dtype))));
  const ids = tensor([2, 5, 9, 13, 7, 21, 4, 11, 2, 17, 3, 8, 19, 6, 14, 10], [2, 8], "int64");
  const loss = () => causalLmLoss(model.forward(ids).logits, ids);

  const basis = (j: number): Tensor[] => {
    let off = 0;
    return params.map((p, i) => {
      const e = zeros([p.numel], p.dtype);
      const local = j - off;
      off += sizes[i];
      return local >= 0 && local < sizes[i] ? e.indexPut([tensor([local], [1], "int64")], tensor([1], [1], p.dtype)) : e;
    });
  };
  const flat = (ts: (Tensor | null)[]) => ts.flatMap((t) => t!.toNumbers());
  const gradAt = (shift: Tensor[], eps: number) => {
    noGrad(() => params.forEach((p, i) => p.copy_(p.add(shift[i], eps))));
    const g = flat(grad([loss()], params));
    noGrad(() => params.forEach((p, i) => p.copy_(p.add(shift[i], -eps))));
    return g;
  };
  const hvp: number[][] = [];
  const fd: number[][] = [];
  const eps = 1e-3; // the values are float32 leaves; the model computes in float64
  for (let j = 0; j < k; j++) tidy(() => {
    const e = basis(j);
    hvp.push(flat(hessianVectorProduct(params, [loss], e)));
    const plus = gradAt(e, eps);
    const minus = gradAt(e, -eps);
    fd.push(plus.map((g, i) => (g - minus[i]) / (2 * eps)));
  });
  const scale = Math.max(...hvp.flat().map(Math.abs));
  for (let j = 0; j < k; j++) for (let i = 0; i < k; i++) {
    assert.ok(Math.abs(hvp[j][i] - fd[j][i]) <= 2e-3 * scale, `H[${i},${j}]: HVP ${hvp[j][i]} vs finite difference ${fd[j][i]}`);
    assert.ok(Math.abs(hvp[j][i] - hvp[i][j]) <= 1e-5 * scale, `H not symmetric at ${i},${j}`);
  }
  const h = tensor(hvp.flat(), [k, k], "float64");
  const exact = h.add(h.transpose(0, 1)).mul(0.5).eigh()[0].toNumbers();
  const top = Math.abs(exact[0]) > Math.abs(exact[k - 1]) ? exact[0] : exact[k - 1];
  // the values are float32 leaves, so the Rayleigh quotient carries ~1e-7 relative noise: tol must sit above it
  const est = hessianTopEigenvalue(params, [loss], { maxIters: 1000, tol: 1e-6, seed: 0 });
  assert.ok(est.converged, `not converged in ${est.iterations}`);
  assert.ok(Math.abs(est.norm - Math.abs(top)) <= 0.01 * Math.abs(top), `power iteration ${est.eigenvalue} vs exact ${top}`);
  assert.ok(Math.sign(est.eigenvalue) === Math.sign(top));
  // the same through the finite-difference Hessian: an independent route to the spectrum
  const hf = tensor(fd.flat(), [k, k], "float64");
  const exactFd = hf.add(hf.transpose(0, 1)).mul(0.5).eigh()[0].toNumbers();
  const topFd = Math.max(Math.abs(exactFd[0]), Math.abs(exactFd[k - 1]));
  assert.ok(Math.abs(est.norm - topFd) <= 0.01 * topFd, `power iteration ${est.norm} vs finite-difference Hessian ${topFd}`);
  peft.remove();
}));

for (const [method, options] of Object.entries({
  "random-mask": { density: 0.1, seed: 1 }, "structured-mask": { density: 0.1, seed: 1 }, lora: { r: 2, alpha: 4 },
  adalora: { initR: 3, targetR: 2, totalSteps: 10 }, bitfit: {}, adapter: { bottleneck: 2 }, prefix: { numVirtualTokens: 2 }, full: {},
} as Record<string, Record<string, unknown>>)) {
  test(`${method}: Hessian-vector product equals the finite difference of the gradient (double backward works)`, () => tidy(() => {
    const model = tinyOpt();
    const peft = PeftModel.create(model, method, options);
    const params = peft.trainableParams();
    // off the initial point (LoRA's B = 0 would hide the A–B coupling)
    noGrad(() => params.forEach((p, i) => p.copy_(p.add(tensor(det(p.numel, 60 + i).map((v) => 0.2 * v), p.shape, "float64").to(p.dtype)))));
    const ids = tensor([2, 5, 9, 13, 7, 21, 4, 11], [1, 8], "int64");
    const loss = () => causalLmLoss(model.forward(ids).logits, ids);
    const u = params.map((p, i) => tensor(det(p.numel, 80 + i), p.shape, "float64").to(p.dtype));
    const hu = hessianVectorProduct(params, [loss], u).flatMap((t) => t.toNumbers());
    const eps = 1e-3;
    const gradAt = (s: number) => {
      noGrad(() => params.forEach((p, i) => p.copy_(p.add(u[i], s))));
      const g = grad([loss()], params, { allowUnused: true }).flatMap((t, i) => (t ?? zeros(params[i].shape)).toNumbers());
      noGrad(() => params.forEach((p, i) => p.copy_(p.add(u[i], -s))));
      return g;
    };
    const plus = gradAt(eps);
    const minus = gradAt(-eps);
    const fd = plus.map((g, i) => (g - minus[i]) / (2 * eps));
    const scale = Math.sqrt(fd.reduce((s, x) => s + x * x, 0));
    const err = Math.sqrt(hu.reduce((s, x, i) => s + (x - fd[i]) ** 2, 0));
    assert.ok(scale > 0 && err <= 1e-3 * scale, `‖Hu − FD‖ = ${err}, ‖FD‖ = ${scale}`);
    peft.remove();
  }));
}

test("a loss that does not reach the parameters (checkpointing hides them) is an error, not a zero Hessian", () => tidy(() => {
  const model = tinyOpt();
  const peft = PeftModel.create(model, "random-mask", { density: 0.1, seed: 1 });
  model.gradientCheckpointing = true;
  const ids = tensor([2, 5, 9, 13], [1, 4], "int64");
  assert.throws(() => hessianTopEigenvalue(peft.trainableParams(), [() => causalLmLoss(model.forward(ids).logits, ids)], { maxIters: 3, tol: 1e-3, seed: 0 }),
    /does not reach the parameters .*activation checkpointing/);
  peft.remove();
}));

test("hessianNorm runs in eval mode on a seeded example set: deterministic with dropout configured, mode restored", () => {
  const dir = mkdtempSync(join(tmpdir(), "randmask-hessian-"));
  const data = parityTask(join(dir, "data"));
  const tok = BpeTokenizer.fromDir(join(sharedDir, "tokenizers", "opt"));
  const cfg = parseConfig({ model_type: "opt", vocab_size: 50272, hidden_size: 32, num_hidden_layers: 1, ffn_dim: 64,
    num_attention_heads: 2, max_position_embeddings: 64, dropout: 0.3, attention_dropout: 0.3 });
  const model = OPTForCausalLM.random(cfg, { seed: 1, std: 0.1 });
  const peft = PeftModel.create(model, "random-mask", { density: 0.02, seed: 2 });
  const task = getTask("jsonl", data);
  const train = loadTaskData(task, data, 0).train;
  model.training = true;
  const run = () => hessianNorm(peft, tok, task, train, { examples: 6, batchSize: 4, maxIters: 20, tol: 1e-3, seed: 0 });
  const a = run();
  // with checkpointing on, parameter gradients would bypass autograd.grad (a zero Hessian): it is switched off inside
  model.gradientCheckpointing = true;
  const b = run();
  assert.equal(model.training, true, "training mode restored");
  assert.equal(model.gradientCheckpointing, true, "checkpointing restored");
  assert.equal(a.eigenvalue, b.eigenvalue);
  assert.equal(a.examples, 6);
  assert.equal(a.trainable, peft.trainableCount());
  assert.ok(a.norm > 0 && Number.isFinite(a.norm));
  assert.ok(peft.trainableParams().every((p) => p.grad === null), "no gradients left behind");
  peft.remove();
  model.dispose();
});

test("randmask hessian CLI: at initialisation and for a saved adapter, JSON out; clear errors", () => {
  const cli = join(repoRoot, "dist", "src", "cli", "main.js");
  const dir = mkdtempSync(join(tmpdir(), "randmask-hessian-cli-"));
  const modelDir = tinyTextModel(join(dir, "model"));
  const data = parityTask(join(dir, "data"));
  const common = ["hessian", "--model", modelDir, "--task", "jsonl", "--data-dir", data, "--examples", "4", "--max-iters", "30", "--json", "--quiet"];
  const init = spawnSync(process.execPath, [cli, ...common, "--method", "random-mask", "--density", "0.01"], { encoding: "utf8" });
  assert.equal(init.status, 0, init.stderr);
  const row = JSON.parse(init.stdout);
  assert.equal(row.at, "initialisation");
  assert.equal(row.method, "random-mask");
  assert.ok(row.norm > 0 && row.iterations >= 2 && row.iterations <= 30);
  assert.equal(row.converged, row.relative_change < 1e-3);

  // a trained-looking adapter: nonzero values saved, then measured from disk
  const model = OPTForCausalLM.load(modelDir);
  const peft = PeftModel.create(model, "random-mask", { density: 0.01, seed: 0 });
  noGrad(() => peft.trainableParams().forEach((p) => p.copy_(p.add(0.05))));
  peft.save(join(dir, "adapter"));
  peft.remove();
  model.dispose();
  const trained = spawnSync(process.execPath, [cli, ...common, "--adapter", join(dir, "adapter")], { encoding: "utf8" });
  assert.equal(trained.status, 0, trained.stderr);
  const t = JSON.parse(trained.stdout);
  assert.equal(t.at, "adapter");
  assert.equal(t.trainable, row.trainable);
  assert.notEqual(t.eigenvalue, row.eigenvalue);

  const none = spawnSync(process.execPath, [cli, ...common], { encoding: "utf8" });
  assert.equal(none.status, 2);
  assert.match(none.stderr, /give --method M .* or --adapter DIR/);
  const mismatch = spawnSync(process.execPath, [cli, ...common, "--adapter", join(dir, "adapter"), "--method", "lora"], { encoding: "utf8" });
  assert.equal(mismatch.status, 2);
  assert.match(mismatch.stderr, /--method lora: the adapter .* is random-mask/);
  const extra = spawnSync(process.execPath, [cli, ...common, "--adapter", join(dir, "adapter"), "--density", "0.5"], { encoding: "utf8" });
  assert.equal(extra.status, 2);
  assert.match(extra.stderr, /method flags \(--density\) apply to a fresh method/);
  const badTol = spawnSync(process.execPath, [cli, ...common, "--method", "lora", "--tol", "0"], { encoding: "utf8" });
  assert.match(badTol.stderr, /--tol "0": expected a positive number/);
  // its --help offers text tasks only and no --eval-batch (nothing is evaluated): both are usage errors, not a late exit 1 or a no-op
  const image = spawnSync(process.execPath, [cli, "hessian", "--model", modelDir, "--task", "cifar10", "--data-dir", data, "--method", "lora"], { encoding: "utf8" });
  assert.equal(image.status, 2);
  assert.match(image.stderr, /--task "cifar10": expected one of sst2, .*jsonl$/m);
  const evalBatch = spawnSync(process.execPath, [cli, ...common, "--method", "lora", "--eval-batch", "4"], { encoding: "utf8" });
  assert.equal(evalBatch.status, 2);
  assert.match(evalBatch.stderr, /Unknown option '--eval-batch'/);
});
