// GPT-2 causal language model (Radford et al. 2019), matching Hugging Face's
// GPT2LMHeadModel, readable top to bottom: learned positions, pre-norm blocks,
// fused q/k/v projection `c_attn`, gelu_new MLP, head tied to the embedding.
//
// Hugging Face stores GPT-2's linears as Conv1D, weight [in, out]; randmask
// holds them [out, in] like every other linear (transposed at load and back in
// stateDict()), so PEFT methods see one layout. Checkpoints with or without the
// `transformer.` prefix (the original `gpt2` upload has none) both load.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { type DType, Tensor, cat, embedding, layerNorm, linear, dropout } from "../engine/index.js";
import {
  type CausalLM, type ForwardOptions, type ForwardResult, type LayerKV, type LinearModule, type LoadOptions, type ModelConfig,
  type ModelFamily, type RandomOptions, type SublayerHooks, Linear, countParams,
} from "./causal-lm.js";
import { attend, attentionBias, pastAndMask, positionsFromMask, queryRowsAt, rowsAt } from "./attention.js";
import { runDecoderStack } from "./decoder-stack.js";
import { loadWeights, randomWeights } from "./load.js";
import { ConfigError, readConfigJson, configReader } from "./config-fields.js";

export interface GPT2Config extends ModelConfig {
  modelType: "gpt2";
  /** MLP width (n_inner, default 4·n_embd). */
  nInner: number;
  activationFunction: "gelu_new" | "gelu" | "relu" | "gelu_pytorch_tanh";
  layerNormEpsilon: number;
  embdPdrop: number;
  residPdrop: number;
  attnPdrop: number;
  scaleAttnWeights: boolean;
  scaleAttnByInverseLayerIdx: boolean;
}

export class GPT2LMHeadModel implements CausalLM {
  readonly family = gpt2Family;
  readonly linears = new Map<string, LinearModule>();
  hooks: SublayerHooks = {};
  training = false;
  gradientCheckpointing = false;

  constructor(readonly config: GPT2Config, readonly params: Map<string, Tensor>) {
    for (const name of linearNames(config)) {
      this.linears.set(name, new Linear(params.get(`${name}.weight`)!, params.get(`${name}.bias`) ?? null));
    }
  }

  get dtype(): DType { return this.p("transformer.wte.weight").dtype; }
  private p(name: string): Tensor { return this.params.get(name)!; }
  private lin(name: string, x: Tensor): Tensor { return this.linears.get(name)!.forward(x); }
  private layerNorm(prefix: string, x: Tensor): Tensor {
    return layerNorm(x, [this.config.hiddenSize], this.p(`${prefix}.weight`), this.p(`${prefix}.bias`), this.config.layerNormEpsilon);
  }

  forward(inputIds: Tensor, opts: ForwardOptions = {}): ForwardResult {
    const c = this.config;
    const [batch, seq] = inputIds.shape;
    const { past, pastLen, mask } = pastAndMask(batch, seq, opts, this.hooks);

    const positions = opts.positionIds ?? positionsFromMask(mask, pastLen, seq);
    let h = embedding(this.p("transformer.wte.weight"), inputIds).add(embedding(this.p("transformer.wpe.weight"), positions));
    h = dropout(h, c.embdPdrop, this.training);

    const bias = attentionBias(mask, seq, pastLen);
    const random = this.training && (c.residPdrop > 0 || c.attnPdrop > 0 || c.embdPdrop > 0);
    // The last block runs at the logitsAt positions only (see block): nothing else of it is read.
    const last = c.numHiddenLayers - 1;
    const out = runDecoderStack(h, { layers: c.numHiddenLayers, random, checkpointing: this.gradientCheckpointing, useCache: Boolean(opts.useCache) },
      (i, x, kv) => this.block(i, x, bias, past?.[i], kv, i === last ? opts.logitsAt : undefined));
    h = this.layerNorm("transformer.ln_f", out.h); // [batch, k, d] when logitsAt is given
    const logits = linear(h, this.p("lm_head.weight"));
    return opts.useCache ? { logits, cache: out.cache } : { logits };
  }

  /**
   * x + attn(ln_1(x)), then + mlp(ln_2(·)); x [batch, seq, d]. With `at` [batch, k] the queries,
   * output, MLP and residual are computed at those positions only (→ [batch, k, d]; keys and values
   * from every position): the last block when only some positions' logits are wanted.
   */
  private block(i: number, x: Tensor, bias: Tensor, past: LayerKV | undefined, cache: LayerKV[] | undefined, at?: Tensor): Tensor {
    const c = this.config;
    const prefix = `transformer.h.${i}`;
    let a = this.attention(i, this.layerNorm(`${prefix}.ln_1`, x), bias, past, cache, at);
    if (this.hooks.afterAttention) a = this.hooks.afterAttention(i, a);
    const h = (at ? rowsAt(x, at) : x).add(dropout(a, c.residPdrop, this.training));
    let f = this.lin(`${prefix}.mlp.c_proj`, this.activation(this.lin(`${prefix}.mlp.c_fc`, this.layerNorm(`${prefix}.ln_2`, h))));
    if (this.hooks.afterFeedForward) f = this.hooks.afterFeedForward(i, f);
    return h.add(dropout(f, c.residPdrop, this.training));
  }

