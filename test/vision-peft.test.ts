// Every applicable PEFT method on the vision towers (ViT, CLIP's), with the
// invariants the language-model tests hold (test/peft.test.ts): count formula,
// zero-init, frozen base (and fixed head) after one step, loss falls,
// save/load, merge; targets on the MLP (fc1/fc2, or ViT's older names) and attention q/v.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, copyFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { tensor, tidy, noGrad, AdamW, keep, crossEntropy, randn, manualSeed, type Tensor } from "../src/engine/index.js";
import { saveFile } from "../src/io/safetensors.js";
import { loadVisionModel, type VisionModel } from "../src/models/vision/index.js";
import { LinearHead } from "../src/models/vision/head.js";
import { ViT } from "../src/models/vision/vit.js";
import { METHODS, getMethod } from "../src/peft/registry.js";
import { PeftModel } from "../src/peft/peft-model.js";
import { modelShapes } from "../src/peft/shapes.js";
import { methodTestOptions, sharedDir } from "./helpers.js";

const fixtures = join(sharedDir, "fixtures");
const tmp = () => mkdtempSync(join(tmpdir(), "randmask-vpeft-"));
const pixelsOf = (name: string): Tensor => {
  const v = JSON.parse(readFileSync(join(fixtures, name, "reference.json"), "utf8")).pixel_values as number[][][][];
  return keep(tensor(v.flat(3), [v.length, 3, 32, 32]));
};
const labels = keep(tensor([3, 7], [2], "int64"));

/** The fixed head: ViT's own classifier; for CLIP a seeded random [10, 32] head on its image_embeds. */
function headFor(model: VisionModel): LinearHead {
  if (model instanceof ViT) return LinearHead.fromClassifier(model);
  manualSeed(5);
  return new LinearHead(keep(randn([10, model.featureDim])), keep(randn([10]).mul(0.1)), true);
}

const TOWERS = ["vit-tiny", "clip-vision-tiny"];
const OPTIONS = methodTestOptions();

test("prefix-tuning refuses a vision tower with a reason", () => {
  const model = loadVisionModel(join(fixtures, "vit-tiny"));
  assert.throws(() => PeftModel.create(model, "prefix"), /prefix: prefix-tuning needs a causal language model .* ViTForImageClassification/);
  model.dispose();
});

for (const tower of TOWERS) for (const def of METHODS.filter((m) => m.name !== "prefix")) {
  test(`${tower} · ${def.name}: count formula, zero-init, frozen base and head after one step, loss falls, save/load, merge`, () => tidy(() => {
    const dir = join(fixtures, tower);
    const pixels = pixelsOf(tower);
    const model = loadVisionModel(dir);
    const head = headFor(model);
    const logitsOf = (m: VisionModel, h = head) => keep(noGrad(() => tidy(() => h.forward(m.features(pixels)))));
    const base = logitsOf(model);
    const before = new Map([...model.params].map(([k, v]) => [k, keep(v.clone())]));
    const peft = PeftModel.create(model, def.name, OPTIONS[def.name]);

    const formula = def.count(peft.instance.config, modelShapes(model));
    assert.equal(peft.trainableCount(), formula);
    assert.ok(formula > 0);
    if (["random-mask", "structured-mask", "lora", "adalora"].includes(def.name)) {
      // the paper's default for vision: the MLP layers
      assert.ok((peft.instance.config.targets as string[]).every((t) => /\.mlp\.fc[12]$/.test(t)), JSON.stringify(peft.instance.config.targets));
    }
    assert.ok(logitsOf(model).equal(base), "outputs at init differ from the base");

    const opt = new AdamW(peft.trainableParams(), { lr: 1e-3 });
    const lossOf = () => crossEntropy(head.forward(model.features(pixels)), labels);
    const loss0 = lossOf();
    const reg = peft.instance.regularizationLoss?.();
    (reg ? loss0.add(reg) : loss0).backward();
    opt.step();
    peft.instance.afterOptimizerStep?.(1);
    opt.zeroGrad();
    const loss1 = noGrad(() => lossOf());
    assert.ok(loss1.item() < loss0.item(), `loss ${loss0.item()} → ${loss1.item()}`);
    const trained = new Set(peft.trainableParams());
    for (const [k, v] of model.params) {
      if (k.startsWith("classifier.")) assert.ok(!trained.has(v), `the fixed head ${k} is trainable`);
      if (trained.has(v)) continue;
      assert.ok(v.equal(before.get(k)!), `frozen base tensor ${k} changed`);
    }

    const adapted = logitsOf(model);
    const adir = tmp();
    peft.save(adir);
    const model2 = loadVisionModel(dir);
    const peft2 = PeftModel.load(model2, adir);
    assert.equal(peft2.trainableCount(), peft.trainableCount());
    const head2 = model2 instanceof ViT ? LinearHead.fromClassifier(model2) : head;
    assert.ok(logitsOf(model2, head2).equal(adapted), "reloaded adapter gives different outputs");

    if (def.name !== "adapter") {
      const merged = peft.withMerged((sd) => new Map([...sd].map(([k, v]) => [k, keep(v.clone())])));
      const mdir = tmp();
      copyFileSync(join(dir, "config.json"), join(mdir, "config.json"));
      saveFile(join(mdir, "model.safetensors"), merged);
      const m3 = loadVisionModel(mdir);
      const head3 = m3 instanceof ViT ? LinearHead.fromClassifier(m3) : head;
      assert.ok(logitsOf(m3, head3).allclose(adapted, 1e-5, 1e-5), "merged model differs from adapter outputs");
      assert.ok(logitsOf(model).equal(adapted), "unmerge did not restore the adapter model");
      m3.dispose();
    }
    peft.remove();
    peft2.remove();
    model.dispose();
    model2.dispose();
  }));
}

