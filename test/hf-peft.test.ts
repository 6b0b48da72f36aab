// Hugging Face PEFT LoRA folders read exactly as PEFT 0.21 reads them. The
// folders are written here by hand, in PEFT's own layout: adapter_config.json
// with every field LoraConfig saves, and adapter_model.safetensors with keys as
// get_peft_model_state_dict returns them ("base_model.model." + module name +
// ".lora_A.weight", ".base_layer.bias", modules_to_save copies as "<module>.weight").
// Expected values are computed here from the tensors (float64 in JS).
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Tensor, tensor, tidy, noGrad, keep } from "../src/engine/index.js";
import { saveFile } from "../src/io/safetensors.js";
import { OPTForCausalLM } from "../src/models/opt.js";
import { PeftModel } from "../src/peft/peft-model.js";
import type { LoraInstance } from "../src/peft/lora/index.js";
import { spawnSync } from "node:child_process";
import { det, repoRoot, sharedDir } from "./helpers.js";

const fixture = join(sharedDir, "fixtures", "opt-tiny-prenorm");
const cli = join(repoRoot, "dist", "src", "cli", "main.js");
const D = 64, FFN = 256;
const L = (i: number, m: string) => `model.decoder.layers.${i}.${m}`;
const ids = tensor([2, 10, 20, 30, 40, 50, 60, 70], [1, 8], "int64");

/** adapter_config.json as PEFT 0.21's LoraConfig.save_pretrained writes it, with `over` applied. */
function peftConfig(over: Record<string, unknown>): Record<string, unknown> {
  return {
    alora_invocation_tokens: null, alpha_pattern: {}, arrow_config: null, auto_mapping: null, base_model_name_or_path: "opt-tiny",
    bias: "none", corda_config: null, ensure_weight_tying: false, eva_config: null, exclude_modules: null, fan_in_fan_out: false,
    inference_mode: true, init_lora_weights: true, layer_replication: null, layers_pattern: null, layers_to_transform: null,
    loftq_config: {}, lora_alpha: 16, lora_bias: false, lora_dropout: 0.0, megatron_config: null, megatron_core: "megatron.core",
    modules_to_save: null, peft_type: "LORA", peft_version: "0.21.0", qalora_group_size: 16, r: 8, rank_pattern: {}, revision: null,
    runtime_config: { ephemeral_gpu_offload: false }, target_modules: ["q_proj", "v_proj"], target_parameters: null, task_type: "CAUSAL_LM",
    trainable_token_indices: null, use_dora: false, use_qalora: false, use_rslora: false, ...over,
  };
}

let seed = 1;
const rand = (shape: number[], scale = 0.1) => tensor(det(shape.reduce((a, b) => a * b, 1), seed++).map((v) => v * scale), shape, "float32");

/** LoRA tensors for `modules` (rank per module), keyed as PEFT saves them. */
function loraTensors(modules: string[], rank: (m: string) => number, out = (m: string) => (m.endsWith("fc1") ? FFN : D),
  inF = (m: string) => (m.endsWith("fc2") ? FFN : D)): Map<string, Tensor> {
  const t = new Map<string, Tensor>();
  for (const m of modules) {
    t.set(`base_model.model.${m}.lora_A.weight`, rand([rank(m), inF(m)]));
    t.set(`base_model.model.${m}.lora_B.weight`, rand([out(m), rank(m)]));
  }
  return t;
}

function writeAdapter(config: Record<string, unknown>, tensors: Map<string, Tensor>): string {
  const dir = join(mkdtempSync(join(tmpdir(), "randmask-hfpeft-")), "adapter");
  mkdirSync(dir);
  writeFileSync(join(dir, "adapter_config.json"), JSON.stringify(config, null, 2));
  saveFile(join(dir, "adapter_model.safetensors"), tensors, { format: "pt" });
  return dir;
}

const arr = (t: Tensor) => Array.from(t.to("float64").toArray() as Float64Array);

/** W + s·B·A (+ nothing else), entry by entry in float64. */
function mergedByHand(w: Tensor, a: Tensor, b: Tensor, s: number): Float64Array {
  const [out, inF] = w.shape, r = a.shape[0];
  const W = arr(w), A = arr(a), B = arr(b);
  const m = new Float64Array(out * inF);
  for (let i = 0; i < out; i++) for (let j = 0; j < inF; j++) {
    let d = 0;
    for (let k = 0; k < r; k++) d += B[i * r + k] * A[k * inF + j];
    m[i * inF + j] = W[i * inF + j] + s * d;
  }
  return m;
}

