// What PEFT methods need to know of a model's shapes, from its config alone:
// counting trainable values for any size needs no weights.
import type { OPTConfig } from "../models/config.js";
import { expectedShapes, linearNames } from "../models/opt.js";

export interface ModelShapes {
  config: OPTConfig;
  /** Every parameter's shape by Hugging Face name (lm_head.weight excluded when tied). */
  params: Map<string, number[]>;
  /** Linear modules by name: [out, in]. */
  linears: Map<string, [number, number]>;
  /** Total parameter count (tied weights once): the denominator of the paper's ratio. */
  totalParams: number;
}

export function shapesOf(config: OPTConfig): ModelShapes {
  const params = expectedShapes(config);
  if (config.tieWordEmbeddings) params.delete("lm_head.weight");
  const linears = new Map<string, [number, number]>();
  for (const name of linearNames(config)) {
    const s = params.get(`${name}.weight`)!;
    linears.set(name, [s[0], s[1]]);
  }
  let total = 0;
  for (const s of params.values()) total += s.reduce((a, b) => a * b, 1);
  return { config, params, linears, totalParams: total };
}
