// Every PEFT method behind the one interface: counts, zero-init, frozen base,
// one optimizer step, save/load, merge; and Random Masking's own guarantees.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, statSync, readFileSync, writeFileSync, copyFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execFileSync } from "node:child_process";
import { tensor, tidy, noGrad, AdamW, keep } from "../src/engine/index.js";
import { readHeader, saveFile } from "../src/io/safetensors.js";
import { parseConfig } from "../src/models/config.js";
import { OPTForCausalLM } from "../src/models/opt.js";
import type { CausalLM } from "../src/models/causal-lm.js";
import { loadCausalLM, parseModelConfig, randomCausalLM, toHfModelConfig } from "../src/models/registry.js";
import { causalLmLoss } from "../src/models/lm-loss.js";
import { presetConfig } from "../src/models/presets.js";
import { METHODS, getMethod } from "../src/peft/registry.js";
import { PeftModel } from "../src/peft/peft-model.js";
import { shapesOf } from "../src/peft/shapes.js";
import { methodTestOptions, repoRoot, sharedDir } from "./helpers.js";

const fixture = join(sharedDir, "fixtures", "opt-tiny-prenorm");
const tmp = () => mkdtempSync(join(tmpdir(), "randmask-peft-"));
const fresh = () => OPTForCausalLM.load(fixture);

/** A small random Qwen2 (q/k/v biases, GQA, tied head) saved as a Hugging Face folder. */
function qwen2Tiny(): string {
  const dir = tmp();
  const cfg = parseModelConfig({ model_type: "qwen2", vocab_size: 512, hidden_size: 32, intermediate_size: 48, num_hidden_layers: 2,
    num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 64, tie_word_embeddings: true });
  const m = randomCausalLM(cfg, { seed: 4, std: 0.1 });
  noGrad(() => { for (const [k, v] of m.params) if (k.endsWith(".bias")) v.copy_(tidy(() => v.add(0.05))); });
  saveFile(join(dir, "model.safetensors"), m.stateDict());
  writeFileSync(join(dir, "config.json"), JSON.stringify(toHfModelConfig(cfg)));
  m.dispose();
  return dir;
}

/** One model folder per family (and Qwen2 for the Llama family's biases). */
const FAMILY_DIRS: [string, string][] = [
  ["opt", fixture],
  ["gpt2", join(sharedDir, "fixtures", "gpt2-tiny")],
  ["llama", join(sharedDir, "fixtures", "llama-tiny")],
  ["qwen2", qwen2Tiny()],
];

const OPTIONS = methodTestOptions();

const ids = tensor([2, 10, 20, 30, 40, 50, 60, 70, 2, 300, 301, 302, 303, 304, 305, 306], [2, 8], "int64");
const mask = tensor([1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1], [2, 8], "int64");
const labels = tensor([-100, 10, 20, 30, 40, 50, 60, 70, -100, -100, -100, 302, 303, 304, 305, 306], [2, 8], "int64");
const logitsOf = (m: CausalLM) => keep(noGrad(() => tidy(() => m.forward(ids, { attentionMask: mask }).logits)));
const lossOf = (m: CausalLM) => causalLmLoss(m.forward(ids, { attentionMask: mask }).logits, labels);

test("every registered method has options in this test", () => {
  assert.deepEqual(METHODS.map((m) => m.name).sort(), Object.keys(OPTIONS).sort());
});

