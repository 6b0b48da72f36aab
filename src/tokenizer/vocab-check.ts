// Token ids a tokenizer gave must exist in the model's embedding: one check, with
// an error naming both files, before any forward would fail deep in libtorch.

/** Where token ids and the vocabulary size come from, for errors. */
export interface VocabSources { tokenizer: string; config: string }

/**
 * Throws an Error listing the token ids (at most 8) that `vocabSize` (the
 * model's config) does not cover, naming both files: a tokenizer and a model
 * that do not belong together would otherwise fail deep in the embedding.
 */
export function checkTokenIds(rows: number[][], vocabSize: number,
  sources: VocabSources = { tokenizer: "the tokenizer", config: "the model's config" }): void {
  const bad = new Set<number>();
  for (const r of rows) for (const id of r) if (id >= vocabSize || id < 0) bad.add(id);
  if (bad.size === 0) return;
  const ids = [...bad].sort((a, b) => a - b);
  throw new Error(`token ids ${ids.slice(0, 8).join(", ")}${ids.length > 8 ? `, … (${ids.length} distinct)` : ""} from ${sources.tokenizer} ` +
    `are beyond the model's vocabulary of ${vocabSize} (vocab_size in ${sources.config}): the tokenizer and the model do not belong together`);
}
