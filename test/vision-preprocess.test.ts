// Preprocessing: PIL's resampling against hand-computed cases, centre crop, rescale and normalise.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RESAMPLE, centerCrop, parsePreprocessorConfig, preprocessImage, readPreprocessorConfig, resize, shortestEdgeSize } from "../src/models/vision/preprocess.js";
import { parseVisionConfig } from "../src/models/vision/config.js";
import type { RawImage } from "../src/data/vision/image.js";

const grey = (w: number, h: number, values: number[]): RawImage => ({ data: Uint8Array.from(values), width: w, height: h, channels: 1 });
const vit = parseVisionConfig({ model_type: "vit", hidden_size: 8, num_attention_heads: 2, num_hidden_layers: 1, intermediate_size: 8, image_size: 4, patch_size: 2 });
const clip = parseVisionConfig({ model_type: "clip_vision_model", hidden_size: 8, num_attention_heads: 2, num_hidden_layers: 1, intermediate_size: 8, image_size: 4, patch_size: 2 });

test("bilinear downscale 4→2 matches the hand-computed antialiased weights (3/7, 3/7, 1/7)", () => {
  // out[0]: centre 1, support 2 (1 × scale 2): taps 0..2 weigh tri(−¼), tri(¼), tri(¾) = ¾, ¾, ¼ → /1.75
  //   (0·3 + 100·3 + 200·1)/7 = 71.43 → 71;  out[1]: taps 1..3, weights 1/7, 3/7, 3/7 → (100 + 600 + 765)/7 = 209.3 → 209
  assert.deepEqual([...resize(grey(4, 1, [0, 100, 200, 255]), 1, 2, RESAMPLE.bilinear).data], [71, 209]);
});

test("bicubic upscale 2→4 matches the hand-computed Keys (a = −½) weights, overshoot clipped", () => {
  // out[0]: centre ¼, taps at distance ¼ and 1¼: w = 0.8671875, −0.0703125 → normalised 1.0882, −0.0882 → 200·−0.088 < 0 → 0
  // out[1]: centre ¾, distances ¼, ¾: 0.8671875, 0.2265625 → 0.79286, 0.20714 → 41.4 → 41; by symmetry 158.6 → 159 and 217.6 → 218
  assert.deepEqual([...resize(grey(2, 1, [0, 200]), 1, 4, RESAMPLE.bicubic).data], [0, 41, 159, 218]);
  // the vertical pass is the same filter along columns
  assert.deepEqual([...resize(grey(1, 2, [0, 200]), 4, 1, RESAMPLE.bicubic).data], [0, 41, 159, 218]);
});

test("2-D resize runs the horizontal pass, then the vertical pass on its uint8 output", () => {
  // rows [0, 200] and [200, 0] → [0, 41, 159, 218] and [218, 159, 41, 0]; column 0 is then [0, 218] →
  // 0·1.0882 − 218·0.0882 < 0 → 0; 218·0.20714 = 45.2 → 45; 218·0.79286 = 172.8 → 173; 218·1.0882 = 237.2 → 237
  const out = resize(grey(2, 2, [0, 200, 200, 0]), 4, 4, RESAMPLE.bicubic);
  assert.deepEqual([0, 1, 2, 3].map((y) => out.data[y * 4]), [0, 45, 173, 237]);
  // column 1 is [41, 159] after the horizontal pass: 41·1.0882 − 159·0.0882 = 30.6 → 31 (not 45 as in column 0's
  // transpose: the passes round in order, so the result is not symmetric even for a symmetric image)
  assert.equal(out.data[1], 31);
});

test("nearest samples floor((x + ½)·in/out); an unchanged size returns the image as is", () => {
  assert.deepEqual([...resize(grey(3, 1, [10, 20, 30]), 1, 2, RESAMPLE.nearest).data], [10, 30]); // ⌊0.75⌋, ⌊2.25⌋
  const img = grey(2, 2, [1, 2, 3, 4]);
  assert.equal(resize(img, 2, 2, RESAMPLE.bicubic), img);
});

test("shortest-edge sizes and centre crop follow Hugging Face (long side truncated, zero padding)", () => {
  assert.deepEqual(shortestEdgeSize(480, 640, 224), [224, 298]); // 224·640/480 = 298.67 → 298
  assert.deepEqual(shortestEdgeSize(640, 480, 224), [298, 224]);
  const img = grey(4, 3, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
  assert.deepEqual([...centerCrop(img, 1, 2).data], [5, 6]);          // top ⌊(3−1)/2⌋ = 1, left ⌊(4−2)/2⌋ = 1
  // smaller than the crop: HF pads ⌈½⌉ = 1 zero row/column before, then crops from top = ⌊−½⌋ + 1 = 0
  assert.deepEqual([...centerCrop(grey(1, 1, [9]), 2, 2).data], [0, 0, 0, 9]);
});

test("a pixel goes through rescale and normalise with the configured mean and std", () => {
  const p = parsePreprocessorConfig({ do_resize: false, image_mean: [0.5, 0.25, 0], image_std: [0.5, 0.25, 2] }, vit);
  const img: RawImage = { data: Uint8Array.from([255, 51, 0]), width: 1, height: 1, channels: 3 };
  const out = preprocessImage(img, p).data;
  // (255/255 − 0.5)/0.5 = 1; (51/255 − 0.25)/0.25 = (0.2 − 0.25)/0.25 = −0.2; (0 − 0)/2 = 0
  assert.ok(Math.abs(out[0] - 1) < 1e-6 && Math.abs(out[1] + 0.2) < 1e-6 && out[2] === 0, `${[...out]}`);
});

test("family defaults: ViT resizes to a square bilinearly, CLIP resizes the shortest edge bicubically then crops", () => {
  const v = parsePreprocessorConfig({}, vit);
  assert.deepEqual(v.size, { height: 4, width: 4 });
  assert.equal(v.resample, RESAMPLE.bilinear);
  assert.equal(v.doCenterCrop, false);
  const c = parsePreprocessorConfig({ size: 224, crop_size: 224 }, clip);
  assert.deepEqual(c.size, { shortestEdge: 224 });
  assert.deepEqual(c.cropSize, { height: 224, width: 224 });
  assert.equal(c.resample, RESAMPLE.bicubic);
  assert.deepEqual(c.imageMean, [0.48145466, 0.4578275, 0.40821073]);
  // a grey 6×8 image becomes [3, 4, 4] and the three channels agree before normalising
  const { data: out, height, width } = preprocessImage(grey(8, 6, Array.from({ length: 48 }, (_, i) => i * 5)), parsePreprocessorConfig({ image_mean: 0, image_std: 1 }, clip));
  assert.deepEqual([out.length, height, width], [48, 4, 4]);
  assert.deepEqual([...out.subarray(0, 16)], [...out.subarray(16, 32)]);
});

test("a bad preprocessor_config.json is one error naming the file and field", () => {
  const dir = mkdtempSync(join(tmpdir(), "prep-"));
  writeFileSync(join(dir, "preprocessor_config.json"), JSON.stringify({ image_std: [0.5, 0.5] }));
  assert.throws(() => readPreprocessorConfig(dir, vit), /preprocessor_config\.json: "image_std" must be three numbers/);
  writeFileSync(join(dir, "preprocessor_config.json"), JSON.stringify({ resample: 9 }));
  assert.throws(() => readPreprocessorConfig(dir, vit), /"resample" must be a PIL resampling code/);
  writeFileSync(join(dir, "preprocessor_config.json"), "{");
  assert.throws(() => readPreprocessorConfig(dir, vit), /preprocessor_config\.json: cannot read as JSON/);
});