for (const [family, familyDir] of FAMILY_DIRS) for (const def of METHODS) {
  test(`${family} · ${def.name}: count formula, zero-init, frozen base after one step, loss falls, save/load, merge`, () => tidy(() => {
    const fresh = () => loadCausalLM(familyDir);
    const model = fresh();
    if (def.name === "bitfit" && family === "llama") {
      // Llama has no biases: an error that says so, not zero trainable values
      assert.throws(() => PeftModel.create(model, def.name), /bitfit: this LlamaForCausalLM has no bias vectors, so BitFit would train nothing/);
      model.dispose();
      return;
    }
    const base = logitsOf(model);
    const before = new Map([...model.params].map(([k, v]) => [k, keep(v.clone())]));
    const peft = PeftModel.create(model, def.name, OPTIONS[def.name]);

    // count: the formula (no tensors) equals what was built
    const formula = def.count(peft.instance.config, shapesOf(model.config));
    assert.equal(peft.trainableCount(), formula);
    assert.equal(peft.trainableParams().reduce((n, t) => n + t.numel, 0), formula);
    assert.ok(formula > 0);

    // initialisation leaves outputs unchanged (prefix-tuning adds virtual tokens, so it cannot)
    if (def.name !== "prefix") assert.ok(logitsOf(model).equal(base), "outputs at init differ from the base");

    // one AdamW step at a small LR
    const opt = new AdamW(peft.trainableParams(), { lr: 1e-4 });
    const loss0 = lossOf(model);
    const reg = peft.instance.regularizationLoss?.();
    (reg ? loss0.add(reg) : loss0).backward();
    opt.step();
    peft.instance.afterOptimizerStep?.(1);
    opt.zeroGrad();
    const loss1 = noGrad(() => lossOf(model));
    assert.ok(loss1.item() < loss0.item(), `loss ${loss0.item()} → ${loss1.item()}`);
    const trained = new Set(peft.trainableParams());
    for (const [k, v] of model.params) {
      if (trained.has(v)) continue;
      assert.ok(v.equal(before.get(k)!), `frozen base tensor ${k} changed`);
    }

    // save → load onto a fresh base → identical outputs
    const adapted = logitsOf(model);
    const dir = tmp();
    peft.save(dir);
    const model2 = fresh();
    const peft2 = PeftModel.load(model2, dir);
    assert.equal(peft2.trainableCount(), peft.trainableCount());
    assert.ok(logitsOf(model2).equal(adapted), "reloaded adapter gives different outputs");

    // merged weights reproduce the adapter's outputs
    if (!["adapter", "prefix"].includes(def.name)) {
      const merged = peft.withMerged((sd) => new Map([...sd].map(([k, v]) => [k, keep(v.clone())])));
      const mdir = tmp();
      copyFileSync(join(familyDir, "config.json"), join(mdir, "config.json"));
      saveFile(join(mdir, "model.safetensors"), merged);
      const m3 = loadCausalLM(mdir);
      assert.ok(logitsOf(m3).allclose(adapted, 1e-5, 1e-5), "merged model differs from adapter outputs");
      assert.ok(logitsOf(model).equal(adapted), "unmerge did not restore the adapter model");
      m3.dispose();
    }
    peft.remove();
    peft2.remove();
    model.dispose();
    model2.dispose();
  }));
}

test("random-mask: same seed gives identical indices in two processes; another seed differs", () => {
  const script = `
    import { presetConfig } from "${repoRoot}/dist/src/models/presets.js";
    import { shapesOf } from "${repoRoot}/dist/src/peft/shapes.js";
    import { getMethod } from "${repoRoot}/dist/src/peft/registry.js";
    import { OPTForCausalLM } from "${repoRoot}/dist/src/models/opt.js";
    import { PeftModel } from "${repoRoot}/dist/src/peft/peft-model.js";
    const m = OPTForCausalLM.load("${fixture}");
    const p = PeftModel.create(m, "random-mask", { trainableRatio: 0.01, seed: Number(process.argv[1]) });
    console.log(JSON.stringify(p.instance.stateMeta().maskChecksum));`;
  const run = (seed: number) => execFileSync(process.execPath, ["--input-type=module", "-e", script, String(seed)], { encoding: "utf8" }).trim();
  const a = run(7), b = run(7), c = run(8);
  assert.equal(a, b);
  assert.notEqual(a, c);
});

test("random-mask: the paper's ratio table for OPT-125m's real shapes (0.001% ≈ 1,252 over 24 matrices)", () => {
  const shapes = shapesOf(presetConfig("opt-125m"));
  assert.equal(shapes.totalParams, 125_239_296);
  const def = getMethod("random-mask");
  for (const [ratio, expected] of [[1e-5, 1252], [1e-4, 12524], [1e-3, 125239]] as const) {
    const exact = def.resolveConfig({ trainableRatio: ratio, maskKind: "exact" }, shapes);
    assert.equal((exact.targets as string[]).length, 24);
    assert.equal(def.count(exact, shapes), expected, `exact count at ${ratio}`);
    const bern = def.resolveConfig({ trainableRatio: ratio }, shapes);
    const drawn = def.count(bern, shapes);
    assert.ok(Math.abs(drawn - expected) < 4 * Math.sqrt(expected) + 1, `bernoulli count ${drawn} at ${ratio}`);
  }
});

