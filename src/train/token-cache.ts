// Tokenising a pretraining corpus once: each source file becomes a binary file
// of token ids (uint16 when the vocabulary fits, else uint32), every document
// followed by EOS, plus a JSON manifest. The cache key hashes the file's
// contents and the tokenizer's vocabulary and merges, so a changed input or
// tokenizer makes a new file and an unchanged one is re-used.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, statSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { writeFileAtomic, writeJsonAtomic } from "../io/atomic.js";
import type { BpeTokenizer } from "../tokenizer/bpe-tokenizer.js";
import { Progress } from "./progress.js";

export interface SourceSpec { path: string; weight: number }

/** Parses `a.txt:2,b.jsonl` (weight defaults to 1; a positive number of passes per epoch). */
export function parseSources(spec: string, flag = "--data"): SourceSpec[] {
  const out = spec.split(",").filter(Boolean).map((part) => {
    const m = /^(.*?)(?::([0-9.eE+-]+))?$/.exec(part)!;
    const weight = m[2] === undefined ? 1 : Number(m[2]);
    if (!(weight > 0) || !Number.isFinite(weight)) throw new Error(`${flag} ${part}: the weight after ':' must be a positive number`);
    if (!m[1].endsWith(".txt") && !m[1].endsWith(".jsonl")) throw new Error(`${flag} ${m[1]}: expected a .txt or .jsonl file`);
    return { path: resolve(m[1]), weight };
  });
  if (out.length === 0) throw new Error(`${flag}: expected one or more files`);
  return out;
}

export interface TokenFile {
  source: string;
  /** The id file and its element type. */
  file: string;
  dtype: "uint16" | "uint32";
  tokens: number;
  documents: number;
  bytes: number;
  key: string;
}

/** Hash of the tokenizer files' contents: part of every cache key. */
export function tokenizerHash(dir: string): string {
  const h = createHash("sha256");
  for (const f of ["tokenizer.json", "vocab.json", "merges.txt"]) if (existsSync(join(dir, f))) h.update(f).update(readFileSync(join(dir, f)));
  return h.digest("hex").slice(0, 16);
}

/**
 * Documents of a .txt (the whole file is one document) or .jsonl (one object with
 * a string `text` per line). Throws naming the file for an empty, binary or malformed input.
 */
export function readDocuments(file: string): string[] {
  let buf: Buffer;
  try { buf = readFileSync(file); } catch (e) { throw new Error(`${file}: cannot read (${(e as Error).message})`); }
  if (buf.length === 0) throw new Error(`${file}: empty corpus file`);
  if (buf.subarray(0, 65536).includes(0)) throw new Error(`${file}: binary file (NUL bytes); expected UTF-8 text`);
  const text = new TextDecoder("utf-8", { fatal: false }).decode(buf);
  const bad = (text.slice(0, 65536).match(/\uFFFD/g) ?? []).length;
  if (bad > 16) throw new Error(`${file}: not UTF-8 text (${bad} invalid sequences in the first 64 KiB)`);
  let docs: string[];
  if (file.endsWith(".jsonl")) {
    docs = [];
    text.split("\n").forEach((line, i) => {
      if (!line.trim()) return;
      let row: unknown;
      try { row = JSON.parse(line); } catch { throw new Error(`${file}:${i + 1}: not valid JSON`); }
      const t = (row as { text?: unknown } | null)?.text;
      if (typeof t !== "string") throw new Error(`${file}:${i + 1}: expected an object with a string "text" field`);
      if (t.length) docs.push(t);
    });
  } else docs = text.trim() ? [text] : [];
  if (docs.length === 0) throw new Error(`${file}: no text (empty corpus file)`);
  return docs;
}

