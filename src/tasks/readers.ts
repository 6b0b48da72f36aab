// Reading dataset files with errors that name file:line.
import { existsSync, statSync } from "node:fs";
import { readTextFile } from "../io/text-file.js";
import { DataError } from "./types.js";

/**
 * A data file's text, without the byte-order mark Windows editors put first (else line 1 would not parse); bytes
 * that are not UTF-8 (a Latin-1 export) are an error naming the line, not examples with U+FFFD in them.
 */
export function requireFile(path: string): string {
  if (!existsSync(path)) throw new DataError(path, "data file not found");
  if (!statSync(path).isFile()) throw new DataError(path, "is a folder, expected a data file");
  return readTextFile(path);
}

/** Rows of a JSON-lines file, each passed to `row` with its file:line for errors. */
export function readJsonl<T>(path: string, row: (obj: Record<string, unknown>, where: string) => T | T[]): T[] {
  const out: T[] = [];
  requireFile(path).split(/\r?\n/).forEach((line, i) => {
    if (line.trim() === "") return;
    const where = `${path}:${i + 1}`;
    let obj: unknown;
    try { obj = JSON.parse(line); } catch (e) {
      throw new DataError(where, `not valid JSON (${(e as Error).message})`);
    }
    if (obj === null || typeof obj !== "object" || Array.isArray(obj)) throw new DataError(where, "expected a JSON object");
    const r = row(obj as Record<string, unknown>, where);
    if (Array.isArray(r)) out.push(...r); else out.push(r);
  });
  return out;
}

export function str(obj: Record<string, unknown>, key: string, where: string): string {
  const v = obj[key];
  if (typeof v !== "string") throw new DataError(where, `field "${key}" must be a string, got ${JSON.stringify(v)}`);
  return v;
}

export function field<T>(obj: Record<string, unknown>, key: string, where: string, ok: (v: unknown) => v is T, expected: string): T {
  const v = obj[key];
  if (!ok(v)) throw new DataError(where, `field "${key}" must be ${expected}, got ${JSON.stringify(v)?.slice(0, 80)}`);
  return v;
}

export { isObject } from "../io/json-value.js";
export const isArray = (v: unknown): v is unknown[] => Array.isArray(v);
export const isInt = (v: unknown): v is number => Number.isInteger(v);

/** A label from a fixed vocabulary of names (or booleans / integers in range). */
export function labelOf(obj: Record<string, unknown>, where: string, names: (string | boolean | number)[]): number {
  const v = obj.label;
  const i = names.indexOf(v as string);
  if (i < 0) throw new DataError(where, `label ${JSON.stringify(v)} is not one of ${JSON.stringify(names)}`);
  return i;
}
