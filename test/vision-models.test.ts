// ViT and CLIP's vision tower against Hugging Face transformers' outputs for the shared fixtures.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync, copyFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { tensor, tidy, noGrad, type Tensor } from "../src/engine/index.js";
import { ViT, vitName } from "../src/models/vision/vit.js";
import { CLIPVisionModel } from "../src/models/vision/clip-vision.js";
import { loadVisionModel } from "../src/models/vision/index.js";
import { parseVisionConfig } from "../src/models/vision/config.js";
import { saveFile } from "../src/io/safetensors.js";
import { loadCheckpoint } from "../src/io/checkpoint.js";
import { sharedDir } from "./helpers.js";

const fixtures = join(sharedDir, "fixtures");
const reference = (name: string) => JSON.parse(readFileSync(join(fixtures, name, "reference.json"), "utf8"));

/** Max |a − b| over two nested arrays of the same shape. */
function maxErr(a: unknown, b: unknown): number {
  if (Array.isArray(a)) {
    assert.ok(Array.isArray(b) && a.length === b.length, "shapes differ");
    return Math.max(...a.map((x, i) => maxErr(x, (b as unknown[])[i])));
  }
  return Math.abs((a as number) - (b as number));
}
const pixels = (v: number[][][][]) => tensor(v.flat(3), [v.length, v[0].length, v[0][0].length, v[0][0][0].length]);

test("ViTForImageClassification logits match Hugging Face (vit-tiny)", () => {
  const ref = reference("vit-tiny");
  const model = ViT.load(join(fixtures, "vit-tiny"));
  assert.equal(model.numParameters(), ref.num_parameters);
  const logits = noGrad(() => tidy(() => model.forward(pixels(ref.pixel_values)).logits!.toNested()));
  const err = maxErr(logits, ref.logits);
  assert.ok(err <= 1e-4, `max |logit error| ${err}`);
  // fc1/fc2 are linears PEFT can target, by their Hugging Face module names
  assert.ok(model.linears.has("vit.layers.1.mlp.fc1") && model.linears.has("vit.layers.0.mlp.fc2"));
  assert.ok(!model.linears.has("classifier"), "the head is not a PEFT target");
  model.dispose();
});

test("CLIPVisionModelWithProjection image_embeds and last_hidden_state match Hugging Face (clip-vision-tiny)", () => {
  const ref = reference("clip-vision-tiny");
  const model = CLIPVisionModel.load(join(fixtures, "clip-vision-tiny"));
  assert.equal(model.numParameters(), ref.num_parameters);
  const out = noGrad(() => tidy(() => {
    const o = model.forward(pixels(ref.pixel_values));
    return { embeds: o.imageEmbeds!.toNested(), last: o.lastHiddenState.toNested() };
  }));
  const e1 = maxErr(out.embeds, ref.image_embeds);
  const e2 = maxErr(out.last, ref.last_hidden_state);
  assert.ok(e1 <= 1e-4 && e2 <= 1e-4, `max error image_embeds ${e1}, last_hidden_state ${e2}`);
  assert.equal(model.featureDim, 32);
  assert.ok(model.linears.has("vision_model.encoder.layers.0.mlp.fc1"));
  model.dispose();
});

test("checkpoints with the older ViT key names load to the same logits", () => {
  const ref = reference("vit-tiny");
  const dir = mkdtempSync(join(tmpdir(), "vit-legacy-"));
  const legacy: Record<string, string> = { q_proj: "attention.attention.query", k_proj: "attention.attention.key",
    v_proj: "attention.attention.value", o_proj: "attention.output.dense", "mlp.fc1": "intermediate.dense", "mlp.fc2": "output.dense" };
  const tensors = loadCheckpoint(join(fixtures, "vit-tiny"));
  const renamed = new Map<string, Tensor>();
  for (const [k, t] of tensors) {
    let name = k.replace(/^vit\.layers\.(\d+)\./, "vit.encoder.layer.$1.");
    for (const [now, old] of Object.entries(legacy)) name = name.replace(now.startsWith("mlp") ? now : `attention.${now}`, old);
    renamed.set(name, t);
  }
  assert.ok(renamed.has("vit.encoder.layer.0.attention.attention.query.weight") && renamed.has("vit.encoder.layer.1.output.dense.bias"));
  saveFile(join(dir, "model.safetensors"), renamed);
  copyFileSync(join(fixtures, "vit-tiny", "config.json"), join(dir, "config.json"));
  for (const [k, v] of renamed) assert.equal(vitName(k), [...tensors.keys()][[...renamed.keys()].indexOf(k)], `rename of ${k}`), v.dispose();
  const model = loadVisionModel(dir) as ViT;
  const logits = noGrad(() => tidy(() => model.forward(pixels(ref.pixel_values)).logits!.toNested()));
  assert.ok(maxErr(logits, ref.logits) <= 1e-4);
  model.dispose();
});