  private activation(x: Tensor): Tensor {
    const act = this.config.activationFunction;
    return act === "relu" ? x.relu() : x.gelu(act !== "gelu");
  }

  /** Self-attention of x [batch, seq, d]; queries (and the output) at `at` [batch, k] only when given. */
  private attention(i: number, x: Tensor, bias: Tensor, past: LayerKV | undefined, cache: LayerKV[] | undefined, at?: Tensor): Tensor {
    const c = this.config;
    const [batch, , d] = x.shape;
    const heads = c.numAttentionHeads;
    const hd = c.headDim;
    const split = (t: Tensor) => t.reshape([batch, t.size(1), heads, hd]).transpose(1, 2); // [b, h, t, hd]
    const qkv = this.lin(`transformer.h.${i}.attn.c_attn`, x);                       // [b, t, 3d]: q | k | v (one fused matrix)
    let scale = c.scaleAttnWeights ? hd ** -0.5 : 1;
    if (c.scaleAttnByInverseLayerIdx) scale /= i + 1;
    const qAll = qkv.narrow(2, 0, d);
    const q = split((at ? rowsAt(qAll, at) : qAll).mul(scale));
    let k = split(qkv.narrow(2, d, d));
    let v = split(qkv.narrow(2, 2 * d, d));
    if (past) {
      // a prefix (prefix-tuning) has batch 1 and is shared by every row
      const widen = (t: Tensor) => (t.size(0) === batch ? t : t.expand([batch, heads, -1, hd]));
      k = cat([widen(past.key), k], 2);
      v = cat([widen(past.value), v], 2);
    }
    if (cache) cache.push({ key: k, value: v });
    return this.lin(`transformer.h.${i}.attn.c_proj`, attend(q, k, v, at ? queryRowsAt(bias, at) : bias, c.attnPdrop, this.training));
  }

  setParam(name: string, t: Tensor): void {
    const old = this.params.get(name);
    if (!old) throw new Error(`no parameter named '${name}'`);
    if (old.shape.join() !== t.shape.join()) throw new Error(`'${name}' has shape [${old.shape}], got [${t.shape}]`);
    for (const [k, v] of this.params) if (v === old) this.params.set(k, t);
    const module = name.replace(/\.(weight|bias)$/, "");
    if (this.linears.get(module) instanceof Linear) {
      this.linears.set(module, new Linear(this.p(`${module}.weight`), this.params.get(`${module}.bias`) ?? null));
    }
  }

  numParameters(): number { return countParams(this.params); }

  /** Hugging Face's layout: Conv1D weights back to [in, out] (views), tied head omitted. */
  stateDict(): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    for (const [k, v] of this.params) out.set(k, isConv1DWeight(k) ? v.transpose(0, 1) : v);
    if (this.config.tieWordEmbeddings) out.delete("lm_head.weight");
    return out;
  }

  dispose(): void { for (const t of new Set(this.params.values())) t.dispose(); }

  static load(dir: string, opts: LoadOptions = {}): GPT2LMHeadModel {
    const config = readGpt2Config(join(dir, "config.json"));
    const params = loadWeights(dir, config, opts.dtype ?? "float32", {
      rename: (k) => {
        if (/(^|\.)attn\.(bias|masked_bias)$/.test(k)) return null; // causal-mask buffers of older uploads
        return k.startsWith("transformer.") || k.startsWith("lm_head.") ? k : `transformer.${k}`;
      },
      transposed: isConv1DWeight,
      embedKey: "transformer.wte.weight",
      expected: expectedShapes(config),
    });
    return new GPT2LMHeadModel(config, params);
  }

  static random(config: GPT2Config, opts: RandomOptions = {}): GPT2LMHeadModel {
    return new GPT2LMHeadModel(config, randomWeights(config, expectedShapes(config), "transformer.wte.weight", opts));
  }
}

const CONV1D = /^transformer\.h\.\d+\.(attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj)$/;
const isConv1DWeight = (name: string) => name.endsWith(".weight") && CONV1D.test(name.slice(0, -".weight".length));

export function linearNames(c: ModelConfig): string[] {
  const names: string[] = [];
  for (let i = 0; i < c.numHiddenLayers; i++) {
    for (const m of ["attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"]) names.push(`transformer.h.${i}.${m}`);
  }
  return names;
}

