// OPT causal language model (Zhang et al. 2022), matching Hugging Face's
// OPTForCausalLM exactly, readable top to bottom. Parameter names are Hugging
// Face's state_dict keys, so loading, PEFT targeting and saving speak one naming.
//
// Hooks for PEFT methods: every Linear lives in `linears` and can be replaced
// by any module with the same forward; `hooks` lets a method transform each
// sublayer's output (adapters); a prefix of past keys/values (prefix-tuning)
// enters through the same path as the generation KV cache.
import { existsSync } from "node:fs";
import { join } from "node:path";
import {
  type DType, Tensor, cat, embedding, layerNorm, linear, reluMask, dropout, randn, zeros, ones, tidy, noGrad, keep, manualSeed,
} from "../engine/index.js";
import { loadCheckpoint } from "../io/checkpoint.js";
import { alignKeyPrefix } from "../io/state-dict-keys.js";
import { type OPTConfig, readConfig, parseConfig, toHfConfig } from "./config.js";
import {
  type CausalLM, type ForwardOptions, type ForwardResult, type LayerKV, type LinearModule, type ModelFamily, type SublayerHooks, Linear,
} from "./causal-lm.js";
import { attend, attentionBias, biasRowsAt, pastAndMask, rowsAt } from "./attention.js";
import { runDecoderStack } from "./decoder-stack.js";
import { checkComputeDtype } from "./load.js";

export { Linear } from "./causal-lm.js";
export type { LinearModule, LayerKV, ForwardOptions, ForwardResult, SublayerHooks } from "./causal-lm.js";

export class OPTForCausalLM implements CausalLM {
  readonly family: ModelFamily = optFamily;
  readonly config: OPTConfig;
  /** Base weights by Hugging Face name; lm_head.weight is tied to embed_tokens. */
  readonly params: Map<string, Tensor>;
  /** Every linear layer by module name (e.g. model.decoder.layers.0.self_attn.q_proj). */
  readonly linears = new Map<string, LinearModule>();
  hooks: SublayerHooks = {};
  training = false;
  /** Recompute each layer in backward instead of keeping its activations (less memory, one more forward). */
  gradientCheckpointing = false;

  constructor(config: OPTConfig, params: Map<string, Tensor>) {
    this.config = config;
    this.params = params;
    for (const name of linearNames(config)) {
      this.linears.set(name, new Linear(params.get(`${name}.weight`)!, params.get(`${name}.bias`) ?? null));
    }
  }

  get dtype(): DType { return this.p("model.decoder.embed_tokens.weight").dtype; }

  private p(name: string): Tensor { return this.params.get(name)!; }
  private lin(name: string, x: Tensor): Tensor { return this.linears.get(name)!.forward(x); }

  private layerNorm(prefix: string, x: Tensor): Tensor {
    return layerNorm(x, [this.config.hiddenSize], this.params.get(`${prefix}.weight`) ?? null, this.params.get(`${prefix}.bias`) ?? null, 1e-5);
  }

  private activation(x: Tensor): Tensor {
    const act = this.config.activationFunction;
    return act === "relu" ? reluMask(x) : x.gelu(act === "gelu_new");
  }

  forward(inputIds: Tensor, opts: ForwardOptions = {}): ForwardResult {
    const c = this.config;
    const [batch, seq] = inputIds.shape;
    const { past, pastLen, mask } = pastAndMask(batch, seq, opts, this.hooks);

    // Learned positions (given, or from the mask so left padding works: cumsum(mask)·mask − 1),
    // offset by 2 (OPT's embedding rows 0 and 1 are reserved; padding lands on row 1).
    const positions = (opts.positionIds ?? mask.cumsum(1).mul(mask).sub(1).narrow(1, pastLen, seq)).add(2);
    let h = embedding(this.p("model.decoder.embed_tokens.weight"), inputIds);
    if (this.linears.has("model.decoder.project_in")) h = this.lin("model.decoder.project_in", h);
    h = h.add(embedding(this.p("model.decoder.embed_positions.weight"), positions));
    h = dropout(h, c.dropout, this.training);

    const additiveMask = attentionBias(mask, seq, pastLen);
    const random = this.training && (c.dropout > 0 || c.attentionDropout > 0);
    // The last layer runs at the logitsAt positions only (see decoderLayer): nothing else of it is read.
    const last = c.numHiddenLayers - 1;
    const out = runDecoderStack(h, { layers: c.numHiddenLayers, random, checkpointing: this.gradientCheckpointing, useCache: Boolean(opts.useCache) },
      (i, x, kv) => this.decoderLayer(i, x, additiveMask, past?.[i], kv, i === last ? opts.logitsAt : undefined));
    h = out.h; // [batch, k, d] when logitsAt is given, else [batch, seq, d]

    if (c.doLayerNormBefore && !c.removeFinalLayerNorm) h = this.layerNorm("model.decoder.final_layer_norm", h);
    if (this.linears.has("model.decoder.project_out")) h = this.lin("model.decoder.project_out", h);
    const logits = linear(h, this.p("lm_head.weight"));
    return opts.useCache ? { logits, cache: out.cache } : { logits };
  }

