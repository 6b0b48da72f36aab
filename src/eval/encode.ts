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

/**
 * Moves the prompt's trailing whitespace to the front of the continuation, as
 * lm-evaluation-harness does before tokenising (a byte-level BPE spells a space
 * with the word after it: "It was " + "great" would score only part of "great").
 */
function splitAtWhitespace(prompt: string, continuation: string): [string, string] {
  const n = prompt.length - prompt.trimEnd().length;
  return n > 0 ? [prompt.slice(0, -n), prompt.slice(-n) + continuation] : [prompt, continuation];
}

/**
 * ids = encode(prompt + continuation), scored from the first token that differs
 * from encode(prompt) (len(encode(prompt)) wherever the prompt's tokens are a
 * prefix), after moving the prompt's trailing whitespace into the continuation. `where` names
 * the row in errors (a DataError when the continuation adds no token or does not fit).
 * `contextIds`: the prompt's encoding without its trailing whitespace, when already known.
 */
export function encodeContinuation(tok: BpeTokenizer, prompt: string, continuation: string, maxLen: number, where = "example",
  contextIds?: number[]): Scored {
  const [context, cont] = splitAtWhitespace(prompt, continuation);
  const p = contextIds ?? tok.encode(context, { addEos: false });
  let ids = tok.encode(context + cont, { addEos: false });
  let start = 0;
  while (start < p.length && start < ids.length && ids[start] === p[start]) start++;
  if (ids.length <= p.length) {
    throw new DataError(where, `option ${JSON.stringify(continuation)} tokenises to no tokens after the prompt; an option must add at least one token`);
  }
  if (ids.length > maxLen) {
    // drop the oldest prompt tokens (after BOS) so the option still fits
    const cut = ids.length - maxLen;
    if (cut >= start - 1) throw new DataError(where, `option ${JSON.stringify(continuation.slice(0, 40))} is longer than the model's ${maxLen} positions`);
    ids = [ids[0], ...ids.slice(1 + cut)];
    start -= cut;
  }
  return { ids, start };
}

/** One scored sequence per option of each example, in order. */
export function encodeOptions(tok: BpeTokenizer, examples: Example[], maxLen: number): Scored[][] {
  return examples.map((e, i) => {
    const contextIds = tok.encode(splitAtWhitespace(e.prompt, "")[0], { addEos: false });
    return e.options!.map((o) => encodeContinuation(tok, e.prompt, o, maxLen, e.source ?? `example ${i + 1}`, contextIds));
  });
}

/** The prompt alone, truncated from the left to leave room for `reserve` new tokens. */
export function encodePrompt(tok: BpeTokenizer, prompt: string, maxLen: number, reserve: number): number[] {
  const ids = tok.encode(prompt, { addEos: false });
  const room = maxLen - reserve;
  return ids.length <= room ? ids : [ids[0], ...ids.slice(ids.length - room + 1)];
}

