// AdaLoRA (Zhang et al. 2023), following Hugging Face PEFT's algorithm:
// ΔW = B·diag(E)·A·α/(r+1e-5) with A, B ~ N(0, 0.02) and E = 0; an
// orthogonality regulariser on A and B; and a rank budget that shrinks from
// initR to targetR per matrix (cubic schedule), keeping the triplets (rows of
// A, entries of E, columns of B) with the highest smoothed sensitivity
// |w·∂L/∂w| × its uncertainty.
import { Tensor, linear, dropout, tidy, noGrad, keep, zeros, randn, cat, eye, manualSeed } from "../../engine/index.js";
import { Linear } from "../../models/causal-lm.js";
import type { BaseModel } from "../base-model.js";
import { DeltaMerger, type DeltaModule } from "../merge.js";
import { deltaNorm } from "../delta-norm.js";
import type { MethodConfig, MethodDefinition, PeftInstance } from "../method.js";
import type { ModelShapes } from "../shapes.js";
import { matchTargets, parseTargets } from "../targets.js";
import { checkRank, intOption, numberOption, seedOption } from "../options.js";
import { PeftConfigError } from "../method.js";

const NAME = "adalora";

class AdaLoraModule implements DeltaModule {
  constructor(readonly base: Linear, readonly a: Tensor, readonly e: Tensor, readonly b: Tensor,
    readonly scaling: number, readonly dropoutP: number, private readonly model: BaseModel) {}
  get factor(): number { return this.scaling / (this.a.size(0) + 1e-5); }
  forward(x: Tensor): Tensor {
    const dt = this.base.weight.dtype;
    const c = (t: Tensor) => (t.dtype === dt ? t : t.to(dt));
    const h = dropout(x, this.dropoutP, this.model.training);
    return this.base.forward(x).add(linear(linear(h, c(this.a.mul(this.e))), c(this.b)), this.factor);
  }
  /** W + B·diag(E)·A·α/(r+1e-5), computed in float32 and rounded once to the base weight's dtype. */
  mergedWeight(): Tensor {
    const w = this.base.weight;
    return w.to("float32").add(this.b.matmul(this.a.mul(this.e)), this.factor).to(w.dtype);
  }
}

interface Sensitivity { ipt: Tensor; unc: Tensor }

class AdaLoraInstance implements PeftInstance {
  readonly method = NAME;
  readonly modules = new Map<string, AdaLoraModule>();
  private readonly scores = new Map<Tensor, Sensitivity>();
  private readonly merger: DeltaMerger;

  constructor(readonly config: MethodConfig, private readonly model: BaseModel, saved?: Map<string, Tensor>) {
    const r = config.initR as number;
    manualSeed(config.seed as number);
    for (const name of config.targets as string[]) {
      const base = model.linears.get(name);
      if (!(base instanceof Linear)) throw new Error(`${NAME}: module '${name}' is not a plain linear layer (another method attached?)`);
      const [out, inF] = base.weight.shape;
      const get = (suffix: string, fresh: () => Tensor) => {
        if (!saved) return fresh();
        const t = saved.get(`${name}.${suffix}`);
        if (!t) throw new Error(`${NAME}: adapter has no tensor '${name}.${suffix}'`);
        return t.to("float32");
      };
      const a = get("lora_A", () => keep(tidy(() => randn([r, inF]).mul(0.02))));
      const e = get("lora_E", () => zeros([r, 1]));
      const b = get("lora_B", () => keep(tidy(() => randn([out, r]).mul(0.02))));
      [a, e, b].forEach((t) => t.setRequiresGrad(true));
      const m = new AdaLoraModule(base, a, e, b, config.alpha as number, config.dropout as number, model);
      this.modules.set(name, m);
      model.linears.set(name, m);
    }
    this.merger = new DeltaMerger(model, this.modules);
  }

