// The PyTorch checkpoint reader: torch-written fixtures reproduced exactly in
// both formats, malicious pickles refused without running anything, and a fuzz
// run in which every broken file ends in a CheckpointError naming it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randn, tensor, tidy } from "../src/engine/index.js";
import { CheckpointError } from "../src/io/checkpoint-error.js";
import { loadTorchFile, readTorchCheckpoint } from "../src/io/torch-checkpoint.js";
import { repoRoot, sharedDir } from "./helpers.js";
import { writeTorchZip } from "./torch-writer.js";

const fixtures = join(sharedDir, "fixtures", "torch-pickle");
const expected = JSON.parse(readFileSync(join(fixtures, "expected.json"), "utf8")).tensors as
  Record<string, { dtype: string; shape: number[]; values: unknown }>;
const tmp = () => mkdtempSync(join(tmpdir(), "randmask-pickle-"));

for (const format of ["zip", "legacy"]) {
  test(`${format}.bin written by torch reproduces expected.json exactly`, () => tidy(() => {
    const file = join(fixtures, `${format}.bin`);
    assert.equal(readTorchCheckpoint(file).format, format);
    const loaded = loadTorchFile(file);
    assert.deepEqual([...loaded.keys()], Object.keys(expected));
    for (const [name, want] of Object.entries(expected)) {
      const t = loaded.get(name)!;
      assert.equal(t.dtype, want.dtype, name);
      assert.deepEqual(t.shape, want.shape, name);
      const values = want.dtype === "bool" ? JSON.parse(JSON.stringify(t.toNested()), (_k, v) => (typeof v === "number" ? v === 1 : v)) : t.toNested();
      assert.deepEqual(values, want.values, name);
    }
  }));
}

test("views of one storage are described by one storage and read from it once", () => {
  for (const format of ["zip", "legacy"]) {
    const ckpt = readTorchCheckpoint(join(fixtures, `${format}.bin`));
    const byName = new Map(ckpt.tensors.map((t) => [t.name, t]));
    assert.equal(byName.get("shared_a")!.storageKey, byName.get("shared_b")!.storageKey);
    assert.equal(byName.get("transposed")!.storageKey, byName.get("base")!.storageKey);
    assert.deepEqual(byName.get("transposed")!.stride, [1, 4]);
  }
  // tied weights (one tensor under two names) come back as one memory: writing one changes the other
  tidy(() => {
    const w = tensor([1, 2, 3, 4, 5, 6], [2, 3]);
    const file = join(tmp(), "tied.bin");
    writeTorchZip(file, new Map([["embed.weight", w], ["lm_head.weight", w], ["bias", tensor([7], [1])]]));
    assert.equal(readTorchCheckpoint(file).storages.size, 2);
    const loaded = loadTorchFile(file);
    loaded.get("embed.weight")!.mul_(10);
    assert.deepEqual(loaded.get("lm_head.weight")!.toNumbers(), [10, 20, 30, 40, 50, 60]);
    assert.deepEqual(loaded.get("bias")!.toNumbers(), [7]);
  });
});

test("malicious.bin is refused at its global, naming the file and the global", () => {
  const file = join(fixtures, "malicious.bin");
  assert.throws(() => loadTorchFile(file), (e: unknown) => e instanceof CheckpointError &&
    e.message.startsWith(`${file}: refused pickle global 'posix.system'`) && /nothing in the file was run/.test(e.message));
});