test("a full clip checkpoint loads its vision tower; the text tower is not read", () => {
  const ref = reference("clip-vision-tiny");
  const dir = mkdtempSync(join(tmpdir(), "clip-full-"));
  const tensors = loadCheckpoint(join(fixtures, "clip-vision-tiny"));
  tensors.set("text_model.embeddings.token_embedding.weight", tensor([1, 2, 3, 4], [2, 2]));
  tensors.set("logit_scale", tensor([2.6592], []));
  saveFile(join(dir, "model.safetensors"), tensors);
  const vision = JSON.parse(readFileSync(join(fixtures, "clip-vision-tiny", "config.json"), "utf8"));
  const { projection_dim: projectionDim, ...visionConfig } = vision;
  writeFileSync(join(dir, "config.json"), JSON.stringify({ model_type: "clip", projection_dim: projectionDim,
    text_config: { hidden_size: 2 }, vision_config: { ...visionConfig, model_type: "clip_vision_model" } }));
  const model = loadVisionModel(dir);
  assert.ok(model instanceof CLIPVisionModel);
  assert.equal(model.numParameters(), ref.num_parameters);
  const embeds = noGrad(() => tidy(() => model.forward(pixels(ref.pixel_values)).imageEmbeds!.toNested()));
  assert.ok(maxErr(embeds, ref.image_embeds) <= 1e-4);
  model.dispose();
  for (const t of tensors.values()) t.dispose();
});

test("absent config fields take Hugging Face's class defaults (ViT-B/16, CLIP ViT-B/32 vision)", () => {
  const v = parseVisionConfig({ model_type: "vit" });
  assert.deepEqual([v.hiddenSize, v.numHiddenLayers, v.numAttentionHeads, v.intermediateSize, v.imageSize, v.patchSize, v.hiddenAct, v.layerNormEps],
    [768, 12, 12, 3072, 224, 16, "gelu", 1e-12]);
  const c = parseVisionConfig({ model_type: "clip", projection_dim: 768, vision_config: { patch_size: 14, image_size: 336 } });
  assert.deepEqual([c.hiddenSize, c.patchSize, c.imageSize, c.hiddenAct, c.layerNormEps, c.modelType === "clip_vision_model" && c.projectionDim],
    [768, 14, 336, "quick_gelu", 1e-5, 768]);
});

test("config and checkpoint errors name the file and the field", () => {
  assert.throws(() => parseVisionConfig({ model_type: "vit", hidden_size: 64, num_attention_heads: 5, num_hidden_layers: 1,
    intermediate_size: 8, image_size: 32, patch_size: 8 }, "cfg.json"), /cfg\.json: hidden_size 64 is not divisible by num_attention_heads 5/);
  assert.throws(() => parseVisionConfig({ model_type: "vit", hidden_size: 64, num_attention_heads: 4, num_hidden_layers: 1,
    intermediate_size: 8, image_size: 30, patch_size: 8 }, "cfg.json"), /image_size 30 is not a multiple of patch_size 8/);
  assert.throws(() => parseVisionConfig({ model_type: "clip" }, "c.json"), /c\.json: a "clip" config needs a "vision_config" object/);
  assert.throws(() => parseVisionConfig({ model_type: "opt" }, "c.json"), /not a vision model/);
  const dir = mkdtempSync(join(tmpdir(), "vit-bad-"));
  const cfg = JSON.parse(readFileSync(join(fixtures, "vit-tiny", "config.json"), "utf8"));
  writeFileSync(join(dir, "config.json"), JSON.stringify({ ...cfg, intermediate_size: 96 }));
  copyFileSync(join(fixtures, "vit-tiny", "model.safetensors"), join(dir, "model.safetensors"));
  assert.throws(() => ViT.load(dir), /tensor 'vit\.layers\.0\.mlp\.fc1\.bias' has shape \[128\] but config\.json implies \[96\]/);
});

