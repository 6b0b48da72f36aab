// libtorch errors become catchable JS errors carrying libtorch's message.
import { test } from "node:test";
import assert from "node:assert/strict";
import { tensor, zeros, tidy, linear, embedding, crossEntropy, AdamW } from "../src/engine/index.js";

test("shape mismatch in matmul is a JS error with libtorch's message", () => tidy(() => {
  assert.throws(() => zeros([3, 4]).matmul(zeros([3, 4])), /shapes cannot be multiplied \(3x4 and 3x4\)/);
}));

test("out-of-range embedding index is a JS error", () => tidy(() => {
  assert.throws(() => embedding(zeros([5, 2]), tensor([7], [1], "int64")), /index out of range|out of range/i);
}));

test("dtype mismatch is a JS error", () => tidy(() => {
  assert.throws(() => linear(zeros([2, 3], "float64"), zeros([4, 3], "float32")), /dtype|Double|Float/);
}));

test("bad arguments are rejected with what was expected", () => tidy(() => {
  assert.throws(() => tensor([1, 2, 3], [2, 2]), /12 bytes given, shape and dtype need 16/);
  assert.throws(() => zeros([2], "complex" as never), /unknown dtype 'complex'/);
  assert.throws(() => crossEntropy(zeros([2, 3]), tensor([0, 5], [2], "int64")), /Target 5 is out of bounds|out of bounds/);
  assert.throws(() => zeros([2]).item(), /2 elements, expected 1/);
}));

test("the process keeps working after errors", () => tidy(() => {
  for (let i = 0; i < 3; i++) assert.throws(() => zeros([2, 2]).matmul(zeros([3, 3])));
  const p = zeros([2]).setRequiresGrad(true);
  const opt = new AdamW([p], { lr: 0.1 });
  p.sub(tensor([1, 1], [2])).pow(2).sum().backward();
  opt.step();
  assert.ok(p.toNumbers().every((v) => Math.abs(v - 0.1) < 1e-6));
}));

test("round trip through every dtype keeps values", () => tidy(() => {
  const vals = [0, 1, -2, 3];
  for (const dtype of ["float32", "float64", "bfloat16", "float16", "int64", "int32"] as const) {
    assert.deepEqual(tensor(vals, [4], dtype).toNumbers(), vals, dtype);
  }
  assert.deepEqual(tensor([1, 0, 1], [3], "bool").toNumbers(), [1, 0, 1]);
  const bf = tensor([1.5, -2], [2], "bfloat16");
  assert.deepEqual(Array.from(bf.toArray() as Uint16Array), [0x3fc0, 0xc000]);
  assert.deepEqual(tensor(new Uint16Array([0x3fc0]), [1], "bfloat16").toNumbers(), [1.5]);
}));
