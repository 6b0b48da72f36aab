// Log-probabilities of continuations, batched with right padding and logits
// computed only at the positions that predict the scored tokens.
import { Tensor, tensor } from "../engine/index.js";
import type { CausalLM } from "../models/causal-lm.js";
import type { Scored } from "./encode.js";

/**
 * Per sequence, [rows.length]: the mean (or sum) of log p(token | prefix)
 * over its scored tokens. Differentiable, so training uses it too.
 */
export function continuationLogProbs(model: CausalLM, rows: Scored[], reduce: "mean" | "sum" = "mean"): Tensor {
  if (rows.every((r) => r.start === r.ids.length - 1)) return nextTokenLogProbs(model, rows);
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

/**
 * Rows that each score one token: log p(ids[start] | ids[0:start]), [n].
 * Rows with the same prompt (single-token options, as SST-2's " terrible" /
 * " great") share one forward pass over the prompt alone, since the logits at
 * its last position score every option; this halves a two-option task's work.
 */
function nextTokenLogProbs(model: CausalLM, rows: Scored[]): Tensor {
  const prompts = new Map<string, number>();
  const unique: number[][] = [];
  const which = rows.map((r) => {
    const prompt = r.ids.slice(0, r.start);
    const key = prompt.join(",");
    if (!prompts.has(key)) { prompts.set(key, unique.length); unique.push(prompt); }
    return prompts.get(key)!;
  });
  const u = unique.length;
  const len = Math.max(...unique.map((p) => p.length));
  const ids = new Array<number>(u * len).fill(model.config.padTokenId);
  const mask = new Array<number>(u * len).fill(0);
  unique.forEach((p, i) => p.forEach((t, j) => { ids[i * len + j] = t; mask[i * len + j] = 1; }));
  const { logits } = model.forward(tensor(ids, [u, len], "int64"), {
    attentionMask: tensor(mask, [u, len], "int64"),
    logitsAt: tensor(unique.map((p) => p.length - 1), [u, 1], "int64"),
  });
  const vocab = logits.size(2);
  const logProbs = logits.reshape([u, vocab]).to("float32").logSoftmax(-1).reshape([u * vocab]);
  // each row's (prompt, target) entry of the [u, vocab] table
  return logProbs.indexSelect(0, tensor(rows.map((r, i) => which[i] * vocab + r.ids[r.start]), [rows.length], "int64"));
}