/** A zip checkpoint whose data.pkl is `pkl` (storages none). */
function zipWithPickle(pkl: Buffer): string {
  const file = join(tmp(), "evil.bin");
  writeTorchZip(file, new Map());
  const good = readFileSync(file);
  // swap the empty state dict's pickle (the first entry) for `pkl`: rebuild by hand
  const nameLen = good.readUInt16LE(26);
  const oldSize = good.readUInt32LE(18);
  const head = Buffer.from(good.subarray(0, 30 + nameLen));
  head.writeUInt32LE(pkl.length, 18); head.writeUInt32LE(pkl.length, 22);
  const rest = good.subarray(30 + nameLen + oldSize);
  const delta = pkl.length - oldSize;
  const out = Buffer.concat([head, pkl, rest]);
  // fix the central directory: first entry's sizes, later entries' offsets, the directory offset
  const eocd = out.length - 22;
  const dirOff = out.readUInt32LE(eocd + 16) + delta;
  out.writeUInt32LE(dirOff, eocd + 16);
  for (let p = dirOff, i = 0; p < eocd; i++) {
    if (i === 0) { out.writeUInt32LE(pkl.length, p + 20); out.writeUInt32LE(pkl.length, p + 24); } else out.writeUInt32LE(out.readUInt32LE(p + 42) + delta, p + 42);
    p += 46 + out.readUInt16LE(p + 28);
  }
  writeFileSync(file, out);
  return file;
}

const str = (s: string) => { const b = Buffer.from(s); const l = Buffer.alloc(4); l.writeUInt32LE(b.length); return Buffer.concat([Buffer.from([0x58]), l, b]); };
const glob = (m: string, n: string) => Buffer.from(`c${m}\n${n}\n`, "latin1");

