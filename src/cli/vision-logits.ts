// `randmask logits --model DIR --pixel-values FILE.json [--head FILE.safetensors]`
// for the vision towers: {"logits"} for a classifier (or through the given fixed
// head), {"image_embeds", "last_hidden_state"} for CLIP's tower with its
// projection, {"pooler_output", "last_hidden_state"} otherwise.
import { readFileSync } from "node:fs";
import { type DType, type Tensor, noGrad, tensor, tidy } from "../engine/index.js";
import { CLIPVisionModel } from "../models/vision/clip-vision.js";
import { loadVisionModel } from "../models/vision/index.js";
import { LinearHead } from "../models/vision/head.js";
import { UsageError } from "./args.js";

/**
 * Reads a JSON array [batch, channels, H, W] of finite numbers.
 * @throws UsageError naming the file when it is not JSON or not such an array.
 */
export function readPixelValues(file: string): { data: Float32Array; shape: number[] } {
  let v: unknown;
  try { v = JSON.parse(readFileSync(file, "utf8")); } catch (e) {
    throw new UsageError(`--pixel-values ${file}: cannot read as JSON (${(e as Error).message})`);
  }
  const shape: number[] = [];
  for (let x = v; Array.isArray(x); x = x[0]) shape.push(x.length);
  const flat = shape.length === 4 && shape.every((n) => n > 0) ? (v as unknown[]).flat(3) : [];
  if (flat.length !== shape.reduce((a, b) => a * b, 1) || !flat.every((x) => typeof x === "number" && Number.isFinite(x))) {
    throw new UsageError(`--pixel-values ${file}: expected a rectangular JSON array [batch, channels, height, width] of finite numbers`);
  }
  return { data: Float32Array.from(flat as number[]), shape };
}

/** Prints the vision model's outputs for the pixel file as one JSON line. @throws UsageError for a bad file or size. */
export function visionLogits(dir: string, pixelFile: string, dtype: DType, headFile?: string): void {
  const { data, shape } = readPixelValues(pixelFile);
  const model = loadVisionModel(dir, { dtype });
  const c = model.config;
  let head: LinearHead | undefined;
  try {
    if (shape[1] !== c.numChannels || shape[2] !== c.imageSize || shape[3] !== c.imageSize) {
      throw new UsageError(`--pixel-values ${pixelFile}: shape [${shape}], but the model takes [batch, ${c.numChannels}, ${c.imageSize}, ${c.imageSize}]`);
    }
    // a head file without the flag: CLIP heads act on normalised features (Ilharco et al.), ViT heads on raw ones
    if (headFile) head = LinearHead.load(headFile, { dim: model.featureDim, defaultNormalize: model instanceof CLIPVisionModel });
  } catch (e) {
    model.dispose();
    throw e;
  }
  const result = noGrad(() => tidy(() => {
    const x = tensor(data, shape);
    const nested = (t: Tensor) => t.to("float32").toNested();
    if (head) return { logits: nested(head.forward(model.features(x))) };
    if (model instanceof CLIPVisionModel) {
      const o = model.forward(x);
      return o.imageEmbeds
        ? { image_embeds: nested(o.imageEmbeds), last_hidden_state: nested(o.lastHiddenState) }
        : { pooler_output: nested(o.poolerOutput), last_hidden_state: nested(o.lastHiddenState) };
    }
    const o = model.forward(x);
    if (o.logits) return { logits: nested(o.logits) };
    return { ...(o.poolerOutput ? { pooler_output: nested(o.poolerOutput) } : {}), last_hidden_state: nested(o.lastHiddenState) };
  }));
  model.dispose();
  head?.dispose();
  process.stdout.write(JSON.stringify(result) + "\n");
}
