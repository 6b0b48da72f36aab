// From dataset images to model inputs and frozen features.
import { type Tensor, cat, keep, noGrad, tensor, tidy } from "../../engine/index.js";
import type { ImageExample } from "../../data/vision/types.js";
import type { VisionModel } from "./common.js";
import { type PreprocessorConfig, preprocessImage } from "./preprocess.js";

/** Preprocessed pixel values [batch, 3, H, W] (float32) of `examples`. */
export function pixelBatch(examples: ImageExample[], p: PreprocessorConfig): Tensor {
  if (!examples.length) throw new Error("pixelBatch: no images");
  const planes = examples.map((e) => preprocessImage(e.image(), p));
  const { height, width } = planes[0];
  const per = 3 * height * width;
  const data = new Float32Array(per * planes.length);
  planes.forEach((x, i) => {
    if (x.height !== height || x.width !== width) {
      throw new Error(`images preprocess to different sizes (${height}×${width} and ${x.height}×${x.width}); the preprocessor must resize or crop to one size`);
    }
    data.set(x.data, i * per);
  });
  return tensor(data, [examples.length, 3, height, width]);
}

/**
 * Frozen features [N, model.featureDim] of `examples` (no gradient, eval mode),
 * computed `batchSize` images at a time; what a linear probe is fitted on.
 */
export function extractFeatures(model: VisionModel, examples: ImageExample[], p: PreprocessorConfig, batchSize = 64): Tensor {
  const training = model.training;
  model.training = false;
  try {
    const parts: Tensor[] = [];
    for (let i = 0; i < examples.length; i += batchSize) {
      parts.push(keep(noGrad(() => tidy(() => model.features(pixelBatch(examples.slice(i, i + batchSize), p))))));
    }
    try { return cat(parts, 0); } finally { for (const t of parts) t.dispose(); }
  } finally {
    model.training = training;
  }
}
