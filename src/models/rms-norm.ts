// RMSNorm (Zhang & Sennrich 2019) as Hugging Face's LlamaRMSNorm computes it:
// in float32, x·rsqrt(mean(x²) + ε), cast back, then times the weight.
import type { Tensor } from "../engine/index.js";

/** x [..., d], weight [d] → [..., d] in x's dtype. */
export function rmsNorm(x: Tensor, weight: Tensor, eps: number): Tensor {
  const dt = x.dtype;
  const h = dt === "float32" || dt === "float64" ? x : x.to("float32");
  const normed = h.mul(h.pow(2).mean(-1, true).add(eps).rsqrt());
  return weight.mul(normed.dtype === dt ? normed : normed.to(dt));
}
