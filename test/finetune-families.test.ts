// Fine-tuning end to end through the CLI on small random GPT-2 and Llama models
// with real tokenizers (GPT-2's byte-level BPE; a Llama-style tokenizer.json)
// on a learnable JSONL task; eval --adapter reproduces the accuracy.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { saveFile } from "../src/io/safetensors.js";
import { parseModelConfig, randomCausalLM, toHfModelConfig } from "../src/models/registry.js";
import { parityTask, repoRoot, sharedDir } from "./helpers.js";

const cli = join(repoRoot, "dist", "src", "cli", "main.js");
const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: "utf8" });
const work = mkdtempSync(join(tmpdir(), "randmask-ft-fam-"));
const data = parityTask(join(work, "data"));
const sizes = ["--train-size", "300", "--dev-size", "100", "--test-size", "200"];

function modelDir(name: string, raw: Record<string, unknown>, tokenizerFiles: [string, string][]): string {
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true });
  const cfg = parseModelConfig(raw);
  const m = randomCausalLM(cfg, { seed: 0, std: 0.1 });
  saveFile(join(dir, "model.safetensors"), m.stateDict());
  writeFileSync(join(dir, "config.json"), JSON.stringify(toHfModelConfig(cfg)));
  for (const [from, to] of tokenizerFiles) copyFileSync(from, join(dir, to));
  m.dispose();
  return dir;
}

const gpt2Tok = join(sharedDir, "tokenizers", "gpt2");
const llamaTok = join(sharedDir, "fixtures", "llama-tokenizer-tiny");
const MODELS: [string, () => string][] = [
  ["gpt2", () => modelDir("gpt2", { model_type: "gpt2", vocab_size: 50257, n_embd: 64, n_layer: 2, n_head: 4, n_positions: 64,
    embd_pdrop: 0, resid_pdrop: 0, attn_pdrop: 0 }, [[join(gpt2Tok, "encoder.json"), "vocab.json"], [join(gpt2Tok, "vocab.bpe"), "merges.txt"]])],
  ["llama", () => modelDir("llama", { model_type: "llama", vocab_size: 800, hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2,
    num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 128 },
  [[join(llamaTok, "tokenizer.json"), "tokenizer.json"], [join(llamaTok, "tokenizer_config.json"), "tokenizer_config.json"]])],
];

for (const [family, make] of MODELS) {
  test(`${family}: random-mask fine-tuning learns the task; eval --adapter reproduces the test accuracy`, () => {
    const model = make();
    const zeroShot = JSON.parse(run("eval", "--model", model, "--task", "jsonl", "--data-dir", data, ...sizes).stdout);
    const out = join(work, `${family}-rm`);
    const r = run("finetune", "--model", model, "--task", "jsonl", "--data-dir", data, "--method", "random-mask", "--density", "0.1",
      "--lr", "1e-2", "--epochs", "4", "--out", out, "--quiet", ...sizes);
    assert.equal(r.status, 0, r.stderr);
    const m = JSON.parse(readFileSync(join(out, "metrics.json"), "utf8"));
    assert.equal(m.status, "completed");
    assert.ok(m.test.accuracy >= 0.85, `test accuracy ${m.test.accuracy} (zero-shot ${zeroShot.accuracy})`);
    assert.ok(m.test.accuracy > zeroShot.accuracy + 0.25, `zero-shot ${zeroShot.accuracy}, trained ${m.test.accuracy}`);
    const again = JSON.parse(run("eval", "--model", model, "--adapter", join(out, "adapter"), "--task", "jsonl", "--data-dir", data, ...sizes).stdout);
    assert.equal(again.accuracy, m.test.accuracy);
    assert.equal(again.n, m.test.n);
  });
}
