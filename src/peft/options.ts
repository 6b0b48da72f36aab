// Small validators for method options, with errors naming the option.
import { PeftConfigError } from "./method.js";

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
