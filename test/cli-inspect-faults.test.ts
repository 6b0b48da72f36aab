// Faults a demanding new user found in the model-using and inspecting commands (info, logits,
// tokenize, generate, merge, convert, count), each held at the right behaviour: one error line
// naming the file or flag (never a raw ENOENT / EISDIR or a TypeError), the right exit code,
// and outputs that appear whole or not at all.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { noGrad, tensor } from "../src/engine/index.js";
import { loadCausalLM } from "../src/models/registry.js";
import { PeftModel } from "../src/peft/peft-model.js";
import { repoRoot, sharedDir } from "./helpers.js";

const cli = join(repoRoot, "dist", "src", "cli", "main.js");
const work = mkdtempSync(join(tmpdir(), "randmask-inspect-"));
const env = { ...process.env, RANDMASK_THREADS: "1" };
const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: "utf8", env });
const opt = join(sharedDir, "fixtures", "opt-tiny-prenorm");
const tokenizer = join(sharedDir, "fixtures", "llama-tokenizer-tiny");

/** One line on stderr, no stack trace, no raw errno text. */
function oneCleanLine(stderr: string): void {
  assert.equal(stderr.trim().split("\n").length, 1, stderr);
  assert.doesNotMatch(stderr, /ENOENT|EISDIR|ENOTDIR|EACCES|TypeError|Cannot read properties|\n\s+at /, stderr);
}

/** A LoRA and a Random Masking adapter for the OPT fixture, with non-zero weights. */
const adapters = (() => {
  const out: Record<string, string> = {};
  for (const [method, options] of [["lora", { r: 4 }], ["random-mask", { trainableRatio: 0.02, seed: 4 }]] as const) {
    const model = loadCausalLM(opt);
    const peft = PeftModel.create(model, method, options);
    noGrad(() => peft.trainableParams().forEach((p) => p.copy_(p.add(0.05))));
    out[method] = join(work, `adapter-${method}`);
    peft.save(out[method]);
    peft.remove();
    model.dispose();
  }
  return out;
})();

test("a sharded index naming a missing shard, or a weights 'file' that is a folder, is named in words", () => {
  const sharded = join(work, "sharded");
  assert.equal(run("convert", "--model", opt, "--out", sharded, "--max-shard-size", "200KB").status, 0);
  const shards = readdirSync(sharded).filter((f) => /^model-\d+-of-\d+\.safetensors$/.test(f)).sort();
  assert.ok(shards.length >= 2, `${shards}`);
  rmSync(join(sharded, shards[1]));
  for (const cmd of [["info", "--model", sharded], ["logits", "--model", sharded, "--input-ids", "[[2,3]]"],
    ["convert", "--model", sharded, "--out", join(work, "never")]]) {
    const r = run(...cmd);
    assert.equal(r.status, 1, r.stderr);
    oneCleanLine(r.stderr);
    assert.ok(r.stderr.includes(`model.safetensors.index.json: weight_map names 1 shard(s) missing from ${sharded}: ${shards[1]}`), r.stderr);
  }
  assert.ok(!existsSync(join(work, "never")));
  const folder = join(work, "weights-folder");
  mkdirSync(join(folder, "model.safetensors"), { recursive: true });
  cpSync(join(opt, "config.json"), join(folder, "config.json"));
  const r = run("info", "--model", folder);
  assert.equal(r.status, 1);
  oneCleanLine(r.stderr);
  assert.match(r.stderr, /model\.safetensors: is a folder, expected a safetensors file/);
});

test("an adapter folder without its weights, or with a damaged or mismatched adapter_config.json, is named by file and field", () => {
  const cases: [string, (dir: string) => void, RegExp][] = [
    ["no weights", (d) => rmSync(join(d, "adapter_model.safetensors")), /adapter_model\.safetensors: does not exist/],
    ["null config", (d) => writeFileSync(join(d, "adapter_config.json"), "null"), /adapter_config\.json: not a JSON object/],
    ["no base_model", (d) => writeFileSync(join(d, "adapter_config.json"), JSON.stringify({ format: "randmask-adapter", method: "lora", config: {} })),
      /adapter_config\.json: base_model: expected an object/],
    ["unknown method", (d) => writeFileSync(join(d, "adapter_config.json"), JSON.stringify({ format: "randmask-adapter", method: "ia3", config: {}, base_model: {} })),
      /adapter_config\.json: method "ia3": expected one of random-mask, .*lora/],
    ["another method's weights", (d) => cpSync(join(adapters["random-mask"], "adapter_model.safetensors"), join(d, "adapter_model.safetensors")),
      /adapter_config\.json and adapter_model\.safetensors do not belong together: lora: adapter has no tensor/],
  ];
  for (const [name, damage, message] of cases) {
    const dir = join(work, `damaged-${name.replace(/ /g, "-")}`);
    cpSync(adapters.lora, dir, { recursive: true });
    damage(dir);
    const out = join(work, `merged-${name.replace(/ /g, "-")}`);
    const r = run("merge", "--model", opt, "--adapter", dir, "--out", out);
    assert.equal(r.status, 1, `${name}: ${r.stderr}`);
    oneCleanLine(r.stderr);
    assert.match(r.stderr, message, name);
    assert.ok(r.stderr.includes(dir), `${name}: the adapter folder is named`);
    assert.ok(!existsSync(out), `${name}: nothing at --out`);
  }
});

