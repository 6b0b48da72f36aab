// The seeded generator's shuffle: a uniform permutation, and the exact Fisher–Yates order every seeded
// data order (training batches, samples, packing, Hessian examples) was drawn in before it was shared.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Xoshiro128 } from "../src/peft/rng.js";

test("shuffle is Fisher–Yates from the last element down with below(i + 1), in place", () => {
  const a = Array.from({ length: 50 }, (_, i) => i);
  const twin = new Xoshiro128(11, "order:1");
  const expected = a.slice();
  for (let i = expected.length - 1; i > 0; i--) {
    const j = twin.below(i + 1);
    [expected[i], expected[j]] = [expected[j], expected[i]];
  }
  const out = new Xoshiro128(11, "order:1").shuffle(a);
  assert.equal(out, a, "in place");
  assert.deepEqual(out, expected);
  assert.notDeepEqual(out, Array.from({ length: 50 }, (_, i) => i));
  assert.deepEqual([new Xoshiro128(1).shuffle([]), new Xoshiro128(1).shuffle(["x"])], [[], ["x"]]);
});

test("shuffle draws each of the 3! orders equally often (χ² over 60,000 shuffles)", () => {
  const rng = new Xoshiro128(5, "uniform");
  const counts = new Map<string, number>();
  const n = 60000;
  for (let k = 0; k < n; k++) {
    const key = rng.shuffle([0, 1, 2]).join("");
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  assert.equal(counts.size, 6);
  const chi2 = [...counts.values()].reduce((s, c) => s + (c - n / 6) ** 2 / (n / 6), 0);
  assert.ok(chi2 < 20.5, `χ² = ${chi2.toFixed(2)} with 5 degrees of freedom (p = 0.001 at 20.5)`);
});
