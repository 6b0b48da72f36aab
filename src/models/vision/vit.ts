// Vision Transformer (Dosovitskiy et al. 2021, "An Image is Worth 16x16 Words"),
// matching Hugging Face's ViTModel / ViTForImageClassification (modeling_vit.py),
// readable top to bottom:
//   patches (Conv2d kernel = stride = patch, as reshape + linear) → [CLS] + patches
//   → + learned positions → N × pre-LayerNorm blocks (self-attention, GELU MLP)
//   → final LayerNorm → classifier on the [CLS] token, or the tanh pooler (ViTModel).
// Parameter names are current Hugging Face keys (vit.layers.N.attention.q_proj,
// vit.layers.N.mlp.fc1, …); checkpoints with the older keys
// (vit.encoder.layer.N.attention.attention.query, intermediate.dense, output.dense, …)
// are renamed on load, so PEFT targets fc1/fc2 in both.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { type DType, Tensor, cat, dropout, layerNorm, linear, tidy, manualSeed, randn, zeros, ones, keep, noGrad } from "../../engine/index.js";
import { attend } from "../attention.js";
import type { LinearModule } from "../opt.js";
import { type ViTConfig, readVisionConfig, sequenceLength } from "./config.js";
import { MLP_TARGETS, type VisionHooks, type VisionModel, activation, buildLinears, countParameters, loadVisionParams, patchEmbed, replaceParam } from "./common.js";

export interface ViTOutput {
  /** [batch, 1 + patches, hidden]: after the final LayerNorm. */
  lastHiddenState: Tensor;
  /** [batch, poolerOutputSize]: act(dense([CLS])), when the checkpoint has a pooler (ViTModel). */
  poolerOutput?: Tensor;
  /** [batch, classes]: classifier([CLS]), when the checkpoint has a classifier (ViTForImageClassification). */
  logits?: Tensor;
}

export class ViT implements VisionModel {
  readonly config: ViTConfig;
  readonly params: Map<string, Tensor>;
  readonly linears: Map<string, LinearModule>;
  hooks: VisionHooks = {};
  training = false;

  constructor(config: ViTConfig, params: Map<string, Tensor>) {
    this.config = config;
    this.params = params;
    this.linears = buildLinears(vitLinearNames(config, params.has("vit.pooler.dense.weight")), params);
  }

  readonly defaultTargets = MLP_TARGETS;
  /** Hugging Face's older ViT module names (PEFT configs for ViT use them) → the current ones. */
  readonly targetAliases = {
    "intermediate.dense": "mlp.fc1", "output.dense": "mlp.fc2", "attention.attention.query": "attention.q_proj",
    "attention.attention.key": "attention.k_proj", "attention.attention.value": "attention.v_proj", query: "q_proj", key: "k_proj", value: "v_proj",
  };

  get dtype(): DType { return this.p("vit.embeddings.cls_token").dtype; }
  get architecture(): string { return this.hasClassifier ? "ViTForImageClassification" : "ViTModel"; }
  /** The classifier (the paper's fixed head) and the pooler, which features() does not read. */
  fixedParams(): string[] { return [...this.params.keys()].filter((n) => n.startsWith("classifier.") || n.startsWith("vit.pooler.")); }
  get featureDim(): number { return this.config.hiddenSize; }
  /** True for a ViTForImageClassification checkpoint. */
  get hasClassifier(): boolean { return this.params.has("classifier.weight"); }

  private p(name: string): Tensor { return this.params.get(name)!; }
  private lin(name: string, x: Tensor): Tensor { return this.linears.get(name)!.forward(x); }
  private layerNorm(prefix: string, x: Tensor): Tensor {
    return layerNorm(x, [this.config.hiddenSize], this.p(`${prefix}.weight`), this.p(`${prefix}.bias`), this.config.layerNormEps);
  }

