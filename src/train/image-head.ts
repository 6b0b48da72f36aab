// Which fixed head an image run classifies with: a head file, the checkpoint's
// own classifier, or (offline, where CLIP's zero-shot head cannot be built) a
// linear probe fitted once on frozen features and then frozen. The probe is a
// deviation from the paper, which uses CLIP's zero-shot head (Ilharco et al. 2023).
import type { ImageExample } from "../data/vision/index.js";
import type { VisionModel } from "../models/vision/common.js";
import { CLIPVisionModel } from "../models/vision/clip-vision.js";
import { LinearHead, linearProbe } from "../models/vision/head.js";
import { extractFeatures } from "../models/vision/features.js";
import type { PreprocessorConfig } from "../models/vision/preprocess.js";
import { ViT } from "../models/vision/vit.js";

export type HeadSource = "file" | "checkpoint" | "linear-probe";

/** "probe" forces a linear probe; a path names a head file; absent: the checkpoint's classifier, else a probe. */
export type HeadChoice = string | undefined;

/**
 * The fixed head for `classes` classes. A linear probe is fitted on the frozen
 * features of `probeOn` (the training images, before any PEFT method is attached).
 * @throws Error naming the head file or the class-count mismatch (suggesting `--head probe`).
 */
export function resolveHead(model: VisionModel, choice: HeadChoice, classes: number, probeOn: ImageExample[], p: PreprocessorConfig,
  log: (line: string) => void = () => {}): { head: LinearHead; source: HeadSource } {
  const check = (head: LinearHead, what: string): LinearHead => {
    if (head.numClasses !== classes) {
      throw new Error(`${what} has ${head.numClasses} classes but the task has ${classes}; give --head FILE.safetensors with [${classes}, ${model.featureDim}] or --head probe`);
    }
    return head;
  };
  if (choice !== undefined && choice !== "probe") {
    return { head: check(LinearHead.load(choice, { dim: model.featureDim, defaultNormalize: model instanceof CLIPVisionModel }), choice), source: "file" };
  }
  if (choice === undefined && model instanceof ViT && model.hasClassifier) {
    return { head: check(LinearHead.fromClassifier(model), "the checkpoint's classifier"), source: "checkpoint" };
  }
  log(`fitting a linear probe on frozen features of ${probeOn.length} training images (a deviation from the paper's CLIP zero-shot head)`);
  const features = extractFeatures(model, probeOn, p);
  try {
    const head = linearProbe(features, probeOn.map((e) => e.label), classes, { normalize: model instanceof CLIPVisionModel });
    return { head, source: "linear-probe" };
  } finally {
    features.dispose();
  }
}