test("setParam replaces a weight and the Linear that reads it (what merge relies on)", () => {
  const ref = reference("clip-vision-tiny");
  const model = CLIPVisionModel.load(join(fixtures, "clip-vision-tiny"));
  const name = "vision_model.encoder.layers.1.mlp.fc2.weight";
  const run = () => noGrad(() => tidy(() => model.forward(pixels(ref.pixel_values)).imageEmbeds!.toNested()));
  const old = model.params.get(name)!;
  model.setParam(name, noGrad(() => old.mul(0)));
  assert.equal((model.linears.get("vision_model.encoder.layers.1.mlp.fc2") as unknown as { weight: Tensor }).weight, model.params.get(name));
  assert.ok(maxErr(run(), ref.image_embeds) > 1e-3, "zeroing fc2 changes the embeddings");
  model.params.get(name)!.dispose();
  model.setParam(name, old);
  assert.ok(maxErr(run(), ref.image_embeds) <= 1e-4);
  assert.throws(() => model.setParam(name, tensor([1], [1])), /has shape \[64,128\], got \[1\]/);
  model.dispose();
});

test("a ViTModel folder (keys without 'vit.', a pooler, no classifier) loads; pooler_output = tanh(dense([CLS]))", () => {
  const cfg = parseVisionConfig({ model_type: "vit", hidden_size: 16, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 32,
    image_size: 8, patch_size: 4, qkv_bias: false, pooler_output_size: 8 });
  const random = ViT.random(cfg as never, { pooler: true, seed: 3, std: 0.2 });
  assert.ok(!random.params.has("vit.layers.0.attention.q_proj.bias"), "qkv_bias false: no q/k/v biases");
  const dir = mkdtempSync(join(tmpdir(), "vitmodel-"));
  const bare = new Map([...random.params].map(([k, t]) => [k.slice(4), t]));
  saveFile(join(dir, "model.safetensors"), bare);
  writeFileSync(join(dir, "config.json"), JSON.stringify({ model_type: "vit", hidden_size: 16, num_hidden_layers: 1, num_attention_heads: 2,
    intermediate_size: 32, image_size: 8, patch_size: 4, qkv_bias: false, pooler_output_size: 8 }));
  const model = loadVisionModel(dir) as ViT;
  assert.equal(model.hasClassifier, false);
  tidy(() => {
    const x = tensor(Array.from({ length: 2 * 3 * 64 }, (_, i) => Math.cos(i)), [2, 3, 8, 8]);
    const out = model.forward(x);
    assert.deepEqual(out.poolerOutput!.shape, [2, 8]);
    const cls = out.lastHiddenState.select(1, 0).toNested() as number[][];
    const w = model.params.get("vit.pooler.dense.weight")!.toNested() as number[][];
    const b = model.params.get("vit.pooler.dense.bias")!.toNumbers();
    const expected = cls.map((row) => w.map((wr, j) => Math.tanh(wr.reduce((s, v, k) => s + v * row[k], b[j]))));
    assert.ok(maxErr(out.poolerOutput!.toNested(), expected) < 1e-5);
    assert.ok(maxErr(out.lastHiddenState.toNested(), random.forward(x).lastHiddenState.toNested()) < 1e-6, "same model after the round trip");
  });
  model.dispose(); random.dispose();
});

test("pixel values of the wrong size are refused with the expected shape", () => {
  const model = ViT.load(join(fixtures, "vit-tiny"));
  assert.throws(() => tidy(() => model.forward(tensor(new Float32Array(3 * 16 * 16), [1, 3, 16, 16]))), /expected \[batch, 3, 32, 32\]/);
  model.dispose();
});

test("random ViT and CLIP towers build with the fixture's shapes and run forward and backward", () => {
  const cfg = parseVisionConfig(JSON.parse(readFileSync(join(fixtures, "vit-tiny", "config.json"), "utf8")));
  const vit = ViT.random(cfg as never, { classes: 10, seed: 1 });
  assert.equal(vit.numParameters(), reference("vit-tiny").num_parameters);
  const clipCfg = parseVisionConfig(JSON.parse(readFileSync(join(fixtures, "clip-vision-tiny", "config.json"), "utf8")));
  const clip = CLIPVisionModel.random(clipCfg as never, { seed: 1 });
  assert.equal(clip.numParameters(), reference("clip-vision-tiny").num_parameters);
  tidy(() => {
    const w = vit.params.get("vit.layers.0.mlp.fc1.weight")!.setRequiresGrad(true);
    const x = tensor(new Float32Array(2 * 3 * 32 * 32).map((_, i) => Math.sin(i)), [2, 3, 32, 32]);
    vit.forward(x).logits!.sum().backward();
    assert.ok(w.grad!.norm().item() > 0, "gradient reaches fc1");
    w.clearGrad(); w.setRequiresGrad(false);
    assert.deepEqual(clip.features(x).shape, [2, 32]);
  });
  vit.dispose(); clip.dispose();
});
