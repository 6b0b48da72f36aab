// What ViT and CLIP's vision tower share: the member shape PEFT methods use
// (params by Hugging Face name, linears by module name, hooks), the patch
// embedding, activations, and loading a checkpoint into validated parameters.
import { type DType, Tensor, linear, keep, noGrad } from "../../engine/index.js";
import { loadCheckpoint } from "../../io/checkpoint.js";
import { Linear, type LinearModule } from "../opt.js";
import type { VisionActivation, VisionConfig } from "./config.js";

/** PEFT targets of both towers by default: the MLP layers (Table 2 masks fc1/fc2). */
export const MLP_TARGETS: readonly string[] = ["mlp.fc1", "mlp.fc2"];

export interface VisionHooks {
  /** Transforms the attention block's output before the residual add (adapters). */
  afterAttention?: (layer: number, h: Tensor) => Tensor;
  /** Transforms the MLP block's output before the residual add (adapters). */
  afterFeedForward?: (layer: number, h: Tensor) => Tensor;
}

/** A vision transformer with the members PEFT methods use on language models. */
export interface VisionModel {
  readonly config: VisionConfig;
  /** Base weights by Hugging Face name. */
  readonly params: Map<string, Tensor>;
  /** Every linear layer by Hugging Face module name (e.g. vit.layers.0.mlp.fc1). */
  readonly linears: Map<string, LinearModule>;
  hooks: VisionHooks;
  training: boolean;
  /** The Hugging Face class this checkpoint is (ViTForImageClassification, ViTModel, CLIPVisionModelWithProjection, …). */
  readonly architecture: string;
  readonly dtype: DType;
  /** PEFT targets when none are given: the MLP's fc1 and fc2 (the paper's Table 2 setup). */
  readonly defaultTargets: readonly string[];
  /** Other module names users may give as targets (Hugging Face's older ones), mapped to this model's. */
  readonly targetAliases: Readonly<Record<string, string>>;
  /** Parameters no PEFT method trains: the checkpoint's classifier (a fixed head) and tensors features() never reads. */
  fixedParams(): string[];
  /** Width of features(). */
  readonly featureDim: number;
  /** [batch, channels, H, W] normalised pixels → [batch, featureDim]: what a classification head reads. */
  features(pixelValues: Tensor): Tensor;
  setParam(name: string, t: Tensor): void;
  numParameters(): number;
  stateDict(): Map<string, Tensor>;
  dispose(): void;
}

/**
 * The patch embedding, Conv2d(kernel = stride = patch) written as reshape + linear:
 * [B, C, H, W] → [B, (H/p)·(W/p), D], patches in raster order as Conv2d(...).flatten(2).transpose(1, 2)
 * gives them. `weight` is the convolution's [D, C, p, p].
 * @throws Error when the image is not [B, C, H, W] with C and H, W matching the config.
 */
export function patchEmbed(pixelValues: Tensor, weight: Tensor, bias: Tensor | null, c: VisionConfig): Tensor {
  const s = pixelValues.shape;
  if (s.length !== 4 || s[1] !== c.numChannels || s[2] !== c.imageSize || s[3] !== c.imageSize) {
    throw new Error(`pixel values have shape [${s}], expected [batch, ${c.numChannels}, ${c.imageSize}, ${c.imageSize}] ` +
      "(interpolating position embeddings to another size is not supported)");
  }
  const [b, ch] = s;
  const p = c.patchSize;
  const n = c.imageSize / p;
  const patches = pixelValues.to(weight.dtype).reshape([b, ch, n, p, n, p]).permute([0, 2, 4, 1, 3, 5]).reshape([b, n * n, ch * p * p]);
  return linear(patches, weight.reshape([weight.size(0), ch * p * p]), bias);
}

/** Hugging Face's ACT2FN for the activations these configs name (quick_gelu: x·σ(1.702x), CLIP's). */
export function activation(x: Tensor, act: VisionActivation | "tanh"): Tensor {
  switch (act) {
    case "gelu": return x.gelu();
    case "gelu_new": return x.gelu(true);
    case "quick_gelu": return x.mul(x.mul(1.702).sigmoid());
    case "relu": return x.relu();
    case "tanh": return x.tanh();
  }
}

/** Linear modules over the params named `${name}.weight` (and `.bias` when present). */
export function buildLinears(names: string[], params: Map<string, Tensor>): Map<string, LinearModule> {
  const out = new Map<string, LinearModule>();
  for (const name of names) out.set(name, new Linear(params.get(`${name}.weight`)!, params.get(`${name}.bias`) ?? null));
  return out;
}

/** Replaces a base weight (same shape), keeping the Linear that uses it in step (as OPTForCausalLM.setParam). */
export function replaceParam(params: Map<string, Tensor>, linears: Map<string, LinearModule>, name: string, t: Tensor): void {
  const old = params.get(name);
  if (!old) throw new Error(`no parameter named '${name}'`);
  if (old.shape.join() !== t.shape.join()) throw new Error(`'${name}' has shape [${old.shape}], got [${t.shape}]`);
  params.set(name, t);
  const module = name.replace(/\.(weight|bias)$/, "");
  if (linears.get(module) instanceof Linear) {
    linears.set(module, new Linear(params.get(`${module}.weight`)!, params.get(`${module}.bias`) ?? null));
  }
}

export function countParameters(params: Map<string, Tensor>): number {
  let n = 0;
  for (const t of new Set(params.values())) n += t.numel;
  return n;
}

/**
 * Loads a folder's safetensors, renames keys with `rename` (null drops a key,
 * e.g. a full CLIP checkpoint's text tower), converts to `dtype`, and checks the
 * names and shapes against `expected` (optional entries may be absent).
 * @throws Error naming `dir` and the first missing, unexpected or mis-shaped tensors.
 */
export function loadVisionParams(dir: string, rename: (key: string) => string | null, expected: Map<string, number[]>,
  optional: (name: string) => boolean, dtype: DType): Map<string, Tensor> {
  const raw = loadCheckpoint(dir, (k) => rename(k) !== null);
  const params = new Map<string, Tensor>();
  try {
    for (const [key, t] of raw) {
      const name = rename(key)!;
      if (params.has(name)) throw new Error(`${dir}: tensors '${key}' and another both map to '${name}'`);
      const converted = t.dtype === dtype ? t : keep(noGrad(() => t.to(dtype)));
      if (converted !== t) t.dispose();
      params.set(name, converted);
    }
    const missing = [...expected.keys()].filter((k) => !params.has(k) && !optional(k));
    if (missing.length) throw new Error(`${dir}: checkpoint lacks ${missing.length} tensor(s) the config needs: ${missing.slice(0, 5).join(", ")}${missing.length > 5 ? ", …" : ""}`);
    const unexpected = [...params.keys()].filter((k) => !expected.has(k));
    if (unexpected.length) throw new Error(`${dir}: checkpoint has tensor(s) this config does not: ${unexpected.slice(0, 5).join(", ")}`);
    for (const [k, t] of params) {
      const shape = expected.get(k)!;
      if (t.shape.join() !== shape.join()) throw new Error(`${dir}: tensor '${k}' has shape [${t.shape}] but config.json implies [${shape}]`);
    }
  } catch (e) {
    for (const t of new Set([...raw.values(), ...params.values()])) t.dispose();
    throw e;
  }
  return params;
}