test("code-running pickles are refused and nothing runs", () => {
  const dir = tmp();
  const marker = join(dir, "pwned");
  const cases: [string, Buffer, RegExp][] = [
    ["os.system", Buffer.concat([Buffer.from([0x80, 2]), glob("os", "system"), str(`touch ${marker}`), Buffer.from([0x85, 0x52, 0x2e])]),
      /refused pickle global 'os\.system'/],
    ["posix.system inside a dict", Buffer.concat([Buffer.from([0x80, 2, 0x7d, 0x28]), str("w"), glob("posix", "system"), str(`touch ${marker}`),
      Buffer.from([0x85, 0x52, 0x75, 0x2e])]), /refused pickle global 'posix\.system'/],
    ["builtins.exec", Buffer.concat([Buffer.from([0x80, 2]), glob("builtins", "exec"), str(`open('${marker}','w')`), Buffer.from([0x85, 0x52, 0x2e])]),
      /refused pickle global 'builtins\.exec'/],
    ["REDUCE on a storage class", Buffer.concat([Buffer.from([0x80, 2]), glob("torch", "FloatStorage"), Buffer.from([0x29, 0x52, 0x2e])]),
      /REDUCE calls 'torch\.FloatStorage', which is not callable here/],
    ["BUILD on a dict", Buffer.concat([Buffer.from([0x80, 2, 0x7d, 0x7d, 0x62, 0x2e])]), /BUILD on dict \(only an OrderedDict's attributes/],
    ["NEWOBJ", Buffer.concat([Buffer.from([0x80, 2]), glob("collections", "OrderedDict"), Buffer.from([0x29, 0x81, 0x2e])]),
      /opcode 0x81 is not one a state dict uses/],
    ["STACK_GLOBAL (protocol 4)", Buffer.concat([Buffer.from([0x80, 4]), str("os"), str("system"), Buffer.from([0x93, 0x2e])]),
      /opcode 0x93 is not one a state dict uses/],
    ["a non-storage persistent id", Buffer.concat([Buffer.from([0x80, 2]), str("module"), Buffer.from([0x85, 0x51, 0x2e])]),
      /persistent id: expected a 5-tuple/],
    ["an unsupported storage dtype", Buffer.concat([Buffer.from([0x80, 2]), glob("torch", "ComplexFloatStorage"), Buffer.from([0x2e])]),
      /refused pickle global 'torch\.ComplexFloatStorage' .*its dtype is not supported/],
  ];
  for (const [what, pkl, re] of cases) {
    const file = zipWithPickle(pkl);
    assert.throws(() => loadTorchFile(file), (e: unknown) => e instanceof CheckpointError && e.message.startsWith(file) && re.test(e.message),
      `${what}: wrong or no error`);
  }
  assert.ok(!existsSync(marker), "a refused pickle ran code");
});

test("legacy storage views and the pre-0.4 _rebuild_tensor are honoured", () => tidy(() => {
  const magic = Buffer.alloc(10);
  let m = 0x1950a86a20f9469cfc6cn;
  for (let i = 0; i < 10; i++) { magic[i] = Number(m & 0xffn); m >>= 8n; }
  const pickles = [
    Buffer.concat([Buffer.from([0x80, 2, 0x8a, 10]), magic, Buffer.from([0x2e])]),
    Buffer.from([0x80, 2, 0x4d, 0xe9, 0x03, 0x2e]),
    Buffer.concat([Buffer.from([0x80, 2, 0x7d]), str("little_endian"), Buffer.from([0x88, 0x73, 0x2e])]),
    // {"w": _rebuild_tensor(<elements 2..4 of root storage 'r'>, 1, (2,), (1,))}
    Buffer.concat([Buffer.from([0x80, 2, 0x7d]), str("w"), glob("torch._utils", "_rebuild_tensor"), Buffer.from([0x28, 0x28]), str("storage"),
      glob("torch", "FloatStorage"), str("r"), str("cpu"), Buffer.from([0x4b, 6, 0x28]), str("v"), Buffer.from([0x4b, 2, 0x4b, 3, 0x74, 0x74, 0x51,
        0x4b, 1, 0x4b, 2, 0x85, 0x4b, 1, 0x85, 0x74, 0x52, 0x73, 0x2e])]),
    Buffer.concat([Buffer.from([0x80, 2, 0x5d, 0x28]), str("r"), Buffer.from([0x65, 0x2e])]),
  ];
  const count = Buffer.alloc(8);
  count.writeBigInt64LE(6n);
  const file = join(tmp(), "old.bin");
  writeFileSync(file, Buffer.concat([...pickles, count, Buffer.from(new Float32Array([0, 1, 2, 3, 4, 5]).buffer)]));
  assert.deepEqual(loadTorchFile(file).get("w")!.toNumbers(), [3, 4]);
}));

test("structural faults each give their own clear error", () => {
  const good = readFileSync(join(fixtures, "zip.bin"));
  const write = (buf: Buffer) => { const f = join(tmp(), "bad.bin"); writeFileSync(f, buf); return f; };
  assert.throws(() => readTorchCheckpoint(write(good.subarray(0, good.length - 10))), /no end-of-central-directory record/);
  const legacy = readFileSync(join(fixtures, "legacy.bin"));
  assert.throws(() => readTorchCheckpoint(write(legacy.subarray(0, legacy.length - 3))), /truncated: storage '\d+' needs bytes/);
  assert.throws(() => readTorchCheckpoint(write(Buffer.concat([legacy, Buffer.alloc(5)]))), /5 bytes after the last storage belong to none/);
  assert.throws(() => readTorchCheckpoint(write(Buffer.from("hello world, not a checkpoint"))), /not a PyTorch checkpoint/);
  // a storage without its zip entry
  const missing = zipWithPickle(Buffer.concat([Buffer.from([0x80, 2, 0x7d]), str("w"), glob("torch._utils", "_rebuild_tensor_v2"),
    Buffer.from([0x28, 0x28]), str("storage"), glob("torch", "FloatStorage"), str("0"), str("cpu"), Buffer.from([0x4b, 100, 0x74, 0x51]),
    Buffer.from([0x4b, 0, 0x4b, 100, 0x85, 0x4b, 1, 0x85, 0x89]), glob("collections", "OrderedDict"), Buffer.from([0x29, 0x52, 0x74, 0x52, 0x73, 0x2e])]));
  const nested = zipWithPickle(Buffer.concat([Buffer.from([0x80, 2, 0x7d]), str("model"), Buffer.from([0x7d, 0x73, 0x2e])]));
  assert.throws(() => readTorchCheckpoint(nested), /tensor 'model': is a dict \(a training checkpoint rather than a state dict\?\), not a tensor/);
  assert.throws(() => readTorchCheckpoint(missing), /storage '0' has no zip entry 'archive\/data\/0'/);
  const tiny = join(tmp(), "t.bin");
  tidy(() => writeTorchZip(tiny, new Map([["w", tensor([1, 2, 3], [3])]])));
  // a storage whose entry is shorter than numel × itemsize (the persistent id's numel 3 → 4)
  const numel = readFileSync(tiny);
  numel[numel.indexOf(Buffer.from([0x4a, 3, 0, 0, 0, 0x74, 0x51])) + 1] = 4;
  assert.throws(() => readTorchCheckpoint(write(numel)), /storage '0' holds 12 bytes but 4 × float32 needs 16/);
  // a view reaching past its storage (the size tuple's 3 → 4)
  const size = readFileSync(tiny);
  size[size.indexOf(Buffer.from([0x28, 0x4a, 3, 0, 0, 0, 0x74])) + 2] = 4;
  assert.throws(() => readTorchCheckpoint(write(size)), /tensor 'w': view .* reaches element 3 of a 3-element storage/);
});

/** The same archive with zip64 records: every size and offset moved into zip64 extra fields, a zip64 end record and locator. */
function toZip64(zip: Buffer): Buffer {
  const eocd = zip.length - 22;
  const count = zip.readUInt16LE(eocd + 10), dirOffset = zip.readUInt32LE(eocd + 16);
  const entries: Buffer[] = [];
  for (let p = dirOffset, i = 0; i < count; i++) {
    const nameLen = zip.readUInt16LE(p + 28), skip = 46 + nameLen + zip.readUInt16LE(p + 30) + zip.readUInt16LE(p + 32);
    const head = Buffer.from(zip.subarray(p, p + 46));
    const extra = Buffer.alloc(28);
    extra.writeUInt16LE(1, 0); extra.writeUInt16LE(24, 2);
    extra.writeBigUInt64LE(BigInt(head.readUInt32LE(24)), 4); extra.writeBigUInt64LE(BigInt(head.readUInt32LE(20)), 12);
    extra.writeBigUInt64LE(BigInt(head.readUInt32LE(42)), 20);
    head.writeUInt32LE(0xffffffff, 20); head.writeUInt32LE(0xffffffff, 24); head.writeUInt32LE(0xffffffff, 42);
    head.writeUInt16LE(28, 30); head.writeUInt16LE(0, 32);
    entries.push(head, zip.subarray(p + 46, p + 46 + nameLen), extra);
    p += skip;
  }
  const dir = Buffer.concat(entries);
  const rec = Buffer.alloc(56);
  rec.writeUInt32LE(0x06064b50, 0); rec.writeBigUInt64LE(44n, 4); rec.writeUInt16LE(45, 12); rec.writeUInt16LE(45, 14);
  rec.writeBigUInt64LE(BigInt(count), 24); rec.writeBigUInt64LE(BigInt(count), 32);
  rec.writeBigUInt64LE(BigInt(dir.length), 40); rec.writeBigUInt64LE(BigInt(dirOffset), 48);
  const loc = Buffer.alloc(20);
  loc.writeUInt32LE(0x07064b50, 0); loc.writeBigUInt64LE(BigInt(dirOffset + dir.length), 8); loc.writeUInt32LE(1, 16);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0); end.writeUInt16LE(0xffff, 8); end.writeUInt16LE(0xffff, 10);
  end.writeUInt32LE(0xffffffff, 12); end.writeUInt32LE(0xffffffff, 16);
  return Buffer.concat([zip.subarray(0, dirOffset), dir, rec, loc, end]);
}

test("zip64 archives (as torch writes for files over 4 GB) read the same", () => tidy(() => {
  const file = join(tmp(), "zip64.bin");
  writeFileSync(file, toZip64(readFileSync(join(fixtures, "zip.bin"))));
  const a = loadTorchFile(join(fixtures, "zip.bin")), b = loadTorchFile(file);
  assert.deepEqual([...b.keys()], [...a.keys()]);
  for (const [k, t] of a) assert.ok(t.equal(b.get(k)!), k);
}));

test("loading a 96 MiB .bin raises peak RSS by its size, not twice it", () => {
  const file = join(tmp(), "big.bin");
  tidy(() => writeTorchZip(file, new Map(Array.from({ length: 6 }, (_, i) => [`layers.${i}.weight`, randn([2048, 2048])]))));
  const size = statSync(file).size;
  const out = execFileSync(process.execPath, [join(repoRoot, "dist", "bench", "bin-load-memory.js"), "load", file], { encoding: "utf8" });
  const { peakMinusBeforeMiB, tensors } = JSON.parse(out.trim().split("\n").pop()!);
  assert.equal(tensors, 6);
  const fileMiB = size / 2 ** 20;
  // the bound: the file plus one 16 MiB tensor plus allocator slack; the control: the data is really in memory
  assert.ok(peakMinusBeforeMiB <= fileMiB + 16 + 8, `peak RSS grew ${peakMinusBeforeMiB} MiB for a ${fileMiB.toFixed(0)} MiB file`);
  assert.ok(peakMinusBeforeMiB >= fileMiB * 0.9, `peak RSS grew only ${peakMinusBeforeMiB} MiB: the measurement missed the tensors`);
});

test("fuzz: mutated and random files never crash, hang or allocate hugely", () => {
  const sources = [readFileSync(join(fixtures, "zip.bin")), readFileSync(join(fixtures, "legacy.bin"))];
  let seed = 4242;
  const rnd = () => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed / 0x7fffffff; };
  const dir = tmp();
  let loaded = 0;
  const peakBefore = process.resourceUsage().maxRSS;
  for (let i = 0; i < 600; i++) {
    let buf: Buffer;
    const src = sources[i % 2];
    if (i % 5 === 0) {
      buf = Buffer.alloc(Math.floor(rnd() * 256));
      for (let j = 0; j < buf.length; j++) buf[j] = Math.floor(rnd() * 256);
      if (i % 10 === 0 && buf.length >= 4) buf.writeUInt32LE(0x04034b50, 0); // random bytes behind a zip signature
    } else if (i % 5 === 1) {
      buf = Buffer.from(src.subarray(0, Math.floor(rnd() * src.length)));
    } else {
      buf = Buffer.from(src);
      const flips = 1 + Math.floor(rnd() * 6);
      // aim most mutations at the structure: pickles, headers and the central directory
      for (let f = 0; f < flips; f++) {
        const p = rnd() < 0.5 ? Math.floor(rnd() * Math.min(buf.length, 1500)) : Math.floor(rnd() * buf.length);
        buf[p] = rnd() < 0.3 ? 0xff : Math.floor(rnd() * 256);
      }
    }
    const file = join(dir, `f${i}.bin`);
    writeFileSync(file, buf);
    try {
      tidy(() => { loadTorchFile(file); });
      loaded++;
    } catch (e) {
      assert.ok(e instanceof CheckpointError && e.message.startsWith(file), `case ${i}: unexpected error: ${(e as Error).stack}`);
    }
  }
  assert.ok(loaded > 10 && loaded < 500, `${loaded} of 600 mutated files loaded: the fuzz did not exercise both outcomes`);
  const grownMiB = (process.resourceUsage().maxRSS - peakBefore) / 1024;
  assert.ok(grownMiB < 64, `peak memory grew by ${grownMiB.toFixed(0)} MiB on files of at most 5 KB`);
});
