// The model families randmask runs, chosen by config.json's model_type (or,
// where that is missing, its architectures). Adding a family: its file, and one
// entry here.
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { CausalLM, LoadOptions, ModelConfig, ModelFamily, RandomOptions } from "./causal-lm.js";
import { ConfigError, readConfigJson } from "./config-fields.js";
import { optFamily } from "./opt.js";
import { gpt2Family } from "./gpt2.js";
import { llamaFamily } from "./llama.js";
import { isVisionModelType } from "./vision/config.js";

export const FAMILIES: readonly ModelFamily[] = [optFamily, gpt2Family, llamaFamily];
export const SUPPORTED_MODEL_TYPES: readonly string[] = FAMILIES.flatMap((f) => f.modelTypes);

const ARCHITECTURE_TYPES: Record<string, string> = {
  OPTForCausalLM: "opt", GPT2LMHeadModel: "gpt2", LlamaForCausalLM: "llama", MistralForCausalLM: "mistral", Qwen2ForCausalLM: "qwen2",
};

function modelTypeOf(raw: Record<string, unknown>, file: string): string {
  if (typeof raw.model_type === "string") return raw.model_type;
  const arch = Array.isArray(raw.architectures) ? (raw.architectures as unknown[]).find((a) => typeof a === "string" && a in ARCHITECTURE_TYPES) : undefined;
  if (arch) return ARCHITECTURE_TYPES[arch as string];
  throw new ConfigError(file, `no model_type (and no known architectures entry); supported model types: ${SUPPORTED_MODEL_TYPES.join(", ")}`);
}

export function familyForType(modelType: string, file = "config.json"): ModelFamily {
  const f = FAMILIES.find((x) => x.modelTypes.includes(modelType));
  if (!f && isVisionModelType(modelType)) {
    throw new ConfigError(file, `model_type ${JSON.stringify(modelType)} is a vision model; this needs a language model (${SUPPORTED_MODEL_TYPES.join(", ")})`);
  }
  if (!f) throw new ConfigError(file, `model_type ${JSON.stringify(modelType)} is not supported (supported: ${SUPPORTED_MODEL_TYPES.join(", ")})`);
  return f;
}

export function familyOf(config: ModelConfig): ModelFamily { return familyForType(config.modelType); }

/** Any supported family's config from raw config.json fields. */
export function parseModelConfig(raw: Record<string, unknown>, file = "config.json"): ModelConfig {
  const type = modelTypeOf(raw, file);
  return familyForType(type, file).parseConfig({ ...raw, model_type: type }, file);
}

export function readModelConfig(file: string): ModelConfig {
  return parseModelConfig(readConfigJson(file), file);
}

/** Loads a Hugging Face folder of any supported family (config.json + safetensors). */
export function loadCausalLM(dir: string, opts: LoadOptions = {}): CausalLM {
  const file = join(dir, "config.json");
  if (!existsSync(file)) throw new ConfigError(dir, "no config.json (expected a Hugging Face model folder)");
  const raw = readConfigJson(file);
  return familyForType(modelTypeOf(raw, file), file).load(dir, opts);
}

/** Random weights in `config`'s shapes (tests, benchmarks). */
export function randomCausalLM(config: ModelConfig, opts: RandomOptions = {}): CausalLM {
  return familyOf(config).random(config, opts);
}

/** config.json for a config (Hugging Face's field names). */
export function toHfModelConfig(config: ModelConfig): Record<string, unknown> {
  return familyOf(config).toHfConfig(config);
}