  trainableParams(): Tensor[] { return [...this.modules.values()].flatMap((m) => [m.a, m.e, m.b]); }
  trainableCount(): number { return this.trainableParams().reduce((n, t) => n + t.numel, 0); }
  stateTensors(): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    for (const [n, m] of this.modules) { out.set(`${n}.lora_A`, m.a); out.set(`${n}.lora_E`, m.e); out.set(`${n}.lora_B`, m.b); }
    return out;
  }
  /**
   * The ranks kept: non-zero entries of E per module. Masking happens on a
   * schedule, so the weights of an epoch before the final budget (the best
   * epoch, say) can hold more than targetR × modules.
   */
  stateMeta(): Record<string, unknown> {
    const ranks = Object.fromEntries([...this.modules].map(([n, m]) => [n, noGrad(() => tidy(() => m.e.ne(0).sum().item()))]));
    const total = Object.values(ranks).reduce((a, b) => a + b, 0);
    return { ranks_kept: ranks, total_rank: total, rank_budget: (this.config.targetR as number) * this.modules.size };
  }
  baseTensorNames(): string[] { return [...this.modules.keys()].map((n) => `${n}.weight`); }
  /** sqrt(Σ‖f·(B·diag(E)·A − B₀·diag(E₀)·A₀)‖_F²), f = α/(r+1e-5); `initial` is [A₀, E₀, B₀] per module. */
  weightDeltaNorm(initial: Tensor[]): number {
    return deltaNorm([...this.modules.values()].map((m, i) => () => {
      const [a0, e0, b0] = initial.slice(3 * i, 3 * i + 3);
      return m.b.matmul(m.a.mul(m.e)).sub(b0.matmul(a0.mul(e0))).mul(m.factor);
    }));
  }

  /** orthRegWeight · mean over A and B of ‖PPᵀ − I‖_F (P = A, or Bᵀ). */
  regularizationLoss(): Tensor | null {
    const w = this.config.orthRegWeight as number;
    if (w === 0 || this.modules.size === 0) return null;
    const terms: Tensor[] = [];
    for (const m of this.modules.values()) {
      for (const p of [m.a, m.b.transpose(0, 1)]) {
        const cov = p.matmul(p.transpose(0, 1));
        terms.push(cov.sub(eye(cov.size(0))).norm().reshape([1]));
      }
    }
    return cat(terms).mean().mul(w);
  }

  /** The rank budget at a step: [budget, whether to mask now]. */
  private schedule(step: number): [number, boolean] {
    const c = this.config;
    const n = this.modules.size;
    const initBudget = (c.initR as number) * n;
    const targetBudget = (c.targetR as number) * n;
    const total = c.totalSteps as number;
    const tinit = c.tinit as number;
    const tfinal = c.tfinal as number;
    if (step <= tinit) return [initBudget, false];
    if (step > total - tfinal) return [targetBudget, true];
    const mul = 1 - (step - tinit) / (total - tfinal - tinit);
    return [Math.floor((initBudget - targetBudget) * mul ** 3 + targetBudget), step % (c.deltaT as number) === 0];
  }

  afterOptimizerStep(step: number): void {
    noGrad(() => {
      if (step < (this.config.totalSteps as number) - (this.config.tfinal as number)) this.updateSensitivity();
      const [budget, mask] = this.schedule(step);
      if (mask) this.maskToBudget(budget);
    });
  }

  private updateSensitivity(): void {
    const b1 = this.config.beta1 as number;
    const b2 = this.config.beta2 as number;
    for (const p of this.trainableParams()) {
      tidy(() => {
        const g = p.grad;
        if (!g) return;
        const ipt = p.mul(g).abs();
        let s = this.scores.get(p);
        if (!s) { s = { ipt: keep(zeros(p.shape)), unc: keep(zeros(p.shape)) }; this.scores.set(p, s); }
        const newIpt = s.ipt.mul(b1).add(ipt, 1 - b1);
        const newUnc = s.unc.mul(b2).add(ipt.sub(newIpt).abs(), 1 - b2);
        s.ipt.copy_(newIpt);
        s.unc.copy_(newUnc);
      });
    }
  }

  private elementScore(p: Tensor): Tensor {
    const s = this.scores.get(p);
    return s ? s.ipt.mul(s.unc) : zeros(p.shape);
  }

  /** Zeroes the E entries of the lowest-scoring triplets so that `budget` remain. */
  private maskToBudget(budget: number): void {
    tidy(() => {
      const triplets = [...this.modules.values()].map((m) =>
        this.elementScore(m.e).reshape([-1])
          .add(this.elementScore(m.a).mean(1))
          .add(this.elementScore(m.b).mean(0)));
      const all = cat(triplets);
      const drop = all.numel - budget;
      if (drop <= 0) return;
      const [sorted] = all.sort(0);
      const threshold = sorted.select(0, drop - 1).item();
      [...this.modules.values()].forEach((m, i) => {
        m.e.copy_(m.e.maskedFill(triplets[i].le(threshold).reshape([-1, 1]), 0));
      });
    });
  }

  merge(): void { this.merger.merge(); }
  unmerge(): void { this.merger.unmerge(); }

  remove(): void {
    this.unmerge();
    for (const [name, m] of this.modules) { this.model.linears.set(name, m.base); [m.a, m.e, m.b].forEach((t) => t.dispose()); }
    for (const s of this.scores.values()) { s.ipt.dispose(); s.unc.dispose(); }
    this.modules.clear();
    this.scores.clear();
  }
}

