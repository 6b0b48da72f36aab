// Sampling the next token: temperature, then top-k, then top-p (nucleus), in
// the order Hugging Face's generate() applies its warpers
// (transformers/generation/logits_process.py: TemperatureLogitsWarper,
// TopKLogitsWarper, TopPLogitsWarper), then one draw from randmask's own
// generator, so a seed gives the same tokens on every platform. All
// arithmetic on the JS side in float64.
import type { Tensor } from "../engine/index.js";
import { Xoshiro128 } from "../peft/rng.js";

export interface SamplingOptions {
  /** Divides the logits; > 0 (0 means greedy decoding, which never samples). */
  temperature: number;
  /** Keep the k most likely tokens (ties with the k-th kept too); 0 keeps all. */
  topK: number;
  /** Keep the most likely tokens until their probability reaches topP; 1 keeps all. In (0, 1]. */
  topP: number;
}

/** Throws a RangeError naming the option when a value is outside its domain. */
export function checkSampling(o: SamplingOptions): void {
  if (!(Number.isFinite(o.temperature) && o.temperature > 0)) throw new RangeError(`temperature must be > 0 to sample, got ${o.temperature}`);
  if (!(Number.isSafeInteger(o.topK) && o.topK >= 0)) throw new RangeError(`topK must be an integer ≥ 0, got ${o.topK}`);
  if (!(o.topP > 0 && o.topP <= 1)) throw new RangeError(`topP must be in (0, 1], got ${o.topP}`);
}

/**
 * The distribution one row is sampled from: the kept token ids in increasing
 * order and their probabilities, renormalised to sum 1. `logits`: one row
 * [vocab]. Top-k keeps every token whose scaled logit is ≥ the k-th largest
 * (HF removes `scores < topk(scores)[-1]`, so ties with the k-th stay). Top-p
 * ranks tokens by probability (ties: lower id first) and keeps a token when
 * the probability ranked above it is < topP (HF removes ascending-sorted
 * tokens whose cumulative probability is ≤ 1 − topP).
 */
export function samplingDistribution(logits: ArrayLike<number>, o: SamplingOptions): { ids: number[]; probs: number[] } {
  checkSampling(o);
  const v = logits.length;
  const scaled = new Float64Array(v);
  for (let i = 0; i < v; i++) scaled[i] = logits[i] / o.temperature;
  let max = -Infinity;
  for (let i = 0; i < v; i++) if (scaled[i] > max) max = scaled[i];
  let cutoff = -Infinity;
  let tiesAllowed = Infinity;
  if ((o.topK > 0 && o.topK < v) || o.topP < 1) {
    const desc = scaled.slice().sort().reverse(); // native sort: no per-token comparator over the vocabulary
    if (o.topK > 0 && o.topK < v) cutoff = desc[o.topK - 1];
    let kept = 0;
    while (kept < v && desc[kept] >= cutoff) kept++;
    // top-p: how many ranks survive, hence the lowest value kept and how many of its ties
    if (o.topP < 1) {
      let z = 0;
      for (let i = 0; i < kept; i++) z += Math.exp(desc[i] - max);
      let before = 0;
      let n = 0;
      while (n < kept && before < o.topP) before += Math.exp(desc[n++] - max) / z;
      cutoff = desc[n - 1];
      let above = 0;
      while (desc[above] > cutoff) above++;
      tiesAllowed = n - above;
    }
  }
  const ids: number[] = [];
  const weights: number[] = [];
  for (let i = 0; i < v; i++) {
    if (scaled[i] < cutoff) continue;
    if (scaled[i] === cutoff && tiesAllowed-- <= 0) continue;
    ids.push(i);
    weights.push(Math.exp(scaled[i] - max));
  }
  const total = weights.reduce((a, b) => a + b, 0);
  return { ids, probs: weights.map((w) => w / total) };
}

/** One draw from a distribution: the first id (in the given order) whose cumulative probability exceeds u ~ U[0, 1). */
export function drawFrom(dist: { ids: number[]; probs: number[] }, rng: Xoshiro128): number {
  const u = rng.nextFloat();
  let cum = 0;
  for (let i = 0; i < dist.ids.length; i++) {
    cum += dist.probs[i];
    if (u < cum) return dist.ids[i];
  }
  return dist.ids[dist.ids.length - 1]; // u within rounding of 1
}

/**
 * A `chooseNext` for greedyGenerate: samples each row of logits [batch, vocab]
 * with that row's own generator (so a row's tokens do not depend on the other
 * rows in its batch).
 */
export function sampler(o: SamplingOptions, rngs: Xoshiro128[]): (logits: Tensor) => number[] {
  checkSampling(o);
  return (logits) => {
    const [batch, vocab] = logits.shape;
    if (batch !== rngs.length) throw new Error(`sampler: ${rngs.length} generators for a batch of ${batch}`);
    const data = logits.to("float32").toArray() as Float32Array;
    return rngs.map((rng, b) => drawFrom(samplingDistribution(data.subarray(b * vocab, (b + 1) * vocab), o), rng));
  };
}
