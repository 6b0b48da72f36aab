// The paper's "trainable ratio": trainable values ÷ ALL parameters of the base
// model, spread over the target matrices in proportion to their sizes.
import { PeftConfigError, type MethodConfig } from "./method.js";
import type { ModelShapes } from "./shapes.js";
import type { ModelConfig } from "../models/causal-lm.js";
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

/** Row ranges [start, end) of each target the mask draws from (absent: all rows); kept in the method config. */
export type MaskRows = Record<string, [number, number][]>;

/** The maskable region of a target as a [rows, cols] matrix (its allowed rows stacked). */
export function regionShape(config: MethodConfig, shapes: ModelShapes, target: string): [number, number] {
  const [out, inF] = shapes.linears.get(target)!;
  const ranges = (config.maskRows as MaskRows | undefined)?.[target];
  return [ranges ? ranges.reduce((n, [a, b]) => n + b - a, 0) : out, inF];
}

/** Flat indices in the region → flat indices in the full [out, in] weight (sorted stays sorted). */
export function regionToWeight(config: MethodConfig, target: string, cols: number, indices: number[]): number[] {
  const ranges = (config.maskRows as MaskRows | undefined)?.[target];
  if (!ranges) return indices;
  return indices.map((i) => {
    let row = Math.floor(i / cols);
    for (const [a, b] of ranges) {
      if (row < b - a) return (a + row) * cols + (i % cols);
      row -= b - a;
    }
    throw new Error(`index ${i} lies outside the mask region of '${target}'`);
  });
}

/**
 * Per-matrix density p and the total trainable values aimed at. Throws a
 * PeftConfigError naming the option (and its flag) when that total rounds to
 * zero, with the smallest value that gives one trainable value.
 */
export function densityFor(method: string, spec: DensitySpec & { maskRows?: unknown }, shapes: ModelShapes, targets: string[]): { p: number; total: number } {
  const targetSize = targets.reduce((n, t) => { const [r, c] = regionShape(spec as MethodConfig, shapes, t); return n + r * c; }, 0);
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

/** The raw options both masking methods read (resolveMaskOptions). */
export const MASK_OPTIONS = ["trainableRatio", "density", "targetModules", "seed"] as const;

/** The options both masking methods share: targets, ratio or density, seed. */
export function resolveMaskOptions(method: string, raw: MethodConfig, shapes: ModelShapes): MethodConfig {
  const seed = seedOption(method, raw);
  const patterns = parseTargets(method, raw.targetModules, shapes);
  const targets = matchTargets(method, patterns, shapes.linears.keys());
  const spec = parseDensitySpec(method, raw);
  // the family's default targets may name only part of a fused matrix (GPT-2's c_attn: its q and v rows)
  const maskRows: MaskRows = {};
  if (raw.targetModules === undefined && shapes.family.maskRows) {
    for (const t of targets) { const r = shapes.family.maskRows(shapes.config as ModelConfig, t); if (r) maskRows[t] = r; }
  }
  const rows = Object.keys(maskRows).length ? { maskRows } : {};
  const { p } = densityFor(method, { ...spec, ...rows }, shapes, targets);
  return { targetModules: patterns, targets, ...rows, ...spec, densityPerMatrix: p, seed };
}
