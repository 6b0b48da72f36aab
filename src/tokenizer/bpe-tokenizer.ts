// Hugging Face tokenizers over @huggingface/tokenizers: any tokenizer.json
// (byte-level BPE as in GPT-2/OPT/Qwen2, SentencePiece-style BPE with "▁" and
// byte fallback as in Llama/Mistral), or GPT-2/OPT's vocab.json + merges.txt
// (assembled into the same tokenizer.json structure).
//
// tokenizer_config.json decides the special tokens encode() adds, as
// transformers' tokenizers do: `add_bos_token` / `add_eos_token` (without them:
// what tokenizer.json's post-processor template adds; for a bare
// vocab.json + merges.txt, OPT's `</s>` BOS when the vocabulary has it),
// `bos_token` / `eos_token` / `pad_token`, and `add_prefix_space`. Padding
// side does not change ids: randmask left-pads for generation and right-pads
// for scoring, with attention masks and positions derived from them.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";
import { fsReason } from "../io/fs-reason.js";

export interface TokenOffsets { ids: number[]; offsets: [number, number][] }

const SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>", "<|endoftext|>"];

type Json = Record<string, unknown>;

function readText(file: string): string {
  try { return readFileSync(file, "utf8"); } catch (e) {
    throw new Error(`${file}: cannot read tokenizer file (${fsReason(e)})`);
  }
}

function readJson(file: string): Json {
  const text = readText(file);
  try { return JSON.parse(text); } catch (e) {
    throw new Error(`${file}: cannot read tokenizer file (${(e as Error).message})`);
  }
}

/** The tokenizer.json structure of a GPT-2-style byte-level BPE. */
function byteLevelBpeJson(vocab: Record<string, number>, merges: string[]): Json {
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
  return readText(file).split("\n").filter((l) => l && !l.startsWith("#version"));
}

/** A tokenizer_config.json token field: a string or {"content": …}. */
function tokenName(v: unknown): string | null {
  if (typeof v === "string") return v;
  if (v && typeof v === "object" && typeof (v as Json).content === "string") return (v as Json).content as string;
  return null;
}

/** The special tokens a TemplateProcessing post-processor puts before and after a single sequence. */
function templateSpecials(json: Json): { before: string[]; after: string[] } {
  const pp = json.post_processor as Json | null | undefined;
  const single = pp?.type === "TemplateProcessing" ? (pp.single as Json[]) : null;
  if (!single) return { before: [], after: [] };
  const at = single.findIndex((p) => "Sequence" in p);
  const specials = (parts: Json[]) => parts.filter((p) => "SpecialToken" in p).map((p) => (p.SpecialToken as Json).id as string);
  return { before: specials(single.slice(0, at)), after: specials(single.slice(at + 1)) };
}

/** tokenizer.json with `add_prefix_space` applied to its ByteLevel / Metaspace / Prepend("▁") parts. */
function withPrefixSpace(json: Json, on: boolean): Json {
  const edit = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(edit);
    if (!node || typeof node !== "object") return node;
    const n = { ...(node as Json) };
    if (n.type === "ByteLevel") n.add_prefix_space = on;
    if (n.type === "Metaspace") { n.prepend_scheme = on ? "always" : "never"; if ("add_prefix_space" in n) n.add_prefix_space = on; }
    for (const k of ["normalizers", "pretokenizers"]) {
      if (Array.isArray(n[k])) n[k] = (n[k] as Json[]).filter((x) => on || !(x.type === "Prepend" && x.prepend === "▁")).map(edit);
    }
    return n;
  };
  const out: Json = { ...json, pre_tokenizer: edit(json.pre_tokenizer) };
  const norm = json.normalizer as Json | null;
  if (norm?.type === "Prepend" && norm.prepend === "▁" && !on) out.normalizer = null;
  else out.normalizer = edit(norm);
  return out;
}

export class BpeTokenizer {
  private readonly impl: Tokenizer;
  /** Prepended when addBos (OPT: `</s>` id 2; Llama: `<s>` id 1). */
  readonly bosId: number | null;
  readonly eosId: number | null;
  readonly padId: number | null;
  /** Whether encode() adds BOS / EOS by default (tokenizer_config.json's add_bos_token / add_eos_token). */
  readonly addBos: boolean;
  readonly addEos: boolean;
  /** Byte-level BPE (GPT-2 style) rather than SentencePiece-style pieces. */
  private readonly byteLevel: boolean;
  private readonly addedTokens: Set<string>;

  /**
   * `json` is a tokenizer.json structure, `config` tokenizer_config.json's fields.
   * `defaultBos` names the BOS used when neither says one (legacy OPT: `</s>`).
   */
  constructor(json: Json, config: Json = {}, defaultBos: string | null = "</s>") {
    const prefixSpace = config.add_prefix_space;
    const effective = typeof prefixSpace === "boolean" ? withPrefixSpace(json, prefixSpace) : json;
    this.impl = new Tokenizer(effective, config);
    const id = (t: string | null) => (t === null ? null : this.impl.token_to_id(t) ?? null);
    const template = templateSpecials(json);
    const bosName = tokenName(config.bos_token) ?? template.before[0] ?? defaultBos;
    this.bosId = id(bosName);
    this.eosId = id(tokenName(config.eos_token)) ?? id(template.after[0] ?? null) ?? id("</s>") ?? id("<|endoftext|>");
    this.padId = id(tokenName(config.pad_token)) ?? id("<pad>");
    const hasTemplate = (json.post_processor as Json | null)?.type === "TemplateProcessing";
    this.addBos = typeof config.add_bos_token === "boolean" ? config.add_bos_token
      : hasTemplate ? template.before.length > 0 : this.bosId !== null;
    this.addEos = typeof config.add_eos_token === "boolean" ? config.add_eos_token : template.after.length > 0;
    const pre = JSON.stringify(json.pre_tokenizer ?? null) + JSON.stringify(json.decoder ?? null);
    this.byteLevel = pre.includes('"ByteLevel"');
    this.addedTokens = new Set(((json.added_tokens ?? []) as Json[]).map((t) => t.content as string));
  }

