// Random Masking (Xu & Zhang, ICML 2024): a fixed random sparse subset of each
// target matrix trains; everything else is frozen.
import type { Tensor } from "../../engine/index.js";
import type { BaseModel } from "../base-model.js";
import { type MethodConfig, type MethodDefinition, PeftConfigError } from "../method.js";
import { MASK_OPTIONS, densityFor, regionShape, regionToWeight, resolveMaskOptions, zeroValues } from "../ratio.js";
import { modelShapes, type ModelShapes } from "../shapes.js";
import { SparseDeltaInstance } from "../sparse-delta.js";
import { Xoshiro128 } from "../rng.js";
import { apportion, bernoulliIndices, exactIndices, indexChecksum, type MaskKind } from "./mask.js";

const NAME = "random-mask";

function drawMasks(config: MethodConfig, shapes: ModelShapes): Map<string, number[]> {
  const targets = config.targets as string[];
  const { p, total } = densityFor(NAME, config as { trainableRatio?: number; density?: number }, shapes, targets);
  const regions = targets.map((t) => regionShape(config, shapes, t));
  const sizes = regions.map(([r, c]) => r * c);
  const counts = config.maskKind === "exact" ? apportion(total, sizes) : [];
  const out = new Map<string, number[]>();
  targets.forEach((t, i) => {
    const rng = new Xoshiro128(config.seed as number, t);
    const idx = config.maskKind === "exact" ? exactIndices(sizes[i], counts[i], rng) : bernoulliIndices(sizes[i], p, rng);
    out.set(t, regionToWeight(config, t, regions[i][1], idx));
  });
  // a Bernoulli mask aiming at a few values can draw none: training nothing is an error, not a run
  if ([...out.values()].every((l) => l.length === 0)) {
    const spec = config as { trainableRatio?: number; density?: number };
    throw zeroValues(NAME, spec, spec.density === undefined ? shapes.totalParams : sizes.reduce((a, b) => a + b, 0), true);
  }
  return out;
}

export const randomMask: MethodDefinition = {
  name: NAME,
  summary: "a fixed random subset of each target matrix trains (sparse delta, SDDMM gradient)",
  options: [...MASK_OPTIONS, "maskKind"],

  resolveConfig(raw: MethodConfig, shapes: ModelShapes): MethodConfig {
    const maskKind = (raw.maskKind ?? "bernoulli") as MaskKind;
    if (maskKind !== "bernoulli" && maskKind !== "exact") throw new PeftConfigError(NAME, `maskKind must be bernoulli or exact, got ${JSON.stringify(raw.maskKind)}`);
    return { ...resolveMaskOptions(NAME, raw, shapes), maskKind };
  },

  count(config: MethodConfig, shapes: ModelShapes): number {
    return [...drawMasks(config, shapes).values()].reduce((n, l) => n + l.length, 0);
  },

  apply(model: BaseModel, config: MethodConfig) {
    const masks = drawMasks(config, modelShapes(model));
    return new SparseDeltaInstance(NAME, config, model, masks, { maskChecksum: indexChecksum(masks) });
  },

  load(model: BaseModel, config: MethodConfig, tensors: Map<string, Tensor>, meta: Record<string, unknown>) {
    const masks = drawMasks(config, modelShapes(model));
    const checksum = indexChecksum(masks);
    if (meta.maskChecksum !== undefined && meta.maskChecksum !== checksum) {
      throw new Error(`${NAME}: regenerated mask checksum ${checksum} differs from the adapter's ${String(meta.maskChecksum)} ` +
        "(different seed, shapes or generator version?)");
    }
    const values = new Map<string, Tensor>();
    for (const t of config.targets as string[]) {
      const v = tensors.get(`${t}.values`);
      if (!v) throw new Error(`${NAME}: adapter has no values for '${t}'`);
      values.set(t, v.to("float32"));
      const stored = tensors.get(`${t}.indices`);
      if (stored && stored.toNumbers().join() !== masks.get(t)!.join()) throw new Error(`${NAME}: stored indices for '${t}' differ from the regenerated mask`);
    }
    return new SparseDeltaInstance(NAME, config, model, masks, { maskChecksum: checksum }, values);
  },
};
