// A small writer of torch.save's zip format for tests and benchmarks: a state
// dict pickled as torch does it (protocol 2, OrderedDict of _rebuild_tensor_v2
// over typed storages) and one stored zip entry per storage. Tensors given as
// the same JS object share one storage, as tied weights do in torch. The
// format itself is pinned by the torch-written fixtures; this only makes
// model-sized files. Data goes to disk one tensor at a time.
import { appendFileSync, writeFileSync } from "node:fs";
import { crc32 } from "node:zlib";
import { type Tensor, DTYPE_BYTES } from "../src/engine/index.js";
import { native } from "../src/engine/native.js";

const STORAGE: Record<string, string> = {
  float32: "FloatStorage", float16: "HalfStorage", bfloat16: "BFloat16Storage", float64: "DoubleStorage", int64: "LongStorage",
  int32: "IntStorage", int16: "ShortStorage", int8: "CharStorage", uint8: "ByteStorage", bool: "BoolStorage",
};

class Pickler {
  private parts: Buffer[] = [];
  op(...bytes: number[]) { this.parts.push(Buffer.from(bytes)); return this; }
  global(module: string, name: string) { this.parts.push(Buffer.from(`c${module}\n${name}\n`, "latin1")); return this; }
  str(s: string) {
    const b = Buffer.from(s, "utf8");
    const len = Buffer.alloc(4); len.writeUInt32LE(b.length);
    this.parts.push(Buffer.from([0x58]), len, b);
    return this;
  }
  int(n: number) {
    if (n >= 0 && n < 2 ** 31) { const b = Buffer.alloc(5); b[0] = 0x4a; b.writeInt32LE(n, 1); this.parts.push(b); return this; }
    const b = Buffer.alloc(10); b[0] = 0x8a; b[1] = 8; b.writeBigInt64LE(BigInt(n), 2); this.parts.push(b);
    return this;
  }
  tuple(xs: number[]) { this.op(0x28); for (const x of xs) this.int(x); return this.op(0x74); }
  bytes() { return Buffer.concat(this.parts); }
}

function stateDictPickle(entries: { name: string; key: string; dtype: string; numel: number; shape: number[] }[]): Buffer {
  const p = new Pickler().op(0x80, 2).global("collections", "OrderedDict").op(0x29, 0x52).op(0x28);
  for (const e of entries) {
    p.str(e.name).global("torch._utils", "_rebuild_tensor_v2").op(0x28);
    p.op(0x28).str("storage").global("torch", STORAGE[e.dtype]).str(e.key).str("cpu").int(e.numel).op(0x74, 0x51);
    const stride = e.shape.map((_, i) => e.shape.slice(i + 1).reduce((a, b) => a * b, 1));
    p.int(0).tuple(e.shape).tuple(stride).op(0x89).global("collections", "OrderedDict").op(0x29, 0x52);
    p.op(0x74, 0x52);
  }
  return p.op(0x75, 0x2e).bytes();
}

interface Written { name: string; offset: number; size: number; crc: number }

/** Writes `tensors` as a torch.save zip file (archive folder `name`, as torch uses the file's stem). */
export function writeTorchZip(file: string, tensors: Map<string, Tensor>, name = "archive"): void {
  const keys = new Map<Tensor, string>();
  const entries = [...tensors].map(([n, t]) => {
    if (!keys.has(t)) keys.set(t, String(keys.size));
    return { name: n, key: keys.get(t)!, dtype: t.dtype, numel: t.numel, shape: t.shape };
  });
  writeFileSync(file, Buffer.alloc(0));
  let offset = 0;
  const written: Written[] = [];
  const local = (entryName: string, size: number, crc: number) => {
    const nameBuf = Buffer.from(entryName);
    const h = Buffer.alloc(30);
    h.writeUInt32LE(0x04034b50, 0); h.writeUInt16LE(20, 4); h.writeUInt32LE(crc, 14);
    h.writeUInt32LE(size, 18); h.writeUInt32LE(size, 22); h.writeUInt16LE(nameBuf.length, 26);
    appendFileSync(file, Buffer.concat([h, nameBuf]));
    written.push({ name: entryName, offset, size, crc });
    offset += 30 + nameBuf.length + size;
  };
  const small = (entryName: string, data: Buffer) => { local(entryName, data.length, crc32(data)); appendFileSync(file, data); };
  small(`${name}/data.pkl`, stateDictPickle(entries));
  small(`${name}/byteorder`, Buffer.from("little"));
  for (const [t, key] of keys) {
    const bytes = Buffer.from(native.toBuffer(t.handle) as ArrayBuffer);
    if (bytes.length !== t.numel * DTYPE_BYTES[t.dtype]) throw new Error("unexpected tensor byte length");
    local(`${name}/data/${key}`, bytes.length, crc32(bytes));
    native.writeToFile(t.handle, file);
  }
  small(`${name}/version`, Buffer.from("3\n"));
  const dirStart = offset;
  const central = written.map((w) => {
    const nameBuf = Buffer.from(w.name);
    const h = Buffer.alloc(46);
    h.writeUInt32LE(0x02014b50, 0); h.writeUInt16LE(20, 4); h.writeUInt16LE(20, 6); h.writeUInt32LE(w.crc, 16);
    h.writeUInt32LE(w.size, 20); h.writeUInt32LE(w.size, 24); h.writeUInt16LE(nameBuf.length, 28); h.writeUInt32LE(w.offset, 42);
    return Buffer.concat([h, nameBuf]);
  });
  const dir = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0); end.writeUInt16LE(written.length, 8); end.writeUInt16LE(written.length, 10);
  end.writeUInt32LE(dir.length, 12); end.writeUInt32LE(dirStart, 16);
  appendFileSync(file, Buffer.concat([dir, end]));
}
