// MATLAB Level 5 MAT-files (MathWorks, "MAT-File Format", 2019b), numeric
// arrays only: what SVHN's format-2 files (train_32x32.mat, test_32x32.mat)
// hold. Written here because the one npm reader (mat-for-js) is GPL-3.0 and
// builds nested JS arrays element by element (SVHN's 225 M pixels would take
// gigabytes of heap); this returns typed-array views over the file's bytes.
import { inflateSync } from "node:zlib";
import { DatasetFileError } from "./image.js";

/** A numeric MATLAB array: `dims` as MATLAB gives them, `data` in column-major order (first index fastest). */
export interface MatArray {
  name: string;
  dims: number[];
  data: Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array | Int32Array | Float32Array | Float64Array | BigInt64Array | BigUint64Array;
}

const MI_MATRIX = 14;
const MI_COMPRESSED = 15;
// miINT8 … miUINT64 → typed array constructors (types 8, 10, 11 are reserved)
const NUMERIC: Record<number, { bytes: number; make: (b: ArrayBuffer, o: number, n: number) => MatArray["data"] }> = {
  1: { bytes: 1, make: (b, o, n) => new Int8Array(b, o, n) },
  2: { bytes: 1, make: (b, o, n) => new Uint8Array(b, o, n) },
  3: { bytes: 2, make: (b, o, n) => new Int16Array(b, o, n) },
  4: { bytes: 2, make: (b, o, n) => new Uint16Array(b, o, n) },
  5: { bytes: 4, make: (b, o, n) => new Int32Array(b, o, n) },
  6: { bytes: 4, make: (b, o, n) => new Uint32Array(b, o, n) },
  7: { bytes: 4, make: (b, o, n) => new Float32Array(b, o, n) },
  9: { bytes: 8, make: (b, o, n) => new Float64Array(b, o, n) },
  12: { bytes: 8, make: (b, o, n) => new BigInt64Array(b, o, n) },
  13: { bytes: 8, make: (b, o, n) => new BigUint64Array(b, o, n) },
};
const NUMERIC_CLASSES = new Set([6, 7, 8, 9, 10, 11, 12, 13, 14, 15]); // mxDOUBLE … mxUINT64

interface Element { type: number; body: Uint8Array; next: number }

/**
 * Reads every numeric, real array of a little-endian Level 5 MAT-file (compressed
 * or not) by name; other variables (cells, structs, chars, sparse, complex) are skipped.
 * @throws DatasetFileError naming `file` for a v7.3 (HDF5) or big-endian file, or a truncated or corrupt one.
 */
export function readMat5(bytes: Uint8Array, file: string): Map<string, MatArray> {
  const fail = (msg: string): never => { throw new DatasetFileError(file, msg); };
  if (bytes.length < 128) fail(`truncated MAT-file (${bytes.length} bytes, the header alone is 128)`);
  const text = String.fromCharCode(...bytes.subarray(0, 116));
  if (text.startsWith("MATLAB 7.3")) fail("MATLAB v7.3 (HDF5) MAT-files are not supported; save with -v7 (Level 5)");
  const endian = String.fromCharCode(bytes[126], bytes[127]);
  if (endian === "MI") fail("big-endian MAT-files are not supported");
  if (endian !== "IM" || !text.startsWith("MATLAB")) fail("not a MATLAB Level 5 MAT-file (bad header)");
  const out = new Map<string, MatArray>();
  let pos = 128;
  while (pos < bytes.length) {
    const el = element(bytes, pos, fail);
    pos = el.next;
    let body = el.body;
    let type = el.type;
    if (type === MI_COMPRESSED) {
      let plain: Uint8Array;
      try { plain = new Uint8Array(inflateSync(body)); } catch (e) {
        return fail(`corrupt or truncated compressed variable (${(e as Error).message})`);
      }
      const inner = element(plain, 0, fail);
      [type, body] = [inner.type, inner.body];
    }
    if (type !== MI_MATRIX) continue;
    const arr = matrix(body, fail);
    if (arr) out.set(arr.name, arr);
  }
  return out;
}

/** The data element at `pos`: its tag (full or small format), body, and where the next element starts. */
function element(bytes: Uint8Array, pos: number, fail: (m: string) => never): Element {
  if (pos + 8 > bytes.length) fail(`truncated MAT-file: a data element's tag at byte ${pos} runs past the end`);
  const view = new DataView(bytes.buffer, bytes.byteOffset + pos, 8);
  const first = view.getUint32(0, true);
  if (first >>> 16 !== 0) { // small data element: type and size share 4 bytes, data in the next 4
    const n = first >>> 16;
    if (n > 4) fail(`corrupt MAT-file: small data element at byte ${pos} claims ${n} bytes`);
    return { type: first & 0xffff, body: bytes.subarray(pos + 4, pos + 4 + n), next: pos + 8 };
  }
  const n = view.getUint32(4, true);
  const end = pos + 8 + n;
  if (end > bytes.length) fail(`truncated MAT-file: a data element at byte ${pos} needs ${n} bytes, ${bytes.length - pos - 8} remain`);
  // compressed elements are not padded; all others are to a multiple of 8 bytes
  return { type: first, body: bytes.subarray(pos + 8, end), next: first === MI_COMPRESSED ? end : pos + 8 + Math.ceil(n / 8) * 8 };
}

function matrix(body: Uint8Array, fail: (m: string) => never): MatArray | null {
  if (body.length === 0) return null; // an empty array
  const flags = element(body, 0, fail);
  const dimsEl = element(body, flags.next, fail);
  const nameEl = element(body, dimsEl.next, fail);
  const flagWord = new DataView(flags.body.buffer, flags.body.byteOffset, 4).getUint32(0, true);
  const mxClass = flagWord & 0xff;
  if (!NUMERIC_CLASSES.has(mxClass) || flagWord & 0x0800) return null; // not numeric, or complex
  const dims = Array.from({ length: dimsEl.body.length / 4 }, (_, i) =>
    new DataView(dimsEl.body.buffer, dimsEl.body.byteOffset + 4 * i, 4).getInt32(0, true));
  const name = new TextDecoder().decode(nameEl.body);
  const real = element(body, nameEl.next, fail);
  const kind = NUMERIC[real.type];
  if (!kind) fail(`corrupt MAT-file: variable '${name}' stores its values as data type ${real.type}`);
  const count = dims.reduce((a, b) => a * b, 1);
  if (real.body.length !== count * kind.bytes) fail(`corrupt MAT-file: variable '${name}' [${dims}] holds ${real.body.length} bytes, expected ${count * kind.bytes}`);
  // typed arrays need aligned offsets; copy when the view is not aligned
  const src = real.body.byteOffset % kind.bytes === 0 ? real.body : real.body.slice();
  return { name, dims, data: kind.make(src.buffer as ArrayBuffer, src.byteOffset, count) };
}