test("random-mask: a 0.001% adapter for OPT-125m-shaped weights is ≤ 16 KB, and optimizer state at 0.01% is < 1 MB", () => tidy(() => {
  const model = OPTForCausalLM.random(presetConfig("opt-125m", { dropout: 0 }), { seed: 1 });
  try {
    const small = PeftModel.create(model, "random-mask", { trainableRatio: 1e-5, seed: 0 });
    const dir = tmp();
    small.save(dir);
    const bytes = statSync(join(dir, "adapter_model.safetensors")).size + statSync(join(dir, "adapter_config.json")).size;
    assert.ok(bytes <= 16 * 1024, `adapter is ${bytes} bytes`);
    small.remove();

    const peft = PeftModel.create(model, "random-mask", { trainableRatio: 1e-4, seed: 0 });
    const opt = new AdamW(peft.trainableParams(), { lr: 1e-3 });
    const x = tensor([2, 100, 200, 300, 400, 500, 600, 700], [1, 8], "int64");
    causalLmLoss(model.forward(x).logits, x).backward();
    opt.step();
    assert.ok(opt.stateBytes() < 1e6, `optimizer state ${opt.stateBytes()} bytes`);
    assert.equal(opt.stateBytes(), 2 * 4 * peft.trainableCount());
    peft.remove();
  } finally {
    model.dispose();
  }
}));

test("--store-indices writes the indices and they are checked on load", () => tidy(() => {
  const model = fresh();
  const peft = PeftModel.create(model, "random-mask", { trainableRatio: 0.01, seed: 1 });
  const dir = tmp();
  peft.save(dir, { storeIndices: true });
  const count = peft.trainableCount();
  const names = readHeader(join(dir, "adapter_model.safetensors")).tensors.map((t) => t.name);
  assert.ok(names.some((n) => n.endsWith(".indices")));
  peft.remove();
  const again = PeftModel.load(model, dir);
  assert.equal(again.trainableCount(), count);
  again.remove();
  model.dispose();
}));

test("LoRA exports Hugging Face PEFT's format and imports it back", () => tidy(() => {
  const model = fresh();
  const peft = PeftModel.create(model, "lora", { r: 8, alpha: 16, seed: 2 });
  noGrad(() => peft.trainableParams().forEach((p) => p.copy_(p.add(0.01))));
  const out = logitsOf(model);
  const dir = tmp();
  peft.save(dir, { format: "peft" });
  const cfg = JSON.parse(readFileSync(join(dir, "adapter_config.json"), "utf8"));
  assert.equal(cfg.peft_type, "LORA");
  assert.equal(cfg.r, 8);
  assert.equal(cfg.lora_alpha, 16);
  assert.deepEqual(cfg.target_modules, ["q_proj", "v_proj"]);
  const names = readHeader(join(dir, "adapter_model.safetensors")).tensors.map((t) => t.name);
  assert.ok(names.includes("base_model.model.model.decoder.layers.0.self_attn.q_proj.lora_A.weight"));
  assert.ok(names.includes("base_model.model.model.decoder.layers.1.self_attn.v_proj.lora_B.weight"));
  assert.equal(names.length, 8);
  peft.remove();
  const model2 = fresh();
  const back = PeftModel.load(model2, dir);
  assert.ok(logitsOf(model2).equal(out));
  back.remove();
  model.dispose(); model2.dispose();
}));

