// The Llama family (Touvron et al. 2023) — Llama 1/2/3, Mistral, Qwen2 —
// matching Hugging Face's LlamaForCausalLM / MistralForCausalLM /
// Qwen2ForCausalLM, readable top to bottom: RMSNorm before each block, rotary
// positions on q and k, grouped-query attention (num_key_value_heads), SwiGLU
// MLP down(silu(gate(x))·up(x)), no biases except Qwen2's q/k/v (and Llama's
// optional attention_bias / mlp_bias), head tied or not.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { type DType, Tensor, cat, embedding, linear } from "../engine/index.js";
import {
  type CausalLM, type ForwardOptions, type ForwardResult, type LayerKV, type LinearModule, type LoadOptions, type ModelConfig,
  type ModelFamily, type RandomOptions, type SublayerHooks, Linear, countParams,
} from "./causal-lm.js";
import { attend, attentionBias, pastAndMask, positionsFromMask, queryRowsAt, rowsAt } from "./attention.js";
import { runDecoderStack } from "./decoder-stack.js";
import { loadWeights, randomWeights } from "./load.js";
import { rmsNorm } from "./rms-norm.js";
import { Rotary, applyRotary } from "./rotary.js";
import { ConfigError, readConfigJson } from "./config-fields.js";
import { type LlamaConfig, type LlamaModelType, llamaHfConfig, parseLlamaConfig } from "./llama-config.js";

export class LlamaForCausalLM implements CausalLM {
  readonly family: ModelFamily;
  readonly linears = new Map<string, LinearModule>();
  hooks: SublayerHooks = {};
  training = false;
  gradientCheckpointing = false;
  private readonly rotary: Rotary;

  constructor(readonly config: LlamaConfig, readonly params: Map<string, Tensor>) {
    this.family = llamaFamily;
    this.rotary = new Rotary(config.rope, config.headDim, config.maxPositionEmbeddings);
    for (const name of linearNames(config)) {
      this.linears.set(name, new Linear(params.get(`${name}.weight`)!, params.get(`${name}.bias`) ?? null));
    }
  }

  get dtype(): DType { return this.p("model.embed_tokens.weight").dtype; }
  private p(name: string): Tensor { return this.params.get(name)!; }
  private lin(name: string, x: Tensor): Tensor { return this.linears.get(name)!.forward(x); }
  private norm(name: string, x: Tensor): Tensor { return rmsNorm(x, this.p(`${name}.weight`), this.config.rmsNormEps); }

  forward(inputIds: Tensor, opts: ForwardOptions = {}): ForwardResult {
    const c = this.config;
    const [batch, seq] = inputIds.shape;
    const { past, pastLen, mask } = pastAndMask(batch, seq, opts, this.hooks);

    const positions = opts.positionIds ?? positionsFromMask(mask, pastLen, seq);
    const h = embedding(this.p("model.embed_tokens.weight"), inputIds);
    const rope = this.rotary.cosSin(positions, h.dtype);                             // [b, 1, t, hd] each
    const bias = attentionBias(mask, seq, pastLen, c.slidingWindow);
    const random = this.training && c.attentionDropout > 0;
    // The last layer runs at the logitsAt positions only (see decoderLayer): nothing else of it is read.
    const lastLayer = c.numHiddenLayers - 1;
    const out = runDecoderStack(h, { layers: c.numHiddenLayers, random, checkpointing: this.gradientCheckpointing, useCache: Boolean(opts.useCache) },
      (i, x, kv) => this.decoderLayer(i, x, bias, rope, past?.[i], kv, i === lastLayer ? opts.logitsAt : undefined));
    const last = this.norm("model.norm", out.h); // [batch, k, d] when logitsAt is given
    const logits = linear(last, this.p("lm_head.weight"));
    return opts.useCache ? { logits, cache: out.cache } : { logits };
  }

  /**
   * x + attn(norm(x)), then + mlp(norm(·)); x [batch, seq, d]. With `at` [batch, k] the queries,
   * output, MLP and residual are computed at those positions only (→ [batch, k, d]; keys and values
   * from every position): the last layer when only some positions' logits are wanted.
   */
  private decoderLayer(i: number, x: Tensor, bias: Tensor, rope: { cos: Tensor; sin: Tensor },
    past: LayerKV | undefined, cache: LayerKV[] | undefined, at?: Tensor): Tensor {
    const prefix = `model.layers.${i}`;
    let a = this.attention(prefix, this.norm(`${prefix}.input_layernorm`, x), bias, rope, past, cache, at);
    if (this.hooks.afterAttention) a = this.hooks.afterAttention(i, a);
    const h = (at ? rowsAt(x, at) : x).add(a);
    const r = this.norm(`${prefix}.post_attention_layernorm`, h);
    const gate = this.lin(`${prefix}.mlp.gate_proj`, r);
    let f = this.lin(`${prefix}.mlp.down_proj`, gate.mul(gate.sigmoid()).mul(this.lin(`${prefix}.mlp.up_proj`, r))); // silu(g)·u
    if (this.hooks.afterFeedForward) f = this.hooks.afterFeedForward(i, f);
    return h.add(f);
  }