  /**
   * One decoder block, h [batch, seq, d] → [batch, seq, d]. With `at` [batch, k] (positions), the
   * block's queries, attention output, feed-forward and residual stream are computed at those
   * positions only, → [batch, k, d]; keys and values still come from every position. The last
   * block runs so when only some positions' logits are wanted (option scoring, the loss
   * positions): the same numbers as slicing afterwards, without (seq − k)/seq of that block's work.
   */
  private decoderLayer(i: number, h: Tensor, bias: Tensor, past: LayerKV | undefined, cache: LayerKV[] | undefined, at?: Tensor): Tensor {
    const c = this.config;
    const prefix = `model.decoder.layers.${i}`;
    const pre = c.doLayerNormBefore; // 125m, 1.3b, 13b normalise before each block; 350m after
    // Each block in its own scope, so what autograd does not keep is freed at once.
    const attn = tidy(() => {
      const kv: LayerKV[] = [];
      let a = this.attention(prefix, pre ? this.layerNorm(`${prefix}.self_attn_layer_norm`, h) : h, bias, past, cache ? kv : undefined, at);
      if (this.hooks.afterAttention) a = this.hooks.afterAttention(i, a);
      a = (at ? rowsAt(h, at) : h).add(dropout(a, c.dropout, this.training));
      return { out: pre ? a : this.layerNorm(`${prefix}.self_attn_layer_norm`, a), kv: kv[0] };
    });
    if (cache && attn.kv) cache.push(attn.kv);
    const x = attn.out;
    return tidy(() => {
      const hidden = tidy(() => this.activation(this.lin(`${prefix}.fc1`, pre ? this.layerNorm(`${prefix}.final_layer_norm`, x) : x)));
      let f = this.lin(`${prefix}.fc2`, hidden);
      if (this.hooks.afterFeedForward) f = this.hooks.afterFeedForward(i, f);
      f = x.add(dropout(f, c.dropout, this.training));
      return pre ? f : this.layerNorm(`${prefix}.final_layer_norm`, f);
    });
  }

  /** Self-attention of h [batch, seq, d]; queries (and the output) at `at` [batch, k] only when given. */
  private attention(prefix: string, h: Tensor, bias: Tensor, past: LayerKV | undefined, cache: LayerKV[] | undefined, at?: Tensor): Tensor {
    const c = this.config;
    const [batch, , d] = h.shape;
    const heads = c.numAttentionHeads;
    const headDim = d / heads;
    const split = (x: Tensor) => x.reshape([batch, x.size(1), heads, headDim]).transpose(1, 2); // [b, h, t, hd]

    const q = split(this.lin(`${prefix}.self_attn.q_proj`, at ? rowsAt(h, at) : h).mul(headDim ** -0.5));
    let k = split(this.lin(`${prefix}.self_attn.k_proj`, h));
    let v = split(this.lin(`${prefix}.self_attn.v_proj`, h));
    if (past) {
      // a prefix (prefix-tuning) has batch 1 and is shared by every row
      const widen = (t: Tensor) => (t.size(0) === batch ? t : t.expand([batch, heads, -1, headDim]));
      k = cat([widen(past.key), k], 2);
      v = cat([widen(past.value), v], 2);
    }
    if (cache) cache.push({ key: k, value: v });

    return this.lin(`${prefix}.self_attn.out_proj`, attend(q, k, v, at ? biasRowsAt(bias, at) : bias, c.attentionDropout, this.training));
  }