function assertClose(got: Tensor, want: ArrayLike<number>, what: string, tol = 1e-5): void {
  const g = arr(got);
  assert.equal(g.length, want.length, `${what}: size`);
  let worst = 0;
  for (let i = 0; i < g.length; i++) worst = Math.max(worst, Math.abs(g[i] - want[i]) / Math.max(1, Math.abs(want[i])));
  assert.ok(worst <= tol, `${what}: off by ${worst}`);
}

const scales = (peft: PeftModel) => Object.fromEntries([...(peft.instance as LoraInstance).modules].map(([n, m]) => [n, m.scaling]));

test("use_rslora: scale α/√r (r=8, α=16 → 5.657), and the merged weight is W + s·B·A", () => tidy(() => {
  const model = OPTForCausalLM.load(fixture);
  const tensors = loraTensors([L(0, "self_attn.q_proj"), L(0, "self_attn.v_proj"), L(1, "self_attn.q_proj"), L(1, "self_attn.v_proj")], () => 8);
  const peft = PeftModel.load(model, writeAdapter(peftConfig({ use_rslora: true }), tensors));
  for (const s of Object.values(scales(peft))) assert.ok(Math.abs(s - 16 / Math.sqrt(8)) < 1e-12 && Math.abs(s - 5.657) < 1e-3);
  const q = L(1, "self_attn.q_proj");
  const want = mergedByHand(model.params.get(`${q}.weight`)!, tensors.get(`base_model.model.${q}.lora_A.weight`)!,
    tensors.get(`base_model.model.${q}.lora_B.weight`)!, 16 / Math.sqrt(8));
  peft.withMerged((sd) => assertClose(sd.get(`${q}.weight`)!, want, "merged q_proj"));
  peft.remove(); model.dispose();
}));

test("alpha_pattern and rank_pattern override α and r per module by PEFT's get_pattern_key", () => tidy(() => {
  const model = OPTForCausalLM.load(fixture);
  const q0 = L(0, "self_attn.q_proj");
  const targets = [q0, L(0, "self_attn.v_proj"), L(1, "self_attn.q_proj"), L(1, "self_attn.v_proj")];
  const peft = PeftModel.load(model, writeAdapter(peftConfig({ alpha_pattern: { "layers.0.self_attn.q_proj": 64 } }), loraTensors(targets, () => 8)));
  assert.deepEqual(scales(peft), { [q0]: 8, [targets[1]]: 2, [targets[2]]: 2, [targets[3]]: 2 });
  peft.remove();

  // rank 16 for layer 0's q_proj only: A [16, 64], B [64, 16]; the pattern's dots are regex dots, anchored at a name boundary
  const tensors = loraTensors(targets, (m) => (m === q0 ? 16 : 8));
  const peft2 = PeftModel.load(model, writeAdapter(peftConfig({ rank_pattern: { "layers.0.self_attn.q_proj": 16 } }), tensors));
  const m0 = (peft2.instance as LoraInstance).modules.get(q0)!;
  assert.deepEqual([m0.a.shape, m0.b.shape], [[16, D], [D, 16]]);
  assert.equal(m0.scaling, 16 / 16);
  assert.equal((peft2.instance as LoraInstance).modules.get(targets[2])!.a.shape[0], 8);
  const want = mergedByHand(model.params.get(`${q0}.weight`)!, tensors.get(`base_model.model.${q0}.lora_A.weight`)!,
    tensors.get(`base_model.model.${q0}.lora_B.weight`)!, 1);
  peft2.withMerged((sd) => assertClose(sd.get(`${q0}.weight`)!, want, "merged rank-16 q_proj"));
  peft2.remove();
  // a pattern must match at a dot boundary: "ayers.0.self_attn.q_proj" matches nothing, so r stays 8 and rank-16 tensors are refused
  assert.throws(() => PeftModel.load(model, writeAdapter(peftConfig({ rank_pattern: { "ayers.0.self_attn.q_proj": 16 } }), loraTensors(targets, (m) => (m === q0 ? 16 : 8)))),
    /expected \[8,64\] and \[64,8\]/);
  model.dispose();
}));

