// OPT and GPT-2 byte-level BPE and a Llama-style tokenizer.json against reference tokenizations;
// tokenizer_config.json fields, offsets, option scoring, `randmask tokenize`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { execFileSync } from "node:child_process";
import { BpeTokenizer } from "../src/tokenizer/bpe-tokenizer.js";
import { encodeContinuation } from "../src/eval/encode.js";
import { repoRoot, sharedDir } from "./helpers.js";

const tok = join(sharedDir, "tokenizers");
const opt = BpeTokenizer.fromDir(join(tok, "opt"));
const gpt2 = BpeTokenizer.fromFiles(join(tok, "gpt2", "encoder.json"), join(tok, "gpt2", "vocab.bpe"), {}, null);

function vectors(name: string): [string, number[]][] {
  const sep = "\n__ggml_vocab_test__\n";
  const inputs = readFileSync(join(tok, "testvectors", `${name}.inp`), "utf8").split(sep);
  if (inputs[inputs.length - 1] === "") inputs.pop();
  const outputs = readFileSync(join(tok, "testvectors", `${name}.out`), "utf8").split("\n");
  assert.ok(outputs.length >= inputs.length);
  return inputs.map((text, i) => [text, outputs[i].trim() === "" ? [] : outputs[i].trim().split(/\s+/).map(Number)]);
}

for (const [name, t] of [["ggml-vocab-roberta-bpe.gguf", opt], ["ggml-vocab-gpt-2.gguf", gpt2]] as const) {
  test(`${name}: every test vector reproduces exactly`, () => {
    const cases = vectors(name);
    assert.ok(cases.length > 30);
    for (const [text, ids] of cases) assert.deepEqual(t.encode(text, { addBos: false }), ids, JSON.stringify(text));
  });
}

test("OPT prepends </s> (id 2) as BOS and decodes back to the text", () => {
  const ids = opt.encode("Hello world, it was great.");
  assert.equal(ids[0], 2);
  assert.equal(opt.decode(ids), "Hello world, it was great.");
  assert.equal(opt.decode([]), "", "an empty generation decodes to an empty answer");
  assert.deepEqual(opt.encode("\n", { addBos: false }), [50118]);
});

test("offsets cover the text and round-trip, including multi-byte characters", () => {
  for (const text of ["Hello, world!", " this is 🦙.cpp", "Führer 4 ½ months", "нещо на Бълг"]) {
    const { ids, offsets } = opt.encodeWithOffsets(text);
    assert.equal(ids.length, offsets.length);
    assert.equal(offsets[0][0], 0);
    assert.equal(offsets[offsets.length - 1][1], text.length);
    for (let i = 1; i < offsets.length; i++) assert.ok(offsets[i][0] === offsets[i - 1][1]);
    assert.equal(opt.decode(ids), text);
  }
});

const llamaDir = join(sharedDir, "fixtures", "llama-tokenizer-tiny");

test("llama-tokenizer-tiny: ids (BOS, byte fallback, spaces, newlines, empty) and decoding reproduce transformers exactly", () => {
  const llama = BpeTokenizer.fromDir(llamaDir);
  const ref = JSON.parse(readFileSync(join(llamaDir, "reference.json"), "utf8"));
  assert.equal(ref.cases.length, 8);
  for (const c of ref.cases) {
    assert.deepEqual(llama.encode(c.text), c.ids, JSON.stringify(c.text));
    assert.equal(llama.decode(c.ids), c.decoded, JSON.stringify(c.text));
  }
  assert.ok(llama.newlineTokenIds().includes(llama.tokenToId("<0x0A>")!), "generation stops at the byte-fallback newline");
});

