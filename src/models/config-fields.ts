// Reading config.json fields with one error per bad field, naming the file.
import { readFileSync } from "node:fs";
import type { DType } from "../engine/index.js";

export class ConfigError extends Error {
  constructor(file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = "ConfigError";
  }
}

const TORCH_DTYPES: Record<string, DType> = { float32: "float32", float16: "float16", bfloat16: "bfloat16", float64: "float64" };

export function readConfigJson(file: string): Record<string, unknown> {
  let text: string;
  try { text = readFileSync(file, "utf8"); } catch (e) {
    throw new ConfigError(file, `cannot read: ${(e as Error).message}`);
  }
  let raw: unknown;
  try { raw = JSON.parse(text); } catch (e) {
    throw new ConfigError(file, `not valid JSON (${(e as Error).message})`);
  }
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) throw new ConfigError(file, "not a JSON object");
  return raw as Record<string, unknown>;
}

/** Typed getters over a raw config; each throws a ConfigError naming the field. */
export function configReader(raw: Record<string, unknown>, file: string) {
  const int = (key: string, dflt?: number): number => {
    const v = raw[key] ?? dflt;
    if (v === undefined) throw new ConfigError(file, `missing required field "${key}" (an integer)`);
    if (!Number.isInteger(v) || (v as number) < 0) throw new ConfigError(file, `"${key}" must be a non-negative integer, got ${JSON.stringify(v)}`);
    return v as number;
  };
  return {
    /** A non-negative integer (token ids). */
    int,
    /** A positive integer: a size or count (hidden size, heads, layers, vocabulary, positions); 0 would build no model. */
    size(key: string, dflt?: number): number {
      const v = raw[key] ?? dflt;
      if (v === undefined) throw new ConfigError(file, `missing required field "${key}" (a positive integer)`);
      if (!Number.isInteger(v) || (v as number) <= 0) throw new ConfigError(file, `"${key}" must be a positive integer, got ${JSON.stringify(v)}`);
      return v as number;
    },
    /** An integer or null (absent → dflt); a list (several EOS ids) gives its first. */
    optInt(key: string, dflt: number | null): number | null {
      let v = key in raw ? raw[key] : dflt;
      if (Array.isArray(v)) v = v[0];
      if (v === null || v === undefined) return null;
      if (!Number.isInteger(v) || (v as number) < 0) throw new ConfigError(file, `"${key}" must be a non-negative integer or null, got ${JSON.stringify(raw[key])}`);
      return v as number;
    },
    prob(key: string, dflt: number): number {
      const v = raw[key] ?? dflt;
      if (typeof v !== "number" || !(v >= 0 && v < 1)) throw new ConfigError(file, `"${key}" must be a probability in [0, 1), got ${JSON.stringify(v)}`);
      return v;
    },
    positive(key: string, dflt: number): number {
      const v = raw[key] ?? dflt;
      if (typeof v !== "number" || !(v > 0) || !Number.isFinite(v)) throw new ConfigError(file, `"${key}" must be a positive number, got ${JSON.stringify(v)}`);
      return v;
    },
    bool(key: string, dflt: boolean): boolean {
      const v = raw[key] ?? dflt;
      if (typeof v !== "boolean") throw new ConfigError(file, `"${key}" must be true or false, got ${JSON.stringify(v)}`);
      return v;
    },
    /** torch_dtype (or transformers 5's dtype) of the stored weights. */
    dtype(): DType {
      const dt = raw.torch_dtype ?? raw.dtype ?? "float32";
      if (typeof dt !== "string" || !(dt in TORCH_DTYPES)) throw new ConfigError(file, `torch_dtype ${JSON.stringify(dt)} is not supported (float32, float16, bfloat16)`);
      return TORCH_DTYPES[dt];
    },
  };
}
