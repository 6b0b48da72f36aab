// LoRA (Hu et al. 2021): ΔW = s·B·A on target linears, s = α/r (or α/√r with
// rsLoRA, Kalajdzievski 2023); A Kaiming-uniform, B zero (Hugging Face PEFT's
// init), so the model starts unchanged. Per-module r and α follow PEFT's
// rank_pattern / alpha_pattern; lora_bias gives B a bias (scaled like B).
import { Tensor, linear, dropout, zeros } from "../../engine/index.js";
import { Linear } from "../../models/causal-lm.js";
import type { BaseModel } from "../base-model.js";
import { DeltaMerger, type DeltaModule } from "../merge.js";
import { deltaNorm } from "../delta-norm.js";
import { PeftConfigError, type MethodConfig, type MethodDefinition, type PeftInstance } from "../method.js";
import type { ModelShapes } from "../shapes.js";
import { matchTargets, parseTargets, patternKey } from "../targets.js";
import { kaimingUniform } from "../init.js";
import { checkRank, intOption, numberOption, seedOption } from "../options.js";

const NAME = "lora";

export class LoraModule implements DeltaModule {
  constructor(readonly base: Linear, readonly a: Tensor, readonly b: Tensor, readonly bBias: Tensor | null,
    readonly scaling: number, readonly dropoutP: number, private readonly model: BaseModel) {}
  forward(x: Tensor): Tensor {
    const dt = this.base.weight.dtype;
    const c = (t: Tensor) => (t.dtype === dt ? t : t.to(dt));
    const h = dropout(x, this.dropoutP, this.model.training);
    return this.base.forward(x).add(linear(linear(h, c(this.a)), c(this.b), this.bBias && c(this.bBias)), this.scaling);
  }
  /** W + s·B·A, computed in float32 and rounded once to the base weight's dtype. */
  mergedWeight(): Tensor {
    const w = this.base.weight;
    return w.to("float32").add(this.b.matmul(this.a), this.scaling).to(w.dtype);
  }
  /** b + s·b_B (PEFT's lora_bias merge), or null without a LoRA bias. */
  mergedBias(): Tensor | null {
    if (!this.bBias) return null;
    const bias = this.base.bias;
    if (!bias) throw new Error(`${NAME}: lora_bias needs a base layer with a bias to merge into`);
    return bias.to("float32").add(this.bBias, this.scaling).to(bias.dtype);
  }
}

/** The rank, α and scale of one target module (PEFT's LoraLayer.update_layer). */
export function loraModuleShape(config: MethodConfig, name: string): { r: number; alpha: number; scaling: number } {
  const rankPattern = (config.rankPattern ?? {}) as Record<string, number>;
  const alphaPattern = (config.alphaPattern ?? {}) as Record<string, number>;
  const rKey = patternKey(Object.keys(rankPattern), name);
  const aKey = patternKey(Object.keys(alphaPattern), name);
  const r = rKey !== undefined ? rankPattern[rKey] : (config.r as number);
  const alpha = aKey !== undefined ? alphaPattern[aKey] : (config.alpha as number);
  return { r, alpha, scaling: config.useRslora ? alpha / Math.sqrt(r) : alpha / r };
}

export class LoraInstance implements PeftInstance {
  readonly method = NAME;
  readonly modules = new Map<string, LoraModule>();
  private readonly merger: DeltaMerger;

  constructor(readonly config: MethodConfig, private readonly model: BaseModel, weights?: Map<string, Tensor>) {
    for (const name of config.targets as string[]) {
      const base = model.linears.get(name);
      if (!(base instanceof Linear)) throw new Error(`${NAME}: module '${name}' is not a plain linear layer (another method attached?)`);
      const { r, scaling } = loraModuleShape(config, name);
      const [out, inF] = base.weight.shape;
      const a = weights?.get(`${name}.lora_A.weight`) ?? kaimingUniform([r, inF], config.seed as number, `${name}.lora_A`);
      const b = weights?.get(`${name}.lora_B.weight`) ?? zeros([out, r], "float32");
      const bBias = config.loraBias ? (weights?.get(`${name}.lora_B.bias`) ?? zeros([out], "float32")) : null;
      if (a.shape.join() !== [r, inF].join() || b.shape.join() !== [out, r].join() || (bBias && bBias.shape.join() !== `${out}`)) {
        throw new Error(`${NAME}: saved weights for '${name}' have shapes [${a.shape}] and [${b.shape}]${bBias ? ` (bias [${bBias.shape}])` : ""}, ` +
          `expected [${r},${inF}] and [${out},${r}]${bBias ? ` (bias [${out}])` : ""} (r ${r})`);
      }
      for (const t of [a, b, bBias]) t?.setRequiresGrad(true);
      const m = new LoraModule(base, a, b, bBias, scaling, config.dropout as number, model);
      this.modules.set(name, m);
      model.linears.set(name, m);
    }
    this.merger = new DeltaMerger(model, this.modules);
  }

