// OPT folders as real uploads have them (pytorch_model.bin single or sharded,
// keys with or without `model.`, head tied or stored) give the logits of the
// safetensors fixture they were made from, and `randmask convert` turns any of
// them into a safetensors folder with identical logits, or leaves nothing.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Tensor, tensor, tidy } from "../src/engine/index.js";
import { loadCheckpoint } from "../src/io/checkpoint.js";
import { saveFile } from "../src/io/safetensors.js";
import { alignKeyPrefix } from "../src/io/state-dict-keys.js";
import { OPTForCausalLM } from "../src/models/opt.js";
import { convertCommand, parseShardSize } from "../src/cli/convert-command.js";
import { parseCommand } from "../src/cli/args.js";
import { repoRoot, sharedDir } from "./helpers.js";
import { writeTorchZip } from "./torch-writer.js";

const fixture = join(sharedDir, "fixtures", "opt-tiny-prenorm");
const ref = JSON.parse(readFileSync(join(fixture, "reference.json"), "utf8"));
const refCase = ref.cases[0] as { input_ids: number[][]; logits: number[][][] };
const tmp = () => mkdtempSync(join(tmpdir(), "randmask-convert-"));

/** Logits of a model folder for the fixture's first reference case. */
function logitsOf(dir: string): Tensor {
  const m = OPTForCausalLM.load(dir);
  try {
    return tidy(() => m.forward(tensor(refCase.input_ids.flat(), [1, refCase.input_ids[0].length], "int64")).logits);
  } finally { m.dispose(); }
}

/** The fixture's tensors, keys without `model.` when `bare`, plus the tied head under its own name when `withHead`. */
function fixtureTensors(bare: boolean, withHead: boolean): Map<string, Tensor> {
  const raw = loadCheckpoint(fixture);
  const out = new Map<string, Tensor>();
  for (const [k, t] of raw) out.set(bare ? k.replace(/^model\./, "") : k, t);
  if (withHead) out.set("lm_head.weight", raw.get("model.decoder.embed_tokens.weight")!); // one storage, as torch saves tied weights
  return out;
}

function binFolder(tensors: Map<string, Tensor>, shards = 1): string {
  const dir = tmp();
  copyFileSync(join(fixture, "config.json"), join(dir, "config.json"));
  if (shards === 1) writeTorchZip(join(dir, "pytorch_model.bin"), tensors);
  else {
    const names = [...tensors.keys()];
    const weightMap: Record<string, string> = {};
    for (let s = 0; s < shards; s++) {
      const file = `pytorch_model-0000${s + 1}-of-0000${shards}.bin`;
      const part = names.filter((_, i) => i % shards === s);
      writeTorchZip(join(dir, file), new Map(part.map((n) => [n, tensors.get(n)!])));
      for (const n of part) weightMap[n] = file;
    }
    writeFileSync(join(dir, "pytorch_model.bin.index.json"), JSON.stringify({ metadata: {}, weight_map: weightMap }));
  }
  return dir;
}

test("pytorch_model.bin folders in every upload layout give the safetensors fixture's logits", () => tidy(() => {
  const want = logitsOf(fixture);
  // the fixture itself matches Hugging Face, so every layout below does too
  const got = want.toNested() as number[][][];
  const maxErr = Math.max(...refCase.logits[0].flatMap((row, t) => row.map((v, j) => Math.abs(v - got[0][t][j]))));
  assert.ok(maxErr < 1e-4, `fixture logits differ from Hugging Face by ${maxErr}`);
  const layouts: [string, () => string][] = [
    ["single .bin, model.* keys, head omitted", () => binFolder(fixtureTensors(false, false))],
    ["single .bin, decoder.* keys, tied head stored", () => binFolder(fixtureTensors(true, true))],
    ["sharded .bin with index, decoder.* keys", () => binFolder(fixtureTensors(true, false), 3)],
    ["sharded .bin with index, model.* keys, tied head stored", () => binFolder(fixtureTensors(false, true), 2)],
    ["safetensors, decoder.* keys, head omitted (converted facebook/opt-125m)", () => {
      const dir = tmp();
      copyFileSync(join(fixture, "config.json"), join(dir, "config.json"));
      saveFile(join(dir, "model.safetensors"), fixtureTensors(true, false), { format: "pt" });
      return dir;
    }],
  ];
  for (const [name, make] of layouts) assert.ok(logitsOf(make()).equal(want), name);
}));

