// config.json of the vision transformers randmask runs: Hugging Face `vit`
// (ViTModel / ViTForImageClassification) and CLIP's vision tower
// (`clip_vision_model`, or the `vision_config` of a full `clip` checkpoint).
// Every field that changes the computation is read and checked; a bad value
// is one error naming the file and the field.
import { readFileSync } from "node:fs";
import { ConfigError } from "../config.js";
import { configReader } from "../config-fields.js";

export type VisionActivation = "gelu" | "gelu_new" | "quick_gelu" | "relu";

/** What both towers share: a pre-LayerNorm transformer over image patches. */
interface VisionTransformerConfig {
  hiddenSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  intermediateSize: number;
  imageSize: number;
  patchSize: number;
  numChannels: number;
  hiddenAct: VisionActivation;
  layerNormEps: number;
}

export interface ViTConfig extends VisionTransformerConfig {
  modelType: "vit";
  qkvBias: boolean;
  hiddenDropoutProb: number;
  attentionProbsDropoutProb: number;
  /** Output width of the pooler (ViTModel only): dense hidden → poolerOutputSize, then poolerAct. */
  poolerOutputSize: number;
  poolerAct: "tanh" | VisionActivation;
  /** Label names by class id (id2label), when the checkpoint has a classifier. */
  id2label: string[];
}

export interface CLIPVisionConfig extends VisionTransformerConfig {
  modelType: "clip_vision_model";
  /** Width of image_embeds (visual_projection's output). */
  projectionDim: number;
  attentionDropout: number;
}

export type VisionConfig = ViTConfig | CLIPVisionConfig;

export const VISION_MODEL_TYPES = ["vit", "clip_vision_model", "clip"] as const;

/** True when a config.json's model_type is one of the vision towers. */
export function isVisionModelType(type: unknown): boolean {
  return (VISION_MODEL_TYPES as readonly unknown[]).includes(type);
}

function reader(raw: Record<string, unknown>, file: string) {
  const { size, prob } = configReader(raw, file);
  const eps = (dflt: number): number => {
    const v = raw.layer_norm_eps ?? dflt;
    if (typeof v !== "number" || !(v > 0 && v < 1)) throw new ConfigError(file, `"layer_norm_eps" must be a small positive number, got ${JSON.stringify(v)}`);
    return v;
  };
  const act = (key: string, dflt: string): VisionActivation => {
    const v = raw[key] ?? dflt;
    if (v !== "gelu" && v !== "gelu_new" && v !== "quick_gelu" && v !== "relu") {
      throw new ConfigError(file, `"${key}" ${JSON.stringify(v)} is not supported (gelu, gelu_new, quick_gelu, relu)`);
    }
    return v;
  };
  /** Hugging Face's class defaults fill absent fields (ViTConfig: patch 16; CLIPVisionConfig: patch 32). */
  const shared = (dfltAct: string, dfltEps: number, dfltPatch: number): VisionTransformerConfig => {
    const hiddenSize = size("hidden_size", 768);
    const heads = size("num_attention_heads", 12);
    if (hiddenSize % heads !== 0) throw new ConfigError(file, `hidden_size ${hiddenSize} is not divisible by num_attention_heads ${heads}`);
    const imageSize = size("image_size", 224);
    const patchSize = size("patch_size", dfltPatch);
    if (imageSize % patchSize !== 0) throw new ConfigError(file, `image_size ${imageSize} is not a multiple of patch_size ${patchSize}`);
    return {
      hiddenSize, numHiddenLayers: size("num_hidden_layers", 12), numAttentionHeads: heads, intermediateSize: size("intermediate_size", 3072),
      imageSize, patchSize, numChannels: size("num_channels", 3), hiddenAct: act("hidden_act", dfltAct), layerNormEps: eps(dfltEps),
    };
  };
  return { size, prob, act, shared };
}

/**
 * Parses a vision config.json object (Hugging Face's ViTConfig / CLIPVisionConfig
 * defaults where a field is absent, as transformers fills them). For a full `clip` checkpoint the vision
 * tower's fields come from `vision_config` and `projection_dim` from the top level.
 * @throws ConfigError naming `file` for an unsupported model_type or a bad field.
 */
export function parseVisionConfig(raw: Record<string, unknown>, file = "config.json"): VisionConfig {
  const type = raw.model_type;
  if (type === "vit") {
    const r = reader(raw, file);
    const shared = r.shared("gelu", 1e-12, 16);
    const id2label = raw.id2label as Record<string, unknown> | undefined;
    const labels: string[] = [];
    if (id2label !== undefined) {
      if (typeof id2label !== "object" || id2label === null) throw new ConfigError(file, `"id2label" must be an object of class id → name`);
      const n = Object.keys(id2label).length;
      for (let i = 0; i < n; i++) {
        const name = id2label[String(i)];
        if (typeof name !== "string") throw new ConfigError(file, `"id2label" must map every id 0…${n - 1} to a name; id ${i} is missing`);
        labels.push(name);
      }
    }
    const pooler = raw.pooler_act ?? "tanh";
    return {
      modelType: "vit", ...shared,
      qkvBias: raw.qkv_bias === undefined ? true : bool(raw, "qkv_bias", file),
      hiddenDropoutProb: r.prob("hidden_dropout_prob", 0), attentionProbsDropoutProb: r.prob("attention_probs_dropout_prob", 0),
      poolerOutputSize: r.size("pooler_output_size", shared.hiddenSize),
      poolerAct: pooler === "tanh" ? "tanh" : r.act("pooler_act", "tanh"),
      id2label: labels,
    };
  }
  if (type === "clip_vision_model" || type === "clip") {
    let vision = raw;
    if (type === "clip") {
      if (typeof raw.vision_config !== "object" || raw.vision_config === null) throw new ConfigError(file, `a "clip" config needs a "vision_config" object`);
      vision = { ...(raw.vision_config as Record<string, unknown>), projection_dim: raw.projection_dim ?? 512 };
    }
    const r = reader(vision, type === "clip" ? `${file} (vision_config)` : file);
    return {
      modelType: "clip_vision_model", ...r.shared("quick_gelu", 1e-5, 32),
      projectionDim: r.size("projection_dim", 512), attentionDropout: r.prob("attention_dropout", 0),
    };
  }
  throw new ConfigError(file, `model_type ${JSON.stringify(type)} is not a vision model (supported: ${VISION_MODEL_TYPES.join(", ")})`);
}

function bool(raw: Record<string, unknown>, key: string, file: string): boolean {
  const v = raw[key];
  if (typeof v !== "boolean") throw new ConfigError(file, `"${key}" must be true or false, got ${JSON.stringify(v)}`);
  return v;
}

/** Reads and parses a vision config.json. @throws ConfigError naming the file. */
export function readVisionConfig(file: string): VisionConfig {
  let raw: unknown;
  try { raw = JSON.parse(readFileSync(file, "utf8")); } catch (e) {
    throw new ConfigError(file, `cannot read as JSON (${(e as Error).message})`);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new ConfigError(file, "expected a JSON object");
  return parseVisionConfig(raw as Record<string, unknown>, file);
}

/** Number of patch tokens plus the class token: (imageSize / patchSize)² + 1. */
export function sequenceLength(c: VisionConfig): number {
  return (c.imageSize / c.patchSize) ** 2 + 1;
}
