// CLIP's image encoder (Radford et al. 2021), matching Hugging Face's
// CLIPVisionModel / CLIPVisionModelWithProjection (modeling_clip.py), readable
// top to bottom:
//   patches (Conv2d kernel = stride = patch, no bias, as reshape + linear)
//   → [class_embedding] + patches → + learned positions → pre_layrnorm
//   → N × pre-LayerNorm blocks (self-attention, quick_gelu MLP)
//   = last_hidden_state; post_layernorm([CLS]) = pooler_output;
//   visual_projection(pooler_output) = image_embeds (no bias).
// Loads a CLIPVisionModel(WithProjection) folder or the vision tower of a full
// `clip` checkpoint (its text tower is never read).
import { existsSync } from "node:fs";
import { join } from "node:path";
import { type DType, Tensor, cat, layerNorm, tidy, manualSeed, randn, zeros, ones, keep, noGrad } from "../../engine/index.js";
import { attend } from "../attention.js";
import type { LinearModule } from "../opt.js";
import { type CLIPVisionConfig, readVisionConfig, sequenceLength } from "./config.js";
import { MLP_TARGETS, type VisionHooks, type VisionModel, activation, buildLinears, countParameters, loadVisionParams, patchEmbed, replaceParam } from "./common.js";

export interface CLIPVisionOutput {
  /** [batch, 1 + patches, hidden]: the encoder's output (no post-LayerNorm, as Hugging Face returns it). */
  lastHiddenState: Tensor;
  /** [batch, hidden]: post_layernorm of the [CLS] token. */
  poolerOutput: Tensor;
  /** [batch, projectionDim]: visual_projection(poolerOutput), when the checkpoint has the projection. */
  imageEmbeds?: Tensor;
}

const PROJECTION = "visual_projection";

export class CLIPVisionModel implements VisionModel {
  readonly config: CLIPVisionConfig;
  readonly params: Map<string, Tensor>;
  readonly linears: Map<string, LinearModule>;
  hooks: VisionHooks = {};
  training = false;

  constructor(config: CLIPVisionConfig, params: Map<string, Tensor>) {
    this.config = config;
    this.params = params;
    this.linears = buildLinears(clipLinearNames(config, params.has(`${PROJECTION}.weight`)), params);
  }

  readonly defaultTargets = MLP_TARGETS;
  readonly targetAliases = {};

  get dtype(): DType { return this.p("vision_model.embeddings.class_embedding").dtype; }
  get architecture(): string { return this.hasProjection ? "CLIPVisionModelWithProjection" : "CLIPVisionModel"; }
  /** Nothing: every tensor is on the path to features() (image_embeds), so every one may train. */
  fixedParams(): string[] { return []; }
  get hasProjection(): boolean { return this.linears.has(PROJECTION); }
  /** Width of features(): image_embeds with the projection, pooler_output without. */
  get featureDim(): number { return this.hasProjection ? this.config.projectionDim : this.config.hiddenSize; }

  private p(name: string): Tensor { return this.params.get(name)!; }
  private lin(name: string, x: Tensor): Tensor { return this.linears.get(name)!.forward(x); }
  private layerNorm(prefix: string, x: Tensor): Tensor {
    return layerNorm(x, [this.config.hiddenSize], this.p(`${prefix}.weight`), this.p(`${prefix}.bias`), this.config.layerNormEps);
  }

  /** pixelValues: [batch, channels, imageSize, imageSize], already normalised (see preprocess.ts). */
  forward(pixelValues: Tensor): CLIPVisionOutput {
    const c = this.config;
    let h = tidy(() => {
      const patches = patchEmbed(pixelValues, this.p("vision_model.embeddings.patch_embedding.weight"), null, c); // [b, n, d]
      const b = patches.size(0);
      const cls = this.p("vision_model.embeddings.class_embedding").reshape([1, 1, c.hiddenSize]).expand([b, 1, c.hiddenSize]);
      const x = cat([cls, patches], 1).add(this.p("vision_model.embeddings.position_embedding.weight"));
      return this.layerNorm("vision_model.pre_layrnorm", x);
    });
    for (let i = 0; i < c.numHiddenLayers; i++) {
      const input = h;
      h = tidy(() => this.layer(i, input));
      input.dispose();
    }
    const poolerOutput = tidy(() => this.layerNorm("vision_model.post_layernorm", h.select(1, 0)));
    const out: CLIPVisionOutput = { lastHiddenState: h, poolerOutput };
    if (this.hasProjection) out.imageEmbeds = this.lin(PROJECTION, poolerOutput);
    return out;
  }

  /**
   * [batch, featureDim]: image_embeds (or pooler_output without a projection), not
   * L2-normalised; a head that wants CLIP's cosine geometry normalises (see head.ts).
   */
  features(pixelValues: Tensor): Tensor {
    return tidy(() => {
      const out = this.forward(pixelValues);
      return out.imageEmbeds ?? out.poolerOutput;
    });
  }

  private layer(i: number, h: Tensor): Tensor {
    const c = this.config;
    const prefix = `vision_model.encoder.layers.${i}`;
    const attended = tidy(() => {
      let a = this.attention(prefix, this.layerNorm(`${prefix}.layer_norm1`, h));
      if (this.hooks.afterAttention) a = this.hooks.afterAttention(i, a);
      return h.add(a);
    });
    return tidy(() => {
      const hidden = tidy(() => activation(this.lin(`${prefix}.mlp.fc1`, this.layerNorm(`${prefix}.layer_norm2`, attended)), c.hiddenAct));
      let f = this.lin(`${prefix}.mlp.fc2`, hidden);
      if (this.hooks.afterFeedForward) f = this.hooks.afterFeedForward(i, f);
      return attended.add(f);
    });
  }

