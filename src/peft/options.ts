// Small validators for method options, with errors naming the option.
import { PeftConfigError } from "./method.js";
import type { ModelShapes } from "./shapes.js";

export function intOption(method: string, raw: Record<string, unknown>, key: string, dflt: number, min = 1): number {
  const v = raw[key] ?? dflt;
  if (!Number.isSafeInteger(v) || (v as number) < min) throw new PeftConfigError(method, `${key} must be an integer ≥ ${min}, got ${JSON.stringify(v)}`);
  return v as number;
}

export function numberOption(method: string, raw: Record<string, unknown>, key: string, dflt: number, ok: (v: number) => boolean, expected: string): number {
  const v = raw[key] ?? dflt;
  if (typeof v !== "number" || !ok(v)) throw new PeftConfigError(method, `${key} must be ${expected}, got ${JSON.stringify(v)}`);
  return v;
}

export function seedOption(method: string, raw: Record<string, unknown>): number {
  return intOption(method, raw, "seed", 0, 0);
}

/**
 * Refuses a rank above min(out, in) of a target [out, in]: B·A could not exceed that rank anyway,
 * so the extra rows only add parameters (and the paper's Params column would overstate the method).
 */
export function checkRank(method: string, key: string, r: number, target: string, shapes: ModelShapes): void {
  const [out, inF] = shapes.linears.get(target)!;
  if (r > Math.min(out, inF)) {
    throw new PeftConfigError(method, `${key} ${r} exceeds min(out, in) = ${Math.min(out, inF)} of '${target}' [${out}×${inF}]`);
  }
}