  /** From a model folder: tokenizer.json, or vocab.json + merges.txt; tokenizer_config.json when present. */
  static fromDir(dir: string): BpeTokenizer {
    const tj = join(dir, "tokenizer.json");
    const tc = join(dir, "tokenizer_config.json");
    const config = existsSync(tc) ? readJson(tc) : {};
    if (existsSync(tj)) {
      const json = readJson(tj);
      try { return new BpeTokenizer(json, config, null); } catch (e) {
        throw new Error(`${tj}: not a tokenizer randmask reads (${(e as Error).message})`);
      }
    }
    const vocabFile = join(dir, "vocab.json");
    const mergesFile = join(dir, "merges.txt");
    if (!existsSync(vocabFile) || !existsSync(mergesFile)) {
      throw new Error(`${dir}: no tokenizer found (expected tokenizer.json, or vocab.json + merges.txt)`);
    }
    return BpeTokenizer.fromFiles(vocabFile, mergesFile, config);
  }

  static fromFiles(vocabFile: string, mergesFile: string, config: Json = {}, bosToken: string | null = "</s>"): BpeTokenizer {
    return new BpeTokenizer(byteLevelBpeJson(readJson(vocabFile) as Record<string, number>, readMerges(mergesFile)), config, bosToken);
  }

  /** Token ids of `text`, with BOS/EOS as tokenizer_config.json says unless overridden. */
  encode(text: string, opts: { addBos?: boolean; addEos?: boolean } = {}): number[] {
    const ids = this.impl.encode(text, { add_special_tokens: false }).ids;
    const bos = (opts.addBos ?? this.addBos) && this.bosId !== null ? [this.bosId] : [];
    const eos = (opts.addEos ?? this.addEos) && this.eosId !== null ? [this.eosId] : [];
    return [...bos, ...ids, ...eos];
  }

  /** The vocabulary's token strings for ids (byte-level "Ġ", SentencePiece "▁" as stored). */
  tokens(ids: number[]): string[] {
    const vocab = this.vocab();
    return ids.map((i) => vocab[i] ?? this.impl.get_added_tokens_decoder().get(i)?.content ?? `<${i}>`);
  }

  /**
   * Ids (no special tokens added) with each token's [start, end) span in the
   * text (UTF-16 units; a character split over tokens belongs to the first). Each token's byte length comes from its own bytes
   * (byte-level: one byte per symbol; byte fallback `<0xNN>`: one byte; "▁": a
   * space), so a token that is part of a multi-byte character is not mis-sized.
   */
  encodeWithOffsets(text: string): TokenOffsets {
    const enc = this.impl.encode(text, { add_special_tokens: false });
    const utf8 = Buffer.from(text, "utf8");
    const lengths = (enc.tokens as string[]).map((t) => this.tokenByteLength(t));
    // a SentencePiece-style tokenizer prepends "▁" that is not in the text
    let skip = Math.max(0, lengths.reduce((a: number, b: number) => a + b, 0) - utf8.length);
    // a boundary inside a character moves to its end, so a span never splits a character (nor a UTF-16 surrogate pair)
    const charAt = (b: number) => {
      let end = Math.min(b, utf8.length);
      while (end < utf8.length && (utf8[end] & 0xc0) === 0x80) end++;
      return utf8.subarray(0, end).toString("utf8").length;
    };
    const offsets: [number, number][] = [];
    let byte = 0;
    for (const len of lengths) {
      const drop = Math.min(skip, len);
      skip -= drop;
      const start = byte;
      byte += len - drop;
      offsets.push([charAt(start), charAt(byte)]);
    }
    return { ids: enc.ids, offsets };
  }

  private tokenByteLength(token: string): number {
    if (this.addedTokens.has(token)) return Buffer.byteLength(token, "utf8");
    if (this.byteLevel) return token.length; // bytes_to_unicode maps each byte to one BMP symbol
    if (/^<0x[0-9A-Fa-f]{2}>$/.test(token)) return 1;
    return Buffer.byteLength(token.replace(/▁/g, " "), "utf8");
  }

  decode(ids: number[], opts: { skipSpecialTokens?: boolean } = {}): string {
    if (ids.length === 0) return "";
    return this.impl.decode(ids, { skip_special_tokens: opts.skipSpecialTokens ?? true, clean_up_tokenization_spaces: false });
  }

  tokenToId(token: string): number | undefined { return this.impl.token_to_id(token); }

  private vocab(): string[] { return (this.impl.model as unknown as { vocab: string[] }).vocab; }

  /** Ids of every token whose text contains a newline (byte-level "Ċ", byte fallback `<0x0A>`): where generation stops. */
  newlineTokenIds(): number[] {
    const out: number[] = [];
    this.vocab().forEach((t, id) => {
      if (typeof t !== "string") return;
      if (this.byteLevel ? t.includes("Ċ") : t.includes("\n") || t === "<0x0A>") out.push(id);
    });
    return out;
  }
}
