// OPT and GPT-2 byte-level BPE against the shared reference tokenizations.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { BpeTokenizer } from "../src/tokenizer/bpe-tokenizer.js";
import { sharedDir } from "./helpers.js";

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
