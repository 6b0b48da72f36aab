// Task metrics: accuracy by the highest mean log-probability option, or
// greedy generation scored by SQuAD token F1 / exact match.
import { tidy, noGrad } from "../engine/index.js";
import { writeFileAtomic } from "../io/atomic.js";
import { NonFiniteScoresError } from "./non-finite.js";
import { type CausalLM, tokenPositions } from "../models/causal-lm.js";
import { NonFiniteLogitsError, greedyGenerate } from "../models/generate.js";
import type { BpeTokenizer } from "../tokenizer/bpe-tokenizer.js";
import type { Example, TaskKind } from "../tasks/types.js";
import { encodeOptions, encodePrompt } from "./encode.js";
import { type VocabSources, checkTokenIds } from "../tokenizer/vocab-check.js";
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

/** Tokens a sequence may hold: the model's positions, less a prefix's virtual tokens (tokenPositions). */
export function maxLength(model: CausalLM): number { return tokenPositions(model); }

/** Per example, per option: the mean log-probability of the option's tokens and how many tokens were scored. */
export interface OptionScores { meanLogProb: number[][]; tokens: number[][] }

export function scoreOptions(model: CausalLM, tok: BpeTokenizer, examples: Example[], opts: EvalOptions = {}): OptionScores {
  const batchRows = opts.batchRows ?? 32;
  const encoded = encodeOptions(tok, examples, maxLength(model));
  checkTokenIds(encoded.flat().map((r) => r.ids), model.config.vocabSize, opts.sources);
  // batches of similar lengths pad less (the test sentences of SST-2 vary from 5 to 64 tokens)
  const longest = encoded.map((rows) => Math.max(...rows.map((r) => r.ids.length)));
  const order = examples.map((_, i) => i).sort((a, b) => longest[b] - longest[a] || a - b);
  const meanLogProb = new Array<number[]>(examples.length);
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
      meanLogProb[e] = scores.slice(r, r + encoded[e].length);
      r += encoded[e].length;
    }
    i = j;
    opts.onProgress?.(i, examples.length);
  }
  return { meanLogProb, tokens: encoded.map((seqs) => seqs.map((s) => s.ids.length - s.start)) };
}

/** The chosen option of each example: the highest mean log-probability (the first on a tie). */
export function predictOptions(model: CausalLM, tok: BpeTokenizer, examples: Example[], opts: EvalOptions = {}): number[] {
  return scoreOptions(model, tok, examples, opts).meanLogProb.map((s) => s.indexOf(Math.max(...s)));
}

/** Each example's greedy answer (stopped at a newline or EOS, trimmed). Throws NonFiniteScoresError where the logits are not finite. */
export function generateAnswers(model: CausalLM, tok: BpeTokenizer, examples: Example[], opts: EvalOptions = {}): string[] {
  // at least the prompt's first token must fit before the new ones (a small model, or one whose prefix takes many positions)
  const maxNew = Math.min(opts.maxNewTokens ?? 50, maxLength(model) - 1);
  const batch = Math.max(1, Math.floor((opts.batchRows ?? 32) / 4));
  const stop = [...tok.newlineTokenIds(), ...(tok.eosId !== null ? [tok.eosId] : [])];
  const out: string[] = [];
  for (let i = 0; i < examples.length; i += batch) {
    const prompts = examples.slice(i, i + batch).map((e) => encodePrompt(tok, e.prompt, maxLength(model), maxNew));
    checkTokenIds(prompts, model.config.vocabSize, opts.sources);
    let rows: number[][];
    try { rows = greedyGenerate(model, prompts, { maxNewTokens: maxNew, stopTokenIds: stop }); } catch (e) {
      // as option scores: an answer decoded from NaN logits would score 0 without a word
      throw e instanceof NonFiniteLogitsError ? new NonFiniteScoresError(i + e.row, "next-token logits") : e;
    }
    for (const ids of rows) out.push(tok.decode(ids).trim());
    opts.onProgress?.(Math.min(i + batch, examples.length), examples.length);
  }
  return out;
}

/** One line of a predictions file: what the model answered for one example, and how it scored. */
export type Prediction = {
  /** Position in the evaluated split. */
  index: number;
  prompt: string;
} & ({
  options: string[];
  label: number;
  /** Every option that counts as right (ReCoRD), when more than the label. */
  correct?: number[];
  prediction: number;
  right: boolean;
  /** Per option, in order: mean log-probability of its tokens and the number of tokens scored. */
  scores: { mean_logprob: number; tokens: number }[];
} | {
  answers: string[];
  /** The generated text (greedy, stopped at a newline or EOS, trimmed). */
  prediction: string;
  f1: number;
  em: number;
});

/** Metrics and the per-example predictions they come from. Throws NonFiniteScoresError where an example's scores are not finite. */
export function predict(model: CausalLM, tok: BpeTokenizer, kind: TaskKind, examples: Example[], opts: EvalOptions = {}):
  { metrics: Metrics; predictions: Prediction[] } {
  const wasTraining = model.training;
  model.training = false;
  try {
    if (examples.length === 0) return { metrics: { n: 0 }, predictions: [] };
    if (kind === "classification") {
      const { meanLogProb, tokens } = scoreOptions(model, tok, examples, opts);
      const predictions: Prediction[] = examples.map((e, i) => {
        const s = meanLogProb[i];
        if (!s.every(Number.isFinite)) throw new NonFiniteScoresError(i, "option scores");
        const prediction = s.indexOf(Math.max(...s));
        const right = (e.correct ?? [e.label!]).includes(prediction);
        return { index: i, prompt: e.prompt, options: e.options!, label: e.label!, ...(e.correct ? { correct: e.correct } : {}),
          prediction, right, scores: s.map((m, k) => ({ mean_logprob: m, tokens: tokens[i][k] })) };
      });
      const right = predictions.filter((p) => "right" in p && p.right).length;
      return { metrics: { accuracy: right / examples.length, n: examples.length }, predictions };
    }
    const answers = generateAnswers(model, tok, examples, opts);
    const predictions: Prediction[] = answers.map((a, i) => ({
      index: i, prompt: examples[i].prompt, answers: examples[i].answers!, prediction: a,
      f1: bestOver(examples[i].answers!, a, tokenF1), em: bestOver(examples[i].answers!, a, exactMatch),
    }));
    let f1 = 0, em = 0;
    for (const p of predictions) if ("f1" in p) { f1 += p.f1; em += p.em; }
    return { metrics: { f1: f1 / examples.length, em: em / examples.length, n: examples.length }, predictions };
  } finally {
    model.training = wasTraining;
  }
}

export function evaluate(model: CausalLM, tok: BpeTokenizer, kind: TaskKind, examples: Example[], opts: EvalOptions = {}): Metrics {
  return predict(model, tok, kind, examples, opts).metrics;
}

/** A predictions file: one JSON object per line (JSONL), written atomically. */
export function writePredictions(file: string, predictions: Prediction[]): void {
  writeFileAtomic(file, predictions.map((p) => JSON.stringify(p)).join("\n") + (predictions.length ? "\n" : ""));
}

/** The number a run selects its best epoch by. */
export function headline(m: Metrics): number { return m.accuracy ?? m.f1 ?? 0; }