test("input-file flags: a folder or a missing file is a usage error naming the flag", () => {
  const folder = join(work, "a-folder");
  mkdirSync(folder, { recursive: true });
  for (const [cmd, flag] of [[["generate", "--model", opt, "--tokenizer", tokenizer], "file"], [["tokenize", "--tokenizer", tokenizer], "file"],
    [["logits", "--model", join(sharedDir, "fixtures", "vit-tiny")], "pixel-values"]] as const) {
    const r = run(...cmd, `--${flag}`, folder);
    assert.equal(r.status, 2, r.stderr);
    oneCleanLine(r.stderr);
    assert.ok(r.stderr.includes(`--${flag} ${folder}: is a folder, expected a file`), r.stderr);
    const missing = run(...cmd, `--${flag}`, join(work, "nothing.json"));
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, new RegExp(`--${flag} .*nothing\\.json: file does not exist`));
  }
  // a tokenizer file that is a folder
  const tok = join(work, "tok-folder");
  cpSync(join(sharedDir, "tokenizers", "opt", "vocab.json"), join(tok, "vocab.json"));
  mkdirSync(join(tok, "merges.txt"));
  const r = run("tokenize", "--tokenizer", tok, "--text", "hi");
  assert.equal(r.status, 1);
  oneCleanLine(r.stderr);
  assert.match(r.stderr, /merges\.txt: cannot read tokenizer file \(is a folder, expected a file\)/);
});

test("a flag that takes one value given twice is a usage error; repeatable flags and switches still repeat", () => {
  const r = run("count", "--model", opt, "--method", "random-mask", "--trainable-ratio", "1e-3", "--trainable-ratio", "2e-3");
  assert.equal(r.status, 2);
  oneCleanLine(r.stderr);
  assert.match(r.stderr, /--trainable-ratio given 2 times \("1e-3", "2e-3"\); it takes one value/);
  const twice = run("generate", "--model", opt, "--tokenizer", tokenizer, "--prompt", "a", "--prompt", "b");
  assert.equal(twice.status, 2);
  assert.match(twice.stderr, /--prompt given 2 times/);
  const json = run("count", "--model", opt, "--method", "lora", "--json", "--json");
  assert.equal(json.status, 0, json.stderr);
  assert.equal(JSON.parse(json.stdout).trainable, 2 * 2 * 8 * (64 + 64), "LoRA r=8 on q,v of 2 layers of width 64");
  const stops = run("generate", "--model", opt, "--tokenizer", tokenizer, "--prompt", "a", "--stop", "x", "--stop", "y", "--max-new-tokens", "2");
  assert.equal(stops.status, 0, stops.stderr);
  // a value starting with "-": the error says how to give it
  const dash = run("generate", "--model", opt, "--tokenizer", tokenizer, "--prompt", "-h");
  assert.equal(dash.status, 2);
  assert.match(dash.stderr, /Option '--prompt' argument is ambiguous\. To specify an option argument starting with a dash use '--prompt=-XYZ'/);
  assert.equal(run("generate", "--model", opt, "--tokenizer", tokenizer, "--prompt=-h", "--max-new-tokens", "1").status, 0);
  // an empty --stop (an unset shell variable) would match everywhere: refused, not ignored
  const empty = run("generate", "--model", opt, "--tokenizer", tokenizer, "--prompt", "a", "--stop", "");
  assert.equal(empty.status, 2);
  assert.match(empty.stderr, /--stop "": expected a non-empty string/);
});