  /** pixelValues: [batch, channels, imageSize, imageSize], already normalised (see preprocess.ts). */
  forward(pixelValues: Tensor): ViTOutput {
    const c = this.config;
    const h0 = tidy(() => {
      const patches = patchEmbed(pixelValues, this.p("vit.embeddings.patch_embeddings.projection.weight"),
        this.p("vit.embeddings.patch_embeddings.projection.bias"), c);                        // [b, n, d]
      const b = patches.size(0);
      const cls = this.p("vit.embeddings.cls_token").expand([b, 1, c.hiddenSize]);
      const h = cat([cls, patches], 1).add(this.p("vit.embeddings.position_embeddings"));
      return dropout(h, c.hiddenDropoutProb, this.training);
    });
    let h = h0;
    for (let i = 0; i < c.numHiddenLayers; i++) {
      const input = h;
      h = tidy(() => this.layer(i, input));
      input.dispose();
    }
    const lastHiddenState = tidy(() => this.layerNorm("vit.layernorm", h));
    h.dispose();
    const out: ViTOutput = { lastHiddenState };
    if (this.linears.has("vit.pooler.dense")) {
      out.poolerOutput = tidy(() => activation(this.lin("vit.pooler.dense", lastHiddenState.select(1, 0)), c.poolerAct));
    }
    if (this.hasClassifier) {
      out.logits = tidy(() => linear(lastHiddenState.select(1, 0), this.p("classifier.weight"), this.params.get("classifier.bias") ?? null));
    }
    return out;
  }

  /** [batch, hidden]: the [CLS] token after the final LayerNorm, which ViTForImageClassification's classifier reads. */
  features(pixelValues: Tensor): Tensor {
    return tidy(() => this.forward(pixelValues).lastHiddenState.select(1, 0));
  }

  private layer(i: number, h: Tensor): Tensor {
    const c = this.config;
    const prefix = `vit.layers.${i}`;
    const attended = tidy(() => {
      let a = this.attention(prefix, this.layerNorm(`${prefix}.layernorm_before`, h));
      if (this.hooks.afterAttention) a = this.hooks.afterAttention(i, a);
      return h.add(dropout(a, c.hiddenDropoutProb, this.training));
    });
    return tidy(() => {
      const hidden = tidy(() => activation(this.lin(`${prefix}.mlp.fc1`, this.layerNorm(`${prefix}.layernorm_after`, attended)), c.hiddenAct));
      let f = this.lin(`${prefix}.mlp.fc2`, hidden);
      if (this.hooks.afterFeedForward) f = this.hooks.afterFeedForward(i, f);
      return attended.add(dropout(f, c.hiddenDropoutProb, this.training));
    });
  }

  /** Bidirectional multi-head self-attention: softmax(q·kᵀ/√d_head)·v, heads merged, o_proj. */
  private attention(prefix: string, h: Tensor): Tensor {
    const c = this.config;
    const [batch, seq, d] = h.shape;
    const heads = c.numAttentionHeads;
    const headDim = d / heads;
    const split = (x: Tensor) => x.reshape([batch, seq, heads, headDim]).transpose(1, 2); // [b, h, t, hd]
    const q = split(this.lin(`${prefix}.attention.q_proj`, h).mul(headDim ** -0.5));
    const k = split(this.lin(`${prefix}.attention.k_proj`, h));
    const v = split(this.lin(`${prefix}.attention.v_proj`, h));
        // bidirectional: no mask, so a zero bias
    const context = attend(q, k, v, zeros([1]), c.attentionProbsDropoutProb, this.training);
    return this.lin(`${prefix}.attention.o_proj`, context);
  }

  setParam(name: string, t: Tensor): void { replaceParam(this.params, this.linears, name, t); }
  numParameters(): number { return countParameters(this.params); }
  stateDict(): Map<string, Tensor> { return new Map(this.params); }
  dispose(): void { for (const t of new Set(this.params.values())) t.dispose(); }

  // ------------------------------------------------------------ construction

  /** Loads a Hugging Face `vit` folder (config.json + safetensors), converting to `dtype`. */
  static load(dir: string, opts: { dtype?: DType } = {}): ViT {
    const configFile = join(dir, "config.json");
    if (!existsSync(configFile)) throw new Error(`${dir}: no config.json (expected a Hugging Face model folder)`);
    const config = readVisionConfig(configFile);
    if (config.modelType !== "vit") throw new Error(`${configFile}: model_type is ${config.modelType}, not vit`);
    const expected = vitShapes(config, { pooler: true, classes: config.id2label.length || null });
    const params = loadVisionParams(dir, vitName, expected,
      (name) => name.startsWith("vit.pooler.") || name.startsWith("classifier."), opts.dtype ?? "float32");
    return new ViT(config, params);
  }

  /** Random weights in `config`'s shapes (tests, pretraining from scratch). `classes` adds a classifier. */
  static random(config: ViTConfig, opts: { seed?: number; dtype?: DType; std?: number; classes?: number; pooler?: boolean } = {}): ViT {
    manualSeed(opts.seed ?? 0);
    const dtype = opts.dtype ?? "float32";
    const params = new Map<string, Tensor>();
    noGrad(() => {
      for (const [name, shape] of vitShapes(config, { pooler: opts.pooler ?? false, classes: opts.classes ?? null })) {
        let t: Tensor;
        if (/(layernorm[a-z_]*)\.weight$/.test(name)) t = ones(shape, dtype);
        else if (name.endsWith(".bias")) t = zeros(shape, dtype);
        else t = tidy(() => randn(shape).mul(opts.std ?? 0.02).to(dtype));
        params.set(name, keep(t));
      }
    });
    return new ViT(config, params);
  }
}

