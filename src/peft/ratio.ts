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

/**
 * Per-matrix density p and the total trainable values aimed at. Throws a
 * PeftConfigError naming the option (and its flag) when that total rounds to
 * zero, with the smallest value that gives one trainable value.
 */
export function densityFor(method: string, spec: DensitySpec, shapes: ModelShapes, targets: string[]): { p: number; total: number } {
  const targetSize = targets.reduce((n, t) => n + shapes.linears.get(t)![0] * shapes.linears.get(t)![1], 0);
  const byRatio = spec.density === undefined;
  const raw = byRatio ? spec.trainableRatio! * shapes.totalParams : spec.density! * targetSize;
  if (Math.round(raw) === 0) throw zeroValues(method, spec, byRatio ? shapes.totalParams : targetSize);
  if (!byRatio) return { p: spec.density!, total: Math.round(raw) };
  const p = raw / targetSize;
  if (p > 1) {
    throw new PeftConfigError(method, `trainableRatio ${spec.trainableRatio} asks for ${Math.round(raw)} values but the targets hold only ${targetSize}`);
  }
  return { p, total: Math.round(raw) };
}

/** The error for a ratio or density that trains nothing; `of` is what it is a fraction of. */
export function zeroValues(method: string, spec: DensitySpec, of: number, drawn = false): PeftConfigError {
  const [what, flag, v] = spec.density === undefined ? ["trainableRatio", "--trainable-ratio", spec.trainableRatio!] : ["density", "--density", spec.density];
  // 0.5 / of rounds to one value; shown rounded up to three digits so that it does
  const step = 10 ** (Math.floor(Math.log10(0.5 / of)) - 2);
  const smallest = Number((Math.ceil(0.5 / of / step) * step).toPrecision(3));
  return new PeftConfigError(method, `${what} (${flag}) ${v} gives 0 trainable values ` +
    `(${v} × ${of.toLocaleString("en-US")} ${spec.density === undefined ? "parameters" : "target entries"}` +
    `${drawn ? ", and this seed's Bernoulli mask drew none" : ` = ${(v * of).toPrecision(3)}`}); ` +
    `the smallest ${what} that gives one value is ${smallest}${drawn ? " in expectation (--mask-kind exact gives exactly that many)" : ""}`);
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
