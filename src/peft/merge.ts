// Merging a weight-delta method into the base: each target's Linear gets a
// merged copy of its weight (the original is kept, so unmerge restores it
// bitwise) and the method's module steps aside until unmerge.
import { Tensor, keep, noGrad, tidy } from "../engine/index.js";
import type { Linear, LinearModule, CausalLM } from "../models/causal-lm.js";

export interface DeltaModule extends LinearModule {
  readonly base: Linear;
  /** W + ΔW in the base weight's dtype. */
  mergedWeight(): Tensor;
}

export class DeltaMerger {
  private originals = new Map<string, Tensor>();

  constructor(private readonly model: CausalLM, private readonly modules: Map<string, DeltaModule>) {}

  merge(): void {
    if (this.originals.size) return;
    noGrad(() => {
      for (const [name, m] of this.modules) {
        this.originals.set(name, m.base.weight);
        this.model.linears.set(name, m.base);
        this.model.setParam(`${name}.weight`, keep(tidy(() => m.mergedWeight())));
      }
    });
  }

  unmerge(): void {
    for (const [name, m] of this.modules) {
      const orig = this.originals.get(name);
      if (!orig) continue;
      const mergedW = this.model.params.get(`${name}.weight`)!;
      this.model.setParam(`${name}.weight`, orig);
      mergedW.dispose();
      this.model.linears.set(name, m);
    }
    this.originals = new Map();
  }
}
