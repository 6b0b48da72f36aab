// The one interface every causal language model implements (OPT, GPT-2, Llama
// family), and what a model family tells the layers above it. PEFT methods, the
// trainer, evaluation, generation and the CLI speak only these types.
//
// Conventions shared by every family:
// - `params` holds base weights by Hugging Face state_dict name; every linear's
//   weight is held [out, in] (nn.Linear's layout), also for GPT-2's Conv1D,
//   whose checkpoints store [in, out]: the family transposes at load and back
//   in stateDict(), so PEFT methods see one layout.
// - `linears` holds every linear layer by its Hugging Face module name; a PEFT
//   method replaces entries with modules of the same forward.
// - a prefix of past keys/values (prefix-tuning) enters through the same path
//   as the generation KV cache.
import type { DType, Tensor } from "../engine/index.js";
import { linear, frozenLinear } from "../engine/index.js";

export interface LinearModule {
  forward(x: Tensor): Tensor;
}

/** y = x·Wᵀ + b over base weights held by the model (W is [out, in]). */
export class Linear implements LinearModule {
  constructor(readonly weight: Tensor, readonly bias: Tensor | null) {}
  forward(x: Tensor): Tensor {
    // a frozen weight needs no saved input for backward
    return this.weight.requiresGrad ? linear(x, this.weight, this.bias) : frozenLinear(x, this.weight, this.bias);
  }
}

/** One layer's keys and values, [batch, kvHeads, positions, headDim]. */
export interface LayerKV { key: Tensor; value: Tensor }

export interface ForwardOptions {
  /** [batch, seq] of 1 (real token) and 0 (padding); covers past + current positions. */
  attentionMask?: Tensor;
  /**
   * [batch, seq] int64 positions of the input tokens. When absent they come from
   * the mask: cumsum(mask) − 1, clamped at 0 (what Hugging Face's generate() passes),
   * so left-padded rows start at 0.
   */
  positionIds?: Tensor;
  /** Keys/values of earlier positions (generation cache or a trainable prefix). */
  past?: LayerKV[];
  /** Return the updated cache. */
  useCache?: boolean;
  /** [batch, k] int64 positions whose logits are wanted; all positions when absent. */
  logitsAt?: Tensor;
}

export interface ForwardResult {
  /** [batch, seq or k, vocab] */
  logits: Tensor;
  cache?: LayerKV[];
}

export interface SublayerHooks {
  /** Transforms the attention block's output before the residual add. */
  afterAttention?: (layer: number, h: Tensor) => Tensor;
  /** Transforms the feed-forward block's output before the residual add. */
  afterFeedForward?: (layer: number, h: Tensor) => Tensor;
  /**
   * Keys/values of virtual tokens placed before every sequence (prefix-tuning),
   * [1, kvHeads, length, headDim] per layer. Attention masks passed to forward
   * cover real tokens only; the model prepends the prefix's positions, as
   * Hugging Face PEFT does.
   */
  prefix?: { length: number; keyValues: (batch: number) => LayerKV[] };
}

/** The config facts every family provides (each family's config extends this). */
export interface ModelConfig {
  /** config.json's model_type, e.g. "opt", "gpt2", "llama", "mistral", "qwen2". */
  modelType: string;
  /** The Hugging Face class, e.g. "LlamaForCausalLM". */
  architecture: string;
  vocabSize: number;
  hiddenSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  /** Key/value heads (grouped-query attention); equals numAttentionHeads without GQA. */
  numKeyValueHeads: number;
  headDim: number;
  maxPositionEmbeddings: number;
  tieWordEmbeddings: boolean;
  /** Id used for padding batches: config's pad_token_id, else EOS, else 0 (masked out either way). */
  padTokenId: number;
  bosTokenId: number | null;
  eosTokenId: number | null;
  torchDtype: DType;
}

export interface CausalLM {
  readonly config: ModelConfig;
  readonly family: ModelFamily;
  /** Base weights by Hugging Face name (tied weights share one tensor). */
  readonly params: Map<string, Tensor>;
  /** Every linear layer by module name. */
  readonly linears: Map<string, LinearModule>;
  hooks: SublayerHooks;
  training: boolean;
  /** Recompute each layer in backward instead of keeping its activations. */
  gradientCheckpointing: boolean;
  readonly dtype: DType;
  /** inputIds [batch, seq] int64 → logits [batch, seq or k, vocab]. */
  forward(inputIds: Tensor, opts?: ForwardOptions): ForwardResult;
  /** Replaces a base weight (same shape), keeping the Linear modules that use it in step. */
  setParam(name: string, t: Tensor): void;
  /** Parameter count of the base model (tied weights once). */
  numParameters(): number;
  /** The base state dict as Hugging Face saves it (its layout, tied head omitted). */
  stateDict(): Map<string, Tensor>;
  dispose(): void;
}

export interface LoadOptions { dtype?: DType }
export interface RandomOptions { seed?: number; dtype?: DType; std?: number }

/** What a family tells the registry, PEFT methods and the CLI. */
export interface ModelFamily {
  readonly name: string;
  /** config.json model_type values this family reads. */
  readonly modelTypes: readonly string[];
  parseConfig(raw: Record<string, unknown>, file: string): ModelConfig;
  toHfConfig(config: ModelConfig): Record<string, unknown>;
  /** Every parameter's shape by Hugging Face name, linears [out, in] (lm_head included even when tied). */
  expectedShapes(config: ModelConfig): Map<string, number[]>;
  /** Family-specific facts for `randmask info` (feed-forward width, norms, activation, rope…). */
  describe(config: ModelConfig): Record<string, unknown>;
  /** Every linear module name (PEFT targets). */
  linearNames(config: ModelConfig): string[];
  /** The paper's "attention q and v" for this family, as target patterns. */
  readonly defaultTargets: readonly string[];
  /**
   * Row ranges [start, end) of a target's [out, in] weight that masking methods
   * draw from when the targets are this family's default (GPT-2's fused c_attn:
   * its q and v thirds, the paper's "q and v"); absent = the whole matrix.
   */
  maskRows?(config: ModelConfig, module: string): [number, number][] | undefined;
  /** Modules stored [in, out] in Hugging Face checkpoints (Conv1D): PEFT's fan_in_fan_out. */
  isConv1D?(module: string): boolean;
  load(dir: string, opts?: LoadOptions): CausalLM;
  random(config: ModelConfig, opts?: RandomOptions): CausalLM;
}

/** Parameter count from shapes (tied head once). */
export function countParams(params: Map<string, Tensor>): number {
  const seen = new Set<Tensor>();
  let n = 0;
  for (const t of params.values()) if (!seen.has(t)) { seen.add(t); n += t.numel; }
  return n;
}

/**
 * Tokens one sequence may hold (prompt plus continuation or generated tokens): the model's positions
 * (max_position_embeddings) less a prefix-tuning prefix's virtual tokens, which take the first positions.
 */
export function tokenPositions(model: CausalLM): number {
  return model.config.maxPositionEmbeddings - (model.hooks.prefix?.length ?? 0);
}