  /**
   * Replaces a base weight (same shape), keeping the Linear modules that use it
   * in step. PEFT methods that train base tensors in place do not need this.
   */
  setParam(name: string, t: Tensor): void {
    const old = this.params.get(name);
    if (!old) throw new Error(`no parameter named '${name}'`);
    if (old.shape.join() !== t.shape.join()) throw new Error(`'${name}' has shape [${old.shape}], got [${t.shape}]`);
    for (const [k, v] of this.params) if (v === old) this.params.set(k, t);
    const module = name.replace(/\.(weight|bias)$/, "");
    const lin = this.linears.get(module);
    if (lin instanceof Linear) {
      this.linears.set(module, new Linear(this.params.get(`${module}.weight`)!, this.params.get(`${module}.bias`) ?? null));
    }
  }

  /** Parameter count of the base model (tied weights once). */
  numParameters(): number {
    const seen = new Set<Tensor>();
    let n = 0;
    for (const t of this.params.values()) if (!seen.has(t)) { seen.add(t); n += t.numel; }
    return n;
  }

  /** The base state dict as Hugging Face saves it (tied lm_head omitted). */
  stateDict(): Map<string, Tensor> {
    const out = new Map(this.params);
    if (this.config.tieWordEmbeddings) out.delete("lm_head.weight");
    return out;
  }

  /** Frees every base weight. */
  dispose(): void {
    for (const t of new Set(this.params.values())) t.dispose();
  }

  // ------------------------------------------------------------ construction

  /** Loads a Hugging Face OPT folder (config.json + safetensors or pytorch_model.bin), converting to `dtype`. */
  static load(dir: string, opts: { dtype?: DType } = {}): OPTForCausalLM {
    const configFile = join(dir, "config.json");
    if (!existsSync(configFile)) throw new Error(`${dir}: no config.json (expected a Hugging Face model folder)`);
    const config = readConfig(configFile);
    const dtype = opts.dtype ?? "float32";
    checkComputeDtype(dtype, dir);
    const raw = loadCheckpoint(dir);
    const params = new Map<string, Tensor>();
    try {
      for (const [name, t] of alignKeyPrefix(raw, expectedShapes(config).keys(), "model.", dir)) {
        params.set(name, t.dtype === dtype ? t : convert(t, dtype));
      }
      checkParams(config, params, dir);
    } catch (e) {
      for (const t of new Set([...raw.values(), ...params.values()])) t.dispose();
      throw e;
    }
    return new OPTForCausalLM(config, params);
  }

  /** Random weights in `config`'s shapes (for tests and benchmarks). */
  static random(config: OPTConfig, opts: { seed?: number; dtype?: DType; std?: number } = {}): OPTForCausalLM {
    manualSeed(opts.seed ?? 0);
    const dtype = opts.dtype ?? "float32";
    const std = opts.std ?? 0.02;
    const params = new Map<string, Tensor>();
    noGrad(() => tidy(() => {
      for (const [name, shape] of expectedShapes(config)) {
        if (name === "lm_head.weight") continue;
        let t: Tensor;
        if (/layer_norm\.weight$/.test(name)) t = ones(shape, dtype);
        else if (name.endsWith(".bias")) t = zeros(shape, dtype);
        else {
          t = randn(shape).mul_(std);
          if (dtype !== "float32") t = t.to(dtype);
        }
        params.set(name, keep(t));
      }
    }));
    params.set("lm_head.weight", params.get("model.decoder.embed_tokens.weight")!);
    return new OPTForCausalLM(config, params);
  }
}

function convert(t: Tensor, dtype: DType): Tensor {
  const out = noGrad(() => t.to(dtype));
  t.dispose();
  return keep(out);
}

