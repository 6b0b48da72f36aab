// Command-line flag parsing with errors that name the flag and what was expected.
import { parseArgs } from "node:util";

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

export type FlagSpec = Record<string, { type: "string" | "boolean"; default?: string | boolean; multiple?: boolean }>;

export function parseFlags(argv: string[], spec: FlagSpec): Record<string, string | boolean | string[] | undefined> {
  try {
    return parseArgs({ args: argv, options: spec, allowPositionals: false, strict: true }).values as Record<string, string | boolean | undefined>;
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

export function requireString(flags: Record<string, unknown>, name: string): string {
  const v = flags[name];
  if (typeof v !== "string" || v === "") throw new UsageError(`--${name} is required`);
  return v;
}

export function numberFlag(flags: Record<string, unknown>, name: string, dflt: number,
  check: (v: number) => boolean = Number.isFinite, expected = "a number"): number {
  const v = flags[name];
  if (v === undefined) return dflt;
  const n = Number(v);
  if (typeof v !== "string" || v.trim() === "" || !check(n)) throw new UsageError(`--${name} ${JSON.stringify(v)}: expected ${expected}`);
  return n;
}

export function jsonFlag<T>(flags: Record<string, unknown>, name: string, check: (v: unknown) => v is T, expected: string): T | undefined {
  const v = flags[name];
  if (v === undefined) return undefined;
  let parsed: unknown;
  try { parsed = JSON.parse(String(v)); } catch {
    throw new UsageError(`--${name}: not valid JSON (expected ${expected})`);
  }
  if (!check(parsed)) throw new UsageError(`--${name}: expected ${expected}`);
  return parsed;
}

export function isIntMatrix(v: unknown): v is number[][] {
  return Array.isArray(v) && v.length > 0 && v.every((r) => Array.isArray(r) && r.length > 0 && r.every((x) => Number.isInteger(x))) &&
    (v as number[][]).every((r) => r.length === (v as number[][])[0].length);
}