export const adalora: MethodDefinition = {
  name: NAME,
  summary: "SVD-form LoRA with an importance-based rank budget (initR 12 → targetR 8)",
  options: ["targetModules", "initR", "targetR", "totalSteps", "tinit", "tfinal", "deltaT", "alpha", "dropout", "beta1", "beta2", "orthRegWeight", "seed"],
  resolveConfig(raw: MethodConfig, shapes: ModelShapes) {
    const patterns = parseTargets(NAME, raw.targetModules, shapes);
    const initR = intOption(NAME, raw, "initR", 12);
    const targetR = intOption(NAME, raw, "targetR", 8);
    if (targetR > initR) throw new PeftConfigError(NAME, `targetR ${targetR} exceeds initR ${initR}`);
    const totalSteps = intOption(NAME, raw, "totalSteps", 1000);
    const tinit = intOption(NAME, raw, "tinit", 0, 0);
    const tfinal = intOption(NAME, raw, "tfinal", 0, 0);
    if (tinit + tfinal >= totalSteps) throw new PeftConfigError(NAME, `tinit + tfinal (${tinit + tfinal}) must be below totalSteps (${totalSteps})`);
    const prob = (v: number) => v >= 0 && v < 1;
    const targets = matchTargets(NAME, patterns, shapes.linears.keys());
    for (const t of targets) checkRank(NAME, "initR", initR, t, shapes);
    return {
      targetModules: patterns, targets,
      initR, targetR, totalSteps, tinit, tfinal,
      deltaT: intOption(NAME, raw, "deltaT", 1),
      alpha: numberOption(NAME, raw, "alpha", 16, (v) => v > 0, "a positive number"),
      dropout: numberOption(NAME, raw, "dropout", 0, prob, "in [0, 1)"),
      beta1: numberOption(NAME, raw, "beta1", 0.85, prob, "in [0, 1)"),
      beta2: numberOption(NAME, raw, "beta2", 0.85, prob, "in [0, 1)"),
      orthRegWeight: numberOption(NAME, raw, "orthRegWeight", 0.5, (v) => v >= 0, "≥ 0"),
      seed: seedOption(NAME, raw),
    };
  },
  count(config, shapes) {
    const r = config.initR as number;
    return (config.targets as string[]).reduce((n, t) => { const [o, i] = shapes.linears.get(t)!; return n + r * (o + i + 1); }, 0);
  },
  apply: (model, config) => new AdaLoraInstance(config, model),
  load: (model, config, tensors) => new AdaLoraInstance(config, model, tensors),
};
