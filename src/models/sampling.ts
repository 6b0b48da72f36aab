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
 * The distribution one row is sampled from: the kept token ids, most likely
 * first (ties: lower id first), and their probabilities renormalised to sum 1.
 * `logits`: one row [vocab]. Top-k keeps every token whose scaled logit is ≥
 * the k-th largest (as `scores < topk(scores)[-1]` removes in HF); top-p keeps
 * a token when the probability of the tokens ranked above it is < topP (HF
 * removes ascending-sorted tokens whose cumulative probability ≤ 1 − topP).
 */
export function samplingDistribution(logits: ArrayLike<number>, o: SamplingOptions): { ids: number[]; probs: number[] } {
  checkSampling(o);
  const v = logits.length;
  const order = Array.from({ length: v }, (_, i) => i).sort((a, b) => logits[b] - logits[a] || a - b);
  let kept = order.length;
  if (o.topK > 0 && o.topK < v) {
    const kth = logits[order[o.topK - 1]];
    kept = o.topK;
    while (kept < v && logits[order[kept]] >= kth) kept++;
  }
  const ids = order.slice(0, kept);
  const max = logits[ids[0]] / o.temperature;
  let probs = ids.map((i) => Math.exp(logits[i] / o.temperature - max));
  const z = probs.reduce((a, b) => a + b, 0);
  probs = probs.map((p) => p / z);
  if (o.topP < 1) {
    let before = 0;
    let n = 0;
    while (n < probs.length && before < o.topP) before += probs[n++];
    ids.length = n;
    probs.length = n;
    const kept = probs.reduce((a, b) => a + b, 0);
    probs = probs.map((p) => p / kept);
  }
  return { ids, probs };
}

/** One draw from a distribution: the first id whose cumulative probability exceeds u ~ U[0, 1). */
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
