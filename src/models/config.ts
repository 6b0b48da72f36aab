// OPT's config.json (the other families parse theirs in gpt2.ts, llama-config.ts). Every field that
// changes the computation is read and checked; anything missing or unknown is
// one error naming the file.
import type { DType } from "../engine/index.js";
import type { ModelConfig } from "./causal-lm.js";
import { ConfigError, readConfigJson } from "./config-fields.js";

export { ConfigError } from "./config-fields.js";

export interface OPTConfig extends ModelConfig {
  modelType: "opt";
  vocabSize: number;
  hiddenSize: number;
  numHiddenLayers: number;
  ffnDim: number;
  numAttentionHeads: number;
  maxPositionEmbeddings: number;
  doLayerNormBefore: boolean;
  wordEmbedProjDim: number;
  activationFunction: "relu" | "gelu" | "gelu_new";
  enableBias: boolean;
  layerNormElementwiseAffine: boolean;
  removeFinalLayerNorm: boolean;
  dropout: number;
  attentionDropout: number;
  tieWordEmbeddings: boolean;
  padTokenId: number;
  bosTokenId: number;
  eosTokenId: number;
  torchDtype: DType;
}

const TORCH_DTYPES: Record<string, DType> = { float32: "float32", float16: "float16", bfloat16: "bfloat16", float64: "float64" };

export function parseConfig(raw: Record<string, unknown>, file = "config.json"): OPTConfig {
  const type = raw.model_type;
  if (type !== "opt") {
    throw new ConfigError(file, `model_type ${JSON.stringify(type)} is not an OPT config (model_type "opt")`);
  }
  const int = (key: string, dflt?: number): number => {
    const v = raw[key] ?? dflt;
    if (v === undefined) throw new ConfigError(file, `missing required field "${key}" (an integer)`);
    if (!Number.isInteger(v) || (v as number) < 0) throw new ConfigError(file, `"${key}" must be a non-negative integer, got ${JSON.stringify(v)}`);
    return v as number;
  };
  const num = (key: string, dflt: number): number => {
    const v = raw[key] ?? dflt;
    if (typeof v !== "number" || !(v >= 0 && v < 1)) throw new ConfigError(file, `"${key}" must be a probability in [0, 1), got ${JSON.stringify(v)}`);
    return v;
  };
  const bool = (key: string, dflt: boolean): boolean => {
    const v = raw[key] ?? dflt;
    if (typeof v !== "boolean") throw new ConfigError(file, `"${key}" must be true or false, got ${JSON.stringify(v)}`);
    return v;
  };
  const hiddenSize = int("hidden_size");
  const heads = int("num_attention_heads");
  if (heads === 0 || hiddenSize % heads !== 0) {
    throw new ConfigError(file, `hidden_size ${hiddenSize} is not divisible by num_attention_heads ${heads}`);
  }
  const act = raw.activation_function ?? "relu";
  if (act !== "relu" && act !== "gelu" && act !== "gelu_new") {
    throw new ConfigError(file, `activation_function ${JSON.stringify(act)} is not supported (relu, gelu, gelu_new)`);
  }
  const dt = raw.torch_dtype ?? "float32";
  if (typeof dt !== "string" || !(dt in TORCH_DTYPES)) throw new ConfigError(file, `torch_dtype ${JSON.stringify(dt)} is not supported (float32, float16, bfloat16)`);
  return {
    modelType: "opt",
    architecture: "OPTForCausalLM",
    numKeyValueHeads: heads,
    headDim: hiddenSize / heads,
    vocabSize: int("vocab_size"),
    hiddenSize,
    numHiddenLayers: int("num_hidden_layers"),
    ffnDim: int("ffn_dim"),
    numAttentionHeads: heads,
    maxPositionEmbeddings: int("max_position_embeddings"),
    doLayerNormBefore: bool("do_layer_norm_before", true),
    wordEmbedProjDim: int("word_embed_proj_dim", hiddenSize),
    activationFunction: act,
    enableBias: bool("enable_bias", true),
    layerNormElementwiseAffine: bool("layer_norm_elementwise_affine", true),
    removeFinalLayerNorm: bool("_remove_final_layer_norm", false),
    dropout: num("dropout", 0.1),
    attentionDropout: num("attention_dropout", 0),
    tieWordEmbeddings: bool("tie_word_embeddings", true),
    padTokenId: int("pad_token_id", 1),
    bosTokenId: int("bos_token_id", 2),
    eosTokenId: int("eos_token_id", 2),
    torchDtype: TORCH_DTYPES[dt],
  };
}

export function readConfig(file: string): OPTConfig {
  return parseConfig(readConfigJson(file), file);
}

/** The config back in Hugging Face's field names, for writing checkpoints. */
export function toHfConfig(c: OPTConfig): Record<string, unknown> {
  return {
    architectures: ["OPTForCausalLM"],
    model_type: "opt",
    vocab_size: c.vocabSize,
    hidden_size: c.hiddenSize,
    num_hidden_layers: c.numHiddenLayers,
    ffn_dim: c.ffnDim,
    num_attention_heads: c.numAttentionHeads,
    max_position_embeddings: c.maxPositionEmbeddings,
    do_layer_norm_before: c.doLayerNormBefore,
    word_embed_proj_dim: c.wordEmbedProjDim,
    activation_function: c.activationFunction,
    enable_bias: c.enableBias,
    layer_norm_elementwise_affine: c.layerNormElementwiseAffine,
    _remove_final_layer_norm: c.removeFinalLayerNorm,
    dropout: c.dropout,
    attention_dropout: c.attentionDropout,
    tie_word_embeddings: c.tieWordEmbeddings,
    pad_token_id: c.padTokenId,
    bos_token_id: c.bosTokenId,
    eos_token_id: c.eosTokenId,
    torch_dtype: c.torchDtype,
  };
}