// GPT-2's pre-tokenizer pattern (what the ByteLevel pre-tokenizer with use_regex
// splits on). Byte-level BPE never merges across these pieces, so encoding each
// distinct piece once and re-using its ids gives the same ids as encoding the
// whole text, ~10× faster on natural text (word frequencies are Zipfian).
const PRETOKEN = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/** Encodes like tokenizer.encode(text, {addBos: false}), memoising pre-tokens. */
export class CachedEncoder {
  private readonly cache = new Map<string, number[]>();
  private readonly special: RegExp;
  constructor(private readonly tokenizer: BpeTokenizer) {
    this.special = /<\/s>|<s>|<pad>|<unk>|<\|endoftext\|>/;
  }
  encode(text: string): number[] {
    // special-token strings in the text are the tokenizer's to match
    if (this.special.test(text)) return this.tokenizer.encode(text, { addBos: false });
    const out: number[] = [];
    for (const m of text.matchAll(PRETOKEN)) {
      const w = m[0];
      let ids = this.cache.get(w);
      if (!ids) {
        ids = this.tokenizer.encode(w, { addBos: false });
        if (this.cache.size < 1_000_000) this.cache.set(w, ids);
      }
      for (const id of ids) out.push(id);
    }
    return out;
  }
}

/** Pieces of at most ~64 KiB cut after blank lines, so a book is tokenised piece by piece. */
function pieces(doc: string): string[] {
  if (doc.length <= 65536) return [doc];
  const out: string[] = [];
  let start = 0;
  while (start < doc.length) {
    let end = Math.min(doc.length, start + 65536);
    if (end < doc.length) {
      const cut = doc.lastIndexOf("\n\n", end);
      if (cut > start) end = cut + 2;
    }
    out.push(doc.slice(start, end));
    start = end;
  }
  return out;
}

/**
 * The token file of one source in `cacheDir`, tokenising it if no file with the
 * same key exists. Documents are encoded without BOS and each is followed by
 * `eosId` (OPT's `</s>`, which is also its BOS), so packed blocks separate documents.
 */
export function tokenizeSource(file: string, tokenizer: BpeTokenizer, tokHash: string, cacheDir: string, quiet = false): TokenFile {
  let content: Buffer;
  try { content = readFileSync(file); } catch (e) { throw new Error(`${file}: cannot read (${(e as Error).message})`); }
  const key = createHash("sha256").update(content).update(tokHash).digest("hex").slice(0, 16);
  const stem = `${basename(file).replace(/[^A-Za-z0-9._-]/g, "_")}-${key}`;
  const manifestFile = join(cacheDir, `${stem}.json`);
  if (existsSync(manifestFile)) {
    const m = JSON.parse(readFileSync(manifestFile, "utf8")) as TokenFile;
    if (m.key === key && existsSync(m.file) && statSync(m.file).size === m.tokens * (m.dtype === "uint16" ? 2 : 4)) return m;
  }
  const eos = tokenizer.eosId;
  if (eos === null) throw new Error("the tokenizer has no EOS token (</s>)");
  const docs = readDocuments(file);
  const ids: number[][] = [];
  let total = 0;
  const encoder = new CachedEncoder(tokenizer);
  const progress = new Progress(`tokenising ${basename(file)}`, docs.length, "docs", process.stderr, quiet);
  docs.forEach((doc, i) => {
    for (const p of pieces(doc)) { const t = encoder.encode(p); ids.push(t); total += t.length; }
    ids.push([eos]);
    total += 1;
    if (i % 256 === 0 || i === docs.length - 1) progress.update(i + 1);
  });
  const maxId = ids.reduce((m, a) => a.reduce((x, y) => Math.max(x, y), m), 0);
  const dtype = maxId < 65536 ? "uint16" : "uint32";
  const arr = dtype === "uint16" ? new Uint16Array(total) : new Uint32Array(total);
  let o = 0;
  for (const a of ids) { arr.set(a, o); o += a.length; }
  mkdirSync(cacheDir, { recursive: true });
  const binFile = join(cacheDir, `${stem}.${dtype === "uint16" ? "u16" : "u32"}`);
  writeFileAtomic(binFile, new Uint8Array(arr.buffer));
  const manifest: TokenFile = { source: resolve(file), file: binFile, dtype, tokens: total, documents: docs.length, bytes: content.length, key };
  writeJsonAtomic(manifestFile, manifest);
  return manifest;
}

/** The ids of a token file (little-endian, as written on this machine). */
export function readTokens(t: TokenFile): Uint16Array | Uint32Array {
  const buf = readFileSync(t.file);
  const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
  return t.dtype === "uint16" ? new Uint16Array(ab) : new Uint32Array(ab);
}
