// Log-probabilities of continuations, batched with right padding and logits
// computed only at the positions that predict the scored tokens.
import { Tensor, tensor } from "../engine/index.js";
import type { CausalLM } from "../models/causal-lm.js";
import type { Scored } from "./encode.js";

/**
 * Per sequence: the mean (or sum) of log p(token | prefix) over its scored
 * tokens. Differentiable, so training uses it too.
 */
export function continuationLogProbs(model: CausalLM, rows: Scored[], reduce: "mean" | "sum" = "mean"): Tensor {
  const n = rows.length;
  const len = Math.max(...rows.map((r) => r.ids.length));
  const k = Math.max(...rows.map((r) => r.ids.length - r.start));
  const ids = new Array<number>(n * len).fill(model.config.padTokenId);
  const mask = new Array<number>(n * len).fill(0);
  const at = new Array<number>(n * k).fill(0);
  const targets = new Array<number>(n * k).fill(0);
  const counted = new Array<number>(n * k).fill(0);
  rows.forEach((r, i) => {
    r.ids.forEach((t, j) => { ids[i * len + j] = t; mask[i * len + j] = 1; });
    for (let j = 0; j < k; j++) {
      const pos = r.start + j;
      if (pos < r.ids.length) {
        at[i * k + j] = pos - 1; // logits at pos-1 predict token pos
        targets[i * k + j] = r.ids[pos];
        counted[i * k + j] = 1;
      } else {
        at[i * k + j] = r.start - 1;
      }
    }
  });
  const { logits } = model.forward(tensor(ids, [n, len], "int64"), {
    attentionMask: tensor(mask, [n, len], "int64"), logitsAt: tensor(at, [n, k], "int64"),
  });
  const logProbs = logits.to("float32").logSoftmax(-1)
    .gather(2, tensor(targets, [n, k, 1], "int64")).reshape([n, k]);
  const weights = tensor(counted, [n, k], "float32");
  const total = logProbs.mul(weights).sum(1);
  return reduce === "sum" ? total : total.div(weights.sum(1));
}
