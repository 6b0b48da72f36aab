// The vision towers behind one loader, chosen by config.json's model_type.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { DType } from "../../engine/index.js";
import { CLIPVisionModel } from "./clip-vision.js";
import { isVisionModelType } from "./config.js";
import type { VisionModel } from "./common.js";
import { ViT } from "./vit.js";

/** config.json's model_type of a model folder, or undefined when it has none. */
export function modelTypeOf(dir: string): unknown {
  const file = join(dir, "config.json");
  if (!existsSync(file)) return undefined;
  try { return (JSON.parse(readFileSync(file, "utf8")) as { model_type?: unknown }).model_type; } catch { return undefined; }
}

/** True when the folder's config.json names a vision model (vit, clip_vision_model, clip). */
export function isVisionModelDir(dir: string): boolean {
  return isVisionModelType(modelTypeOf(dir));
}

/**
 * Loads a Hugging Face vision folder: `vit` → ViT, `clip_vision_model` or `clip` → CLIPVisionModel.
 * @throws Error naming the folder when config.json is missing or names another architecture.
 */
export function loadVisionModel(dir: string, opts: { dtype?: DType } = {}): ViT | CLIPVisionModel {
  const type = modelTypeOf(dir);
  if (type === "vit") return ViT.load(dir, opts);
  if (type === "clip_vision_model" || type === "clip") return CLIPVisionModel.load(dir, opts);
  if (!existsSync(join(dir, "config.json"))) throw new Error(`${dir}: no config.json (expected a Hugging Face model folder)`);
  throw new Error(`${join(dir, "config.json")}: model_type ${JSON.stringify(type)} is not a vision model (vit, clip_vision_model, clip)`);
}

export type { VisionModel };