/** Every parameter of a GPT-2 of this config, linears [out, in]. */
export function expectedShapes(config: ModelConfig): Map<string, number[]> {
  const c = config as GPT2Config;
  const d = c.hiddenSize;
  const m = new Map<string, number[]>();
  m.set("transformer.wte.weight", [c.vocabSize, d]);
  m.set("transformer.wpe.weight", [c.maxPositionEmbeddings, d]);
  const ln = (p: string) => { m.set(`${p}.weight`, [d]); m.set(`${p}.bias`, [d]); };
  const lin = (p: string, out: number, inF: number) => { m.set(`${p}.weight`, [out, inF]); m.set(`${p}.bias`, [out]); };
  for (let i = 0; i < c.numHiddenLayers; i++) {
    const p = `transformer.h.${i}`;
    ln(`${p}.ln_1`);
    lin(`${p}.attn.c_attn`, 3 * d, d);
    lin(`${p}.attn.c_proj`, d, d);
    ln(`${p}.ln_2`);
    lin(`${p}.mlp.c_fc`, c.nInner, d);
    lin(`${p}.mlp.c_proj`, d, c.nInner);
  }
  ln("transformer.ln_f");
  m.set("lm_head.weight", [c.vocabSize, d]);
  return m;
}

// ------------------------------------------------------------ config.json

export function parseGpt2Config(raw: Record<string, unknown>, file = "config.json"): GPT2Config {
  const r = configReader(raw, file);
  const d = r.size("n_embd");
  const heads = r.size("n_head");
  if (d % heads !== 0) throw new ConfigError(file, `n_embd ${d} is not divisible by n_head ${heads}`);
  const act = raw.activation_function ?? "gelu_new";
  if (!["gelu_new", "gelu", "relu", "gelu_pytorch_tanh"].includes(act as string)) {
    throw new ConfigError(file, `activation_function ${JSON.stringify(act)} is not supported (gelu_new, gelu_pytorch_tanh, gelu, relu)`);
  }
  const eos = r.optInt("eos_token_id", 50256);
  return {
    modelType: "gpt2", architecture: "GPT2LMHeadModel",
    vocabSize: r.size("vocab_size"), hiddenSize: d, numHiddenLayers: r.size("n_layer"),
    numAttentionHeads: heads, numKeyValueHeads: heads, headDim: d / heads,
    maxPositionEmbeddings: r.size("n_positions"),
    tieWordEmbeddings: r.bool("tie_word_embeddings", true),
    padTokenId: r.optInt("pad_token_id", null) ?? eos ?? 0,
    bosTokenId: r.optInt("bos_token_id", 50256), eosTokenId: eos,
    torchDtype: r.dtype(),
    nInner: (raw.n_inner ?? null) === null ? 4 * d : r.size("n_inner"),
    activationFunction: act as GPT2Config["activationFunction"],
    layerNormEpsilon: r.positive("layer_norm_epsilon", 1e-5),
    embdPdrop: r.prob("embd_pdrop", 0.1), residPdrop: r.prob("resid_pdrop", 0.1), attnPdrop: r.prob("attn_pdrop", 0.1),
    scaleAttnWeights: r.bool("scale_attn_weights", true),
    scaleAttnByInverseLayerIdx: r.bool("scale_attn_by_inverse_layer_idx", false),
  };
}

export function readGpt2Config(file: string): GPT2Config {
  if (!existsSync(file)) throw new ConfigError(file, "no config.json (expected a Hugging Face model folder)");
  return parseGpt2Config(readConfigJson(file), file);
}

export function gpt2HfConfig(config: ModelConfig): Record<string, unknown> {
  const c = config as GPT2Config;
  return {
    architectures: ["GPT2LMHeadModel"], model_type: "gpt2", vocab_size: c.vocabSize, n_embd: c.hiddenSize, n_layer: c.numHiddenLayers,
    n_head: c.numAttentionHeads, n_positions: c.maxPositionEmbeddings, n_inner: c.nInner, activation_function: c.activationFunction,
    layer_norm_epsilon: c.layerNormEpsilon, embd_pdrop: c.embdPdrop, resid_pdrop: c.residPdrop, attn_pdrop: c.attnPdrop,
    scale_attn_weights: c.scaleAttnWeights, scale_attn_by_inverse_layer_idx: c.scaleAttnByInverseLayerIdx,
    tie_word_embeddings: c.tieWordEmbeddings, bos_token_id: c.bosTokenId, eos_token_id: c.eosTokenId, torch_dtype: c.torchDtype,
  };
}

export const gpt2Family: ModelFamily = {
  name: "gpt2",
  modelTypes: ["gpt2"],
  parseConfig: parseGpt2Config,
  toHfConfig: gpt2HfConfig,
  expectedShapes,
  linearNames,
  describe: (config) => ({ ffn: (config as GPT2Config).nInner, layerNorm: "pre", activation: (config as GPT2Config).activationFunction }),
  // the fused projection: LoRA adapts it whole (as PEFT does); masking draws only from its q and v thirds
  defaultTargets: ["c_attn"],
  maskRows(config, module) {
    if (!module.endsWith(".attn.c_attn")) return undefined;
    const d = config.hiddenSize;
    return [[0, d], [2 * d, 3 * d]];
  },
  isConv1D: (module) => CONV1D.test(module),
  load: (dir, opts) => GPT2LMHeadModel.load(dir, opts),
  random: (config, opts) => GPT2LMHeadModel.random(config as GPT2Config, opts),
};