test("lora_bias: lora_B.bias is applied and merged scaled like B", () => tidy(() => {
  const model = OPTForCausalLM.load(fixture);
  const v1 = L(1, "self_attn.v_proj");
  const tensors = loraTensors([v1], () => 4);
  tensors.set(`base_model.model.${v1}.lora_B.bias`, rand([D]));
  const dir = writeAdapter(peftConfig({ r: 4, lora_alpha: 8, lora_bias: true, target_modules: ["layers.1.self_attn.v_proj"] }), tensors);
  const peft = PeftModel.load(model, dir);
  const live = keep(noGrad(() => model.forward(ids).logits));
  const b = arr(model.params.get(`${v1}.bias`)!), bb = arr(tensors.get(`base_model.model.${v1}.lora_B.bias`)!);
  const w = mergedByHand(model.params.get(`${v1}.weight`)!, tensors.get(`base_model.model.${v1}.lora_A.weight`)!,
    tensors.get(`base_model.model.${v1}.lora_B.weight`)!, 2);
  peft.withMerged((sd) => {
    assertClose(sd.get(`${v1}.bias`)!, b.map((x, i) => x + 2 * bb[i]), "merged bias b + s·b_B");
    assertClose(sd.get(`${v1}.weight`)!, w, "merged weight");
    assert.ok(noGrad(() => model.forward(ids).logits).allclose(live, 1e-5, 1e-5), "merged logits = adapter logits");
  });
  peft.remove();
  // the same tensor with lora_bias false is refused, naming the field
  assert.throws(() => PeftModel.load(model, writeAdapter(peftConfig({ r: 4, lora_alpha: 8, target_modules: ["layers.1.self_attn.v_proj"] }), tensors)), /lora_bias/);
  model.dispose();
}));

test("target_modules: one string is one full-match regex; a list matches names or suffixes; all-linear; layers_to_transform", () => tidy(() => {
  const model = OPTForCausalLM.load(fixture);
  const loaded = (over: Record<string, unknown>, modules: string[]) => {
    const peft = PeftModel.load(model, writeAdapter(peftConfig(over), loraTensors(modules, () => 8)));
    const got = [...(peft.instance as LoraInstance).modules.keys()];
    peft.remove();
    return got;
  };
  const qv = [L(0, "self_attn.q_proj"), L(0, "self_attn.v_proj"), L(1, "self_attn.q_proj"), L(1, "self_attn.v_proj")];
  // the comma inside {1,2} is part of the regex
  assert.deepEqual(loaded({ target_modules: "model\\.decoder\\.layers\\.[0-9]{1,2}\\.self_attn\\.(q|v)_proj" }, qv), qv);
  // full match: "q_proj" as a string matches no full name
  assert.throws(() => loaded({ target_modules: "q_proj" }, qv), /target_modules "q_proj" matches no module/);
  // a list entry that matches nothing is fine when another matches
  assert.deepEqual(loaded({ target_modules: ["q_proj", "gate_proj"] }, [qv[0], qv[2]]), [qv[0], qv[2]]);
  assert.throws(() => loaded({ target_modules: ["gate_proj", "up_proj"] }, []), /target_modules/);
  // every linear but the output head
  const all = [0, 1].flatMap((i) => ["self_attn.k_proj", "self_attn.v_proj", "self_attn.q_proj", "self_attn.out_proj", "fc1", "fc2"].map((m) => L(i, m)));
  assert.deepEqual(new Set(loaded({ target_modules: "all-linear" }, all)), new Set(all));
  // only layer 1, and the file holds only layer 1's tensors; a re-export names exactly those modules
  assert.deepEqual(loaded({ target_modules: ["q_proj", "v_proj"], layers_to_transform: [1], layers_pattern: "layers" }, [qv[2], qv[3]]), [qv[2], qv[3]]);
  const layer1 = PeftModel.load(model, writeAdapter(peftConfig({ target_modules: ["q_proj", "v_proj"], layers_to_transform: [1] }), loraTensors([qv[2], qv[3]], () => 8)));
  const out = join(mkdtempSync(join(tmpdir(), "randmask-hfpeft-")), "re");
  layer1.save(out, { format: "peft" });
  layer1.remove();
  assert.deepEqual(JSON.parse(readFileSync(join(out, "adapter_config.json"), "utf8")).target_modules, [qv[2], qv[3]]);
  assert.deepEqual(loaded({ target_modules: ["q_proj", "v_proj"], layers_to_transform: 0 }, [qv[0], qv[1]]), [qv[0], qv[1]]);
  assert.throws(() => loaded({ target_modules: ".*q_proj", layers_to_transform: [0] }, [qv[0]]), /layers_to_transform: cannot be used when target_modules is a string/);
  // a LoRA tensor of a module the config does not target is refused
  assert.throws(() => loaded({ target_modules: ["q_proj"], layers_to_transform: [1] }, [qv[0], qv[2]]), /does not target/);
  // PEFT can target the output head; randmask cannot, and says so
  assert.throws(() => loaded({ target_modules: ["lm_head", "q_proj"] }, [qv[0]]), /lm_head, which randmask cannot adapt/);
  assert.throws(() => loaded({ use_dora: true }, qv), /use_dora/);
  model.dispose();
}));

