// The Random Masking kernel against a dense masked reference and finite differences.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Tensor, tensor, zeros, tidy, grad, linear, sparseDeltaLinear } from "../src/engine/index.js";
import { det, gradCheck, maxAbsDiff } from "./helpers.js";

/** Distinct sorted flat indices, each position kept with probability p (test-only generator). */
function bernoulliIndices(n: number, p: number, seed: number): number[] {
  const u = det(n, seed);
  const out: number[] = [];
  for (let i = 0; i < n; i++) if ((u[i] + 1) / 2 < p) out.push(i);
  return out;
}

function relErr(a: Float64Array, b: Float64Array): number {
  let scale = 0;
  for (const v of b) scale = Math.max(scale, Math.abs(v));
  return maxAbsDiff(a, b) / Math.max(scale, 1e-30);
}

function compare(out: number, inF: number, tokens: number, density: number, seed: number): void {
  tidy(() => {
    const idxList = bernoulliIndices(out * inF, density, seed);
    const nnz = idxList.length;
    const w = tensor(det(out * inF, seed + 1), [out, inF], "float64");
    const b = tensor(det(out, seed + 2), [out], "float64");
    const xData = det(tokens * inF, seed + 3);
    const vData = det(nnz, seed + 4);
    const gData = det(tokens * out, seed + 5);
    const indices = tensor(idxList, [nnz], "int64");

    const x1 = tensor(xData, [tokens, inF], "float64").setRequiresGrad(true);
    const v1 = tensor(vData, [nnz], "float64").setRequiresGrad(true);
    const y1 = sparseDeltaLinear(x1, w, b, indices, v1);
    const g = tensor(gData, [tokens, out], "float64");
    const [dx1, dv1] = grad([y1], [x1, v1], { gradOutputs: [g] });

    // Dense reference: S scattered into a W-sized matrix, differentiable through indexPut.
    const x2 = tensor(xData, [tokens, inF], "float64").setRequiresGrad(true);
    const v2 = tensor(vData, [nnz], "float64").setRequiresGrad(true);
    const s = zeros([out * inF], "float64").indexPut([indices], v2).reshape([out, inF]);
    const y2 = linear(x2, w.add(s), b);
    const [dx2, dv2] = grad([y2], [x2, v2], { gradOutputs: [g] });

    const tag = `${out}x${inF} T=${tokens} density=${density} nnz=${nnz}`;
    assert.ok(relErr(y1.toArray() as Float64Array, y2.toArray() as Float64Array) < 1e-6, `forward ${tag}`);
    assert.ok(relErr(dx1!.toArray() as Float64Array, dx2!.toArray() as Float64Array) < 1e-6, `dX ${tag}`);
    if (nnz > 0) assert.ok(relErr(dv1!.toArray() as Float64Array, dv2!.toArray() as Float64Array) < 1e-6, `dValues ${tag}`);
    else assert.equal(dv1!.numel, 0);
  });
}

for (const density of [1e-5, 1e-4, 1e-3, 1e-2, 1e-1]) {
  test(`sparse-delta linear equals dense masked reference at density ${density} (gathered-column layout)`, () =>
    compare(512, 384, 8, density, 11));
  test(`sparse-delta linear equals dense masked reference at density ${density} (merged-weight layout)`, () =>
    compare(96, 64, 700, density * 100 > 1 ? 0.3 : density * 100, 12));
}

test("sparse-delta linear with an empty mask is the plain linear layer", () => compare(64, 32, 5, 0, 13));

test("sparse-delta linear handles 3-D inputs and no bias", () => tidy(() => {
  const w = tensor(det(12, 1), [3, 4], "float64");
  const x = tensor(det(2 * 5 * 4, 2), [2, 5, 4], "float64");
  const idx = tensor([1, 6, 11], [3], "int64");
  const vals = tensor([0.5, -1, 2], [3], "float64");
  const y = sparseDeltaLinear(x, w, null, idx, vals);
  assert.deepEqual(y.shape, [2, 5, 3]);
  const dense = w.add(zeros([12], "float64").indexPut([idx], vals).reshape([3, 4]));
  assert.ok(y.allclose(linear(x, dense), 1e-12, 1e-12));
}));

test("sparse-delta linear gradients match finite differences (x, values, bias)", () => {
  const idx = [0, 5, 7, 10];
  gradCheck("sparseDeltaLinear", ([x, v, b]: Tensor[]) =>
    sparseDeltaLinear(x, tensor(det(12, 9), [3, 4], "float64"), b, tensor(idx, [4], "int64"), v),
  [{ data: det(8, 1), shape: [2, 4] }, { data: det(4, 2), shape: [4] }, { data: det(3, 3), shape: [3] }]);
});

test("sparse-delta linear supports double backward (Hessian-vector products in values)", () => tidy(() => {
  // L = Σ (y)² is quadratic in v, so H·u computed by autograd must equal
  // the finite difference of the gradient along u.
  const w = tensor(det(20, 1), [4, 5], "float64");
  const x = tensor(det(15, 2), [3, 5], "float64");
  const idx = tensor([2, 7, 13, 19], [4], "int64");
  const u = tensor(det(4, 3), [4], "float64");
  const loss = (v: Tensor) => sparseDeltaLinear(x, w, null, idx, v).pow(2).sum();
  const v = tensor(det(4, 4), [4], "float64").setRequiresGrad(true);
  const [g] = grad([loss(v)], [v], { createGraph: true });
  const [hu] = grad([g!.mul(u).sum()], [v]);
  const eps = 1e-5;
  const gradAt = (vals: Tensor) => {
    const vv = vals.detach().setRequiresGrad(true);
    return grad([loss(vv)], [vv])[0]!;
  };
  const fd = gradAt(v.add(u, eps)).sub(gradAt(v.add(u, -eps))).div(2 * eps);
  assert.ok(hu!.allclose(fd, 1e-6, 1e-8));
}));

test("sparse-delta linear rejects bad input with libtorch-free messages", () => tidy(() => {
  const w = zeros([3, 4], "float32");
  const x = zeros([2, 4], "float32");
  const idx = tensor([1, 2], [2], "int64");
  const v = zeros([2], "float32");
  assert.throws(() => sparseDeltaLinear(zeros([2, 5]), w, null, idx, v), /last dimension 5 != weight's in_features 4/);
  assert.throws(() => sparseDeltaLinear(x, w, null, tensor([1, 12], [2], "int64"), v), /indices must lie in \[0, 12\)/);
  assert.throws(() => sparseDeltaLinear(x, w, null, tensor([1, 2], [2], "int32"), v), /1-D int64/);
  assert.throws(() => sparseDeltaLinear(x, w, null, idx, zeros([3])), /one value per index/);
  assert.throws(() => sparseDeltaLinear(x, w, null, idx, zeros([2], "float64")), /share a dtype/);
  const trainable = zeros([3, 4]).setRequiresGrad(true);
  assert.throws(() => sparseDeltaLinear(x, trainable, null, idx, v), /weight must be frozen/);
  // and the process keeps working
  assert.deepEqual(sparseDeltaLinear(x, w, null, idx, v).shape, [2, 3]);
}));
