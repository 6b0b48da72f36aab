// Sampling semantics on hand-made logits: which tokens temperature, top-k and
// top-p allow, and their renormalised probabilities (worked out by hand here).
import { test } from "node:test";
import assert from "node:assert/strict";
import { drawFrom, samplingDistribution } from "../src/models/sampling.js";
import { Xoshiro128 } from "../src/peft/rng.js";

// probabilities 0.4, 0.3, 0.15, 0.1, 0.05 at temperature 1, listed out of order
const p = [0.15, 0.4, 0.05, 0.3, 0.1];
const logits = p.map(Math.log);

function assertDist(got: { ids: number[]; probs: number[] }, ids: number[], probs: number[]): void {
  assert.deepEqual(got.ids, ids);
  assert.equal(got.probs.length, probs.length);
  got.probs.forEach((x, i) => assert.ok(Math.abs(x - probs[i]) < 1e-12, `p[${ids[i]}] ${x} vs ${probs[i]}`));
}

test("temperature 1 keeps every token with its softmax probability", () => {
  assertDist(samplingDistribution(logits, { temperature: 1, topK: 0, topP: 1 }), [0, 1, 2, 3, 4], p);
});

test("temperature T divides the logits: probabilities ∝ p^(1/T)", () => {
  const z = Math.sqrt(0.4) + Math.sqrt(0.3) + Math.sqrt(0.15) + Math.sqrt(0.1) + Math.sqrt(0.05);
  assertDist(samplingDistribution(logits, { temperature: 2, topK: 0, topP: 1 }), [0, 1, 2, 3, 4],
    [Math.sqrt(0.15) / z, Math.sqrt(0.4) / z, Math.sqrt(0.05) / z, Math.sqrt(0.3) / z, Math.sqrt(0.1) / z]);
  // a low temperature sharpens: 0.4^2 / (0.4^2 + 0.3^2 + ...) at T = 0.5
  const z2 = 0.16 + 0.09 + 0.0225 + 0.01 + 0.0025;
  assert.ok(Math.abs(samplingDistribution(logits, { temperature: 0.5, topK: 0, topP: 1 }).probs[1] - 0.16 / z2) < 1e-12);
});

test("top-k keeps the k most likely (ties with the k-th included) and renormalises", () => {
  assertDist(samplingDistribution(logits, { temperature: 1, topK: 2, topP: 1 }), [1, 3], [0.4 / 0.7, 0.3 / 0.7]);
  assertDist(samplingDistribution(logits, { temperature: 1, topK: 1, topP: 1 }), [1], [1]);
  assertDist(samplingDistribution(logits, { temperature: 1, topK: 99, topP: 1 }), [0, 1, 2, 3, 4], p);
  // two tokens tie for the largest logit: top-1 keeps both, at 1/2 each
  assertDist(samplingDistribution([1, 2, 2, 0], { temperature: 1, topK: 1, topP: 1 }), [1, 2], [0.5, 0.5]);
});

test("top-p keeps a token while the mass ranked above it is below p", () => {
  // 0.4 < 0.5, so the second token stays; 0.7 ≥ 0.5 drops the third
  assertDist(samplingDistribution(logits, { temperature: 1, topK: 0, topP: 0.5 }), [1, 3], [0.4 / 0.7, 0.3 / 0.7]);
  assertDist(samplingDistribution(logits, { temperature: 1, topK: 0, topP: 0.75 }), [0, 1, 3], [0.15 / 0.85, 0.4 / 0.85, 0.3 / 0.85]);
  assertDist(samplingDistribution(logits, { temperature: 1, topK: 0, topP: 0.3 }), [1], [1]);
  // ties ranked by id: of four equal tokens (1/4 each), top-p 0.3 keeps the lowest two ids (0 < 0.3, 0.25 < 0.3)
  assertDist(samplingDistribution([0, 5, 5, 5, 5], { temperature: 1, topK: 0, topP: 0.3 }), [1, 2], [0.5, 0.5]);
});

test("temperature, then top-k, then top-p (Hugging Face's order)", () => {
  // T = 2: q ∝ sqrt(p); top-3 renormalised; top-p 0.6 then keeps two (the first has ≈ 0.40 < 0.6, the first two ≈ 0.75)
  const s = [Math.sqrt(0.4), Math.sqrt(0.3), Math.sqrt(0.15)];
  const top3 = s.map((x) => x / (s[0] + s[1] + s[2]));
  assert.ok(top3[0] < 0.6 && top3[0] + top3[1] >= 0.6);
  const d = samplingDistribution(logits, { temperature: 2, topK: 3, topP: 0.6 });
  assertDist(d, [1, 3], [s[0] / (s[0] + s[1]), s[1] / (s[0] + s[1])]);
});

test("draws follow the distribution and never leave the allowed set", () => {
  const dist = samplingDistribution(logits, { temperature: 1, topK: 0, topP: 0.75 });
  const rng = new Xoshiro128(7, "test");
  const counts = new Map<number, number>();
  const n = 20000;
  for (let i = 0; i < n; i++) { const t = drawFrom(dist, rng); counts.set(t, (counts.get(t) ?? 0) + 1); }
  assert.deepEqual([...counts.keys()].sort(), [0, 1, 3]);
  dist.ids.forEach((id, i) => assert.ok(Math.abs(counts.get(id)! / n - dist.probs[i]) < 0.015, `token ${id}: ${counts.get(id)! / n} vs ${dist.probs[i]}`));
});

test("options outside their domain are refused by name", () => {
  assert.throws(() => samplingDistribution(logits, { temperature: 0, topK: 0, topP: 1 }), /temperature must be > 0/);
  assert.throws(() => samplingDistribution(logits, { temperature: 1, topK: -1, topP: 1 }), /topK must be an integer ≥ 0/);
  assert.throws(() => samplingDistribution(logits, { temperature: 1, topK: 0, topP: 0 }), /topP must be in \(0, 1\]/);
});
