// LoRA (Hu et al. 2021): ΔW = (α/r)·B·A on target linears; A Kaiming-uniform,
// B zero (Hugging Face PEFT's init), so the model starts unchanged.
import { Tensor, linear, dropout, zeros } from "../../engine/index.js";
import { Linear, type CausalLM } from "../../models/causal-lm.js";
import { DeltaMerger, type DeltaModule } from "../merge.js";
import type { MethodConfig, MethodDefinition, PeftInstance } from "../method.js";
import type { ModelShapes } from "../shapes.js";
import { matchTargets, parseTargets } from "../targets.js";
import { kaimingUniform } from "../init.js";
import { intOption, numberOption, seedOption } from "../options.js";

const NAME = "lora";

export class LoraModule implements DeltaModule {
  constructor(readonly base: Linear, readonly a: Tensor, readonly b: Tensor, readonly scaling: number,
    readonly dropoutP: number, private readonly model: CausalLM) {}
  forward(x: Tensor): Tensor {
    const dt = this.base.weight.dtype;
    const h = dropout(x, this.dropoutP, this.model.training);
    const a = this.a.dtype === dt ? this.a : this.a.to(dt);
    const b = this.b.dtype === dt ? this.b : this.b.to(dt);
    return this.base.forward(x).add(linear(linear(h, a), b), this.scaling);
  }
  /** W + (α/r)·B·A in the base weight's dtype. */
  mergedWeight(): Tensor { return this.base.weight.add(this.b.matmul(this.a).mul(this.scaling).to(this.base.weight.dtype)); }
}

export class LoraInstance implements PeftInstance {
  readonly method = NAME;
  readonly modules = new Map<string, LoraModule>();
  private readonly merger: DeltaMerger;

  constructor(readonly config: MethodConfig, private readonly model: CausalLM, weights?: Map<string, Tensor>) {
    const r = config.r as number;
    const scaling = (config.alpha as number) / r;
    for (const name of config.targets as string[]) {
      const base = model.linears.get(name);
      if (!(base instanceof Linear)) throw new Error(`${NAME}: module '${name}' is not a plain linear layer (another method attached?)`);
      const [out, inF] = base.weight.shape;
      const a = weights?.get(`${name}.lora_A.weight`) ?? kaimingUniform([r, inF], config.seed as number, `${name}.lora_A`);
      const b = weights?.get(`${name}.lora_B.weight`) ?? zeros([out, r], "float32");
      if (a.shape.join() !== [r, inF].join() || b.shape.join() !== [out, r].join()) {
        throw new Error(`${NAME}: saved weights for '${name}' have shapes [${a.shape}] and [${b.shape}], expected [${r},${inF}] and [${out},${r}]`);
      }
      a.setRequiresGrad(true);
      b.setRequiresGrad(true);
      const m = new LoraModule(base, a, b, scaling, config.dropout as number, model);
      this.modules.set(name, m);
      model.linears.set(name, m);
    }
    this.merger = new DeltaMerger(model, this.modules);
  }

  trainableParams(): Tensor[] { return [...this.modules.values()].flatMap((m) => [m.a, m.b]); }
  trainableCount(): number { return this.trainableParams().reduce((n, t) => n + t.numel, 0); }
  stateTensors(): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    for (const [n, m] of this.modules) { out.set(`${n}.lora_A.weight`, m.a); out.set(`${n}.lora_B.weight`, m.b); }
    return out;
  }
  stateMeta(): Record<string, unknown> { return {}; }
  baseTensorNames(): string[] { return [...this.modules.keys()].map((n) => `${n}.weight`); }

  merge(): void { this.merger.merge(); }
  unmerge(): void { this.merger.unmerge(); }
  remove(): void {
    this.unmerge();
    for (const [name, m] of this.modules) { this.model.linears.set(name, m.base); m.a.dispose(); m.b.dispose(); }
    this.modules.clear();
  }
}

export function resolveLoraOptions(method: string, raw: MethodConfig, shapes: ModelShapes): MethodConfig {
  const patterns = parseTargets(method, raw.targetModules, shapes);
  return {
    targetModules: patterns,
    targets: matchTargets(method, patterns, shapes.linears.keys()),
    r: intOption(method, raw, "r", 8),
    alpha: numberOption(method, raw, "alpha", 16, (v) => v > 0, "a positive number"),
    dropout: numberOption(method, raw, "dropout", 0, (v) => v >= 0 && v < 1, "in [0, 1)"),
    seed: seedOption(method, raw),
  };
}

export const lora: MethodDefinition = {
  name: NAME,
  summary: "low-rank update (α/r)·B·A on target linears (paper: r=8, α=16 on q,v)",
  resolveConfig: (raw, shapes) => resolveLoraOptions(NAME, raw, shapes),
  count(config, shapes) {
    const r = config.r as number;
    return (config.targets as string[]).reduce((n, t) => { const [o, i] = shapes.linears.get(t)!; return n + r * (o + i); }, 0);
  },
  apply: (model, config) => new LoraInstance(config, model),
  load(model, config, tensors) {
    const weights = new Map<string, Tensor>();
    for (const t of config.targets as string[]) {
      for (const k of [`${t}.lora_A.weight`, `${t}.lora_B.weight`]) {
        const v = tensors.get(k);
        if (!v) throw new Error(`${NAME}: adapter has no tensor '${k}'`);
        weights.set(k, v.to("float32"));
      }
    }
    return new LoraInstance(config, model, weights);
  },
};
