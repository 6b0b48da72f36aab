// Causal language-model losses: next-token negative log-likelihood with -100
// marking positions that do not count (Hugging Face's convention).
import { Tensor, crossEntropy } from "../engine/index.js";

export const IGNORE_INDEX = -100;

/** Per-token NLL [batch, seq-1] of predicting labels[:, 1:] from logits[:, :-1]; 0 where ignored. */
export function tokenNll(logits: Tensor, labels: Tensor): Tensor {
  const [batch, seq, vocab] = logits.shape;
  const predicted = logits.narrow(1, 0, seq - 1).reshape([-1, vocab]);
  const targets = labels.narrow(1, 1, seq - 1).reshape([-1]);
  return crossEntropy(predicted, targets, { ignoreIndex: IGNORE_INDEX, reduction: "none" }).reshape([batch, seq - 1]);
}

/** Mean NLL over all counted tokens of the batch (HF's causal-LM loss). */
export function causalLmLoss(logits: Tensor, labels: Tensor): Tensor {
  const [, seq, vocab] = logits.shape;
  return crossEntropy(logits.narrow(1, 0, seq - 1).reshape([-1, vocab]), labels.narrow(1, 1, seq - 1).reshape([-1]),
    { ignoreIndex: IGNORE_INDEX });
}

/** Mean NLL of each sequence over its counted tokens [batch]. */
export function perSequenceLoss(logits: Tensor, labels: Tensor): Tensor {
  const counted = labels.narrow(1, 1, labels.size(1) - 1).ne(IGNORE_INDEX).to(logits.dtype);
  return tokenNll(logits, labels).sum(1).div(counted.sum(1));
}