  trainableParams(): Tensor[] { return [...this.modules.values()].flatMap((m) => (m.bBias ? [m.a, m.b, m.bBias] : [m.a, m.b])); }
  trainableCount(): number { return this.trainableParams().reduce((n, t) => n + t.numel, 0); }
  stateTensors(): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    for (const [n, m] of this.modules) {
      out.set(`${n}.lora_A.weight`, m.a);
      out.set(`${n}.lora_B.weight`, m.b);
      if (m.bBias) out.set(`${n}.lora_B.bias`, m.bBias);
    }
    return out;
  }
  stateMeta(): Record<string, unknown> { return {}; }
  baseTensorNames(): string[] { return [...this.modules.keys()].map((n) => `${n}.weight`); }

  /**
   * sqrt(Σ‖(α/r)·(BA − B₀A₀)‖_F²) over modules (the LoRA bias, a bias change, is not part of ΔW);
   * `initial` holds [A₀, B₀(, b_B₀)] per module, in trainableParams() order.
   */
  weightDeltaNorm(initial: Tensor[]): number {
    let at = 0;
    return deltaNorm([...this.modules.values()].map((m) => {
      const [a0, b0] = [initial[at], initial[at + 1]];
      at += m.bBias ? 3 : 2;
      return () => m.b.matmul(m.a).sub(b0.matmul(a0)).mul(m.scaling);
    }));
  }

  merge(): void { this.merger.merge(); }
  unmerge(): void { this.merger.unmerge(); }
  remove(): void {
    this.unmerge();
    for (const [name, m] of this.modules) { this.model.linears.set(name, m.base); for (const t of [m.a, m.b, m.bBias]) t?.dispose(); }
    this.modules.clear();
  }
}

function patternOption(method: string, raw: MethodConfig, key: string, ok: (v: number) => boolean, expected: string): Record<string, number> {
  const v = raw[key] ?? {};
  if (typeof v !== "object" || v === null || Array.isArray(v) || !Object.values(v).every((x) => typeof x === "number" && ok(x))) {
    throw new PeftConfigError(method, `${key} must map module-name patterns to ${expected}, got ${JSON.stringify(v)}`);
  }
  return v as Record<string, number>;
}

function boolOption(method: string, raw: MethodConfig, key: string): boolean {
  const v = raw[key] ?? false;
  if (typeof v !== "boolean") throw new PeftConfigError(method, `${key} must be true or false, got ${JSON.stringify(v)}`);
  return v;
}

/** The raw options resolveLoraOptions reads. */
export const LORA_OPTIONS = ["targetModules", "r", "alpha", "dropout", "useRslora", "rankPattern", "alphaPattern", "loraBias", "seed"] as const;

export function resolveLoraOptions(method: string, raw: MethodConfig, shapes: ModelShapes): MethodConfig {
  const patterns = parseTargets(method, raw.targetModules, shapes);
  const config = {
    targetModules: patterns,
    targets: matchTargets(method, patterns, shapes.linears.keys()),
    r: intOption(method, raw, "r", 8),
    alpha: numberOption(method, raw, "alpha", 16, (v) => v > 0, "a positive number"),
    dropout: numberOption(method, raw, "dropout", 0, (v) => v >= 0 && v < 1, "in [0, 1)"),
    useRslora: boolOption(method, raw, "useRslora"),
    rankPattern: patternOption(method, raw, "rankPattern", (v) => Number.isSafeInteger(v) && v >= 1, "integers ≥ 1"),
    alphaPattern: patternOption(method, raw, "alphaPattern", (v) => v > 0, "positive numbers"),
    loraBias: boolOption(method, raw, "loraBias"),
    seed: seedOption(method, raw),
  };
  for (const t of config.targets) {
    const { r } = loraModuleShape(config, t);
    checkRank(method, r === config.r ? "r" : "rankPattern", r, t, shapes);
  }
  return config;
}

export const lora: MethodDefinition = {
  name: NAME,
  summary: "low-rank update (α/r)·B·A on target linears (paper: r=8, α=16 on q,v)",
  options: LORA_OPTIONS,
  resolveConfig: (raw, shapes) => resolveLoraOptions(NAME, raw, shapes),
  count(config, shapes) {
    return (config.targets as string[]).reduce((n, t) => {
      const [o, i] = shapes.linears.get(t)!;
      return n + loraModuleShape(config, t).r * (o + i) + (config.loraBias ? o : 0);
    }, 0);
  },
  apply: (model, config) => new LoraInstance(config, model),
  load(model, config, tensors) {
    const weights = new Map<string, Tensor>();
    for (const t of config.targets as string[]) {
      for (const k of [`${t}.lora_A.weight`, `${t}.lora_B.weight`, ...(config.loraBias ? [`${t}.lora_B.bias`] : [])]) {
        const v = tensors.get(k);
        if (!v) throw new Error(`${NAME}: adapter has no tensor '${k}'`);
        weights.set(k, v.to("float32"));
      }
    }
    return new LoraInstance(config, model, weights);
  },
};
