// What PEFT methods need to know of a model's shapes. For language models from
// the config alone (counting trainable values for any size needs no weights);
// for vision towers from the model's own tensors and the facts it declares
// (its checkpoint decides whether a classifier, pooler or projection exists).
import type { ModelConfig } from "../models/causal-lm.js";
import type { VisionConfig } from "../models/vision/config.js";
import { familyOf } from "../models/registry.js";
import { type BaseModel, isVisionModel } from "./base-model.js";

/** The family facts PEFT methods use. */
export interface PeftFamily {
  readonly name: string;
  /** Target patterns used when the user gives none (the paper's: attention q and v for LMs, MLP fc1/fc2 for vision). */
  readonly defaultTargets: readonly string[];
  /** Row ranges of a default target that masks draw from (GPT-2's fused c_attn); absent = whole matrix. */
  maskRows?(config: ModelConfig, module: string): [number, number][] | undefined;
  /** Other names users may give a target, mapped to this model's (ViT's legacy intermediate.dense → mlp.fc1). */
  readonly targetAliases?: Readonly<Record<string, string>>;
}

export interface ModelShapes {
  kind: "causal-lm" | "vision";
  config: ModelConfig | VisionConfig;
  /** The Hugging Face class, e.g. "OPTForCausalLM", "ViTForImageClassification". */
  architecture: string;
  family: PeftFamily;
  /** Every parameter's shape by Hugging Face name, linears [out, in] (lm_head.weight excluded when tied). */
  params: Map<string, number[]>;
  /** Linear modules by name: [out, in]. */
  linears: Map<string, [number, number]>;
  /** Total parameter count (tied weights once): the denominator of the paper's ratio. */
  totalParams: number;
  /** Parameters no method trains: a vision classifier's fixed head (the paper fixes it) and tensors off the feature path. */
  fixed: Set<string>;
}

function linearShapes(params: Map<string, number[]>, names: Iterable<string>): Map<string, [number, number]> {
  const linears = new Map<string, [number, number]>();
  for (const name of names) {
    const s = params.get(`${name}.weight`)!;
    linears.set(name, [s[0], s[1]]);
  }
  return linears;
}

function total(params: Map<string, number[]>): number {
  let n = 0;
  for (const s of params.values()) n += s.reduce((a, b) => a * b, 1);
  return n;
}

/** A language model's shapes from its config (no weights needed). */
export function shapesOf(config: ModelConfig): ModelShapes {
  const family = familyOf(config);
  const params = family.expectedShapes(config);
  if (config.tieWordEmbeddings) params.delete("lm_head.weight");
  return { kind: "causal-lm", config, architecture: config.architecture, family, params,
    linears: linearShapes(params, family.linearNames(config)), totalParams: total(params), fixed: new Set() };
}

/** Any model's shapes: a language model's from its config, a vision tower's from its tensors and declared facts. */
export function modelShapes(model: BaseModel): ModelShapes {
  if (!isVisionModel(model)) return shapesOf(model.config);
  const fixed = new Set(model.fixedParams());
  const params = new Map<string, number[]>();
  const seen = new Set<unknown>();
  for (const [name, t] of model.params) if (!seen.has(t)) { seen.add(t); params.set(name, t.shape); }
  return { kind: "vision", config: model.config, architecture: model.architecture,
    family: { name: model.config.modelType, defaultTargets: model.defaultTargets, targetAliases: model.targetAliases },
    params, linears: linearShapes(params, [...model.linears.keys()].filter((n) => !fixed.has(`${n}.weight`))), totalParams: total(params), fixed };
}
