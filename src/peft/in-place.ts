// Methods that train some of the model's own tensors in place (BitFit, full
// fine-tuning): those tensors get requires_grad; all others stay frozen.
import { Tensor, noGrad, keep } from "../engine/index.js";
import type { BaseModel } from "./base-model.js";
import type { MethodConfig, PeftInstance } from "./method.js";
import { changeNorm } from "./delta-norm.js";

export class InPlaceInstance implements PeftInstance {
  private readonly tensors = new Map<string, Tensor>();
  private readonly originals = new Map<string, Tensor>();

  /** `keepOriginals` saves copies so remove() can restore the base (cheap for biases, not for full FT). */
  constructor(readonly method: string, readonly config: MethodConfig, model: BaseModel, names: string[], keepOriginals: boolean,
    saved?: Map<string, Tensor>) {
    for (const name of names) {
      const t = model.params.get(name);
      if (!t) throw new Error(`${method}: model has no parameter '${name}'`);
      if ([...this.tensors.values()].includes(t)) continue; // tied weights train once
      if (keepOriginals) this.originals.set(name, keep(noGrad(() => t.clone())));
      if (saved) {
        const s = saved.get(name);
        if (!s) throw new Error(`${method}: adapter has no tensor '${name}'`);
        if (s.shape.join() !== t.shape.join()) throw new Error(`${method}: saved '${name}' has shape [${s.shape}], the model's is [${t.shape}]`);
        noGrad(() => t.copy_(s));
      }
      t.setRequiresGrad(true);
      this.tensors.set(name, t);
    }
  }

  trainableParams(): Tensor[] { return [...this.tensors.values()]; }
  trainableCount(): number { return this.trainableParams().reduce((n, t) => n + t.numel, 0); }
  stateTensors(): Map<string, Tensor> { return new Map(this.tensors); }
  stateMeta(): Record<string, unknown> { return {}; }
  baseTensorNames(): string[] { return [...this.tensors.keys()]; }
  /** ‖W − W₀‖ over the trained tensors: here the trainable tensors are the weights. */
  weightDeltaNorm(initial: Tensor[]): number { return changeNorm(this.trainableParams(), initial); }

  remove(): void {
    for (const [name, t] of this.tensors) {
      t.setRequiresGrad(false);
      t.clearGrad();
      const orig = this.originals.get(name);
      if (orig) { noGrad(() => t.copy_(orig)); orig.dispose(); }
    }
    this.tensors.clear();
    this.originals.clear();
  }
}
