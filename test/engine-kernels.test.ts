// The addon's own CPU kernels and precision paths against libtorch's reference
// ops, at every float width, on the values where bit tricks go wrong
// (±0, denormals, ±inf, NaN).
import { test } from "node:test";
import assert from "node:assert/strict";
import { tensor, tidy, grad, layerNorm, reluMask, type DType, type Tensor } from "../src/engine/index.js";
import { det } from "./helpers.js";

const floats = (t: Tensor) => Array.from(t.to("float64").toArray() as Float64Array);
const special = [-Infinity, -2.5, -1e-39, -0, 0, 1e-39, 1.5, 3e38, Infinity, NaN, 0.75, -0.25];
const widths: DType[] = ["float64", "float32", "bfloat16"];

for (const dtype of widths) {
  test(`reluMask at ${dtype} on ±0, denormals, ±inf and NaN: relu's output and relu's gradient`, () => tidy(() => {
    const x = tensor(special, [special.length], "float64").to(dtype);
    const g = tensor(special.map((_, i) => i + 1), [special.length], "float64").to(dtype);
    const ours = x.clone().setRequiresGrad(true);
    const ref = x.clone().setRequiresGrad(true);
    const y = reluMask(ours);
    const yRef = ref.relu();
    assert.deepEqual(floats(y).map((v) => Object.is(v, -0) ? 0 : v), floats(yRef).map((v) => Object.is(v, -0) ? 0 : v));
    y.backward(g);
    yRef.backward(g);
    const got = floats(ours.grad!), want = floats(ref.grad!);
    assert.deepEqual(got, want);
    // relu passes the gradient where !(x <= 0): the positive denormal (bfloat16 keeps 1e-39 as one), 1.5,
    // 3e38, +inf, 0.75, and NaN
    assert.deepEqual(got.map((v) => v !== 0), special.map((v) => !(v <= 0)));
  }));
}

test("reluMask's backward is differentiable (double backward, as Hessian-vector products need)", () => tidy(() => {
  // f(x) = Σ relu(x)² → H = diag(2·[x > 0]), so Hv = 2·v·[x > 0]
  const xv = det(8, 5), vv = det(8, 6);
  const x = tensor(xv, [8], "float64").setRequiresGrad(true);
  const [g] = grad([reluMask(x).pow(2).sum()], [x], { createGraph: true });
  const [hv] = grad([g!.mul(tensor(vv, [8], "float64")).sum()], [x]);
  const got = hv!.toArray() as Float64Array;
  for (let i = 0; i < 8; i++) assert.ok(Math.abs(got[i] - (xv[i] > 0 ? 2 * vv[i] : 0)) < 1e-12, `entry ${i}`);
}));

test("layerNorm in bfloat16 is float32's layer norm rounded once (values and input gradient)", () => tidy(() => {
  const d = 64;
  const xs = Array.from(det(4 * d, 7), (v, i) => 3 * v + (i % d) * 0.05);
  const w = tensor(Array.from(det(d, 8), (v) => 1 + v), [d], "float32");
  const b = tensor(Array.from(det(d, 9)), [d], "float32");
  const gv = tensor(Array.from(det(4 * d, 10)), [4, d], "float32");
  const run = (dtype: DType) => {
    const x = tensor(xs, [4, d], "float32").to(dtype).setRequiresGrad(true);
    const y = layerNorm(x, [d], w.to(dtype), b.to(dtype));
    y.backward(gv.to(dtype));
    return { y: floats(y), dx: floats(x.grad!) };
  };
  const low = run("bfloat16");
  // The reference sees the same (bf16-rounded) inputs, in float32.
  const x32 = tensor(xs, [4, d], "float32").to("bfloat16").to("float32").setRequiresGrad(true);
  const y32 = layerNorm(x32, [d], w.to("bfloat16").to("float32"), b.to("bfloat16").to("float32"));
  y32.backward(gv.to("bfloat16").to("float32"));
  const ref = { y: floats(y32), dx: floats(x32.grad!) };
  const ulp = 2 ** -7;  // bfloat16's relative spacing
  ref.y.forEach((v, i) => assert.ok(Math.abs(low.y[i] - v) <= ulp * Math.abs(v) + 1e-6, `y[${i}] ${low.y[i]} vs ${v}`));
  const scale = Math.max(...ref.dx.map(Math.abs));
  ref.dx.forEach((v, i) => assert.ok(Math.abs(low.dx[i] - v) <= 4 * ulp * scale, `dx[${i}] ${low.dx[i]} vs ${v}`));
}));