test("randmask tokenize reproduces the llama reference ids (and tokens, offsets)", () => {
  const ref = JSON.parse(readFileSync(join(llamaDir, "reference.json"), "utf8"));
  for (const c of ref.cases) {
    const out = JSON.parse(execFileSync(process.execPath, [join(repoRoot, "dist", "src", "cli", "main.js"), "tokenize", "--model", llamaDir,
      "--text", c.text, "--json"], { encoding: "utf8" }));
    assert.deepEqual(out.ids, c.ids);
    assert.equal(out.tokens[0], "<s>");
    assert.equal(out.offsets[0], null, "BOS has no span in the text");
    assert.equal(out.decoded, c.decoded);
  }
  assert.throws(() => execFileSync(process.execPath, [join(repoRoot, "dist", "src", "cli", "main.js"), "tokenize", "--model", llamaDir],
    { encoding: "utf8", stdio: "pipe" }), /give exactly one of --text STR or --file F/);
});

test("offsets come from each token's bytes: ' this is 🦙.cpp' gives '.' [11,12] and 'cpp' [12,15]", () => {
  const { ids, offsets } = opt.encodeWithOffsets(" this is 🦙.cpp");
  const text = " this is 🦙.cpp";
  const dot = ids.indexOf(opt.tokenToId(".")!);
  assert.deepEqual(offsets[dot], [11, 12]);
  assert.deepEqual(offsets[dot + 1], [12, 15]);
  assert.equal(text.slice(...offsets[dot + 1]), "cpp");
  // SentencePiece-style pieces: the prepended "▁" is not part of the text
  const llama = BpeTokenizer.fromDir(llamaDir);
  const t2 = "café — ok";
  const r = llama.encodeWithOffsets(t2);
  assert.equal(r.offsets[0][0], 0);
  assert.equal(r.offsets[r.offsets.length - 1][1], t2.length);
  for (let i = 1; i < r.offsets.length; i++) assert.equal(r.offsets[i][0], r.offsets[i - 1][1]);
});

test("tokenizer_config.json decides the special tokens and prefix space", () => {
  const optDir = join(tok, "opt");
  const files = [join(optDir, "vocab.json"), join(optDir, "merges.txt")] as const;
  assert.deepEqual(BpeTokenizer.fromFiles(...files, { add_bos_token: false }).encode("Hello"), [31414], "add_bos_token: false adds no BOS");
  assert.deepEqual(BpeTokenizer.fromFiles(...files, { add_eos_token: true }).encode("Hello"), [2, 31414, 2], "add_eos_token: true appends </s>");
  assert.deepEqual(BpeTokenizer.fromFiles(...files, { add_prefix_space: true }).encode("Hello"), [2, 20920], "add_prefix_space: 'Hello' as ' Hello'");
  assert.deepEqual(opt.encode(" Hello"), [2, 20920]);
  const llamaJson = JSON.parse(readFileSync(join(llamaDir, "tokenizer.json"), "utf8"));
  assert.deepEqual(new BpeTokenizer(llamaJson, { add_bos_token: false }, null).encode("a"), [361]);
  assert.deepEqual(new BpeTokenizer(llamaJson, { add_eos_token: true }, null).encode("a"), [1, 361, 2]);
  assert.deepEqual(new BpeTokenizer(llamaJson, {}, null).encode("a"), [1, 361], "without a config: the template's BOS");
  const noSpace = new BpeTokenizer(llamaJson, { add_prefix_space: false }, null);
  assert.notDeepEqual(noSpace.encode("a"), [1, 361], "add_prefix_space: false drops the prepended ▁");
});

test("option scoring on a SentencePiece tokenizer scores exactly the option's text", () => {
  const llama = BpeTokenizer.fromDir(llamaDir);
  for (const [prompt, option] of [["It was", " great"], ["It was", " terrible"], ["Question: is it?\nAnswer:", " Yes"], ["It was ", "great day"]]) {
    const s = encodeContinuation(llama, prompt, option, 512);
    const scored = llama.decode(s.ids.slice(s.start));
    assert.ok((prompt + option).endsWith(scored) || (prompt + option).endsWith(scored.trimStart()), `scored ${JSON.stringify(scored)}`);
    assert.ok(scored.trim().length >= option.trim().length, `scored ${JSON.stringify(scored)} misses part of ${JSON.stringify(option)}`);
  }
});