test("numeric flags take decimal numbers only: 1e3 and .5 yes; 0x10, 0b1, 1_000, Infinity, NaN no", () => {
  const seed = (v: string) => run("count", "--model", opt, "--method", "random-mask", "--trainable-ratio", "1e-2", "--seed", v, "--json");
  assert.equal(seed("1e3").status, 0);
  assert.deepEqual(JSON.parse(seed("1e3").stdout), JSON.parse(seed("1000").stdout));
  for (const v of ["0x10", "0b1", "1_000", "Infinity", "NaN"]) {
    const r = seed(v);
    assert.equal(r.status, 2, v);
    assert.ok(r.stderr.includes(`--seed ${JSON.stringify(v)}: expected a non-negative integer`), r.stderr);
  }
  const half = run("count", "--model", opt, "--method", "random-mask", "--density", ".5", "--json");
  assert.equal(half.status, 0, half.stderr);
  // lists of numbers too (theory --p 0x1 ran as density 1)
  for (const [flag, v] of [["--p", "0.5,0x1"], ["--curve-factors", "0b1"], ["--p", "1_0"]]) {
    const r = run("theory", flag, v, "--n", "4", "--d", "64");
    assert.equal(r.status, 2, `${flag} ${v}: ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`^randmask theory: ${flag} "${v}": expected comma-separated`));
  }
});

test("logits: a row longer than the model's positions is a usage error; left padding does not count", () => {
  const row = (n: number, v: number) => Array.from({ length: n }, () => v);
  // opt-tiny-prenorm has 128 positions
  const long = run("logits", "--model", opt, "--input-ids", JSON.stringify([row(129, 5)]));
  assert.equal(long.status, 2);
  oneCleanLine(long.stderr);
  assert.match(long.stderr, /--input-ids: a row of 129 tokens, but the model has 128 positions \(max_position_embeddings in config\.json\)/);
  const padded = spawnSync(process.execPath, [cli, "logits", "--model", opt, "--input-ids", JSON.stringify([row(129, 5)]),
    "--attention-mask", JSON.stringify([[0, ...row(128, 1)]])], { encoding: "utf8", env, maxBuffer: 2 ** 26 });
  assert.equal(padded.status, 0, padded.stderr);
  assert.equal(JSON.parse(padded.stdout).logits[0].length, 129);
});

test("--out: empty text, or a place no folder can be made, is one clear error and nothing is left; a link to an empty folder is kept", () => {
  for (const cmd of [["convert", "--model", opt], ["merge", "--model", opt, "--adapter", adapters.lora]]) {
    const r = run(...cmd, "--out", "");
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--out "": expected a folder path/);
  }
  // a link to an empty folder stays a link; the model lands in its target
  const target = join(work, "link-target");
  mkdirSync(target);
  symlinkSync(target, join(work, "out-link"));
  const linked = run("convert", "--model", opt, "--out", join(work, "out-link"));
  assert.equal(linked.status, 0, linked.stderr);
  assert.ok(lstatSync(join(work, "out-link")).isSymbolicLink());
  assert.ok(existsSync(join(target, "model.safetensors")));
  if (process.platform !== "linux") return;
  // Node's recursive mkdir never returns here (ENOENT under an existing folder)
  const r = spawnSync(process.execPath, [cli, "convert", "--model", opt, "--out", "/proc/randmask-test/x"], { encoding: "utf8", env, timeout: 60_000 });
  assert.equal(r.status, 1, r.stderr);
  oneCleanLine(r.stderr);
  assert.match(r.stderr, /cannot create \/proc\/randmask-test\/x: the file system there takes no new folders; nothing was written/);
});

test("merge/convert interrupted mid-write leave no output, and the next run removes the temp folder they left", async () => {
  const out = join(work, "interrupted");
  // a writer stopped by SIGINT half-way through (synchronous writes end where they stand)
  const child = spawn(process.execPath, ["--input-type=module", "-e", `
    import { writeFileSync } from "node:fs";
    import { writeFolderAtomically } from ${JSON.stringify(join(repoRoot, "dist", "src", "io", "atomic.js"))};
    writeFolderAtomically(${JSON.stringify(out)}, (tmp) => {
      writeFileSync(tmp + "/model.safetensors", "half");
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60000);
    });`], { env });
  const tmp = join(work, `.interrupted.tmp-${child.pid}`);
  for (let i = 0; i < 600 && !existsSync(join(tmp, "model.safetensors")); i++) await new Promise((r) => setTimeout(r, 50));
  assert.ok(existsSync(join(tmp, "model.safetensors")), "the writer started");
  const code = await new Promise<string | null>((resolve) => { child.on("exit", (_, signal) => resolve(signal)); child.kill("SIGINT"); });
  assert.equal(code, "SIGINT");
  assert.ok(!existsSync(out), "nothing appears at --out");
  const r = run("convert", "--model", opt, "--out", out);
  assert.equal(r.status, 0, r.stderr);
  assert.ok(!existsSync(tmp), "the interrupted run's temp folder is gone");
  assert.ok(existsSync(join(out, "model.safetensors")) && existsSync(join(out, "config.json")));
  const again = run("merge", "--model", opt, "--adapter", adapters["random-mask"], "--out", join(work, "merged-ok"));
  assert.equal(again.status, 0, again.stderr);
  // the merged model computes what the base with the adapter attached does
  const ids = tensor([2, 11, 22, 33, 44], [1, 5], "int64");
  const base = loadCausalLM(opt);
  const peft = PeftModel.load(base, adapters["random-mask"]);
  const merged = loadCausalLM(join(work, "merged-ok"));
  assert.ok(noGrad(() => merged.forward(ids).logits.allclose(base.forward(ids).logits, 1e-5, 1e-5)));
  peft.remove(); base.dispose(); merged.dispose();
});

test("tokenize: a character split over byte tokens belongs to the first; no span splits an emoji's surrogate pair", () => {
  const text = "héllo 🎉";
  const r = run("tokenize", "--tokenizer", tokenizer, "--text", text, "--json");
  assert.equal(r.status, 0, r.stderr);
  const { tokens, offsets } = JSON.parse(r.stdout) as { tokens: string[]; offsets: ([number, number] | null)[] };
  const at = (t: string) => offsets[tokens.indexOf(t)];
  // é is C3 A9, 🎉 is F0 9F 8E 89 (UTF-16: two units at 6 and 7)
  assert.deepEqual([at("<0xC3>"), at("<0xA9>")], [[1, 2], [2, 2]]);
  assert.deepEqual(["<0xF0>", "<0x9F>", "<0x8E>", "<0x89>"].map(at), [[6, 8], [8, 8], [8, 8], [8, 8]]);
  for (const span of offsets.slice(1)) {
    const piece = text.slice(...span!);
    assert.equal(Buffer.from(piece, "utf8").toString("utf8"), piece, `span ${span} is whole characters`);
  }
});

test("prompt and text files: a UTF-8 byte-order mark is not part of the text; bytes that are not UTF-8 are named by line", () => {
  const bom = join(work, "bom.jsonl");
  writeFileSync(bom, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(`${JSON.stringify({ prompt: "héllo" })}\n`)]));
  const g = run("generate", "--model", opt, "--tokenizer", tokenizer, "--file", bom, "--max-new-tokens", "1", "--json");
  assert.equal(g.status, 0, g.stderr);
  assert.equal(JSON.parse(g.stdout).prompt, "héllo");
  const t = run("tokenize", "--tokenizer", tokenizer, "--file", bom, "--json");
  assert.equal(JSON.parse(t.stdout).decoded, `${JSON.stringify({ prompt: "héllo" })}\n`);
  const latin1 = join(work, "latin1.txt");
  writeFileSync(latin1, Buffer.concat([Buffer.from("fine\n"), Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x0a])]));
  for (const cmd of [["generate", "--model", opt, "--tokenizer", tokenizer], ["tokenize", "--tokenizer", tokenizer]]) {
    const r = run(...cmd, "--file", latin1);
    assert.equal(r.status, 1, r.stderr);
    oneCleanLine(r.stderr);
    assert.ok(r.stderr.includes(`${latin1}:2: not UTF-8 text (save the file as UTF-8)`), r.stderr);
  }
});

test("a Hugging Face PEFT adapter made for another architecture is named as such, not as a target_modules mismatch", () => {
  const model = loadCausalLM(opt);
  const peft = PeftModel.create(model, "lora", { r: 4 });
  const dir = join(work, "peft-opt");
  peft.save(dir, { format: "peft" });
  peft.remove();
  model.dispose();
  const r = run("merge", "--model", join(sharedDir, "fixtures", "llama-tiny"), "--adapter", dir, "--out", join(work, "peft-merged"));
  assert.equal(r.status, 1);
  oneCleanLine(r.stderr);
  assert.match(r.stderr, /peft-opt: tensors: the file has 'base_model\.model\.model\.decoder\.layers\.0\.self_attn\.q_proj\.lora_A\.weight', but this LlamaForCausalLM has no module 'model\.decoder\.layers\.0\.self_attn\.q_proj' \(the adapter was made for another model\)/);
  assert.ok(!existsSync(join(work, "peft-merged")));
});

test("merge of a method that adds modules (prefix) is refused before any folder of --out is made", () => {
  const model = loadCausalLM(opt);
  const peft = PeftModel.create(model, "prefix", { numVirtualTokens: 2 });
  const dir = join(work, "adapter-prefix");
  peft.save(dir);
  peft.remove();
  model.dispose();
  const r = run("merge", "--model", opt, "--adapter", dir, "--out", join(work, "new-parent", "merged"));
  assert.equal(r.status, 1);
  oneCleanLine(r.stderr);
  assert.match(r.stderr, /prefix adds modules rather than a weight delta, so it cannot be merged/);
  assert.ok(!existsSync(join(work, "new-parent")), "not even the parent folder");
});

test("info: checkpointDtype is what the weights are stored in, with a note where config.json's torch_dtype says otherwise", () => {
  const dir = join(work, "bf16-no-torch-dtype");
  assert.equal(run("convert", "--model", opt, "--out", dir, "--dtype", "bf16").status, 0);
  const cfg = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
  delete cfg.torch_dtype;
  writeFileSync(join(dir, "config.json"), JSON.stringify(cfg));
  const r = run("info", "--model", dir, "--json");
  assert.equal(r.status, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).checkpointDtype, "bfloat16");
  assert.match(r.stderr, /note: the weights are stored in bfloat16; config\.json's torch_dtype says float32 \(its default: the field is absent\)/);
  const plain = run("info", "--model", opt, "--json");
  assert.equal(JSON.parse(plain.stdout).checkpointDtype, "float32");
  assert.equal(plain.stderr, "");
});

test("a target pattern that is no regular expression is an error naming the flag or the adapter folder, not a SyntaxError", () => {
  const r = run("count", "--model", opt, "--method", "lora", "--target-modules", "re:(q");
  assert.equal(r.status, 2);
  oneCleanLine(r.stderr);
  assert.match(r.stderr, /--target-modules pattern 're:\(q' is not a valid regular expression \(.*Unterminated group\)/);
  const model = loadCausalLM(opt);
  const peft = PeftModel.create(model, "lora", { r: 4 });
  const dir = join(work, "peft-bad-regex");
  peft.save(dir, { format: "peft" });
  peft.remove();
  model.dispose();
  const cfgFile = join(dir, "adapter_config.json");
  writeFileSync(cfgFile, JSON.stringify({ ...JSON.parse(readFileSync(cfgFile, "utf8")), target_modules: "q_proj(" }));
  const m = run("merge", "--model", opt, "--adapter", dir, "--out", join(work, "never-regex"));
  assert.equal(m.status, 1);
  oneCleanLine(m.stderr);
  assert.ok(m.stderr.includes(`${dir}: pattern "q_proj(" is not a valid regular expression`), m.stderr);
});

test("a file that is not safetensors where one is expected (a JSON file as --head) is named as not safetensors", () => {
  const pixels = join(work, "pixels.json");
  writeFileSync(pixels, JSON.stringify([Array.from({ length: 3 }, () => Array.from({ length: 32 }, () => Array(32).fill(0)))]));
  const r = run("logits", "--model", join(sharedDir, "fixtures", "vit-tiny"), "--pixel-values", pixels, "--head", join(opt, "config.json"));
  assert.equal(r.status, 1);
  oneCleanLine(r.stderr);
  assert.match(r.stderr, /config\.json: not a safetensors file: its first 8 bytes give a header length of \d+ bytes/);
});

test("generate: an empty prompt with a tokenizer that adds no BOS starts from config.json's BOS (as transformers does), or is refused", () => {
  const dir = join(work, "llama-no-bos");
  cpSync(join(sharedDir, "fixtures", "llama-tiny"), dir, { recursive: true });
  cpSync(join(tokenizer, "tokenizer.json"), join(dir, "tokenizer.json"));
  writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify({ add_bos_token: false }));
  const gen = (...args: string[]) => run("generate", "--prompt", "", "--max-new-tokens", "4", "--json", ...args);
  const noBos = gen("--model", dir);
  assert.equal(noBos.status, 0, noBos.stderr);
  const withBos = gen("--model", join(sharedDir, "fixtures", "llama-tiny"), "--tokenizer", tokenizer);
  assert.equal(withBos.status, 0, withBos.stderr);
  assert.equal(JSON.parse(noBos.stdout).prompt_tokens, 1);
  assert.deepEqual(JSON.parse(noBos.stdout).tokens, JSON.parse(withBos.stdout).tokens, "the same start: <s>");
  const cfg = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
  writeFileSync(join(dir, "config.json"), JSON.stringify({ ...cfg, bos_token_id: null }));
  const none = gen("--model", dir);
  assert.equal(none.status, 1);
  oneCleanLine(none.stderr);
  assert.match(none.stderr, /prompt 0 is empty and adds no token \(the tokenizer adds no BOS, config\.json has no bos_token_id\): give a non-empty prompt/);
});
