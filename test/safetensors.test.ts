// safetensors I/O: bitwise round trips, sharding, and strict rejection of bad files.
import { test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync, existsSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { tensor, tidy } from "../src/engine/index.js";
import { loadFile, readHeader, saveFile, saveSharded } from "../src/io/safetensors.js";
import { loadCheckpoint } from "../src/io/checkpoint.js";
import { readConfig } from "../src/models/config.js";
import { readModelConfig } from "../src/models/registry.js";
import { OPTForCausalLM } from "../src/models/opt.js";
import { readVisionConfig } from "../src/models/vision/config.js";
import { sharedDir } from "./helpers.js";

const fixture = join(sharedDir, "fixtures", "opt-tiny-prenorm");
const tmp = () => mkdtempSync(join(tmpdir(), "randmask-st-"));

/** A safetensors file from a header object and a data length. */
function craft(header: unknown, dataBytes: number, headerLenOverride?: number): string {
  const json = Buffer.from(typeof header === "string" ? header : JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(headerLenOverride ?? json.length));
  const file = join(tmp(), "bad.safetensors");
  writeFileSync(file, Buffer.concat([len, json, Buffer.alloc(dataBytes)]));
  return file;
}

test("load → save → load is bitwise equal, and all dtypes survive", () => tidy(() => {
  const a = loadFile(join(fixture, "model.safetensors"));
  a.set("extra.i64", tensor([1, -2, 3], [3], "int64"));
  a.set("extra.bf16", tensor([1.5, -2], [2], "bfloat16"));
  a.set("extra.f16", tensor([0.25], [1], "float16"));
  a.set("extra.i32", tensor([7], [1], "int32"));
  a.set("extra.i16", tensor([-32768, 32767], [2], "int16"));
  a.set("extra.i8", tensor([-128, 127], [2], "int8"));
  a.set("extra.bool", tensor([1, 0], [2], "bool"));
  const file = join(tmp(), "model.safetensors");
  saveFile(file, a, { format: "pt" });
  const b = loadFile(file);
  assert.deepEqual([...b.keys()].sort(), [...a.keys()].sort());
  for (const [k, t] of a) assert.ok(t.equal(b.get(k)!), k);
  assert.deepEqual(readHeader(file).metadata, { format: "pt" });
}));

test("sharded and single-file loads agree", () => tidy(() => {
  const single = loadCheckpoint(fixture);
  const dir = tmp();
  saveSharded(dir, single, 100_000);
  const shards = readdirSync(dir).filter((f) => f.endsWith(".safetensors"));
  assert.ok(shards.length > 2, `expected several shards, got ${shards.length}`);
  const sharded = loadCheckpoint(dir);
  assert.equal(sharded.size, single.size);
  for (const [k, t] of single) assert.ok(t.equal(sharded.get(k)!), k);
}));

test("a model saved from randmask loads back with identical outputs", () => tidy(() => {
  const m = OPTForCausalLM.load(fixture);
  const dir = tmp();
  copyFileSync(join(fixture, "config.json"), join(dir, "config.json"));
  saveFile(join(dir, "model.safetensors"), m.stateDict());
  const m2 = OPTForCausalLM.load(dir);
  const ids = tensor([2, 10, 20, 30], [1, 4], "int64");
  assert.ok(m.forward(ids).logits.equal(m2.forward(ids).logits));
  m.dispose(); m2.dispose();
}));

test("malformed files each give their own clear error", () => {
  const good = readFileSync(join(fixture, "model.safetensors"));
  const truncated = join(tmp(), "t.safetensors");
  writeFileSync(truncated, good.subarray(0, good.length - 100));
  assert.throws(() => readHeader(truncated), /run past the end of the data .* truncated/);
  const tiny = join(tmp(), "tiny.safetensors");
  writeFileSync(tiny, Buffer.from([1, 2, 3]));
  assert.throws(() => readHeader(tiny), /truncated: 3 bytes/);
  assert.throws(() => readHeader(craft({}, 0, 5000)), /header length 5000 runs past the end of the file/);
  assert.throws(() => readHeader(craft("{not json", 0)), /header is not valid JSON/);
  assert.throws(() => readHeader(craft({
    a: { dtype: "F32", shape: [2], data_offsets: [0, 8] }, b: { dtype: "F32", shape: [2], data_offsets: [4, 12] },
  }, 12)), /tensor 'b': data_offsets \[4, 12\] overlap the previous tensor/);
  assert.throws(() => readHeader(craft({ a: { dtype: "F32", shape: [3], data_offsets: [0, 8] } }, 8)),
    /tensor 'a': holds 8 bytes but shape \[3\] of F32 needs 12/);
  assert.throws(() => readHeader(craft({ a: { dtype: "Q4", shape: [2], data_offsets: [0, 8] } }, 8)),
    /tensor 'a': unsupported dtype "Q4"/);
  assert.throws(() => readHeader(craft({ a: { dtype: "F32", shape: [2], data_offsets: [8, 16] } }, 16)),
    /leaving a hole/);
  assert.throws(() => readHeader(join(tmp(), "pytorch_model.bin")), /is a PyTorch pickle checkpoint, not safetensors/);
});

test("config errors name the file and what is supported", () => {
  const dir = tmp();
  const cfg = JSON.parse(readFileSync(join(fixture, "config.json"), "utf8"));
  writeFileSync(join(dir, "a.json"), JSON.stringify({ ...cfg, model_type: "falcon" }));
  assert.throws(() => readModelConfig(join(dir, "a.json")), /a\.json: model_type "falcon" is not supported \(supported: opt, gpt2, llama, mistral, qwen2\)/);
  const { hidden_size: _drop, ...noHidden } = cfg;
  writeFileSync(join(dir, "b.json"), JSON.stringify(noHidden));
  assert.throws(() => readConfig(join(dir, "b.json")), /missing required field "hidden_size"/);
  writeFileSync(join(dir, "c.json"), JSON.stringify({ ...cfg, hidden_size: 63 }));
  assert.throws(() => readConfig(join(dir, "c.json")), /not divisible by num_attention_heads/);
  // a size of 0 builds no model: refused in every family, naming the field
  const families: [string, Record<string, unknown>][] = ["opt-tiny-prenorm", "gpt2-tiny", "llama-tiny", "vit-tiny", "clip-vision-tiny"]
    .map((f) => [f, JSON.parse(readFileSync(join(sharedDir, "fixtures", f, "config.json"), "utf8"))]);
  const sizeKeys = ["max_position_embeddings", "n_positions", "vocab_size", "num_hidden_layers", "n_layer", "ffn_dim", "intermediate_size", "n_inner",
    "num_attention_heads", "n_head", "num_key_value_heads", "image_size", "patch_size"];
  let checked = 0;
  for (const [name, c] of families) {
    for (const key of sizeKeys.filter((k) => k in c && c[k] !== null)) {
      const file = join(dir, `${name}-${key}.json`);
      writeFileSync(file, JSON.stringify({ ...c, [key]: 0 }));
      const read = c.model_type === "vit" || String(c.model_type).startsWith("clip") ? () => readVisionConfig(file) : () => readModelConfig(file);
      assert.throws(read, new RegExp(`${name}-${key}\\.json: "${key}" must be a positive integer, got 0`), `${name} ${key}`);
      checked++;
    }
  }
  assert.ok(checked >= 15, `${checked} fields checked`);
});

test("a checkpoint that does not fit its config is refused with the tensor named", () => {
  const dir = tmp();
  const cfg = JSON.parse(readFileSync(join(fixture, "config.json"), "utf8"));
  writeFileSync(join(dir, "config.json"), JSON.stringify({ ...cfg, ffn_dim: 128 }));
  copyFileSync(join(fixture, "model.safetensors"), join(dir, "model.safetensors"));
  assert.throws(() => OPTForCausalLM.load(dir), /fc1\.weight' has shape \[256,64\] but config.json implies \[128,64\]/);
  const empty = tmp();
  writeFileSync(join(empty, "config.json"), JSON.stringify(cfg));
  writeFileSync(join(empty, "pytorch_model.bin"), "x");
  assert.throws(() => OPTForCausalLM.load(empty), /pytorch_model\.bin: truncated: 1 bytes is no PyTorch checkpoint/);
});

test("fuzz: random bytes and mutated headers never crash the reader", () => {
  const good = readFileSync(join(fixture, "model.safetensors"));
  const headerLen = Number(good.readBigUInt64LE(0));
  let seed = 12345;
  const rnd = () => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed / 0x7fffffff; };
  const dir = tmp();
  for (let i = 0; i < 300; i++) {
    let buf: Buffer;
    if (i % 3 === 0) {
      buf = Buffer.alloc(Math.floor(rnd() * 64));
      for (let j = 0; j < buf.length; j++) buf[j] = Math.floor(rnd() * 256);
    } else {
      buf = Buffer.from(good.subarray(0, 8 + headerLen + 64));
      const flips = 1 + Math.floor(rnd() * 4);
      for (let f = 0; f < flips; f++) buf[Math.floor(rnd() * (8 + headerLen))] = Math.floor(rnd() * 256);
    }
    const file = join(dir, `f${i}.safetensors`);
    writeFileSync(file, buf);
    try {
      const h = readHeader(file);
      // a header that survives validation must describe readable data
      tidy(() => { for (const e of h.tensors) loadFile(file, (n) => n === e.name); });
    } catch (e) {
      assert.ok(e instanceof Error && e.message.startsWith(file), `unexpected error: ${(e as Error).message}`);
    }
  }
  assert.ok(existsSync(dir));
});
