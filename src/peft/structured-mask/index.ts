// Structured Masking (the paper's ablation): the trainable entries of each
// target matrix are whole columns — a contiguous block of ⌈k/out⌉ columns at
// a seeded random start, the last column partly masked when k is not a
// multiple of the column height. Same ratio semantics as random-mask (exact counts).
import type { Tensor } from "../../engine/index.js";
import type { BaseModel } from "../base-model.js";
import type { MethodConfig, MethodDefinition } from "../method.js";
import { MASK_OPTIONS, densityFor, regionShape, regionToWeight, resolveMaskOptions } from "../ratio.js";
import { modelShapes, type ModelShapes } from "../shapes.js";
import { SparseDeltaInstance } from "../sparse-delta.js";
import { Xoshiro128 } from "../rng.js";
import { apportion, indexChecksum } from "../random-mask/mask.js";

const NAME = "structured-mask";

function columnBlocks(config: MethodConfig, shapes: ModelShapes): Map<string, number[]> {
  const targets = config.targets as string[];
  const { total } = densityFor(NAME, config as { trainableRatio?: number; density?: number }, shapes, targets);
  const counts = apportion(total, targets.map((t) => { const [r, c] = regionShape(config, shapes, t); return r * c; }));
  const out = new Map<string, number[]>();
  targets.forEach((t, i) => {
    const [rows, cols] = regionShape(config, shapes, t);
    const k = counts[i];
    const width = Math.ceil(k / rows);
    const start = width >= cols ? 0 : new Xoshiro128(config.seed as number, t).below(cols - width + 1);
    const idx: number[] = [];
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < width; c++) {
        // column c of the block is full, except the last one, which holds the first k - (width-1)·rows rows
        if (c < width - 1 || r < k - (width - 1) * rows) idx.push(r * cols + start + c);
      }
    }
    out.set(t, regionToWeight(config, t, cols, idx));
  });
  return out;
}

export const structuredMask: MethodDefinition = {
  name: NAME,
  summary: "whole columns of each target matrix train (a contiguous block per matrix)",
  options: MASK_OPTIONS,

  resolveConfig: (raw: MethodConfig, shapes: ModelShapes): MethodConfig => resolveMaskOptions(NAME, raw, shapes),

  count(config: MethodConfig, shapes: ModelShapes): number {
    return [...columnBlocks(config, shapes).values()].reduce((n, l) => n + l.length, 0);
  },

  apply(model: BaseModel, config: MethodConfig) {
    const masks = columnBlocks(config, modelShapes(model));
    return new SparseDeltaInstance(NAME, config, model, masks, { maskChecksum: indexChecksum(masks) });
  },

  load(model: BaseModel, config: MethodConfig, tensors: Map<string, Tensor>) {
    const masks = columnBlocks(config, modelShapes(model));
    const values = new Map<string, Tensor>();
    for (const t of config.targets as string[]) {
      const v = tensors.get(`${t}.values`);
      if (!v) throw new Error(`${NAME}: adapter has no values for '${t}'`);
      values.set(t, v.to("float32"));
    }
    return new SparseDeltaInstance(NAME, config, model, masks, { maskChecksum: indexChecksum(masks) }, values);
  },
};