export function linearNames(c: OPTConfig): string[] {
  const names: string[] = [];
  if (c.wordEmbedProjDim !== c.hiddenSize) names.push("model.decoder.project_in", "model.decoder.project_out");
  for (let i = 0; i < c.numHiddenLayers; i++) {
    for (const p of ["q_proj", "k_proj", "v_proj", "out_proj"]) names.push(`model.decoder.layers.${i}.self_attn.${p}`);
    names.push(`model.decoder.layers.${i}.fc1`, `model.decoder.layers.${i}.fc2`);
  }
  return names;
}

/** Every parameter name and shape an OPT of this config has. */
export function expectedShapes(c: OPTConfig): Map<string, number[]> {
  const d = c.hiddenSize;
  const m = new Map<string, number[]>();
  m.set("model.decoder.embed_tokens.weight", [c.vocabSize, c.wordEmbedProjDim]);
  m.set("model.decoder.embed_positions.weight", [c.maxPositionEmbeddings + 2, d]);
  if (c.wordEmbedProjDim !== d) {
    m.set("model.decoder.project_in.weight", [d, c.wordEmbedProjDim]);
    m.set("model.decoder.project_out.weight", [c.wordEmbedProjDim, d]);
  }
  const ln = (prefix: string) => {
    if (!c.layerNormElementwiseAffine) return;
    m.set(`${prefix}.weight`, [d]);
    m.set(`${prefix}.bias`, [d]);
  };
  const lin = (prefix: string, out: number, inF: number) => {
    m.set(`${prefix}.weight`, [out, inF]);
    if (c.enableBias) m.set(`${prefix}.bias`, [out]);
  };
  for (let i = 0; i < c.numHiddenLayers; i++) {
    const p = `model.decoder.layers.${i}`;
    for (const proj of ["k_proj", "v_proj", "q_proj", "out_proj"]) lin(`${p}.self_attn.${proj}`, d, d);
    ln(`${p}.self_attn_layer_norm`);
    lin(`${p}.fc1`, c.ffnDim, d);
    lin(`${p}.fc2`, d, c.ffnDim);
    ln(`${p}.final_layer_norm`);
  }
  if (c.doLayerNormBefore && !c.removeFinalLayerNorm) ln("model.decoder.final_layer_norm");
  m.set("lm_head.weight", [c.vocabSize, c.wordEmbedProjDim]);
  return m;
}

function checkParams(c: OPTConfig, params: Map<string, Tensor>, dir: string): void {
  const expected = expectedShapes(c);
  if (!params.has("lm_head.weight") || c.tieWordEmbeddings) {
    params.get("lm_head.weight")?.dispose();
    const embed = params.get("model.decoder.embed_tokens.weight");
    if (embed) params.set("lm_head.weight", embed);
  }
  const missing = [...expected.keys()].filter((k) => !params.has(k));
  if (missing.length) throw new Error(`${dir}: checkpoint lacks ${missing.length} tensor(s) the config needs: ${missing.slice(0, 5).join(", ")}${missing.length > 5 ? ", …" : ""}`);
  const unexpected = [...params.keys()].filter((k) => !expected.has(k));
  if (unexpected.length) throw new Error(`${dir}: checkpoint has tensor(s) an OPT with this config does not: ${unexpected.slice(0, 5).join(", ")}`);
  for (const [k, shape] of expected) {
    const got = params.get(k)!.shape;
    if (got.join() !== shape.join()) throw new Error(`${dir}: tensor '${k}' has shape [${got}] but config.json implies [${shape}]`);
  }
}

export const optFamily: ModelFamily = {
  name: "opt",
  modelTypes: ["opt"],
  parseConfig: (raw, file) => parseConfig(raw, file),
  toHfConfig: (c) => toHfConfig(c as OPTConfig),
  expectedShapes: (c) => expectedShapes(c as OPTConfig),
  linearNames: (c) => linearNames(c as OPTConfig),
  describe: (config) => {
    const c = config as OPTConfig;
    return { ffn: c.ffnDim, layerNorm: c.doLayerNormBefore ? "pre" : "post", activation: c.activationFunction };
  },
  defaultTargets: ["q_proj", "v_proj"],
  load: (dir, opts) => OPTForCausalLM.load(dir, opts),
  random: (c, opts) => OPTForCausalLM.random(c as OPTConfig, opts),
};
