// Shapes of published checkpoints, for building random models of the same size
// (benchmarks, parameter-count tables) without their weights.
import type { ModelConfig } from "./causal-lm.js";
import type { OPTConfig } from "./config.js";
import { parseModelConfig } from "./registry.js";

const opt = { model_type: "opt", vocab_size: 50272, max_position_embeddings: 2048, activation_function: "relu",
  do_layer_norm_before: true, dropout: 0.1, attention_dropout: 0, enable_bias: true, torch_dtype: "float16" };

const PRESETS: Record<string, Record<string, unknown>> = {
  "opt-125m": { ...opt, hidden_size: 768, num_hidden_layers: 12, num_attention_heads: 12, ffn_dim: 3072, word_embed_proj_dim: 768 },
  "opt-350m": { ...opt, hidden_size: 1024, num_hidden_layers: 24, num_attention_heads: 16, ffn_dim: 4096, word_embed_proj_dim: 512, do_layer_norm_before: false },
  "opt-1.3b": { ...opt, hidden_size: 2048, num_hidden_layers: 24, num_attention_heads: 32, ffn_dim: 8192, word_embed_proj_dim: 2048 },
  "opt-13b": { ...opt, hidden_size: 5120, num_hidden_layers: 40, num_attention_heads: 40, ffn_dim: 20480, word_embed_proj_dim: 5120 },
  // gpt2 (124M), the original upload's config
  gpt2: { model_type: "gpt2", vocab_size: 50257, n_embd: 768, n_layer: 12, n_head: 12, n_positions: 1024, torch_dtype: "float32" },
  // meta-llama/Llama-2-7b-hf (the paper's Table 4 model)
  "llama-2-7b": { model_type: "llama", vocab_size: 32000, hidden_size: 4096, intermediate_size: 11008, num_hidden_layers: 32,
    num_attention_heads: 32, num_key_value_heads: 32, max_position_embeddings: 4096, rms_norm_eps: 1e-5, rope_theta: 10000,
    tie_word_embeddings: false, bos_token_id: 1, eos_token_id: 2, torch_dtype: "float16" },
  // mistralai/Mistral-7B-v0.1 (GQA: 8 key/value heads)
  "mistral-7b": { model_type: "mistral", vocab_size: 32000, hidden_size: 4096, intermediate_size: 14336, num_hidden_layers: 32,
    num_attention_heads: 32, num_key_value_heads: 8, max_position_embeddings: 32768, rms_norm_eps: 1e-5, rope_theta: 10000,
    sliding_window: 4096, tie_word_embeddings: false, torch_dtype: "bfloat16" },
};

export const PRESET_NAMES = Object.keys(PRESETS);

export function presetConfig(name: "opt-125m" | "opt-350m" | "opt-1.3b" | "opt-13b", overrides?: Record<string, unknown>): OPTConfig;
export function presetConfig(name: string, overrides?: Record<string, unknown>): ModelConfig;
export function presetConfig(name: string, overrides: Record<string, unknown> = {}): ModelConfig {
  const p = PRESETS[name];
  if (!p) throw new Error(`unknown model preset '${name}' (known: ${PRESET_NAMES.join(", ")})`);
  return parseModelConfig({ ...p, ...overrides }, `preset ${name}`);
}
