// What a PEFT method sees of a model: a causal language model or a vision
// tower. Both hold base weights by Hugging Face name (`params`), every linear
// layer by module name (`linears`, which methods replace), and sublayer hooks.
import type { CausalLM } from "../models/causal-lm.js";
import type { VisionModel } from "../models/vision/common.js";

export type BaseModel = CausalLM | VisionModel;

/** True for a vision tower (ViT, CLIP's vision model): it has image features, not token logits. */
export function isVisionModel(model: BaseModel): model is VisionModel {
  return "featureDim" in model;
}
