// Shapes of the published OPT checkpoints, for building random models of the
// same size (benchmarks, parameter-count tables) without their weights.
import { type OPTConfig, parseConfig } from "./config.js";

const base = { model_type: "opt", vocab_size: 50272, max_position_embeddings: 2048, activation_function: "relu",
  do_layer_norm_before: true, dropout: 0.1, attention_dropout: 0, enable_bias: true, torch_dtype: "float16" };

const PRESETS: Record<string, Record<string, unknown>> = {
  "opt-125m": { ...base, hidden_size: 768, num_hidden_layers: 12, num_attention_heads: 12, ffn_dim: 3072, word_embed_proj_dim: 768 },
  "opt-350m": { ...base, hidden_size: 1024, num_hidden_layers: 24, num_attention_heads: 16, ffn_dim: 4096, word_embed_proj_dim: 512, do_layer_norm_before: false },
  "opt-1.3b": { ...base, hidden_size: 2048, num_hidden_layers: 24, num_attention_heads: 32, ffn_dim: 8192, word_embed_proj_dim: 2048 },
  "opt-13b": { ...base, hidden_size: 5120, num_hidden_layers: 40, num_attention_heads: 40, ffn_dim: 20480, word_embed_proj_dim: 5120 },
};

export const PRESET_NAMES = Object.keys(PRESETS);

export function presetConfig(name: string, overrides: Record<string, unknown> = {}): OPTConfig {
  const p = PRESETS[name];
  if (!p) throw new Error(`unknown model preset '${name}' (known: ${PRESET_NAMES.join(", ")})`);
  return parseConfig({ ...p, ...overrides }, `preset ${name}`);
}
