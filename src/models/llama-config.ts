// config.json of the Llama family (model_type llama, mistral, qwen2): the
// fields that change the computation, with each family's defaults from
// transformers' configuration_{llama,mistral,qwen2}.py. Rope settings come from
// `rope_scaling` + `rope_theta` (transformers 4) or `rope_parameters` (5).
import type { ModelConfig } from "./causal-lm.js";
import { ConfigError, configReader } from "./config-fields.js";
import type { RopeConfig } from "./rotary.js";

export type LlamaModelType = "llama" | "mistral" | "qwen2";

export interface LlamaConfig extends ModelConfig {
  modelType: LlamaModelType;
  intermediateSize: number;
  rmsNormEps: number;
  rope: RopeConfig;
  /** Biases on q_proj, k_proj, v_proj (Llama's attention_bias; always on in Qwen2). */
  qkvBias: boolean;
  /** Bias on o_proj (Llama's attention_bias; never in Qwen2). */
  oBias: boolean;
  mlpBias: boolean;
  attentionDropout: number;
  /** Mistral: a query attends only to the last `slidingWindow` positions; null = unlimited. */
  slidingWindow: number | null;
}

const ARCHITECTURES: Record<LlamaModelType, string> = { llama: "LlamaForCausalLM", mistral: "MistralForCausalLM", qwen2: "Qwen2ForCausalLM" };
const ROPE_TYPES = ["default", "linear", "dynamic", "llama3"];

export function parseLlamaConfig(raw: Record<string, unknown>, file = "config.json"): LlamaConfig {
  const type = raw.model_type as LlamaModelType;
  const r = configReader(raw, file);
  const hidden = r.size("hidden_size");
  const heads = r.size("num_attention_heads");
  const kvHeads = r.size("num_key_value_heads", heads);
  if (heads % kvHeads !== 0) throw new ConfigError(file, `num_attention_heads ${heads} is not a multiple of num_key_value_heads ${kvHeads}`);
  const headDim = (raw.head_dim ?? null) === null ? hidden / heads : r.size("head_dim");
  if (!Number.isInteger(headDim) || headDim % 2 !== 0) throw new ConfigError(file, `head dimension ${headDim} must be an even integer (hidden_size / num_attention_heads, or head_dim)`);
  const act = raw.hidden_act ?? "silu";
  if (act !== "silu") throw new ConfigError(file, `hidden_act ${JSON.stringify(act)} is not supported (silu)`);
  const maxPositions = r.size("max_position_embeddings", type === "mistral" ? 32768 : 2048);
  const bias = r.bool("attention_bias", false);
  const sliding = slidingWindow(raw, type, file, r.optInt);
  const eos = r.optInt("eos_token_id", type === "qwen2" ? null : 2);
  return {
    modelType: type, architecture: ARCHITECTURES[type],
    vocabSize: r.size("vocab_size"), hiddenSize: hidden, numHiddenLayers: r.size("num_hidden_layers"),
    numAttentionHeads: heads, numKeyValueHeads: kvHeads, headDim,
    maxPositionEmbeddings: maxPositions,
    tieWordEmbeddings: r.bool("tie_word_embeddings", false),
    padTokenId: r.optInt("pad_token_id", null) ?? eos ?? 0,
    bosTokenId: r.optInt("bos_token_id", type === "qwen2" ? null : 1), eosTokenId: eos,
    torchDtype: r.dtype(),
    intermediateSize: r.size("intermediate_size"),
    rmsNormEps: r.positive("rms_norm_eps", 1e-6),
    rope: ropeConfig(raw, file, maxPositions),
    qkvBias: type === "qwen2" ? true : bias,
    oBias: type === "qwen2" ? false : bias,
    mlpBias: r.bool("mlp_bias", false),
    attentionDropout: r.prob("attention_dropout", 0),
    slidingWindow: sliding,
  };
}

function slidingWindow(raw: Record<string, unknown>, type: LlamaModelType, file: string,
  optInt: (k: string, d: number | null) => number | null): number | null {
  if (type === "mistral") return optInt("sliding_window", 4096); // MistralConfig's default; null turns it off
  if (type === "qwen2" && raw.use_sliding_window === true) {
    throw new ConfigError(file, "use_sliding_window: true (Qwen2's per-layer sliding window) is not supported; set it to false or use a model without it");
  }
  return null;
}

function ropeConfig(raw: Record<string, unknown>, file: string, maxPositions: number): RopeConfig {
  const params = (raw.rope_parameters ?? raw.rope_scaling ?? {}) as Record<string, unknown>;
  if (typeof params !== "object" || params === null) throw new ConfigError(file, "rope_scaling / rope_parameters must be an object");
  const type = String(params.rope_type ?? params.type ?? "default");
  if (!ROPE_TYPES.includes(type)) throw new ConfigError(file, `rope type ${JSON.stringify(type)} is not supported (${ROPE_TYPES.join(", ")})`);
  const num = (key: string, dflt?: number): number => {
    const v = params[key] ?? dflt;
    if (typeof v !== "number" || !(v > 0)) throw new ConfigError(file, `rope ${type}: "${key}" must be a positive number, got ${JSON.stringify(params[key])}`);
    return v;
  };
  const theta = (params.rope_theta ?? raw.rope_theta ?? 10000) as number;
  if (typeof theta !== "number" || !(theta > 0)) throw new ConfigError(file, `rope_theta must be a positive number, got ${JSON.stringify(theta)}`);
  if (params.partial_rotary_factor !== undefined && params.partial_rotary_factor !== 1) {
    throw new ConfigError(file, "partial_rotary_factor other than 1 is not supported");
  }
  return {
    type: type as RopeConfig["type"], theta,
    factor: type === "default" ? 1 : num("factor"),
    lowFreqFactor: type === "llama3" ? num("low_freq_factor") : 1,
    highFreqFactor: type === "llama3" ? num("high_freq_factor") : 1,
    originalMaxPositionEmbeddings: type === "llama3" ? num("original_max_position_embeddings") : maxPositions,
  };
}

export function llamaHfConfig(config: ModelConfig): Record<string, unknown> {
  const c = config as LlamaConfig;
  const rope: Record<string, unknown> = { rope_type: c.rope.type };
  if (c.rope.type !== "default") rope.factor = c.rope.factor;
  if (c.rope.type === "llama3") {
    Object.assign(rope, { low_freq_factor: c.rope.lowFreqFactor, high_freq_factor: c.rope.highFreqFactor,
      original_max_position_embeddings: c.rope.originalMaxPositionEmbeddings });
  }
  return {
    architectures: [c.architecture], model_type: c.modelType, vocab_size: c.vocabSize, hidden_size: c.hiddenSize,
    intermediate_size: c.intermediateSize, num_hidden_layers: c.numHiddenLayers, num_attention_heads: c.numAttentionHeads,
    num_key_value_heads: c.numKeyValueHeads, head_dim: c.headDim, max_position_embeddings: c.maxPositionEmbeddings,
    hidden_act: "silu", rms_norm_eps: c.rmsNormEps, rope_theta: c.rope.theta, rope_scaling: c.rope.type === "default" ? null : rope,
    ...(c.modelType === "qwen2" ? {} : { attention_bias: c.qkvBias }), mlp_bias: c.mlpBias, attention_dropout: c.attentionDropout,
    ...(c.modelType === "mistral" ? { sliding_window: c.slidingWindow } : {}),
    tie_word_embeddings: c.tieWordEmbeddings, pad_token_id: c.padTokenId, bos_token_id: c.bosTokenId, eos_token_id: c.eosTokenId,
    torch_dtype: c.torchDtype,
  };
}