  /** Self-attention of x [batch, seq, d]; queries (and the output) at `at` [batch, k] only when given. */
  private attention(prefix: string, x: Tensor, bias: Tensor, rope: { cos: Tensor; sin: Tensor },
    past: LayerKV | undefined, cache: LayerKV[] | undefined, at?: Tensor): Tensor {
    const c = this.config;
    const batch = x.size(0);
    const hd = c.headDim;
    const split = (t: Tensor, heads: number) => t.reshape([batch, t.size(1), heads, hd]).transpose(1, 2); // [b, h, t, hd]
    // rope's cos/sin are [b, 1, t, hd]: the queries' rows are those at `at`
    const ropeRows = (t: Tensor) => (at ? queryRowsAt(t, at) : t);
    const q = applyRotary(split(this.lin(`${prefix}.self_attn.q_proj`, at ? rowsAt(x, at) : x), c.numAttentionHeads),
      ropeRows(rope.cos), ropeRows(rope.sin)).mul(hd ** -0.5);
    let k = applyRotary(split(this.lin(`${prefix}.self_attn.k_proj`, x), c.numKeyValueHeads), rope.cos, rope.sin);
    let v = split(this.lin(`${prefix}.self_attn.v_proj`, x), c.numKeyValueHeads);
    if (past) {
      // a prefix (prefix-tuning) has batch 1 and is shared by every row; its keys are stored rotated
      const widen = (t: Tensor) => (t.size(0) === batch ? t : t.expand([batch, c.numKeyValueHeads, -1, hd]));
      k = cat([widen(past.key), k], 2);
      v = cat([widen(past.value), v], 2);
    }
    if (cache) cache.push({ key: k, value: v });
    return this.lin(`${prefix}.self_attn.o_proj`, attend(q, k, v, at ? queryRowsAt(bias, at) : bias, c.attentionDropout, this.training));
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

  stateDict(): Map<string, Tensor> {
    const out = new Map(this.params);
    if (this.config.tieWordEmbeddings) out.delete("lm_head.weight");
    return out;
  }

  dispose(): void {
    for (const t of new Set(this.params.values())) t.dispose();
    this.rotary.dispose();
  }

  /** A Hugging Face folder: config.json + model.safetensors or a sharded index; any stored dtype. */
  static load(dir: string, opts: LoadOptions = {}): LlamaForCausalLM {
    const file = join(dir, "config.json");
    if (!existsSync(file)) throw new ConfigError(file, "no config.json (expected a Hugging Face model folder)");
    const config = parseLlamaConfig(readConfigJson(file), file);
    const params = loadWeights(dir, config, opts.dtype ?? "float32", {
      rename: (k) => (k.startsWith("model.") || k.startsWith("lm_head.") ? k : `model.${k}`),
      embedKey: "model.embed_tokens.weight",
      expected: expectedShapes(config),
    });
    return new LlamaForCausalLM(config, params);
  }

  static random(config: LlamaConfig, opts: RandomOptions = {}): LlamaForCausalLM {
    return new LlamaForCausalLM(config, randomWeights(config, expectedShapes(config), "model.embed_tokens.weight", opts));
  }
}

export function linearNames(c: ModelConfig): string[] {
  const names: string[] = [];
  for (let i = 0; i < c.numHiddenLayers; i++) {
    for (const m of ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]) {
      names.push(`model.layers.${i}.${m}`);
    }
  }
  return names;
}

/** Every parameter of a Llama-family model of this config. */
export function expectedShapes(config: ModelConfig): Map<string, number[]> {
  const c = config as LlamaConfig;
  const d = c.hiddenSize;
  const qDim = c.numAttentionHeads * c.headDim;
  const kvDim = c.numKeyValueHeads * c.headDim;
  const m = new Map<string, number[]>();
  m.set("model.embed_tokens.weight", [c.vocabSize, d]);
  const lin = (p: string, out: number, inF: number, bias: boolean) => {
    m.set(`${p}.weight`, [out, inF]);
    if (bias) m.set(`${p}.bias`, [out]);
  };
  for (let i = 0; i < c.numHiddenLayers; i++) {
    const p = `model.layers.${i}`;
    lin(`${p}.self_attn.q_proj`, qDim, d, c.qkvBias);
    lin(`${p}.self_attn.k_proj`, kvDim, d, c.qkvBias);
    lin(`${p}.self_attn.v_proj`, kvDim, d, c.qkvBias);
    lin(`${p}.self_attn.o_proj`, d, qDim, c.oBias);
    lin(`${p}.mlp.gate_proj`, c.intermediateSize, d, c.mlpBias);
    lin(`${p}.mlp.up_proj`, c.intermediateSize, d, c.mlpBias);
    lin(`${p}.mlp.down_proj`, d, c.intermediateSize, c.mlpBias);
    m.set(`${p}.input_layernorm.weight`, [d]);
    m.set(`${p}.post_attention_layernorm.weight`, [d]);
  }
  m.set("model.norm.weight", [d]);
  m.set("lm_head.weight", [c.vocabSize, d]);
  return m;
}

export const llamaFamily: ModelFamily = {
  name: "llama",
  modelTypes: ["llama", "mistral", "qwen2"] satisfies LlamaModelType[],
  parseConfig: parseLlamaConfig,
  toHfConfig: llamaHfConfig,
  expectedShapes,
  linearNames,
  describe: (config) => {
    const c = config as LlamaConfig;
    return { ffn: c.intermediateSize, norm: "rms", activation: "silu", rope: c.rope.type, ropeTheta: c.rope.theta, slidingWindow: c.slidingWindow };
  },
  defaultTargets: ["q_proj", "v_proj"],
  load: (dir, opts) => LlamaForCausalLM.load(dir, opts),
  random: (config, opts) => LlamaForCausalLM.random(config as LlamaConfig, opts),
};
