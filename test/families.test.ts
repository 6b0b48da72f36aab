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
import { saveFile, saveSharded } from "../src/io/safetensors.js";
import { attentionBias, maskedSoftmax } from "../src/models/attention.js";
import { inverseFrequencies } from "../src/models/rotary.js";
import type { LlamaConfig } from "../src/models/llama-config.js";
import { checkLogitsAtRows, sharedDir } from "./helpers.js";
import { writeTorchZip } from "./torch-writer.js";

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

  // logitsAt runs the last layer at those rows only: the logits there must still be Hugging Face's
  test(`${fixture}: logits at per-row positions of a left-padded batch match Hugging Face (the last layer runs at those rows only)`, () => tidy(() => {
    checkLogitsAtRows(model, (ref.cases as Case[]).find((x) => x.name === "batch_left_pad")!);
  }));

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

test("gpt2: the original upload's layout — pytorch_model.bin, no transformer. prefix, no lm_head — gives the same logits", () => tidy(() => {
  const src = join(sharedDir, "fixtures", "gpt2-tiny");
  const a = loadCausalLM(src);
  const dir = mkdtempSync(join(tmpdir(), "randmask-gpt2-bin-"));
  copyFileSync(join(src, "config.json"), join(dir, "config.json"));
  writeTorchZip(join(dir, "pytorch_model.bin"), new Map([...a.stateDict()].map(([k, v]) => [k.replace(/^transformer\./, ""), v.contiguous()])));
  const b = loadCausalLM(dir);
  const x = ids([[0, 5, 9, 200]]);
  assert.ok(a.forward(x).logits.equal(b.forward(x).logits));
  a.dispose(); b.dispose();
}));

test("registry: an unknown model_type is one error listing the supported ones", () => {
  assert.throws(() => parseModelConfig({ model_type: "bert" }, "x/config.json"),
    /x\/config\.json: model_type "bert" is not supported \(supported: opt, gpt2, llama, mistral, qwen2\)/);
  const dir = mkdtempSync(join(tmpdir(), "randmask-fam-"));
  writeFileSync(join(dir, "config.json"), JSON.stringify({ model_type: "falcon" }));
  assert.throws(() => loadCausalLM(dir), /model_type "falcon" is not supported \(supported: opt, gpt2, llama, mistral, qwen2\)/);
});

// ------------------------------------------------------------ dtypes

test("attention bias is float32 and finite; float16/bfloat16 scores with padding (a fully masked row too) give finite probabilities", () => tidy(() => {
  const mask = tensor([0, 0, 1, 1, 1, 1, 1, 1], [2, 4], "int64");
  const bias = attentionBias(mask, 4, 0);
  assert.equal(bias.dtype, "float32");
  assert.equal(bias.isfinite().logicalNot().sum().item(), 0);
  const scores = tensor(Array.from({ length: 32 }, (_, i) => Math.sin(i) * 30), [2, 1, 4, 4]);
  for (const dt of ["float16", "bfloat16"] as const) {
    const p = maskedSoftmax(scores.to(dt), bias);
    assert.equal(p.dtype, dt);
    assert.equal(p.to("float32").isfinite().logicalNot().sum().item(), 0, `${dt}: NaN/Inf in attention probabilities`);
    const rows = p.to("float32").sum(-1).toNumbers();
    rows.forEach((s) => assert.ok(Math.abs(s - 1) < 1e-2, `${dt}: row sums to ${s}`));
    // row 0, query 1 (padding) attends nothing real; query 3 of row 0 gives the padded keys 0 weight
    assert.equal((p.to("float32").toNested() as number[][][][])[0][0][3][0], 0);
  }
  // the −1e9 constant in float16 is −inf: the bias must never be cast to it
  assert.equal(tensor([-1e9], [1]).to("float16").isfinite().item(), 0);
}));

