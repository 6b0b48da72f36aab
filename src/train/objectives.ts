// Training losses for a batch of examples: cross-entropy over the options'
// mean log-probabilities (classification), or the LM loss on a target.
import { Tensor, cat, tensor } from "../engine/index.js";
import type { CausalLM } from "../models/causal-lm.js";
import type { BpeTokenizer } from "../tokenizer/bpe-tokenizer.js";
import type { Example, TaskKind, TrainObjective } from "../tasks/types.js";
import { encodeContinuation, encodeOptions, type Scored } from "../eval/encode.js";
import { continuationLogProbs } from "../eval/scoring.js";
import { crossEntropy } from "../engine/index.js";

/** What a training example becomes before any tensor is made. */
export type Prepared = { kind: "options"; rows: Scored[]; label: number } | { kind: "lm"; row: Scored };

export function prepare(tok: BpeTokenizer, kind: TaskKind, objective: TrainObjective, examples: Example[], maxLen: number): Prepared[] {
  if (kind === "classification" && objective === "options") {
    return encodeOptions(tok, examples, maxLen).map((rows, i) => ({ kind: "options", rows, label: examples[i].label! }));
  }
  return examples.map((e, i) => {
    const target = kind === "classification" ? e.options![e.label!] : ` ${e.answers![0]}\n`;
    return { kind: "lm", row: encodeContinuation(tok, e.prompt, target, maxLen, e.source ?? `example ${i + 1}`) };
  });
}

/** Mean loss of a batch. */
export function batchLoss(model: CausalLM, batch: Prepared[]): Tensor {
  if (batch[0].kind === "lm") {
    // mean NLL over all target tokens of the batch (Hugging Face's causal-LM loss)
    const rows = batch.map((b) => (b as { row: Scored }).row);
    const tokens = rows.reduce((n, r) => n + r.ids.length - r.start, 0);
    return continuationLogProbs(model, rows, "sum").sum().div(-tokens);
  }
  const items = batch as { rows: Scored[]; label: number }[];
  const scores = continuationLogProbs(model, items.flatMap((b) => b.rows));
  const sameWidth = items.every((b) => b.rows.length === items[0].rows.length);
  if (sameWidth) {
    const width = items[0].rows.length;
    return crossEntropy(scores.reshape([items.length, width]), tensor(items.map((b) => b.label), [items.length], "int64"));
  }
  const losses: Tensor[] = [];
  let r = 0;
  for (const b of items) {
    const s = scores.narrow(0, r, b.rows.length).reshape([1, b.rows.length]);
    losses.push(crossEntropy(s, tensor([b.label], [1], "int64")).reshape([1]));
    r += b.rows.length;
  }
  return cat(losses).mean();
}