test("a key stored both with and without the prefix is refused", () => {
  const a = { id: 1 }, b = { id: 2 };
  assert.deepEqual([...alignKeyPrefix(new Map([["decoder.x", a], ["lm_head.weight", b], ["other", a]]), ["model.decoder.x", "lm_head.weight"], "model.", "dir").keys()],
    ["model.decoder.x", "lm_head.weight", "other"]);
  assert.throws(() => alignKeyPrefix(new Map([["model.decoder.x", a], ["decoder.x", b]]), ["model.decoder.x"], "model.", "some/dir"),
    /some\/dir: holds both 'decoder\.x' and 'model\.decoder\.x'/);
});

const convert = (argv: string[]) => convertCommand.run(parseCommand(convertCommand, argv), []);

test("convert: sharded .bin → safetensors (sharded above the limit) → identical logits; tokenizer files copied", () => tidy(() => {
  const src = binFolder(fixtureTensors(true, false), 2);
  writeFileSync(join(src, "vocab.json"), "{}");
  const out = join(tmp(), "converted");
  convert(["--model", src, "--out", out, "--max-shard-size", "200KB"]);
  const files = readdirSync(out).sort();
  assert.ok(files.includes("model.safetensors.index.json") && files.includes("vocab.json") && files.includes("config.json"), files.join());
  assert.ok(files.filter((f) => f.endsWith(".safetensors")).length >= 2, files.join());
  assert.ok(logitsOf(out).equal(logitsOf(fixture)));
  // a single file below the limit, and a dtype change recorded in config.json
  const bf16 = join(tmp(), "bf16");
  convert(["--model", src, "--out", bf16, "--dtype", "bf16"]);
  assert.deepEqual(readdirSync(bf16).sort(), ["config.json", "model.safetensors", "vocab.json"]);
  assert.equal(JSON.parse(readFileSync(join(bf16, "config.json"), "utf8")).torch_dtype, "bfloat16");
  const stored = loadCheckpoint(bf16);
  assert.ok([...stored.values()].every((t) => t.dtype === "bfloat16"));
  // without --dtype, config.json's torch_dtype is set to what the weights are (a stale float32 would make
  // transformers' torch_dtype="auto" load bf16 weights as float32)
  const staleConfig = JSON.parse(readFileSync(join(bf16, "config.json"), "utf8"));
  writeFileSync(join(bf16, "config.json"), JSON.stringify({ ...staleConfig, torch_dtype: "float32" }));
  const again = join(tmp(), "again");
  convert(["--model", bf16, "--out", again]);
  assert.equal(JSON.parse(readFileSync(join(again, "config.json"), "utf8")).torch_dtype, "bfloat16");
  const fp32 = loadCheckpoint(fixture);
  for (const [k, t] of stored) assert.ok(t.equal(fp32.get(`model.${k}`)!.to("bfloat16")), k);
}));

test("a failed convert leaves nothing at --out; flags are checked first", () => {
  const src = tidy(() => binFolder(fixtureTensors(false, false)));
  const bin = readFileSync(join(src, "pytorch_model.bin"));
  writeFileSync(join(src, "pytorch_model.bin"), bin.subarray(0, bin.length - 1000));
  const parent = tmp();
  const out = join(parent, "out");
  const r = spawnSync(process.execPath, [join(repoRoot, "dist", "src", "cli", "main.js"), "convert", "--model", src, "--out", out], { encoding: "utf8" });
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /pytorch_model\.bin: zip: no end-of-central-directory record/);
  assert.ok(!existsSync(out), "--out was created");
  assert.deepEqual(readdirSync(parent), [], "a temp folder was left behind");
  mkdirSync(out);
  writeFileSync(join(out, "keep.txt"), "mine");
  assert.throws(() => convert(["--model", fixture, "--out", out]), /exists and is not empty; nothing was written/);
  assert.equal(readFileSync(join(out, "keep.txt"), "utf8"), "mine");
  assert.throws(() => convert(["--model", fixture, "--out", join(parent, "x"), "--dtype", "int8"]), /--dtype "int8": expected one of fp32, bf16, fp16/);
  assert.throws(() => parseShardSize("2 parsecs"), /--max-shard-size "2 parsecs": expected a size/);
  assert.equal(parseShardSize("2GB"), 2e9);
  assert.equal(parseShardSize("1GiB"), 2 ** 30);
});