function vitLinearNames(c: ViTConfig, pooler: boolean): string[] {
  const names: string[] = [];
  for (let i = 0; i < c.numHiddenLayers; i++) {
    for (const p of ["q_proj", "k_proj", "v_proj", "o_proj"]) names.push(`vit.layers.${i}.attention.${p}`);
    names.push(`vit.layers.${i}.mlp.fc1`, `vit.layers.${i}.mlp.fc2`);
  }
  if (pooler) names.push("vit.pooler.dense");
  return names;
}

/** Every parameter name and shape a ViT of this config has (pooler and classifier when asked). */
export function vitShapes(c: ViTConfig, opts: { pooler: boolean; classes: number | null }): Map<string, number[]> {
  const d = c.hiddenSize;
  const m = new Map<string, number[]>();
  m.set("vit.embeddings.cls_token", [1, 1, d]);
  m.set("vit.embeddings.position_embeddings", [1, sequenceLength(c), d]);
  m.set("vit.embeddings.patch_embeddings.projection.weight", [d, c.numChannels, c.patchSize, c.patchSize]);
  m.set("vit.embeddings.patch_embeddings.projection.bias", [d]);
  const ln = (p: string) => { m.set(`${p}.weight`, [d]); m.set(`${p}.bias`, [d]); };
  for (let i = 0; i < c.numHiddenLayers; i++) {
    const p = `vit.layers.${i}`;
    for (const proj of ["q_proj", "k_proj", "v_proj"]) {
      m.set(`${p}.attention.${proj}.weight`, [d, d]);
      if (c.qkvBias) m.set(`${p}.attention.${proj}.bias`, [d]);
    }
    m.set(`${p}.attention.o_proj.weight`, [d, d]);
    m.set(`${p}.attention.o_proj.bias`, [d]);
    ln(`${p}.layernorm_before`);
    m.set(`${p}.mlp.fc1.weight`, [c.intermediateSize, d]);
    m.set(`${p}.mlp.fc1.bias`, [c.intermediateSize]);
    m.set(`${p}.mlp.fc2.weight`, [d, c.intermediateSize]);
    m.set(`${p}.mlp.fc2.bias`, [d]);
    ln(`${p}.layernorm_after`);
  }
  ln("vit.layernorm");
  if (opts.pooler) {
    m.set("vit.pooler.dense.weight", [c.poolerOutputSize, d]);
    m.set("vit.pooler.dense.bias", [c.poolerOutputSize]);
  }
  if (opts.classes !== null) {
    m.set("classifier.weight", [opts.classes, d]);
    m.set("classifier.bias", [opts.classes]);
  }
  return m;
}

const LEGACY: [RegExp, string][] = [
  [/^encoder\.layer\.(\d+)\.attention\.attention\.query\./, "layers.$1.attention.q_proj."],
  [/^encoder\.layer\.(\d+)\.attention\.attention\.key\./, "layers.$1.attention.k_proj."],
  [/^encoder\.layer\.(\d+)\.attention\.attention\.value\./, "layers.$1.attention.v_proj."],
  [/^encoder\.layer\.(\d+)\.attention\.output\.dense\./, "layers.$1.attention.o_proj."],
  [/^encoder\.layer\.(\d+)\.intermediate\.dense\./, "layers.$1.mlp.fc1."],
  [/^encoder\.layer\.(\d+)\.output\.dense\./, "layers.$1.mlp.fc2."],
  [/^encoder\.layer\.(\d+)\.(layernorm_before|layernorm_after)\./, "layers.$1.$2."],
];

/**
 * A checkpoint key in the current naming: ViTModel's keys gain the `vit.` prefix
 * ViTForImageClassification uses, and the older per-module names are mapped
 * (query/key/value → q/k/v_proj, attention.output.dense → o_proj,
 * intermediate.dense → mlp.fc1, output.dense → mlp.fc2).
 */
export function vitName(key: string): string {
  if (key.startsWith("classifier.")) return key;
  let k = key.startsWith("vit.") ? key.slice(4) : key;
  for (const [re, to] of LEGACY) k = k.replace(re, to);
  return `vit.${k}`;
}
