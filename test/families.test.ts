// GPT-2 and Llama against Hugging Face transformers' outputs for the shared
// fixtures: logits (given and derived positions), per-sequence losses, greedy
// tokens with and without the KV cache; the registry's errors.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync, copyFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { tensor, tidy } from "../src/engine/index.js";
import { loadCausalLM, parseModelConfig } from "../src/models/registry.js";
import { perSequenceLoss } from "../src/models/lm-loss.js";
import { greedyGenerate } from "../src/models/generate.js";
import { saveFile } from "../src/io/safetensors.js";
import { sharedDir } from "./helpers.js";

interface Case { name: string; input_ids: number[][]; attention_mask: number[][]; position_ids: number[][]; labels: number[][];
  per_sequence_loss: number[]; logits: number[][][] }

const ids = (rows: number[][]) => tensor(rows.flat(), [rows.length, rows[0].length], "int64");

for (const fixture of ["gpt2-tiny", "llama-tiny"]) {
  const dir = join(sharedDir, "fixtures", fixture);
  const ref = JSON.parse(readFileSync(join(dir, "reference.json"), "utf8"));
  const model = loadCausalLM(dir);

  for (const c of ref.cases as Case[]) {
    for (const positions of ["given", "derived"] as const) {
      test(`${fixture}: logits and per-sequence losses match Hugging Face (${c.name}, ${positions} positions)`, () => tidy(() => {
        const logits = model.forward(ids(c.input_ids), {
          attentionMask: ids(c.attention_mask), positionIds: positions === "given" ? ids(c.position_ids) : undefined,
        }).logits;
        const got = logits.toNested() as number[][][];
        let maxErr = 0;
        c.logits.forEach((row, b) => row.forEach((vec, t) => {
          if (c.attention_mask[b][t] === 0) return;
          vec.forEach((v, j) => { maxErr = Math.max(maxErr, Math.abs(v - got[b][t][j])); });
        }));
        assert.ok(maxErr <= 1e-4, `${c.name}: max |logit error| ${maxErr}`);
        perSequenceLoss(logits, ids(c.labels)).toNumbers().forEach((v, i) =>
          assert.ok(Math.abs(v - c.per_sequence_loss[i]) < 1e-5, `per-sequence loss ${v} vs ${c.per_sequence_loss[i]}`));
      }));
    }
  }

  for (const noCache of [true, false]) {
    test(`${fixture}: greedy tokens match Hugging Face ${noCache ? "without" : "with"} the KV cache`, () => {
      const g = ref.greedy_no_cache;
      const [out] = greedyGenerate(model, [g.prompt], { maxNewTokens: g.steps, noCache });
      assert.deepEqual(out, g.tokens);
    });
  }

  test(`${fixture}: left-padded batched generation equals each prompt alone`, () => {
    const g = ref.greedy_no_cache;
    const short = g.prompt.slice(0, 5);
    const [alone] = greedyGenerate(model, [short], { maxNewTokens: 6 });
    const [, padded] = greedyGenerate(model, [g.prompt, short], { maxNewTokens: 6 });
    assert.deepEqual(padded, alone);
  });

  test(`${fixture}: parameter count matches the reference`, () => {
    assert.equal(model.numParameters(), ref.num_parameters);
  });
}

test("gpt2: a checkpoint without the transformer. prefix (the original upload) gives the same logits", () => tidy(() => {
  const src = join(sharedDir, "fixtures", "gpt2-tiny");
  const a = loadCausalLM(src);
  const dir = mkdtempSync(join(tmpdir(), "randmask-gpt2-"));
  copyFileSync(join(src, "config.json"), join(dir, "config.json"));
  // stateDict() is Hugging Face's layout; write it with the prefix stripped
  const sd = a.stateDict();
  const stripped = new Map([...sd].map(([k, v]) => [k.replace(/^transformer\./, ""), v]));
  stripped.set("h.0.attn.bias", tensor([1], [1, 1]));                  // the causal-mask buffer older uploads carry
  saveFile(join(dir, "model.safetensors"), stripped);
  const b = loadCausalLM(dir);
  const x = ids([[0, 5, 9, 200]]);
  assert.ok(a.forward(x).logits.equal(b.forward(x).logits));
  assert.equal(sd.get("transformer.h.0.attn.c_attn.weight")!.shape.join(), "64,192", "Conv1D weights are saved [in, out]");
  a.dispose(); b.dispose();
}));

test("registry: an unknown model_type is one error listing the supported ones", () => {
  assert.throws(() => parseModelConfig({ model_type: "bert" }, "x/config.json"),
    /x\/config\.json: model_type "bert" is not supported \(supported: opt, gpt2, llama, mistral, qwen2\)/);
  const dir = mkdtempSync(join(tmpdir(), "randmask-fam-"));
  writeFileSync(join(dir, "config.json"), JSON.stringify({ model_type: "falcon" }));
  assert.throws(() => loadCausalLM(dir), /model_type "falcon" is not supported \(supported: opt, gpt2, llama, mistral, qwen2\)/);
});