for (const fixture of ["opt-tiny-prenorm", "gpt2-tiny", "llama-tiny"]) {
  test(`${fixture}: loading in float16 on the CPU fails at load with a clear message`, () => {
    assert.throws(() => loadCausalLM(join(sharedDir, "fixtures", fixture), { dtype: "float16" }),
      /cannot load in float16 on the CPU: libtorch 1\.13's CPU kernels have no float16 layer norm or matmul; load in float32 or bfloat16/);
  });

  test(`${fixture}: bfloat16 with left padding gives finite logits everywhere, close to float32 at real tokens`, () => tidy(() => {
    const dir = join(sharedDir, "fixtures", fixture);
    const x = ids([[5, 6, 7, 8, 9, 10], [0, 0, 0, 11, 12, 13]]);
    const m = ids([[1, 1, 1, 1, 1, 1], [0, 0, 0, 1, 1, 1]]);
    const b16 = loadCausalLM(dir, { dtype: "bfloat16" });
    const f32 = loadCausalLM(dir);
    const lb = b16.forward(x, { attentionMask: m }).logits.to("float32");
    assert.equal(lb.isfinite().logicalNot().sum().item(), 0);
    const lf = f32.forward(x, { attentionMask: m }).logits;
    const diff = lb.sub(lf).abs().narrow(1, 3, 3).amax([0, 1, 2]).item();
    assert.ok(diff < 0.25, `bf16 vs fp32 max diff ${diff}`);
    b16.dispose(); f32.dispose();
  }));
}

test("llama: a bfloat16 sharded checkpoint (model.safetensors.index.json) loads and equals the rounded weights", () => tidy(() => {
  const src = join(sharedDir, "fixtures", "llama-tiny");
  const a = loadCausalLM(src, { dtype: "bfloat16" });
  const dir = mkdtempSync(join(tmpdir(), "randmask-llama-shard-"));
  copyFileSync(join(src, "config.json"), join(dir, "config.json"));
  saveSharded(dir, a.stateDict(), 100_000);
  const b = loadCausalLM(dir, { dtype: "bfloat16" });
  const x = ids([[1, 5, 9, 200, 7]]);
  assert.ok(a.forward(x).logits.equal(b.forward(x).logits));
  a.dispose(); b.dispose();
}));

// ------------------------------------------------------------ rope scaling, sliding window

function llamaVariant(overrides: Record<string, unknown>): string {
  const src = join(sharedDir, "fixtures", "llama-tiny");
  const dir = mkdtempSync(join(tmpdir(), "randmask-llama-var-"));
  const cfg = JSON.parse(readFileSync(join(src, "config.json"), "utf8"));
  writeFileSync(join(dir, "config.json"), JSON.stringify({ ...cfg, ...overrides }));
  copyFileSync(join(src, "model.safetensors"), join(dir, "model.safetensors"));
  return dir;
}

test("rope linear scaling: factor 2 at positions 2p equals the default rope at positions p", () => tidy(() => {
  const base = loadCausalLM(join(sharedDir, "fixtures", "llama-tiny"));
  const linear = loadCausalLM(llamaVariant({ rope_parameters: { rope_type: "linear", factor: 2, rope_theta: 10000 } }));
  const x = ids([[1, 40, 41, 42, 43, 44]]);
  const p = [0, 1, 2, 3, 4, 5];
  const a = base.forward(x, { positionIds: ids([p]) }).logits;
  const b = linear.forward(x, { positionIds: ids([p.map((v) => 2 * v)]) }).logits;
  assert.ok(a.allclose(b, 1e-5, 1e-5));
  assert.ok(!linear.forward(x).logits.allclose(a, 1e-3, 1e-3), "linear scaling changed nothing");
  base.dispose(); linear.dispose();
}));

test("rope inverse frequencies: llama3 keeps high frequencies, divides low ones by the factor, smooths between; dynamic grows the base past the context", () => {
  const dim = 128;
  const plain = inverseFrequencies({ type: "default", theta: 500000, factor: 1, lowFreqFactor: 1, highFreqFactor: 1, originalMaxPositionEmbeddings: 8192 }, dim, 8192);
  const l3 = inverseFrequencies({ type: "llama3", theta: 500000, factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 }, dim, 131072);
  let high = 0, low = 0, medium = 0;
  plain.forEach((f, i) => {
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < 8192 / 4) { assert.equal(l3[i], f); high++; }
    else if (wavelen > 8192 / 1) { assert.equal(l3[i], Math.fround(f / 8)); low++; }
    else {
      // Llama 3.1: s = (8192/λ − 1)/(4 − 1); f' = (1 − s)·f/8 + s·f
      const s = (8192 / wavelen - 1) / 3;
      assert.ok(Math.abs(l3[i] - ((1 - s) * f / 8 + s * f)) < 1e-6 * f);
      medium++;
    }
  });
  assert.ok(high > 0 && low > 0 && medium > 0, `${high}/${medium}/${low}`);
  assert.equal(plain[0], 1);
  assert.equal(plain[1], Math.fround(1 / Math.fround(500000 ** Math.fround(2 / 128))));
  const dyn = { type: "dynamic" as const, theta: 10000, factor: 2, lowFreqFactor: 1, highFreqFactor: 1, originalMaxPositionEmbeddings: 256 };
  assert.deepEqual(inverseFrequencies(dyn, 16, 256, 100), inverseFrequencies({ ...dyn, type: "default" }, 16, 256), "inside the context: unchanged");
  // at twice the context with factor 2: base·(2·2 − 1)^(d/(d−2))
  assert.deepEqual(inverseFrequencies(dyn, 16, 256, 512), inverseFrequencies({ ...dyn, type: "default", theta: 10000 * 3 ** (16 / 14) }, 16, 256));
});

