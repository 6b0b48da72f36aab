// Every differentiable op of the tensor API against float64 finite differences.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  Tensor, tensor, cat, stack, where, tidy, grad, noGrad,
  linear, baddbmm, layerNorm, embedding, crossEntropy, dropout, frozenLinear, reluMask, cacheStats, emptyCache, zeros,
} from "../src/engine/index.js";
import { det, gradCheck } from "./helpers.js";

const inp = (shape: number[], seed: number, shift = 0) => ({
  shape, data: Array.from(det(shape.reduce((a, b) => a * b, 1), seed), (v) => v + shift),
});
const idx = (vals: number[], shape = [vals.length]) => tensor(vals, shape, "int64");

type Case = [string, (x: Tensor[]) => Tensor, ReturnType<typeof inp>[], boolean[]?];

const cases: Case[] = [
  ["add", ([a, b]) => a.add(b, 0.5), [inp([3, 4], 1), inp([3, 4], 2)]],
  ["add broadcast", ([a, b]) => a.add(b), [inp([3, 4], 1), inp([4], 2)]],
  ["sub", ([a, b]) => a.sub(b), [inp([3, 4], 1), inp([3, 4], 2)]],
  ["mul", ([a, b]) => a.mul(b), [inp([3, 4], 1), inp([3, 4], 2)]],
  ["div", ([a, b]) => a.div(b), [inp([3, 4], 1), inp([3, 4], 2, 3)]],
  ["pow scalar", ([a]) => a.pow(3), [inp([5], 1)]],
  ["pow tensor", ([a, b]) => a.pow(b), [inp([5], 1, 2), inp([5], 2)]],
  ["maximum", ([a, b]) => a.maximum(b), [inp([6], 1), inp([6], 2)]],
  ["minimum", ([a, b]) => a.minimum(b), [inp([6], 1), inp([6], 2)]],
  ["neg", ([a]) => a.neg(), [inp([4], 1)]],
  ["exp", ([a]) => a.exp(), [inp([4], 1)]],
  ["log", ([a]) => a.log(), [inp([4], 1, 2)]],
  ["sqrt", ([a]) => a.sqrt(), [inp([4], 1, 2)]],
  ["rsqrt", ([a]) => a.rsqrt(), [inp([4], 1, 2)]],
  ["abs", ([a]) => a.abs(), [inp([4], 3)]],
  ["tanh", ([a]) => a.tanh(), [inp([4], 1)]],
  ["sigmoid", ([a]) => a.sigmoid(), [inp([4], 1)]],
  ["relu", ([a]) => a.relu(), [inp([6], 5)]],
  ["gelu", ([a]) => a.gelu(), [inp([6], 1)]],
  ["gelu tanh", ([a]) => a.gelu(true), [inp([6], 1)]],
  ["clamp", ([a]) => a.clamp(-0.5, 0.5), [inp([8], 7)]],
  ["maskedFill", ([a]) => a.maskedFill(tensor([1, 0, 1, 0], [4], "bool"), -3), [inp([4], 1)]],
  ["where", ([a, b]) => where(tensor([1, 0, 0, 1], [4], "bool"), a, b), [inp([4], 1), inp([4], 2)]],
  ["sum all", ([a]) => a.sum(), [inp([3, 4], 1)]],
  ["sum dim", ([a]) => a.sum(1, true), [inp([3, 4], 1)]],
  ["mean", ([a]) => a.mean([0, 1]), [inp([3, 4], 1)]],
  ["amax", ([a]) => a.amax(1), [inp([3, 4], 1)]],
  ["logsumexp", ([a]) => a.logsumexp(-1), [inp([3, 4], 1)]],
  ["norm", ([a]) => a.norm(), [inp([3, 4], 1)]],
  ["cumsum", ([a]) => a.cumsum(1), [inp([3, 4], 1)]],
  ["softmax", ([a]) => a.softmax(-1), [inp([3, 4], 1)]],
  ["logSoftmax", ([a]) => a.logSoftmax(-1), [inp([3, 4], 1)]],
  ["matmul", ([a, b]) => a.matmul(b), [inp([2, 3, 4], 1), inp([4, 5], 2)]],
  ["bmm", ([a, b]) => a.bmm(b), [inp([2, 3, 4], 1), inp([2, 4, 2], 2)]],
  ["baddbmm", ([c, a, b]) => baddbmm(c, a, b, 0.5, 2), [inp([2, 3, 2], 3), inp([2, 3, 4], 1), inp([2, 4, 2], 2)]],
  ["linear", ([x, w, b]) => linear(x, w, b), [inp([2, 3, 4], 1), inp([5, 4], 2), inp([5], 3)]],
  ["frozenLinear (x and bias)", ([x, b]) => frozenLinear(x, tensor(det(20, 7), [5, 4], "float64"), b), [inp([2, 3, 4], 1), inp([5], 3)]],
  ["reluMask", ([a]) => reluMask(a).mul(reluMask(a)), [inp([8], 5)]],
  ["layerNorm", ([x, w, b]) => layerNorm(x, [4], w, b, 1e-5), [inp([3, 4], 1), inp([4], 2, 1), inp([4], 3)]],
  ["embedding", ([w]) => embedding(w, idx([2, 0, 2, 1], [2, 2])), [inp([3, 4], 1)]],
  ["indexSelect", ([a]) => a.indexSelect(1, idx([3, 0, 3])), [inp([2, 4], 1)]],
  ["gather", ([a]) => a.gather(1, idx([0, 2, 1, 1], [2, 2])), [inp([2, 3], 1)]],
  ["scatterAdd", ([a, s]) => a.scatterAdd(1, idx([0, 2, 2, 1], [2, 2]), s), [inp([2, 3], 1), inp([2, 2], 2)]],
  ["indexAdd", ([a, s]) => a.indexAdd(0, idx([2, 0]), s), [inp([3, 2], 1), inp([2, 2], 2)]],
  ["indexPut", ([a, v]) => a.indexPut([idx([0, 2])], v, true), [inp([3], 1), inp([2], 2)]],
  ["reshape+transpose", ([a]) => a.reshape([4, 3]).transpose(0, 1).mul(2), [inp([3, 4], 1)]],
  ["permute", ([a]) => a.permute([2, 0, 1]).contiguous(), [inp([2, 3, 2], 1)]],
  ["expand", ([a]) => a.expand([3, 4]).mul(1), [inp([1, 4], 1)]],
  ["unsqueeze/squeeze", ([a]) => a.unsqueeze(0).squeeze(0).mul(3), [inp([4], 1)]],
  ["narrow", ([a]) => a.narrow(1, 1, 2), [inp([3, 4], 1)]],
  ["select", ([a]) => a.select(0, 1), [inp([3, 4], 1)]],
  ["cat", ([a, b]) => cat([a, b], 1), [inp([2, 2], 1), inp([2, 3], 2)]],
  ["stack", ([a, b]) => stack([a, b], 0), [inp([2, 2], 1), inp([2, 2], 2)]],
  ["tril/triu", ([a]) => a.tril().add(a.triu(1)), [inp([3, 3], 1)]],
  ["crossEntropy", ([l]) => crossEntropy(l, idx([1, -100, 0])), [inp([3, 4], 1)]],
  ["crossEntropy sum", ([l]) => crossEntropy(l, idx([1, 3, 0]), { reduction: "sum" }), [inp([3, 4], 1)]],
  ["dropout eval is identity", ([a]) => dropout(a, 0.5, false).mul(1), [inp([4], 1)]],
  ["to float64 (identity cast)", ([a]) => a.to("float64").mul(2), [inp([4], 1)]],
];