test("bad input: unknown method, ratio out of range, unmatched pattern, adapter for another base", () => tidy(() => {
  const model = fresh();
  assert.throws(() => PeftModel.create(model, "dora"), /unknown method 'dora' \(known: random-mask, /);
  assert.throws(() => PeftModel.create(model, "random-mask", { trainableRatio: 0 }), /trainableRatio must be in \(0, 1\]/);
  assert.throws(() => PeftModel.create(model, "random-mask", { trainableRatio: 1.5 }), /trainableRatio must be in \(0, 1\]/);
  assert.throws(() => PeftModel.create(model, "random-mask", { trainableRatio: 0.5 }), /asks for 70592 values but the targets hold only 16384/);
  assert.throws(() => PeftModel.create(model, "lora", { targetModules: ["qkv_proj"] }), /targetModules pattern 'qkv_proj' matches no linear module/);
  const peft = PeftModel.create(model, "random-mask", { trainableRatio: 0.01 });
  const dir = tmp();
  peft.save(dir);
  peft.remove();
  // another base: same shapes, different weights
  const other = OPTForCausalLM.random(model.config, { seed: 9 });
  assert.throws(() => PeftModel.load(other, dir), /different base model: the targeted base weights' hash differs/);
  // another base: different shapes
  const cfg = JSON.parse(readFileSync(join(fixture, "config.json"), "utf8"));
  const small = OPTForCausalLM.random(parseConfig({ ...cfg, hidden_size: 32, word_embed_proj_dim: 32, ffn_dim: 64 }), { seed: 1 });
  assert.throws(() => PeftModel.load(small, dir), /adapter was made for '.*' of shape \[64,64\], this model's is \[32,32\]/);
  other.dispose(); small.dispose(); model.dispose();
}));

test("random-mask: editing the adapter's seed is caught by the mask checksum", () => tidy(() => {
  const model = fresh();
  const peft = PeftModel.create(model, "random-mask", { trainableRatio: 0.01, seed: 1 });
  const dir = tmp();
  peft.save(dir);
  peft.remove();
  const cfgFile = join(dir, "adapter_config.json");
  const cfg = JSON.parse(readFileSync(cfgFile, "utf8"));
  cfg.config.seed = 2;
  writeFileSync(cfgFile, JSON.stringify(cfg));
  assert.throws(() => PeftModel.load(model, dir), /regenerated mask checksum .* differs from the adapter's/);
  model.dispose();
}));

test("structured-mask: trainable entries are whole contiguous columns (the last one partial)", () => {
  const shapes = shapesOf(presetConfig("opt-125m"));
  const def = getMethod("structured-mask");
  const config = def.resolveConfig({ trainableRatio: 1e-4, seed: 5 }, shapes);
  assert.equal(def.count(config, shapes), 12524);
  const model = fresh();
  const peft = PeftModel.create(model, "structured-mask", { density: 0.1, seed: 5 });
  const name = "model.decoder.layers.0.self_attn.q_proj";
  const n = peft.instance.stateTensors().get(`${name}.values`)!.numel;
  assert.ok(Math.abs(n - 0.1 * 64 * 64) <= 1, `${n} entries, expected 0.1 of 64×64`);
  const cols = new Map<number, number>();
  const indices = (peft.instance as unknown as { indexTensors(): Map<string, { toNumbers(): number[] }> }).indexTensors().get(`${name}.indices`)!.toNumbers();
  for (const i of indices) cols.set(i % 64, (cols.get(i % 64) ?? 0) + 1);
  const sortedCols = [...cols.keys()].sort((a, b) => a - b);
  sortedCols.forEach((c, j) => assert.equal(c, sortedCols[0] + j, "columns are not contiguous"));
  const counts = sortedCols.map((c) => cols.get(c)!);
  assert.ok(counts.slice(0, -1).every((n) => n === 64), "all but the last column must be whole");
  peft.remove();
  model.dispose();
});

test("adalora: the rank budget shrinks from initR to targetR per matrix", () => tidy(() => {
  const model = fresh();
  const peft = PeftModel.create(model, "adalora", { initR: 6, targetR: 2, totalSteps: 12, tfinal: 2 });
  const opt = new AdamW(peft.trainableParams(), { lr: 1e-2 });
  for (let step = 1; step <= 12; step++) {
    tidy(() => {
      const reg = peft.instance.regularizationLoss!();
      lossOf(model).add(reg!).backward();
      opt.step();
      peft.instance.afterOptimizerStep!(step);
      opt.zeroGrad();
    });
  }
  const es = [...peft.instance.stateTensors()].filter(([k]) => k.endsWith("lora_E")).map(([, t]) => t);
  const kept = es.reduce((n, e) => n + e.toNumbers().filter((v) => v !== 0).length, 0);
  assert.equal(kept, 2 * es.length);
  peft.remove();
  model.dispose();
}));

test("gpt2: Random Masking's default targets are the q and v thirds of c_attn; LoRA adapts c_attn whole", () => tidy(() => {
  const model = loadCausalLM(join(sharedDir, "fixtures", "gpt2-tiny"));
  const d = model.config.hiddenSize;
  const peft = PeftModel.create(model, "random-mask", { density: 0.2, seed: 1 });
  const name = "transformer.h.0.attn.c_attn";
  const rows = (peft.instance as unknown as { indexTensors(): Map<string, { toNumbers(): number[] }> }).indexTensors()
    .get(`${name}.indices`)!.toNumbers().map((i) => Math.floor(i / d));
  assert.ok(rows.every((r) => r < d || r >= 2 * d), "a mask entry lies in the k third");
  assert.ok(rows.some((r) => r < d) && rows.some((r) => r >= 2 * d), "both the q and the v third are masked");
  assert.equal(peft.trainableCount(), getMethod("random-mask").count(peft.instance.config, shapesOf(model.config)));
  assert.ok(Math.abs(rows.length - 0.2 * 2 * d * d) < 4 * Math.sqrt(0.2 * 2 * d * d), `${rows.length} entries of c_attn layer 0`);
  peft.remove();
  const lora = PeftModel.create(model, "lora", { r: 4 });
  assert.equal(lora.trainableCount(), 2 * 4 * (d + 3 * d));
  lora.remove();
  model.dispose();
}));

test("gpt2: LoRA exports Hugging Face PEFT's GPT-2 format (fan_in_fan_out, c_attn) and imports it back", () => tidy(() => {
  const dir0 = join(sharedDir, "fixtures", "gpt2-tiny");
  const model = loadCausalLM(dir0);
  const peft = PeftModel.create(model, "lora", { r: 4, alpha: 8, seed: 2 });
  noGrad(() => peft.trainableParams().forEach((p) => p.copy_(p.add(0.01))));
  const out = logitsOf(model);
  const dir = tmp();
  peft.save(dir, { format: "peft" });
  const cfg = JSON.parse(readFileSync(join(dir, "adapter_config.json"), "utf8"));
  assert.equal(cfg.fan_in_fan_out, true);
  assert.deepEqual(cfg.target_modules, ["c_attn"]);
  const header = readHeader(join(dir, "adapter_model.safetensors")).tensors;
  const a = header.find((t) => t.name === "base_model.model.transformer.h.0.attn.c_attn.lora_A.weight")!;
  const b = header.find((t) => t.name === "base_model.model.transformer.h.0.attn.c_attn.lora_B.weight")!;
  assert.deepEqual([a.shape, b.shape], [[4, 64], [192, 4]], "PEFT's Conv1D LoRA: A [r, in], B [out, r]");
  peft.remove();
  const model2 = loadCausalLM(dir0);
  const back = PeftModel.load(model2, dir);
  assert.ok(logitsOf(model2).equal(out));
  back.remove();
  model.dispose(); model2.dispose();
}));

test("Llama-2-7B shapes (the paper's Table 4 model): parameter total, Random Masking at 0.001/0.01/0.1% on q,v, LoRA r=8 on q,v", () => {
  const shapes = shapesOf(presetConfig("llama-2-7b"));
  assert.equal(shapes.totalParams, 6_738_415_616);
  const rm = getMethod("random-mask");
  for (const [ratio, expected] of [[1e-5, 67_384], [1e-4, 673_842], [1e-3, 6_738_416]] as const) {
    const exact = rm.resolveConfig({ trainableRatio: ratio, maskKind: "exact" }, shapes);
    assert.equal((exact.targets as string[]).length, 64);
    assert.equal(rm.count(exact, shapes), expected, `exact count at ${ratio}`);
  }
  const lora = getMethod("lora");
  assert.equal(lora.count(lora.resolveConfig({ r: 8 }, shapes), shapes), 32 * 2 * 8 * (4096 + 4096));
});