test("rope dynamic: inside the context equals the default; past it the model changes, and returns to the default after", () => tidy(() => {
  const base = loadCausalLM(join(sharedDir, "fixtures", "llama-tiny"));
  const dyn = loadCausalLM(llamaVariant({ rope_parameters: { rope_type: "dynamic", factor: 2, rope_theta: 10000 }, max_position_embeddings: 16 }));
  const x = ids([[1, 40, 41, 42, 43, 44]]);
  assert.ok(dyn.forward(x).logits.allclose(base.forward(x).logits, 1e-6, 1e-6));
  const long = ids([Array.from({ length: 24 }, (_, i) => 10 + i)]);
  assert.ok(!dyn.forward(long).logits.allclose(base.forward(long).logits, 1e-3, 1e-3));
  assert.ok(dyn.forward(x).logits.allclose(base.forward(x).logits, 1e-6, 1e-6), "back inside the context: default frequencies again");
  base.dispose(); dyn.dispose();
}));

test("mistral sliding window: the bias blocks keys W or more positions back; a window wider than the sequence changes nothing", () => tidy(() => {
  const bias = (attentionBias(ids([[1, 1, 1, 1, 1]]), 5, 0, 2).toNested() as number[][][][])[0][0];
  bias.forEach((row, q) => row.forEach((v, k) => assert.equal(v === 0, k <= q && k > q - 2, `q ${q} k ${k}`)));
  const llama = loadCausalLM(join(sharedDir, "fixtures", "llama-tiny"));
  const wide = loadCausalLM(llamaVariant({ model_type: "mistral", sliding_window: 64 }));
  const narrow = loadCausalLM(llamaVariant({ model_type: "mistral", sliding_window: 3 }));
  assert.equal(wide.config.architecture, "MistralForCausalLM");
  const x = ids([[1, 40, 41, 42, 43, 44, 45, 46]]);
  assert.ok(wide.forward(x).logits.equal(llama.forward(x).logits));
  const n = narrow.forward(x).logits;
  const l = llama.forward(x).logits;
  assert.ok(n.narrow(1, 0, 3).equal(l.narrow(1, 0, 3)), "within the window nothing changes");
  assert.ok(!n.narrow(1, 3, 5).allclose(l.narrow(1, 3, 5), 1e-4, 1e-4), "past the window attention is restricted");
  [llama, wide, narrow].forEach((m) => m.dispose());
}));

test("config errors name the field: unsupported rope type, Qwen2 sliding window, non-silu activation", () => {
  const base = JSON.parse(readFileSync(join(sharedDir, "fixtures", "llama-tiny", "config.json"), "utf8"));
  assert.throws(() => parseModelConfig({ ...base, rope_parameters: { rope_type: "yarn", factor: 4 } }, "c.json"),
    /c\.json: rope type "yarn" is not supported \(default, linear, dynamic, llama3\)/);
  assert.throws(() => parseModelConfig({ ...base, model_type: "qwen2", use_sliding_window: true }, "c.json"), /use_sliding_window: true .* is not supported/);
  assert.throws(() => parseModelConfig({ ...base, hidden_act: "gelu" }, "c.json"), /hidden_act "gelu" is not supported/);
  assert.equal((parseModelConfig({ ...base, model_type: "mistral" }) as LlamaConfig).slidingWindow, 4096, "MistralConfig's default window");
  assert.equal((parseModelConfig({ ...base, model_type: "mistral", sliding_window: null }) as LlamaConfig).slidingWindow, null);
  assert.throws(() => parseModelConfig({ ...base, rope_parameters: { rope_type: "linear" } }, "c.json"), /rope linear: "factor" must be a positive number/);
});

for (const fixture of ["gpt2-tiny", "llama-tiny"]) {
  test(`${fixture}: gradient checkpointing gives the same loss and gradients`, () => tidy(() => {
    const model = loadCausalLM(join(sharedDir, "fixtures", fixture));
    const x = ids([[1, 40, 41, 42, 43, 44], [0, 0, 1, 50, 51, 52]]);
    const m = ids([[1, 1, 1, 1, 1, 1], [0, 0, 1, 1, 1, 1]]);
    const w = [...model.params.values()][3];
    w.setRequiresGrad(true);
    const grads: number[][] = [];
    for (const on of [false, true]) {
      model.gradientCheckpointing = on;
      model.forward(x, { attentionMask: m }).logits.pow(2).mean().backward();
      grads.push(w.grad!.toNumbers());
      w.clearGrad();
    }
    assert.ok(grads[0].some((g) => g !== 0));
    assert.ok(grads[0].every((g, i) => Math.abs(g - grads[1][i]) <= 1e-6 * Math.max(1, Math.abs(g))));
    w.setRequiresGrad(false);
    model.dispose();
  }));
}
