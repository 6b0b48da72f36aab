// The files of a Hugging Face model folder besides config.json and the weights, which every folder
// randmask writes from another (convert, merge, pretraining checkpoints, the demo's random-weight copy)
// carries over, so the new folder loads in transformers as the old one did.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/**
 * Tokenizer files (fast tokenizer.json; GPT-2 BPE vocab.json + merges.txt; SentencePiece tokenizer.model /
 * spiece.model; WordPiece vocab.txt; their configs), generation defaults and image-processor settings.
 */
export const SIDE_FILES = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "vocab.json", "merges.txt",
  "vocab.txt", "tokenizer.model", "spiece.model", "generation_config.json", "preprocessor_config.json",
  // transformers ≥ 4.47 saves a chat template here rather than in tokenizer_config.json (tokenization_utils_base.py, CHAT_TEMPLATE_FILE)
  "chat_template.jinja", "chat_template.json"] as const;

/**
 * Copies the side files `from` holds into the folder `to`; returns their names. Contents only: a source that is
 * read-only (a shared cache, a read-only mount) still gives files the user may change or delete.
 */
export function copySideFiles(from: string, to: string): string[] {
  const copied = SIDE_FILES.filter((f) => existsSync(join(from, f)));
  for (const f of copied) writeFileSync(join(to, f), readFileSync(join(from, f)));
  return copied;
}