for (const [name, f, inputs, differentiable] of cases) {
  test(`gradient of ${name} matches finite differences`, () => gradCheck(name, f, inputs, { differentiable }));
}

test("dropout in training zeroes about p and rescales the rest by 1/(1-p)", () => tidy(() => {
  const x = tensor(new Float64Array(10000).fill(1), [10000], "float64");
  const y = dropout(x, 0.25, true).toArray() as Float64Array;
  const zeros = y.filter((v) => v === 0).length;
  assert.ok(Math.abs(zeros / 10000 - 0.25) < 0.03, `zero fraction ${zeros / 10000}`);
  assert.ok(y.every((v) => v === 0 || Math.abs(v - 4 / 3) < 1e-12));
}));

test("double backward gives the Hessian-vector product", () => tidy(() => {
  // f(x) = Σ x³ → H = diag(6x), so Hv = 6·x·v
  const xv = det(5, 3);
  const vv = det(5, 4);
  const x = tensor(xv, [5], "float64").setRequiresGrad(true);
  const v = tensor(vv, [5], "float64");
  const [g] = grad([x.pow(3).sum()], [x], { createGraph: true });
  const [hv] = grad([g!.mul(v).sum()], [x]);
  const got = hv!.toArray() as Float64Array;
  for (let i = 0; i < 5; i++) assert.ok(Math.abs(got[i] - 6 * xv[i] * vv[i]) < 1e-12);
}));

test("noGrad stops recording and restores the mode", () => tidy(() => {
  const x = tensor([1, 2], [2], "float64").setRequiresGrad(true);
  const y = noGrad(() => x.mul(2));
  assert.equal(y.requiresGrad, false);
  assert.equal(x.mul(2).requiresGrad, true);
}));

test("frozenLinear refuses a trainable weight; reluMask matches relu", () => tidy(() => {
  const w = tensor([1, 2, 3, 4], [2, 2], "float64").setRequiresGrad(true);
  assert.throws(() => frozenLinear(tensor([1, 1], [1, 2], "float64"), w), /weight must be frozen/);
  const x = tensor(det(16, 3), [16], "float64");
  assert.ok(reluMask(x).equal(x.relu()));
}));

test("the caching allocator reuses freed blocks and can be emptied", () => {
  tidy(() => { zeros([1 << 20]); });
  const before = cacheStats();
  assert.ok(before.cachedBytes >= 4 << 20, "a freed 4 MiB tensor should stay cached");
  tidy(() => { zeros([1 << 20]); });
  assert.equal(cacheStats().cachedBytes, before.cachedBytes, "the same size should be served from the cache");
  assert.ok(emptyCache() >= 4 << 20);
  assert.equal(cacheStats().cachedBytes, 0);
});
