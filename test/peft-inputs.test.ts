// Input faults with one clear error each, and what a run records: a ratio that
// trains nothing, token ids beyond the model's vocabulary, AdaLoRA's kept ranks.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { tensor, tidy, noGrad } from "../src/engine/index.js";
import { OPTForCausalLM } from "../src/models/opt.js";
import { presetConfig } from "../src/models/presets.js";
import { getMethod } from "../src/peft/registry.js";
import { PeftModel } from "../src/peft/peft-model.js";
import { shapesOf } from "../src/peft/shapes.js";
import { parityTask, repoRoot, sharedDir, tinyTextModel } from "./helpers.js";
import { loadFile } from "../src/io/safetensors.js";

const fixture = join(sharedDir, "fixtures", "opt-tiny-prenorm");
const cli = join(repoRoot, "dist", "src", "cli", "main.js");
const tmp = () => mkdtempSync(join(tmpdir(), "randmask-inputs-"));

test("a trainable ratio that trains no value is an error naming the flag and the smallest ratio that trains one", () => {
  const shapes = shapesOf(presetConfig("opt-125m")); // 125,239,296 parameters: one value needs ratio ≥ 0.5 / 125,239,296 = 3.99e-9
  for (const method of ["random-mask", "structured-mask"]) {
    assert.throws(() => getMethod(method).resolveConfig({ trainableRatio: 1e-9 }, shapes),
      /trainableRatio \(--trainable-ratio\) 1e-9 gives 0 trainable values \(1e-9 × 125,239,296 parameters = 0\.125\); the smallest trainableRatio that gives one value is 4e-9/);
    const def = getMethod(method);
    assert.equal(def.count(def.resolveConfig({ trainableRatio: 4e-9, maskKind: "exact" }, shapes), shapes), 1);
  }
  // a Bernoulli mask aiming at about one value can draw none (seed 1 here): also an error, not an empty run
  assert.throws(() => getMethod("random-mask").count(getMethod("random-mask").resolveConfig({ trainableRatio: 4.1e-9, seed: 1 }, shapes), shapes),
    /this seed's Bernoulli mask drew none.*--mask-kind exact/);
  const r = spawnSync(process.execPath, [cli, "count", "--preset", "opt-125m", "--method", "random-mask", "--trainable-ratio", "1e-9"], { encoding: "utf8" });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /random-mask: --trainable-ratio 1e-9 gives 0 trainable values.*smallest --trainable-ratio that gives one value is 4e-9/);
});

test("eval: token ids beyond the model's vocabulary name the ids, the vocabulary size and both files", () => {
  const data = tmp();
  const rows = [{ prompt: "The movie was", options: [" great", " terrible"], label: 0 }, { prompt: "It rained all day, so", options: [" we stayed in", " we swam"], label: 0 }];
  for (const f of ["train.jsonl", "validation.jsonl"]) writeFileSync(join(data, f), rows.map((x) => JSON.stringify(x)).join("\n") + "\n");
  const tokDir = join(sharedDir, "tokenizers", "opt"); // 50,265 tokens; the fixture's config says vocab_size 512
  const r = spawnSync(process.execPath, [cli, "eval", "--model", fixture, "--tokenizer", tokDir, "--task", "jsonl", "--data-dir", data,
    "--split", "dev", "--train-size", "1", "--dev-size", "1", "--test-size", "1"], { encoding: "utf8" });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, new RegExp(`token ids [0-9, ]+ from the tokenizer in ${tokDir} are beyond the model's vocabulary of 512 ` +
    `\\(vocab_size in ${join(fixture, "config.json")}\\)`));
  assert.doesNotMatch(r.stderr, /index out of range/);
});

test("AdaLoRA records the ranks it kept (non-zero E entries) in the adapter config", () => tidy(() => {
  const model = OPTForCausalLM.load(fixture);
  const peft = PeftModel.create(model, "adalora", { initR: 4, targetR: 2, totalSteps: 10 });
  const names = peft.instance.config.targets as string[];
  // E as masking leaves it: 3 ranks kept in the first module, 1 in the second, 4 (none masked yet) elsewhere
  const kept = names.map((_, i) => (i === 0 ? [0.5, 0, 0.2, 0.1] : i === 1 ? [0, 0, 0.3, 0] : [0.1, 0.2, 0.3, 0.4]));
  noGrad(() => peft.trainableParams().filter((_, k) => k % 3 === 1).forEach((e, i) => e.copy_(tensor(kept[i], [4, 1], "float32"))));
  const dir = join(tmp(), "adapter");
  peft.save(dir);
  const meta = JSON.parse(readFileSync(join(dir, "adapter_config.json"), "utf8")).meta;
  assert.deepEqual(meta.ranks_kept, Object.fromEntries(names.map((n, i) => [n, i === 0 ? 3 : i === 1 ? 1 : 4])));
  assert.equal(meta.total_rank, 3 + 1 + 4 * (names.length - 2));
  assert.equal(meta.rank_budget, 2 * names.length);
  peft.remove(); model.dispose();
}));

test("finetune --method adalora: metrics.json's method_state holds the saved best epoch's kept ranks", () => {
  const work = tmp();
  const model = tinyTextModel(join(work, "model"));
  const data = parityTask(join(work, "data"));
  const out = join(work, "run");
  const r = spawnSync(process.execPath, [cli, "finetune", "--model", model, "--task", "jsonl", "--data-dir", data, "--method", "adalora",
    "--adalora-init-r", "4", "--adalora-target-r", "2", "--lr", "1e-2", "--epochs", "2", "--out", out, "--quiet",
    "--train-size", "48", "--dev-size", "16", "--test-size", "16"], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  const state = JSON.parse(readFileSync(join(out, "metrics.json"), "utf8")).method_state;
  assert.deepEqual(JSON.parse(readFileSync(join(out, "adapter", "adapter_config.json"), "utf8")).meta, state);
  // counted again from the saved tensors: non-zero entries of each lora_E
  tidy(() => {
    const tensors = loadFile(join(out, "adapter", "adapter_model.safetensors"));
    const counted = Object.fromEntries([...tensors].filter(([k]) => k.endsWith(".lora_E"))
      .map(([k, e]) => [k.slice(0, -".lora_E".length), (e.toNumbers() as number[]).filter((v) => v !== 0).length]));
    assert.deepEqual(state.ranks_kept, counted);
    assert.equal(state.total_rank, Object.values(counted).reduce((a, b) => a + b, 0));
    assert.equal(state.rank_budget, 2 * Object.keys(counted).length);
  });
});
