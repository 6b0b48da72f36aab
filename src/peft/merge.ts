// Merging a weight-delta method into the base: each target's Linear gets a
// merged copy of its weight (and bias, where the method changes it; the
// originals are kept, so unmerge restores them bitwise) and the method's
// module steps aside until unmerge.
import { Tensor, keep, noGrad, tidy } from "../engine/index.js";
import type { Linear, LinearModule } from "../models/causal-lm.js";
import type { BaseModel } from "./base-model.js";

export interface DeltaModule extends LinearModule {
  readonly base: Linear;
  /** W + ΔW, computed in float32 and rounded once to the base weight's dtype. */
  mergedWeight(): Tensor;
  /** b + Δb for methods that change the bias (LoRA's lora_bias); null or absent otherwise. */
  mergedBias?(): Tensor | null;
}

export class DeltaMerger {
  private originals = new Map<string, { weight: Tensor; bias: Tensor | null }>();

  constructor(private readonly model: BaseModel, private readonly modules: Map<string, DeltaModule>) {}

  merge(): void {
    if (this.originals.size) return;
    noGrad(() => {
      for (const [name, m] of this.modules) {
        const mergedBias = tidy(() => m.mergedBias?.() ?? null);
        const bias = mergedBias && keep(mergedBias);
        this.originals.set(name, { weight: m.base.weight, bias: bias && m.base.bias });
        this.model.linears.set(name, m.base);
        this.model.setParam(`${name}.weight`, keep(tidy(() => m.mergedWeight())));
        if (bias) this.model.setParam(`${name}.bias`, bias);
      }
    });
  }

  unmerge(): void {
    for (const [name, m] of this.modules) {
      const orig = this.originals.get(name);
      if (!orig) continue;
      for (const [suffix, t] of [["weight", orig.weight], ["bias", orig.bias]] as const) {
        if (!t) continue;
        const merged = this.model.params.get(`${name}.${suffix}`)!;
        this.model.setParam(`${name}.${suffix}`, t);
        merged.dispose();
      }
      this.model.linears.set(name, m);
    }
    this.originals = new Map();
  }
}
