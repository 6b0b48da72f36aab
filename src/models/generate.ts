// Decoding, batched with left padding, with or without a KV cache: greedy
// (argmax) unless the caller chooses tokens itself (sampling: ./sampling.ts).
import { Tensor, tensor, cat, ones, tidy, noGrad, disposeAll } from "../engine/index.js";
import type { CausalLM, LayerKV } from "./causal-lm.js";

export interface GenerateOptions {
  maxNewTokens: number;
  /** Generation of a row ends after it emits one of these (it is not returned). */
  stopTokenIds?: number[];
  /** Recompute the whole sequence each step instead of caching keys/values (for checking). */
  noCache?: boolean;
  /** Picks each row's next token from the last position's logits [batch, vocab]; argmax when absent. */
  chooseNext?: (logits: Tensor) => number[];
  /** Called when row `row` gains a token (`tokens`: all it generated so far); returning true ends the row there. */
  onToken?: (row: number, tokens: number[]) => boolean | void;
}

/**
 * A row's next-token logits hold NaN or ±Inf (weights or an adapter that overflowed): no token can be chosen from
 * them (argmax over NaN picks an arbitrary id), so decoding stops. `row`: the prompt's index in the batch.
 */
export class NonFiniteLogitsError extends Error {
  constructor(readonly row: number, readonly step: number) {
    super(`the next-token logits of row ${row} at step ${step} are not finite (NaN or infinite: the weights or the adapter overflowed)`);
    this.name = "NonFiniteLogitsError";
  }
}

/** Left-pads token rows to one length; returns ids and the attention mask. */
export function leftPad(rows: number[][], padId: number): { ids: Tensor; mask: Tensor } {
  const len = Math.max(...rows.map((r) => r.length));
  const ids: number[] = [];
  const mask: number[] = [];
  for (const r of rows) {
    for (let i = r.length; i < len; i++) { ids.push(padId); mask.push(0); }
    for (const t of r) { ids.push(t); mask.push(1); }
  }
  return { ids: tensor(ids, [rows.length, len], "int64"), mask: tensor(mask, [rows.length, len], "int64") };
}

/**
 * Continuation of each prompt (token ids, BOS included by the caller): greedy
 * unless `chooseNext` is given. Returns the new tokens of each row, stop token
 * excluded. Throws NonFiniteLogitsError where an unfinished row's logits are not finite.
 */
export function greedyGenerate(model: CausalLM, prompts: number[][], opts: GenerateOptions): number[][] {
  const stop = new Set(opts.stopTokenIds ?? []);
  const batch = prompts.length;
  const out: number[][] = prompts.map(() => []);
  const done = new Array<boolean>(batch).fill(false);
  const pad = model.config.padTokenId;
  let { ids, mask } = leftPad(prompts, pad);
  let cache: LayerKV[] | undefined;
  let input = ids;

  return noGrad(() => {
    try {
      for (let step = 0; step < opts.maxNewTokens && done.includes(false); step++) {
        const last = tensor(new Array(batch).fill(input.size(1) - 1), [batch, 1], "int64");
        const res = tidy(() => {
          const r = model.forward(input, { attentionMask: mask, past: cache, useCache: !opts.noCache, logitsAt: last });
          const logits = r.logits.reshape([batch, r.logits.size(2)]);
          // x − x is 0 where x is finite, NaN where it is NaN or ±Inf: one sum per row says whether it is usable
          const bad = logits.sub(logits).sum(-1).toNumbers().findIndex((v, b) => !done[b] && !Number.isFinite(v));
          if (bad >= 0) throw new NonFiniteLogitsError(bad, step);
          return { next: opts.chooseNext ? opts.chooseNext(logits) : logits.argmax(-1).toNumbers(), cache: r.cache };
        });
        last.dispose();
        const next = res.next;
        next.forEach((t, b) => {
          if (done[b]) return;
          if (stop.has(t)) done[b] = true;
          else {
            out[b].push(t);
            if (opts.onToken?.(b, out[b])) done[b] = true;
          }
        });
        const fed = next.map((t, b) => (done[b] ? pad : t));
        const nextIds = tensor(fed, [batch, 1], "int64");
        const newMask = tidy(() => cat([mask, ones([batch, 1], "int64")], 1));
        mask.dispose();
        mask = newMask;
        if (opts.noCache) {
          const grown = cat([ids, nextIds], 1);
          ids.dispose(); nextIds.dispose();
          ids = grown;
          input = ids;
        } else {
          if (input !== ids) input.dispose();
          disposeAll(cache);
          cache = res.cache;
          input = nextIds;
        }
      }
    } finally {
      disposeAll([ids, mask, cache, input]);
    }
    return out;
  });
}
