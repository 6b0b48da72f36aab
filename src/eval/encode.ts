// Turning examples into token sequences: the option's tokens are those of
// encode(prompt + option) after the prompt's own tokens (MeZO's rule). Where a
// tokenizer joins the prompt's last piece with the option's first (SentencePiece
// pieces that carry a trailing "▁", BPE merges across the boundary), scoring
// starts at the first token that differs from encode(prompt), so every token
// holding option text is scored. No EOS is appended here, whatever
// tokenizer_config.json says: scores are of the option's own tokens.
import type { BpeTokenizer } from "../tokenizer/bpe-tokenizer.js";
import { DataError, type Example } from "../tasks/types.js";

/** A sequence (BOS first) whose tokens from `start` on are scored or trained. */
export interface Scored { ids: number[]; start: number }

export function encodeContinuation(tok: BpeTokenizer, prompt: string, continuation: string, maxLen: number, promptIds?: number[]): Scored {
  const p = promptIds ?? tok.encode(prompt, { addEos: false });
  let ids = tok.encode(prompt + continuation, { addEos: false });
  let start = 0;
  while (start < p.length && start < ids.length && ids[start] === p[start]) start++;
  if (ids.length <= start) {
    throw new DataError(`option ${JSON.stringify(continuation)}`, "tokenises to zero tokens after the prompt; an option must add at least one token");
  }
  if (ids.length > maxLen) {
    // drop the oldest prompt tokens (after BOS) so the option still fits
    const cut = ids.length - maxLen;
    if (cut >= start - 1) throw new DataError(`option ${JSON.stringify(continuation.slice(0, 40))}`, `is longer than the model's ${maxLen} positions`);
    ids = [ids[0], ...ids.slice(1 + cut)];
    start -= cut;
  }
  return { ids, start };
}

/** One scored sequence per option of each example, in order. */
export function encodeOptions(tok: BpeTokenizer, examples: Example[], maxLen: number): Scored[][] {
  return examples.map((e) => {
    const p = tok.encode(e.prompt, { addEos: false });
    return e.options!.map((o) => encodeContinuation(tok, e.prompt, o, maxLen, p));
  });
}

/** The prompt alone, truncated from the left to leave room for `reserve` new tokens. */
export function encodePrompt(tok: BpeTokenizer, prompt: string, maxLen: number, reserve: number): number[] {
  const ids = tok.encode(prompt, { addEos: false });
  const room = maxLen - reserve;
  return ids.length <= room ? ids : [ids[0], ...ids.slice(ids.length - room + 1)];
}
