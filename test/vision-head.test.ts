// The fixed linear head: file format, the checkpoint's classifier, the linear probe's optimality.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { tensor, tidy, noGrad, type Tensor } from "../src/engine/index.js";
import { saveFile } from "../src/io/safetensors.js";
import { ViT } from "../src/models/vision/vit.js";
import { CLIPVisionModel } from "../src/models/vision/clip-vision.js";
import { LinearHead, linearProbe, probeObjective } from "../src/models/vision/head.js";
import { extractFeatures } from "../src/models/vision/features.js";
import { readPreprocessorConfig } from "../src/models/vision/preprocess.js";
import type { ImageExample } from "../src/data/vision/index.js";
import { det, sharedDir } from "./helpers.js";

const fixtures = join(sharedDir, "fixtures");
const tmp = mkdtempSync(join(tmpdir(), "vision-head-"));

test("the checkpoint's classifier as a head on ViT features gives Hugging Face's logits", () => {
  const ref = JSON.parse(readFileSync(join(fixtures, "vit-tiny", "reference.json"), "utf8"));
  const model = ViT.load(join(fixtures, "vit-tiny"));
  const head = LinearHead.fromClassifier(model);
  const v = ref.pixel_values as number[][][][];
  const logits = noGrad(() => tidy(() => head.forward(model.features(tensor(v.flat(3), [v.length, 3, 32, 32]))).toNested())) as number[][];
  const err = Math.max(...logits.flatMap((row, b) => row.map((x, j) => Math.abs(x - ref.logits[b][j]))));
  assert.ok(err <= 1e-4, `max error ${err}`);
  model.dispose();
});

test("a normalising head applies W·f/‖f‖ + b", () => tidy(() => {
  const head = new LinearHead(tensor([1, 0, 0, 2], [2, 2]), tensor([0.5, 0], [2]), true);
  const out = head.forward(tensor([3, 4], [1, 2])).toNumbers(); // f/‖f‖ = (0.6, 0.8)
  assert.ok(Math.abs(out[0] - 1.1) < 1e-6 && Math.abs(out[1] - 1.6) < 1e-6, `${out}`);
}));

test("head files: save/load round trip, and errors naming the file", () => tidy(() => {
  const file = join(tmp, "head.safetensors");
  new LinearHead(tensor([1, 2, 3, 4, 5, 6], [3, 2]), null, true).save(file);
  const back = LinearHead.load(file, { dim: 2 });
  assert.deepEqual(back.weight.toNumbers(), [1, 2, 3, 4, 5, 6]);
  assert.equal(back.bias, null);
  assert.equal(back.normalize, true);
  assert.throws(() => LinearHead.load(file, { dim: 64 }), /head\.safetensors: 'weight' is \[3,2\] but the model's features have 64 dimensions/);
  const bad = join(tmp, "bad.safetensors");
  saveFile(bad, new Map([["classifier.weight", tensor([1, 2], [1, 2])]]));
  assert.throws(() => LinearHead.load(bad), /bad\.safetensors: no 'weight' tensor/);
  saveFile(bad, new Map([["weight", tensor([1, 2], [1, 2])], ["bias", tensor([1, 2], [2])]]));
  assert.throws(() => LinearHead.load(bad), /bad\.safetensors: 'bias' must be \[1\], got \[2\]/);
  saveFile(bad, new Map([["weight", tensor([1, NaN], [1, 2])]]));
  assert.throws(() => LinearHead.load(bad), /bad\.safetensors: 'weight' holds NaN or infinite values/);
  saveFile(bad, new Map([["weight", tensor([1, 2], [1, 2])], ["bias", tensor([Infinity], [1])]]));
  assert.throws(() => LinearHead.load(bad), /bad\.safetensors: 'bias' holds NaN or infinite values/);
  saveFile(bad, new Map([["weight", tensor([1, 2], [1, 2])]]));
  assert.equal(LinearHead.load(bad, { defaultNormalize: true }).normalize, true, "no flag in the file: the default");
  assert.equal(LinearHead.load(file, { defaultNormalize: false }).normalize, true, "the file's flag wins");
}));

test("the linear probe reaches a stationary point of its objective and separates separable classes", () => {
  // three clusters in 6-D, 20 points each
  const n = 60, dim = 6, classes = 3;
  const noise = det(n * dim, 5);
  const labels = Array.from({ length: n }, (_, i) => i % classes);
  const data = Array.from({ length: n * dim }, (_, k) => {
    const i = Math.floor(k / dim), d = k % dim;
    return (d === labels[i] * 2 ? 2 : 0) + 0.5 * noise[k];
  });
  const features = tensor(data, [n, dim]);
  const l2 = 1e-2;
  const head = linearProbe(features, labels, classes, { l2, steps: 800 });
  const again = linearProbe(features, labels, classes, { l2, steps: 800 });
  assert.ok(head.weight.equal(again.weight), "deterministic");
  tidy(() => {
    const predicted = head.forward(features).argmax(1).toNumbers();
    assert.deepEqual(predicted, labels, "train accuracy 1");
    // gradient of the objective at the returned head, by autograd on copies
    const w = head.weight.clone().setRequiresGrad(true);
    const b = head.bias!.clone().setRequiresGrad(true);
    probeObjective(new LinearHead(w, b, false), features, tensor(labels, [n], "int64"), l2).backward();
    const g = Math.hypot(w.grad!.norm().item(), b.grad!.norm().item());
    assert.ok(g < 1e-3, `‖∇ objective‖ = ${g} at the probe's solution`);
  });
  assert.throws(() => linearProbe(features, labels.slice(1), classes), /59 labels for 60 feature rows/);
  head.dispose(); again.dispose(); features.dispose();
});

test("frozen CLIP features of preprocessed dataset images feed a probe", () => {
  const model = CLIPVisionModel.load(join(fixtures, "clip-vision-tiny"));
  const prep = readPreprocessorConfig(join(fixtures, "clip-vision-tiny"), model.config); // no file: CLIPImageProcessor defaults at 32
  const raw = readFileSync(join(sharedDir, "data", "vision", "cifar10", "convnetjs_cifar10_batch0_1000x32x32x3_u8.bin"));
  const labels = JSON.parse(readFileSync(join(sharedDir, "data", "vision", "cifar10", "convnetjs_cifar10_batch0_labels.json"), "utf8")) as number[];
  const examples: ImageExample[] = Array.from({ length: 10 }, (_, i) => ({
    label: labels[i], image: () => ({ data: raw.subarray(i * 3072, (i + 1) * 3072), height: 32, width: 32, channels: 3 }),
  }));
  const f: Tensor = extractFeatures(model, examples, prep, 4);
  assert.deepEqual(f.shape, [10, 32]);
  const single = noGrad(() => tidy(() => extractFeatures(model, examples.slice(7, 8), prep).toNumbers()));
  const row = tidy(() => f.select(0, 7).toNumbers());
  assert.ok(single.every((v, j) => Math.abs(v - row[j]) < 1e-5), "batching does not change features");
  const head = linearProbe(f, examples.map((e) => e.label), 10, { normalize: true, steps: 50 });
  assert.deepEqual([head.numClasses, head.dim, head.normalize], [10, 32, true]);
  head.dispose(); f.dispose(); model.dispose();
});