  /** Bidirectional multi-head self-attention: softmax((q/√d_head)·kᵀ)·v, heads merged, out_proj. */
  private attention(prefix: string, h: Tensor): Tensor {
    const c = this.config;
    const [batch, seq, d] = h.shape;
    const heads = c.numAttentionHeads;
    const headDim = d / heads;
    const split = (x: Tensor) => x.reshape([batch, seq, heads, headDim]).transpose(1, 2); // [b, h, t, hd]
    const q = split(this.lin(`${prefix}.self_attn.q_proj`, h).mul(headDim ** -0.5));
    const k = split(this.lin(`${prefix}.self_attn.k_proj`, h));
    const v = split(this.lin(`${prefix}.self_attn.v_proj`, h));
    // bidirectional: no mask, so a zero bias
    const context = attend(q, k, v, zeros([1]), c.attentionDropout, this.training);
    return this.lin(`${prefix}.self_attn.out_proj`, context);
  }

  setParam(name: string, t: Tensor): void { replaceParam(this.params, this.linears, name, t); }
  numParameters(): number { return countParameters(this.params); }
  stateDict(): Map<string, Tensor> { return new Map(this.params); }
  dispose(): void { for (const t of new Set(this.params.values())) t.dispose(); }

  // ------------------------------------------------------------ construction

  /** Loads a `clip_vision_model` folder, or the vision tower of a full `clip` folder, converting to `dtype`. */
  static load(dir: string, opts: { dtype?: DType } = {}): CLIPVisionModel {
    const configFile = join(dir, "config.json");
    if (!existsSync(configFile)) throw new Error(`${dir}: no config.json (expected a Hugging Face model folder)`);
    const config = readVisionConfig(configFile);
    if (config.modelType !== "clip_vision_model") throw new Error(`${configFile}: model_type is ${config.modelType}, not clip or clip_vision_model`);
    const visionTower = (k: string) => (k.startsWith("vision_model.") || k.startsWith(`${PROJECTION}.`) ? k : null);
    const params = loadVisionParams(dir, visionTower, clipVisionShapes(config, true), (n) => n.startsWith(`${PROJECTION}.`), opts.dtype ?? "float32");
    return new CLIPVisionModel(config, params);
  }

  /** Random weights in `config`'s shapes (tests, pretraining from scratch). */
  static random(config: CLIPVisionConfig, opts: { seed?: number; dtype?: DType; std?: number; projection?: boolean } = {}): CLIPVisionModel {
    manualSeed(opts.seed ?? 0);
    const dtype = opts.dtype ?? "float32";
    const params = new Map<string, Tensor>();
    noGrad(() => {
      for (const [name, shape] of clipVisionShapes(config, opts.projection ?? true)) {
        let t: Tensor;
        if (/(layrnorm|layernorm|layer_norm\d)\.weight$/.test(name)) t = ones(shape, dtype);
        else if (name.endsWith(".bias")) t = zeros(shape, dtype);
        else t = tidy(() => randn(shape).mul(opts.std ?? 0.02).to(dtype));
        params.set(name, keep(t));
      }
    });
    return new CLIPVisionModel(config, params);
  }
}

function clipLinearNames(c: CLIPVisionConfig, projection: boolean): string[] {
  const names: string[] = [];
  for (let i = 0; i < c.numHiddenLayers; i++) {
    for (const p of ["q_proj", "k_proj", "v_proj", "out_proj"]) names.push(`vision_model.encoder.layers.${i}.self_attn.${p}`);
    names.push(`vision_model.encoder.layers.${i}.mlp.fc1`, `vision_model.encoder.layers.${i}.mlp.fc2`);
  }
  if (projection) names.push(PROJECTION);
  return names;
}

/** Every parameter name and shape CLIP's vision tower of this config has (visual_projection when asked). */
export function clipVisionShapes(c: CLIPVisionConfig, projection: boolean): Map<string, number[]> {
  const d = c.hiddenSize;
  const m = new Map<string, number[]>();
  m.set("vision_model.embeddings.class_embedding", [d]);
  m.set("vision_model.embeddings.patch_embedding.weight", [d, c.numChannels, c.patchSize, c.patchSize]);
  m.set("vision_model.embeddings.position_embedding.weight", [sequenceLength(c), d]);
  const ln = (p: string) => { m.set(`${p}.weight`, [d]); m.set(`${p}.bias`, [d]); };
  ln("vision_model.pre_layrnorm");
  for (let i = 0; i < c.numHiddenLayers; i++) {
    const p = `vision_model.encoder.layers.${i}`;
    for (const proj of ["k_proj", "v_proj", "q_proj", "out_proj"]) {
      m.set(`${p}.self_attn.${proj}.weight`, [d, d]);
      m.set(`${p}.self_attn.${proj}.bias`, [d]);
    }
    ln(`${p}.layer_norm1`);
    m.set(`${p}.mlp.fc1.weight`, [c.intermediateSize, d]);
    m.set(`${p}.mlp.fc1.bias`, [c.intermediateSize]);
    m.set(`${p}.mlp.fc2.weight`, [d, c.intermediateSize]);
    m.set(`${p}.mlp.fc2.bias`, [d]);
    ln(`${p}.layer_norm2`);
  }
  ln("vision_model.post_layernorm");
  if (projection) m.set(`${PROJECTION}.weight`, [c.projectionDim, d]);
  return m;
}
