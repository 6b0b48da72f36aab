// What PEFT methods need to know of a model's shapes, from its config alone:
// counting trainable values for any size needs no weights. Family-generic:
// each family says its parameters, linears and default targets.
import type { ModelConfig, ModelFamily } from "../models/causal-lm.js";
import { familyOf } from "../models/registry.js";

export interface ModelShapes {
  config: ModelConfig;
  family: ModelFamily;
  /** Every parameter's shape by Hugging Face name, linears [out, in] (lm_head.weight excluded when tied). */
  params: Map<string, number[]>;
  /** Linear modules by name: [out, in]. */
  linears: Map<string, [number, number]>;
  /** Total parameter count (tied weights once): the denominator of the paper's ratio. */
  totalParams: number;
}

export function shapesOf(config: ModelConfig): ModelShapes {
  const family = familyOf(config);
  const params = family.expectedShapes(config);
  if (config.tieWordEmbeddings) params.delete("lm_head.weight");
  const linears = new Map<string, [number, number]>();
  for (const name of family.linearNames(config)) {
    const s = params.get(`${name}.weight`)!;
    linears.set(name, [s[0], s[1]]);
  }
  let total = 0;
  for (const s of params.values()) total += s.reduce((a, b) => a * b, 1);
  return { config, family, params, linears, totalParams: total };
}
