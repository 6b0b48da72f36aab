// safetensors reader and writer (single file and sharded; folders of either
// format are loaded by checkpoint.ts). The header is
// validated completely before any tensor is allocated; tensors are then read
// one at a time straight into native memory, so loading never holds a second
// copy of the model. Writes go to a temp file renamed into place.
import { closeSync, fstatSync, openSync, readSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { replaceAtomically, writeJsonAtomic } from "./atomic.js";
import { fsReason } from "./fs-reason.js";
import { type DType, DTYPE_BYTES, Tensor, fromFile } from "../engine/index.js";
import { native } from "../engine/native.js";

const FILE_DTYPES: Record<string, DType> = {
  F32: "float32", F64: "float64", F16: "float16", BF16: "bfloat16", I64: "int64", I32: "int32", I16: "int16", I8: "int8", BOOL: "bool", U8: "uint8",
};
const DTYPE_CODES = Object.fromEntries(Object.entries(FILE_DTYPES).map(([k, v]) => [v, k])) as Record<DType, string>;

/** Largest header we accept (the reference implementation's limit). */
const MAX_HEADER_BYTES = 100_000_000;

export class SafetensorsError extends Error {
  constructor(file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = "SafetensorsError";
  }
}

export interface TensorEntry {
  name: string;
  dtype: DType;
  shape: number[];
  /** Absolute byte offset of the data in the file. */
  offset: number;
  byteLength: number;
}

export interface SafetensorsHeader {
  file: string;
  tensors: TensorEntry[];
  metadata: Record<string, string>;
}

/** Reads and validates a safetensors header; throws one SafetensorsError naming the file and tensor. */
export function readHeader(file: string): SafetensorsHeader {
  if (/\.(bin|pt|pth|pkl)$/.test(file)) {
    throw new SafetensorsError(file, "is a PyTorch pickle checkpoint, not safetensors: load its folder with loadCheckpoint(), " +
      "or convert it with `randmask convert`");
  }
  let fd: number;
  try { fd = openSync(file, "r"); } catch (e) {
    throw new SafetensorsError(file, fsReason(e));
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new SafetensorsError(file, "is a folder, expected a safetensors file");
    const size = stat.size;
    if (size < 8) throw new SafetensorsError(file, `truncated: ${size} bytes, a safetensors file has at least 8`);
    const lenBuf = Buffer.alloc(8);
    readSync(fd, lenBuf, 0, 8, 0);
    const headerLen = Number(lenBuf.readBigUInt64LE(0));
    if (headerLen > MAX_HEADER_BYTES) {
      throw new SafetensorsError(file, `not a safetensors file: its first 8 bytes give a header length of ${headerLen} bytes (the limit is ${MAX_HEADER_BYTES})`);
    }
    if (8 + headerLen > size) throw new SafetensorsError(file, `header length ${headerLen} runs past the end of the file (${size} bytes)`);
    const headerBuf = Buffer.alloc(headerLen);
    readSync(fd, headerBuf, 0, headerLen, 8);
    let json: unknown;
    try { json = JSON.parse(headerBuf.toString("utf8")); } catch (e) {
      throw new SafetensorsError(file, `header is not valid JSON (${(e as Error).message})`);
    }
    if (json === null || typeof json !== "object" || Array.isArray(json)) throw new SafetensorsError(file, "header is not a JSON object");
    return { file, ...validateEntries(file, json as Record<string, unknown>, 8 + headerLen, size) };
  } finally {
    closeSync(fd);
  }
}

function validateEntries(file: string, header: Record<string, unknown>, dataStart: number, fileSize: number) {
  const dataLen = fileSize - dataStart;
  const tensors: TensorEntry[] = [];
  let metadata: Record<string, string> = {};
  const ranges: { name: string; begin: number; end: number }[] = [];
  for (const [name, raw] of Object.entries(header)) {
    if (name === "__metadata__") {
      if (raw === null || typeof raw !== "object") throw new SafetensorsError(file, "__metadata__ must be an object of strings");
      metadata = raw as Record<string, string>;
      continue;
    }
    const bad = (msg: string) => new SafetensorsError(file, `tensor '${name}': ${msg}`);
    if (raw === null || typeof raw !== "object") throw bad("entry is not an object");
    const { dtype, shape, data_offsets: offs } = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof dtype !== "string" || !(dtype in FILE_DTYPES)) {
      throw bad(`unsupported dtype ${JSON.stringify(dtype)} (expected one of ${Object.keys(FILE_DTYPES).join(", ")})`);
    }
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw bad(`shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw bad(`data_offsets ${JSON.stringify(offs)} is not [begin, end]`);
    }
    const [begin, end] = offs as [number, number];
    if (end < begin) throw bad(`data_offsets [${begin}, ${end}] end before they begin`);
    if (end > dataLen) throw bad(`data_offsets [${begin}, ${end}] run past the end of the data (${dataLen} bytes): file truncated?`);
    const dt = FILE_DTYPES[dtype];
    const want = (shape as number[]).reduce((a, b) => a * b, 1) * DTYPE_BYTES[dt];
    if (end - begin !== want) throw bad(`holds ${end - begin} bytes but shape [${shape}] of ${dtype} needs ${want}`);
    tensors.push({ name, dtype: dt, shape: shape as number[], offset: dataStart + begin, byteLength: end - begin });
    ranges.push({ name, begin, end });
  }
  // The data must be packed: ranges in order, no overlaps and no holes.
  ranges.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  for (const r of ranges) {
    if (r.begin < cursor) throw new SafetensorsError(file, `tensor '${r.name}': data_offsets [${r.begin}, ${r.end}] overlap the previous tensor (ends at ${cursor})`);
    if (r.begin > cursor) throw new SafetensorsError(file, `tensor '${r.name}': data_offsets start at ${r.begin}, leaving a hole after byte ${cursor}`);
    cursor = r.end;
  }
  if (cursor !== dataLen) throw new SafetensorsError(file, `${dataLen - cursor} bytes after the last tensor belong to none`);
  return { tensors, metadata };
}

/** Loads every tensor of one file (or those `filter` accepts), one at a time. */
export function loadFile(file: string, filter: (name: string) => boolean = () => true): Map<string, Tensor> {
  const header = readHeader(file);
  const out = new Map<string, Tensor>();
  for (const e of header.tensors) if (filter(e.name)) out.set(e.name, fromFile(file, e.offset, e.shape, e.dtype));
  return out;
}

/** Writes tensors to `file` atomically (temp file, then rename). Keys are written sorted. */
export function saveFile(file: string, tensors: Map<string, Tensor>, metadata: Record<string, string> = {}): void {
  const names = [...tensors.keys()].sort();
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  for (const name of names) {
    const t = tensors.get(name)!;
    const bytes = t.numel * DTYPE_BYTES[t.dtype];
    header[name] = { dtype: DTYPE_CODES[t.dtype], shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (json.length % 8)) % 8); // align the data to 8 bytes, as the reference writer does
  const headerBuf = Buffer.from(json, "utf8");
  const lenBuf = Buffer.alloc(8);
  lenBuf.writeBigUInt64LE(BigInt(headerBuf.length));
  replaceAtomically(file, (tmp) => {
    writeFileSync(tmp, Buffer.concat([lenBuf, headerBuf]));
    for (const name of names) native.writeToFile(tensors.get(name)!.handle, tmp);
  });
}

/** Writes a folder's weights as shards of at most maxShardBytes, with model.safetensors.index.json. */
export function saveSharded(dir: string, tensors: Map<string, Tensor>, maxShardBytes: number, metadata: Record<string, string> = {}): void {
  const names = [...tensors.keys()].sort();
  const shards: string[][] = [[]];
  let size = 0;
  for (const n of names) {
    const t = tensors.get(n)!;
    const bytes = t.numel * DTYPE_BYTES[t.dtype];
    if (size > 0 && size + bytes > maxShardBytes) { shards.push([]); size = 0; }
    shards[shards.length - 1].push(n);
    size += bytes;
  }
  const weightMap: Record<string, string> = {};
  let total = 0;
  shards.forEach((shard, i) => {
    const fname = `model-${String(i + 1).padStart(5, "0")}-of-${String(shards.length).padStart(5, "0")}.safetensors`;
    saveFile(join(dir, fname), new Map(shard.map((n) => [n, tensors.get(n)!])), metadata);
    for (const n of shard) {
      weightMap[n] = fname;
      total += tensors.get(n)!.numel * DTYPE_BYTES[tensors.get(n)!.dtype];
    }
  });
  writeJsonAtomic(join(dir, "model.safetensors.index.json"), { metadata: { total_size: total }, weight_map: weightMap });
}
