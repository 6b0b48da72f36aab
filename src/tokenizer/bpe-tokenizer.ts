// Byte-level BPE tokenizer (OPT, GPT-2) over @huggingface/tokenizers. A user's
// Hugging Face folder has tokenizer.json, or vocab.json + merges.txt (which we
// assemble into the same tokenizer.json structure). OPT prepends `</s>` as BOS.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";

export interface TokenOffsets { ids: number[]; offsets: [number, number][] }

const SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>", "<|endoftext|>"];

function readJson(file: string): Record<string, unknown> {
  try { return JSON.parse(readFileSync(file, "utf8")); } catch (e) {
    throw new Error(`${file}: cannot read tokenizer file (${(e as Error).message})`);
  }
}

/** The tokenizer.json structure of a GPT-2-style byte-level BPE. */
function byteLevelBpeJson(vocab: Record<string, number>, merges: string[]): Record<string, unknown> {
  const byteLevel = { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true };
  return {
    version: "1.0",
    added_tokens: SPECIAL_TOKENS.filter((t) => t in vocab).map((t) => ({
      id: vocab[t], content: t, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
    })),
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: null,
    decoder: byteLevel,
    model: { type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: "", end_of_word_suffix: "",
      fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges },
  };
}

function readMerges(file: string): string[] {
  return readFileSync(file, "utf8").split("\n").filter((l) => l && !l.startsWith("#version"));
}

export class BpeTokenizer {
  private readonly impl: Tokenizer;
  /** Prepended to every encoded text when addBos (OPT: `</s>`, id 2). */
  readonly bosId: number | null;
  readonly eosId: number | null;
  readonly padId: number | null;
  private readonly byteLengths = new Map<number, number>();

  constructor(tokenizerJson: Record<string, unknown>, config: Record<string, unknown> = {}, bosToken: string | null = "</s>") {
    this.impl = new Tokenizer(tokenizerJson, config);
    const id = (t: string | null) => (t === null ? null : this.impl.token_to_id(t) ?? null);
    this.bosId = id(bosToken);
    this.eosId = id("</s>") ?? id("<|endoftext|>");
    this.padId = id("<pad>");
  }

  /** From a model folder: tokenizer.json, or vocab.json + merges.txt. */
  static fromDir(dir: string): BpeTokenizer {
    const tj = join(dir, "tokenizer.json");
    const tc = join(dir, "tokenizer_config.json");
    const config = existsSync(tc) ? readJson(tc) : {};
    if (existsSync(tj)) return new BpeTokenizer(readJson(tj), config);
    const vocabFile = join(dir, "vocab.json");
    const mergesFile = join(dir, "merges.txt");
    if (!existsSync(vocabFile) || !existsSync(mergesFile)) {
      throw new Error(`${dir}: no tokenizer found (expected tokenizer.json, or vocab.json + merges.txt)`);
    }
    return BpeTokenizer.fromFiles(vocabFile, mergesFile, config);
  }

  static fromFiles(vocabFile: string, mergesFile: string, config: Record<string, unknown> = {}, bosToken: string | null = "</s>"): BpeTokenizer {
    return new BpeTokenizer(byteLevelBpeJson(readJson(vocabFile) as Record<string, number>, readMerges(mergesFile)), config, bosToken);
  }

  encode(text: string, opts: { addBos?: boolean } = {}): number[] {
    const ids = this.impl.encode(text, { add_special_tokens: false }).ids;
    return (opts.addBos ?? true) && this.bosId !== null ? [this.bosId, ...ids] : ids;
  }

  /** Ids with each token's [start, end) span in the text (UTF-16 units). */
  encodeWithOffsets(text: string): TokenOffsets {
    const ids = this.encode(text, { addBos: false });
    const utf8 = Buffer.from(text, "utf8");
    const offsets: [number, number][] = [];
    let byte = 0;
    const charAt = (b: number) => utf8.subarray(0, b).toString("utf8").length;
    for (const id of ids) {
      const len = this.tokenByteLength(id);
      offsets.push([charAt(byte), charAt(byte + len)]);
      byte += len;
    }
    return { ids, offsets };
  }

  private tokenByteLength(id: number): number {
    let n = this.byteLengths.get(id);
    if (n === undefined) {
      n = Buffer.byteLength(this.impl.decode([id], { skip_special_tokens: false, clean_up_tokenization_spaces: false }), "utf8");
      this.byteLengths.set(id, n);
    }
    return n;
  }

  decode(ids: number[], opts: { skipSpecialTokens?: boolean } = {}): string {
    if (ids.length === 0) return "";
    return this.impl.decode(ids, { skip_special_tokens: opts.skipSpecialTokens ?? true, clean_up_tokenization_spaces: false });
  }

  tokenToId(token: string): number | undefined { return this.impl.token_to_id(token); }

  /** Ids of every token whose text contains a newline (byte-level "Ċ"): where generation stops. */
  newlineTokenIds(): number[] {
    const vocab = (this.impl.model as unknown as { vocab: string[] }).vocab;
    const out: number[] = [];
    vocab.forEach((t, id) => { if (typeof t === "string" && t.includes("Ċ")) out.push(id); });
    return out;
  }
}