test("bias 'all' / 'lora_only': the trained biases are applied, merged and removed; refused under bias 'none'", () => tidy(() => {
  const model = OPTForCausalLM.load(fixture);
  const q0 = L(0, "self_attn.q_proj");
  const tensors = loraTensors([q0], () => 8);
  const trained = { [`${q0}.base_layer.bias`]: rand([D]), [`${L(0, "self_attn.k_proj")}.bias`]: rand([D]), [`${L(1, "final_layer_norm")}.bias`]: rand([D]) };
  for (const [k, v] of Object.entries(trained)) tensors.set(`base_model.model.${k}`, v);
  const originals = Object.keys(trained).map((k) => keep(model.params.get(k.replace(".base_layer", ""))!.clone()));
  const peft = PeftModel.load(model, writeAdapter(peftConfig({ bias: "all", target_modules: ["layers.0.self_attn.q_proj"] }), tensors));
  peft.withMerged((sd) => {
    for (const [k, v] of Object.entries(trained)) assert.ok(sd.get(k.replace(".base_layer", ""))!.equal(v), `${k} applied`);
  });
  peft.remove();
  Object.keys(trained).forEach((k, i) => assert.ok(model.params.get(k.replace(".base_layer", ""))!.equal(originals[i]), `${k} restored`));
  assert.throws(() => PeftModel.load(model, writeAdapter(peftConfig({ target_modules: ["layers.0.self_attn.q_proj"] }), tensors)), /bias: .*bias is "none"/);
  // lora_only: only the biases of LoRA targets
  assert.throws(() => PeftModel.load(model, writeAdapter(peftConfig({ bias: "lora_only", target_modules: ["layers.0.self_attn.q_proj"] }), tensors)), /lora_only/);
  model.dispose();
}));

