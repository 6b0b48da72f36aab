// Task metrics: accuracy by the highest mean log-probability option, or
// greedy generation scored by SQuAD token F1 / exact match.
import { tidy, noGrad } from "../engine/index.js";
import type { CausalLM } from "../models/causal-lm.js";
import { greedyGenerate } from "../models/generate.js";
import type { BpeTokenizer } from "../tokenizer/bpe-tokenizer.js";
import type { Example, TaskKind } from "../tasks/types.js";
import { type VocabSources, checkTokenIds, encodeOptions, encodePrompt } from "./encode.js";
import { continuationLogProbs } from "./scoring.js";
import { bestOver, exactMatch, tokenF1 } from "./squad-metrics.js";

export interface Metrics { accuracy?: number; f1?: number; em?: number; n: number }

export interface EvalOptions {
  /** Sequences per forward pass. */
  batchRows?: number;
  maxNewTokens?: number;
  onProgress?: (done: number, total: number) => void;
  /** The tokenizer's and the config's files, named when a token id is beyond the vocabulary. */
  sources?: VocabSources;
}

export function maxLength(model: CausalLM): number { return model.config.maxPositionEmbeddings; }

export function predictOptions(model: CausalLM, tok: BpeTokenizer, examples: Example[], opts: EvalOptions = {}): number[] {
  const batchRows = opts.batchRows ?? 32;
  const encoded = encodeOptions(tok, examples, maxLength(model));
  checkTokenIds(encoded.flat().map((r) => r.ids), model.config.vocabSize, opts.sources);
  // batches of similar lengths pad less (the test sentences of SST-2 vary from 5 to 64 tokens)
  const longest = encoded.map((rows) => Math.max(...rows.map((r) => r.ids.length)));
  const order = examples.map((_, i) => i).sort((a, b) => longest[b] - longest[a] || a - b);
  const predictions = new Array<number>(examples.length);
  let i = 0;
  while (i < order.length) {
    // whole examples per batch, up to batchRows sequences (at least one example)
    let j = i;
    let rows = 0;
    do { rows += encoded[order[j]].length; j++; } while (j < order.length && rows + encoded[order[j]].length <= batchRows);
    const batch = order.slice(i, j);
    const scores = noGrad(() => tidy(() => continuationLogProbs(model, batch.flatMap((e) => encoded[e])).toNumbers()));
    let r = 0;
    for (const e of batch) {
      const s = scores.slice(r, r + encoded[e].length);
      r += encoded[e].length;
      predictions[e] = s.indexOf(Math.max(...s));
    }
    i = j;
    opts.onProgress?.(i, examples.length);
  }
  return predictions;
}

export function generateAnswers(model: CausalLM, tok: BpeTokenizer, examples: Example[], opts: EvalOptions = {}): string[] {
  const maxNew = opts.maxNewTokens ?? 50;
  const batch = Math.max(1, Math.floor((opts.batchRows ?? 32) / 4));
  const stop = [...tok.newlineTokenIds(), ...(tok.eosId !== null ? [tok.eosId] : [])];
  const out: string[] = [];
  for (let i = 0; i < examples.length; i += batch) {
    const prompts = examples.slice(i, i + batch).map((e) => encodePrompt(tok, e.prompt, maxLength(model), maxNew));
    checkTokenIds(prompts, model.config.vocabSize, opts.sources);
    for (const ids of greedyGenerate(model, prompts, { maxNewTokens: maxNew, stopTokenIds: stop })) out.push(tok.decode(ids).trim());
    opts.onProgress?.(Math.min(i + batch, examples.length), examples.length);
  }
  return out;
}

export function evaluate(model: CausalLM, tok: BpeTokenizer, kind: TaskKind, examples: Example[], opts: EvalOptions = {}): Metrics {
  const wasTraining = model.training;
  model.training = false;
  try {
    if (examples.length === 0) return { n: 0 };
    if (kind === "classification") {
      const pred = predictOptions(model, tok, examples, opts);
      const right = pred.filter((p, i) => (examples[i].correct ?? [examples[i].label]).includes(p)).length;
      return { accuracy: right / examples.length, n: examples.length };
    }
    const answers = generateAnswers(model, tok, examples, opts);
    let f1 = 0, em = 0;
    answers.forEach((a, i) => {
      f1 += bestOver(examples[i].answers!, a, tokenF1);
      em += bestOver(examples[i].answers!, a, exactMatch);
    });
    return { f1: f1 / examples.length, em: em / examples.length, n: examples.length };
  } finally {
    model.training = wasTraining;
  }
}

/** The number a run selects its best epoch by. */
export function headline(m: Metrics): number { return m.accuracy ?? m.f1 ?? 0; }
