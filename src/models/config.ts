// OPT's config.json (the other families parse theirs in gpt2.ts, llama-config.ts). Every field that
// changes the computation is read and checked; anything missing or unknown is
// one error naming the file.
import type { DType } from "../engine/index.js";
import type { ModelConfig } from "./causal-lm.js";
import { ConfigError, configReader, readConfigJson } from "./config-fields.js";

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

export function parseConfig(raw: Record<string, unknown>, file = "config.json"): OPTConfig {
  const type = raw.model_type;
  if (type !== "opt") {
    throw new ConfigError(file, `model_type ${JSON.stringify(type)} is not an OPT config (model_type "opt")`);
  }
  const r = configReader(raw, file);
  const hiddenSize = r.size("hidden_size");
  const heads = r.size("num_attention_heads");
  if (hiddenSize % heads !== 0) {
    throw new ConfigError(file, `hidden_size ${hiddenSize} is not divisible by num_attention_heads ${heads}`);
  }
  const act = raw.activation_function ?? "relu";
  if (act !== "relu" && act !== "gelu" && act !== "gelu_new") {
    throw new ConfigError(file, `activation_function ${JSON.stringify(act)} is not supported (relu, gelu, gelu_new)`);
  }
  return {
    modelType: "opt",
    architecture: "OPTForCausalLM",
    numKeyValueHeads: heads,
    headDim: hiddenSize / heads,
    vocabSize: r.size("vocab_size"),
    hiddenSize,
    numHiddenLayers: r.size("num_hidden_layers"),
    ffnDim: r.size("ffn_dim"),
    numAttentionHeads: heads,
    maxPositionEmbeddings: r.size("max_position_embeddings"),
    doLayerNormBefore: r.bool("do_layer_norm_before", true),
    wordEmbedProjDim: r.size("word_embed_proj_dim", hiddenSize),
    activationFunction: act,
    enableBias: r.bool("enable_bias", true),
    layerNormElementwiseAffine: r.bool("layer_norm_elementwise_affine", true),
    removeFinalLayerNorm: r.bool("_remove_final_layer_norm", false),
    dropout: r.prob("dropout", 0.1),
    attentionDropout: r.prob("attention_dropout", 0),
    tieWordEmbeddings: r.bool("tie_word_embeddings", true),
    padTokenId: r.int("pad_token_id", 1),
    bosTokenId: r.int("bos_token_id", 2),
    eosTokenId: r.int("eos_token_id", 2),
    torchDtype: r.dtype(),
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