test("modules_to_save: a trained copy of lm_head unties it and changes the logits as it says", () => tidy(() => {
  const model = OPTForCausalLM.load(fixture);
  const base = keep(noGrad(() => model.forward(ids).logits));
  const embed = model.params.get("model.decoder.embed_tokens.weight")!;
  const tensors = loraTensors([L(0, "self_attn.q_proj")], () => 8);
  tensors.set(`base_model.model.${L(0, "self_attn.q_proj")}.lora_B.weight`, tensor(new Float32Array(D * 8), [D, 8], "float32"));
  tensors.set("base_model.model.lm_head.weight", keep(embed.mul(2)));
  const dir = writeAdapter(peftConfig({ modules_to_save: ["lm_head"], target_modules: ["layers.0.self_attn.q_proj"] }), tensors);
  const peft = PeftModel.load(model, dir);
  // B = 0, so only the head changed: logits = h·(2E)ᵀ = 2·(h·Eᵀ), exactly
  assert.ok(noGrad(() => model.forward(ids).logits).equal(base.mul(2)));
  assert.equal(model.params.get("model.decoder.embed_tokens.weight"), embed, "the input embedding stays the base's");
  peft.withMerged((sd) => assert.ok(sd.get("lm_head.weight")!.equal(embed.mul(2)), "the merged checkpoint holds the untied head"));
  // re-exported in PEFT's format, it reads back the same
  const again = join(mkdtempSync(join(tmpdir(), "randmask-hfpeft-")), "again");
  peft.save(again, { format: "peft" });
  assert.throws(() => peft.save(join(again, "..", "randmask")), /save with format "peft"/);
  assert.ok(!existsSync(join(again, "..", "randmask")), "nothing created");
  peft.remove();
  const back = PeftModel.load(model, again);
  assert.ok(noGrad(() => model.forward(ids).logits).equal(base.mul(2)));
  back.remove();
  // randmask merge writes the untied head and says so in config.json
  const merged = join(again, "..", "merged");
  const r = spawnSync(process.execPath, [cli, "merge", "--model", fixture, "--adapter", dir, "--out", merged], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(JSON.parse(readFileSync(join(merged, "config.json"), "utf8")).tie_word_embeddings, false);
  const m2 = OPTForCausalLM.load(merged);
  assert.ok(noGrad(() => m2.forward(ids).logits).allclose(base.mul(2), 1e-5, 1e-5));
  m2.dispose();
  assert.ok(noGrad(() => model.forward(ids).logits).equal(base));
  assert.equal(model.params.get("lm_head.weight"), embed, "tied again after remove");
  model.dispose();
}));

test("modules_to_save: fc1 copies replace both layers' fc1 (and are not LoRA targets)", () => tidy(() => {
  const model = OPTForCausalLM.load(fixture);
  const tensors = loraTensors([L(0, "self_attn.q_proj"), L(1, "self_attn.q_proj")], () => 8);
  for (const i of [0, 1]) {
    tensors.set(`base_model.model.${L(i, "fc1")}.weight`, rand([FFN, D]));
    tensors.set(`base_model.model.${L(i, "fc1")}.bias`, rand([FFN]));
  }
  const peft = PeftModel.load(model, writeAdapter(peftConfig({ modules_to_save: ["fc1"], target_modules: ["q_proj", "fc1"] }), tensors));
  assert.deepEqual([...(peft.instance as LoraInstance).modules.keys()], [L(0, "self_attn.q_proj"), L(1, "self_attn.q_proj")]);
  const got = keep(noGrad(() => model.forward(ids).logits));
  peft.remove();
  // the same model built by hand: q_proj merged, fc1 replaced
  const ref = OPTForCausalLM.load(fixture);
  noGrad(() => tidy(() => {
    for (const i of [0, 1]) {
      const q = L(i, "self_attn.q_proj");
      const m = mergedByHand(ref.params.get(`${q}.weight`)!, tensors.get(`base_model.model.${q}.lora_A.weight`)!, tensors.get(`base_model.model.${q}.lora_B.weight`)!, 2);
      ref.setParam(`${q}.weight`, keep(tensor(m, [D, D], "float64").to("float32")));
      for (const p of ["weight", "bias"]) ref.setParam(`${L(i, "fc1")}.${p}`, keep(tensors.get(`base_model.model.${L(i, "fc1")}.${p}`)!.clone()));
    }
  }));
  assert.ok(noGrad(() => ref.forward(ids).logits).allclose(got, 1e-5, 1e-5));
  // a listed module with no tensor in the file is refused
  assert.throws(() => PeftModel.load(model, writeAdapter(peftConfig({ modules_to_save: ["fc2"], target_modules: ["q_proj"] }),
    loraTensors([L(0, "self_attn.q_proj"), L(1, "self_attn.q_proj")], () => 8))), /modules_to_save: lists 'fc2'/);
  model.dispose(); ref.dispose();
}));

test("export: a randmask 're:' target becomes PEFT's explicit module list, never 're:…'", () => tidy(() => {
  const model = OPTForCausalLM.load(fixture);
  const peft = PeftModel.create(model, "lora", { targetModules: "re:layers\\.[0-9]{1,2}\\.self_attn\\.q_proj", r: 2, alpha: 4, useRslora: true });
  noGrad(() => peft.trainableParams().forEach((p) => p.copy_(p.add(0.01))));
  const live = keep(noGrad(() => model.forward(ids).logits));
  const dir = join(mkdtempSync(join(tmpdir(), "randmask-hfpeft-")), "out");
  peft.save(dir, { format: "peft" });
  peft.remove();
  const cfg = JSON.parse(readFileSync(join(dir, "adapter_config.json"), "utf8"));
  assert.deepEqual(cfg.target_modules, [L(0, "self_attn.q_proj"), L(1, "self_attn.q_proj")]);
  assert.equal(cfg.use_rslora, true);
  const back = PeftModel.load(model, dir);
  assert.ok(noGrad(() => model.forward(ids).logits).allclose(live, 1e-6, 1e-6));
  back.remove(); model.dispose();
}));
