// Pieces every family's attention shares: the additive mask and the scaled
// dot-product with grouped-query heads. Formulas: Vaswani et al. 2017 §3.2;
// GQA as Hugging Face's repeat_kv (modeling_llama.py).
import { type Tensor, arange, cat, dropout, ones } from "../engine/index.js";
import type { ForwardOptions, LayerKV, SublayerHooks } from "./causal-lm.js";

/**
 * The keys/values before the input (generation cache, or a prefix-tuning
 * prefix) and the attention mask over past + input [batch, past+seq] int64.
 * A prefix's positions are prepended to the caller's mask, which covers real
 * tokens only (as Hugging Face PEFT does).
 */
export function pastAndMask(batch: number, seq: number, opts: ForwardOptions, hooks: SublayerHooks):
  { past: LayerKV[] | undefined; pastLen: number; mask: Tensor } {
  const prefix = hooks.prefix;
  const past = opts.past ?? prefix?.keyValues(batch);
  const pastLen = past?.[0]?.key.size(2) ?? 0;
  const prefixLen = prefix?.length ?? 0;
  let mask = opts.attentionMask ?? ones([batch, pastLen + seq - prefixLen], "int64");
  if (prefixLen) mask = cat([ones([batch, prefixLen], "int64"), mask], 1);
  if (mask.size(1) !== pastLen + seq) {
    throw new Error(`attention mask covers ${mask.size(1) - prefixLen} positions, expected ${pastLen + seq - prefixLen} (past ${pastLen - prefixLen} + input ${seq})`);
  }
  return { past, pastLen, mask };
}

/**
 * Added to blocked scores. Finite, and the bias is always float32 and added to
 * float32 scores, so it never overflows to −inf in float16/bfloat16 (0·−inf
 * would make NaN) and a fully masked row (padding) stays finite.
 */
export const MASKED = -1e9;

/**
 * The additive attention bias, float32 [batch, 1, seq, past+seq]: 0 where a
 * query may attend, MASKED where the key is in the future, padding (mask 0), or
 * — with `slidingWindow` W (Mistral) — W or more positions back (key ≤ query − W,
 * Hugging Face's sliding_window_overlay).
 * `mask` is [batch, past+seq] of 1/0 (int64).
 */
export function attentionBias(mask: Tensor, seq: number, pastLen: number, slidingWindow?: number | null): Tensor {
  const total = pastLen + seq;
  const query = arange(pastLen, total).reshape([seq, 1]);
  const key = arange(0, total).reshape([1, total]);
  let blocked = key.gt(query).to("float32");                                        // [seq, total]
  if (slidingWindow) blocked = blocked.add(key.le(query.sub(slidingWindow)).to("float32"));
  const padding = mask.eq(0).to("float32").reshape([mask.size(0), 1, 1, total]);     // [batch, 1, 1, total]
  return padding.add(blocked).gt(0).to("float32").mul(MASKED);
}

/** x [b, seq, d] at positions `at` [b, k] (int64): [b, k, d]. */
export function rowsAt(x: Tensor, at: Tensor): Tensor {
  return x.gather(1, at.unsqueeze(2).expand([at.size(0), at.size(1), x.size(2)]));
}

/** A per-query tensor (the attention bias, rotary cos/sin) [b or 1, 1, seq, n] at the queries `at` [b, k]: [b, 1, k, n]. */
export function queryRowsAt(bias: Tensor, at: Tensor): Tensor {
  const [b, k] = at.shape;
  return bias.expand([b, 1, bias.size(2), bias.size(3)]).gather(2, at.reshape([b, 1, k, 1]).expand([b, 1, k, bias.size(3)]));
}

/** [b, kvHeads, t, hd] → [b, kvHeads·groups, t, hd], each kv head repeated for its query heads. */
export function repeatKv(x: Tensor, groups: number): Tensor {
  if (groups === 1) return x;
  const [b, kvHeads, t, hd] = x.shape;
  return x.unsqueeze(2).expand([b, kvHeads, groups, t, hd]).reshape([b, kvHeads * groups, t, hd]);
}

/**
 * softmax(q·kᵀ + bias)·v. q [b, heads, t, hd] already scaled (by hd^−½),
 * k and v [b, kvHeads, T, hd], bias float32 [b, 1, t, T] (attentionBias).
 * Returns the heads merged back: [b, t, heads·hd]. Half-precision scores are
 * softmaxed in float32, as Hugging Face does.
 */
export function attend(q: Tensor, k: Tensor, v: Tensor, bias: Tensor, dropoutP: number, training: boolean): Tensor {
  const [b, heads, t, hd] = q.shape;
  const groups = heads / k.size(1);
  const probs = maskedSoftmax(q.matmul(repeatKv(k, groups).transpose(2, 3)), bias);  // [b, h, t, T]
  return dropout(probs, dropoutP, training).matmul(repeatKv(v, groups)).transpose(1, 2).reshape([b, t, heads * hd]);
}

/** softmax(scores + bias) over the last dim, in scores' dtype; half-precision scores are upcast first, so the bias never overflows. */
export function maskedSoftmax(scores: Tensor, bias: Tensor): Tensor {
  const lowPrecision = scores.dtype === "bfloat16" || scores.dtype === "float16";
  return lowPrecision ? scores.to("float32").add(bias).softmax(-1).to(scores.dtype) : scores.add(bias).softmax(-1);
}

/**
 * Positions from the mask as Hugging Face's generate() passes them: cumsum(mask) − 1
 * at real tokens (padding gets 0; its outputs are masked out); [b, seq] of the last `seq`.
 */
export function positionsFromMask(mask: Tensor, pastLen: number, seq: number): Tensor {
  return mask.cumsum(1).sub(1).mul(mask).narrow(1, pastLen, seq);
}