test("vit-tiny: the trainable ratio is of the WHOLE model (head included); full and BitFit leave the head out", () => {
  const model = loadVisionModel(join(fixtures, "vit-tiny"));
  const shapes = modelShapes(model);
  assert.equal(shapes.totalParams, model.numParameters());
  assert.deepEqual([...shapes.fixed].sort(), ["classifier.bias", "classifier.weight"]);
  // ratio 0.05 of all 81,226 parameters = 4,061 values, exactly, spread over fc1/fc2 (4 × 8,192 entries)
  const exact = getMethod("random-mask").resolveConfig({ trainableRatio: 0.05, maskKind: "exact", seed: 1 }, shapes);
  assert.equal(getMethod("random-mask").count(exact, shapes), Math.round(0.05 * model.numParameters()));
  assert.equal(getMethod("full").count({}, shapes), model.numParameters() - 10 * 64 - 10);
  const biases = [...model.params].filter(([k]) => k.endsWith(".bias") && !k.startsWith("classifier.")).reduce((n, [, t]) => n + t.numel, 0);
  assert.equal(getMethod("bitfit").count({}, shapes), biases);
  model.dispose();
});

test("vision targets: ViT's older names and attention q/v", () => {
  const model = loadVisionModel(join(fixtures, "vit-tiny"));
  const shapes = modelShapes(model);
  const legacy = getMethod("lora").resolveConfig({ targetModules: "intermediate.dense,output.dense" }, shapes);
  assert.deepEqual(legacy.targets, ["vit.layers.0.mlp.fc1", "vit.layers.0.mlp.fc2", "vit.layers.1.mlp.fc1", "vit.layers.1.mlp.fc2"]);
  const qv = getMethod("random-mask").resolveConfig({ targetModules: "q_proj,v_proj", trainableRatio: 0.01 }, shapes);
  assert.deepEqual(qv.targets, ["vit.layers.0.attention.q_proj", "vit.layers.0.attention.v_proj", "vit.layers.1.attention.q_proj", "vit.layers.1.attention.v_proj"]);
  assert.throws(() => getMethod("lora").resolveConfig({ targetModules: "classifier" }, shapes), /matches no linear module/);
  model.dispose();
  const clip = loadVisionModel(join(fixtures, "clip-vision-tiny"));
  const c = getMethod("lora").resolveConfig({ targetModules: "q_proj,v_proj" }, modelShapes(clip));
  assert.equal((c.targets as string[]).length, 4);
  assert.ok((c.targets as string[]).every((t) => /^vision_model\.encoder\.layers\.\d\.self_attn\.[qv]_proj$/.test(t)));
  clip.dispose();
});
