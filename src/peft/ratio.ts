// The paper's "trainable ratio": trainable values ÷ ALL parameters of the base
// model, spread over the target matrices in proportion to their sizes.
import { PeftConfigError, type MethodConfig } from "./method.js";
import type { ModelShapes } from "./shapes.js";
import { matchTargets, parseTargets } from "./targets.js";
import { seedOption } from "./options.js";

export interface DensitySpec { trainableRatio?: number; density?: number }

export function parseDensitySpec(method: string, raw: Record<string, unknown>): DensitySpec {
  const { trainableRatio, density } = raw;
  if ((trainableRatio === undefined) === (density === undefined)) {
    throw new PeftConfigError(method, "give exactly one of trainableRatio (of the whole model) or density (per target matrix)");
  }
  const v = (trainableRatio ?? density) as number;
  const what = trainableRatio !== undefined ? "trainableRatio" : "density";
  if (typeof v !== "number" || !(v > 0 && v <= 1)) throw new PeftConfigError(method, `${what} must be in (0, 1], got ${JSON.stringify(v)}`);
  return trainableRatio !== undefined ? { trainableRatio: v } : { density: v };
}

/** Per-matrix density p and the total trainable values aimed at. */
export function densityFor(method: string, spec: DensitySpec, shapes: ModelShapes, targets: string[]): { p: number; total: number } {
  const targetSize = targets.reduce((n, t) => n + shapes.linears.get(t)![0] * shapes.linears.get(t)![1], 0);
  if (spec.density !== undefined) return { p: spec.density, total: Math.round(spec.density * targetSize) };
  const total = spec.trainableRatio! * shapes.totalParams;
  const p = total / targetSize;
  if (p > 1) {
    throw new PeftConfigError(method, `trainableRatio ${spec.trainableRatio} asks for ${Math.round(total)} values but the targets hold only ${targetSize}`);
  }
  return { p, total: Math.round(total) };
}

/** The options both masking methods share: targets, ratio or density, seed. */
export function resolveMaskOptions(method: string, raw: MethodConfig, shapes: ModelShapes): MethodConfig {
  const seed = seedOption(method, raw);
  const patterns = parseTargets(method, raw.targetModules);
  const targets = matchTargets(method, patterns, shapes.linears.keys());
  const spec = parseDensitySpec(method, raw);
  const { p } = densityFor(method, spec, shapes, targets);
  return { targetModules: patterns, targets, ...spec, densityPerMatrix: p, seed };
}
