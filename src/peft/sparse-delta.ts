// The module shared by the masking methods: a frozen base Linear plus a sparse
// delta S (sorted flat indices + trainable fp32 values, zero at start), run
// through the engine's sparse-delta kernel so the gradient is an SDDMM.
import { Tensor, tensor, zeros, sparseDeltaLinear } from "../engine/index.js";
import { Linear } from "../models/causal-lm.js";
import type { BaseModel } from "./base-model.js";
import { DeltaMerger, type DeltaModule } from "./merge.js";
import { changeNorm } from "./delta-norm.js";
import type { PeftInstance, MethodConfig } from "./method.js";

export class SparseDeltaModule implements DeltaModule {
  constructor(readonly base: Linear, readonly indices: Tensor, readonly values: Tensor) {}
  /** W + S, the sum formed in float32. */
  mergedWeight(): Tensor {
    const w = this.base.weight;
    return w.reshape([-1]).to("float32").indexAdd(0, this.indices, this.values).reshape(w.shape).to(w.dtype);
  }
  forward(x: Tensor): Tensor {
    const w = this.base.weight;
    const v = this.values.dtype === w.dtype ? this.values : this.values.to(w.dtype);
    return sparseDeltaLinear(x, w, this.base.bias, this.indices, v);
  }
}

/** Attaches sparse deltas to the named linears; `indexLists` are sorted flat indices per module. */
export class SparseDeltaInstance implements PeftInstance {
  private readonly modules = new Map<string, SparseDeltaModule>();
  private readonly merger: DeltaMerger;

  constructor(readonly method: string, readonly config: MethodConfig, private readonly model: BaseModel,
    indexLists: Map<string, number[]>, private readonly meta: Record<string, unknown>, values?: Map<string, Tensor>) {
    for (const [name, idx] of indexLists) {
      const base = model.linears.get(name);
      if (!(base instanceof Linear)) throw new Error(`${method}: module '${name}' is not a plain linear layer (another method attached?)`);
      const v = values?.get(name) ?? zeros([idx.length], "float32");
      if (v.numel !== idx.length) throw new Error(`${method}: saved values for '${name}' hold ${v.numel} entries, the mask has ${idx.length}`);
      v.setRequiresGrad(true);
      const module = new SparseDeltaModule(base, tensor(idx, [idx.length], "int64"), v);
      this.modules.set(name, module);
      model.linears.set(name, module);
    }
    this.merger = new DeltaMerger(model, this.modules);
  }

  trainableParams(): Tensor[] { return [...this.modules.values()].map((m) => m.values); }
  trainableCount(): number { return [...this.modules.values()].reduce((n, m) => n + m.values.numel, 0); }
  stateTensors(): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    for (const [name, m] of this.modules) out.set(`${name}.values`, m.values);
    return out;
  }
  /** Indices too, for adapters saved with --store-indices. */
  indexTensors(): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    for (const [name, m] of this.modules) out.set(`${name}.indices`, m.indices);
    return out;
  }
  stateMeta(): Record<string, unknown> { return this.meta; }
  baseTensorNames(): string[] { return [...this.modules.keys()].map((n) => `${n}.weight`); }

  /** ‖S − S₀‖: the indices are distinct, so the dense delta's norm is that of the values' change. */
  weightDeltaNorm(initial: Tensor[]): number { return changeNorm(this.trainableParams(), initial); }

  merge(): void { this.merger.merge(); }
  unmerge(): void { this.merger.unmerge(); }

  remove(): void {
    this.unmerge();
    for (const [name, m] of this.modules) {
      this.model.linears.set(name, m.base);
      m.indices.dispose();
      m.values.dispose();
    }
    this.modules.clear();
  }
}
