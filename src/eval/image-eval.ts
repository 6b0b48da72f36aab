// Accuracy of an image classifier (vision tower + fixed head), with the
// per-example predictions behind it.
import { noGrad, tidy } from "../engine/index.js";
import type { ImageExample } from "../data/vision/index.js";
import type { VisionModel } from "../models/vision/common.js";
import type { LinearHead } from "../models/vision/head.js";
import { pixelBatch } from "../models/vision/features.js";
import type { PreprocessorConfig } from "../models/vision/preprocess.js";
import { NonFiniteScoresError } from "./non-finite.js";

export interface ImagePrediction { index: number; gold: number; prediction: number; correct: boolean }
export interface ImageMetrics { accuracy: number; n: number }

/**
 * Argmax of head(model.features(pixels)) for every example, `batch` images per
 * forward pass, in eval mode without gradients.
 * @throws Error for an empty example list; NonFiniteScoresError for an example whose logits are NaN or infinite.
 */
export function predictImages(model: VisionModel, head: LinearHead, examples: ImageExample[], p: PreprocessorConfig,
  opts: { batch?: number; onProgress?: (done: number) => void } = {}): { metrics: ImageMetrics; predictions: ImagePrediction[] } {
  if (examples.length === 0) throw new Error("no examples to evaluate");
  const batch = opts.batch ?? 64;
  const training = model.training;
  model.training = false;
  const predictions: ImagePrediction[] = [];
  try {
    for (let i = 0; i < examples.length; i += batch) {
      const part = examples.slice(i, i + batch);
      const logits = noGrad(() => tidy(() => head.forward(model.features(pixelBatch(part, p))).to("float32").toArray())) as Float32Array;
      const classes = logits.length / part.length;
      part.forEach((e, j) => {
        const row = Array.from(logits.subarray(j * classes, (j + 1) * classes));
        if (!row.every(Number.isFinite)) throw new NonFiniteScoresError(i + j, "class logits");
        const prediction = row.indexOf(Math.max(...row)); // the first of tied maxima, as torch.argmax
        predictions.push({ index: i + j, gold: e.label, prediction, correct: prediction === e.label });
      });
      opts.onProgress?.(Math.min(i + batch, examples.length));
    }
  } finally {
    model.training = training;
  }
  const correct = predictions.filter((x) => x.correct).length;
  return { metrics: { accuracy: correct / predictions.length, n: predictions.length }, predictions };
}
