// Declarative command-line flags: a command declares each flag once (name,
// type, default, description) and both the parser and the --help text come
// from that one definition, so they cannot drift apart. Parsing checks every
// value (numbers, choices, existing folders) before a command reads or writes
// anything else.
import { existsSync, statSync } from "node:fs";
import { parseArgs } from "node:util";

/** Bad command-line usage: exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

export interface FlagDef {
  /**
   * string; boolean (a switch); number / integer (checked by `check`); list
   * (comma-separated); dir (a folder that must exist); file (a file that must exist).
   */
  type: "string" | "boolean" | "number" | "integer" | "list" | "dir" | "file";
  description: string;
  default?: string | number | boolean;
  /** How the default reads in --help when it is not a plain value (e.g. "--seed"). */
  defaultText?: string;
  required?: boolean;
  /** Placeholder in --help, e.g. DIR, N, STR. */
  arg?: string;
  choices?: readonly string[];
  /** numbers: the allowed values, and how to say so in the error. */
  check?: (v: number) => boolean;
  expected?: string;
  /** string flags that may be given several times (--stop a --stop b). */
  multiple?: boolean;
  /** Section of --help (default "flags"). */
  group?: string;
}

export type Flags = Record<string, FlagDef>;

type ValueOf<D extends FlagDef> = D["type"] extends "boolean" ? boolean
  : D["type"] extends "number" | "integer" ? number
  : D["type"] extends "list" ? string[]
  : D extends { multiple: true } ? string[]
  : string;

/** Parsed values: flags with a default, required flags, switches and repeatable flags are always present. */
export type FlagValues<F extends Flags> = {
  [K in keyof F]: F[K] extends { default: unknown } | { required: true } | { type: "boolean" } | { multiple: true }
    ? ValueOf<F[K]> : ValueOf<F[K]> | undefined;
};

export interface CommandDef<F extends Flags = Flags> {
  name: string;
  /** One line: what the command does and writes. */
  summary: string;
  flags: F;
  /** One complete example command line (without the leading "randmask"). */
  example: string;
  /** Usage line override, for commands with alternatives (e.g. --prompt | --file). */
  usage?: string;
  /** Words among the flags (e.g. `sweep run FILE`), in order; optional ones last. */
  positionals?: readonly PositionalDef[];
  /** Returns the exit code when it is not 0 (an interrupted run: 128 + the signal's number, as shells report it). */
  run(values: FlagValues<F>, positionals: string[]): void | number | Promise<void | number>;
}

export interface PositionalDef {
  /** Placeholder in --help, e.g. ACTION, FILE. */
  name: string;
  description: string;
  choices?: readonly string[];
  optional?: boolean;
}

/** The exit code of a run stopped by a signal (checkpoint written, resumable): 128 + its number, as a shell reports it. */
export function signalExitCode(signal: string): number {
  return signal === "SIGTERM" ? 143 : 130;
}

/** Types a command's values from its own flag definitions. */
export function defineCommand<F extends Flags>(c: CommandDef<F>): CommandDef<F> { return c; }

export const positiveInt = (v: number) => Number.isSafeInteger(v) && v > 0;
export const nonNegInt = (v: number) => Number.isSafeInteger(v) && v >= 0;

/** The flag's value as --help shows it; choices inline when short. */
function placeholder(d: FlagDef): string {
  if (d.type === "boolean") return "";
  if (d.arg) return d.arg;
  if (d.choices && d.choices.join("|").length <= 24) return d.choices.join("|");
  if (d.choices) return "NAME";
  return d.type === "dir" ? "DIR" : d.type === "file" ? "FILE" : d.type === "integer" ? "N" : d.type === "number" ? "X" : d.type === "list" ? "A,B" : "STR";
}

/** Description, the choices when the placeholder does not show them, and the default. */
function describe(d: FlagDef): string {
  const choices = d.choices && placeholder(d) !== d.choices.join("|") ? `; one of ${d.choices.join(", ")}` : "";
  const dflt = d.required ? " (required)" : d.defaultText !== undefined ? ` (default: ${d.defaultText})`
    : d.default !== undefined && d.type !== "boolean" ? ` (default: ${d.default})` : d.multiple ? " (repeatable)" : "";
  return `${d.description}${choices}${dflt}`;
}

const HEAD_WIDTH = 30;

/** The --help text: usage, summary, flags by group with defaults, one example. */
export function helpText(c: CommandDef): string {
  const entries = Object.entries(c.flags);
  const positionals = c.positionals ?? [];
  const usage = c.usage ?? [
    `randmask ${c.name}`,
    ...positionals.map((p) => (p.optional ? `[${p.name}]` : p.name)),
    ...entries.filter(([, d]) => d.required).map(([n, d]) => `--${n} ${placeholder(d)}`),
    ...(entries.some(([, d]) => !d.required) ? ["[flags]"] : []),
  ].join(" ");
  const line = (head: string, text: string) =>
    head.length < HEAD_WIDTH ? `  ${head.padEnd(HEAD_WIDTH)}${text}` : `  ${head}\n  ${" ".repeat(HEAD_WIDTH)}${text}`;
  const groups = new Map<string, string[]>([["flags", []]]);
  for (const [n, d] of entries) {
    const group = d.group ?? "flags";
    if (!groups.has(group)) groups.set(group, []);
    groups.get(group)!.push(line(`--${n} ${placeholder(d)}`.trimEnd(), describe(d)));
  }
  groups.get("flags")!.push(line("--help, -h", "this text"));
  let text = `usage: ${usage}\n\n${c.summary}\n`;
  if (positionals.length) {
    text += `\narguments:\n${positionals.map((p) => line(p.name, `${p.description}${p.choices ? `: ${p.choices.join(", ")}` : ""}`)).join("\n")}\n`;
  }
  for (const [g, lines] of groups) text += `\n${g}:\n${lines.join("\n")}\n`;
  return `${text}\nexample:\n  randmask ${c.example}\n`;
}

/** Whether the arguments ask for help (a --help or -h option anywhere, not as another flag's value). */
export function wantsHelp(argv: string[], c: CommandDef): boolean {
  const { tokens } = parseArgs({ args: argv, options: optionTypes(c), strict: false, allowPositionals: true, tokens: true });
  return tokens.some((t) => t.kind === "option" && (t.name === "help" || t.name === "h"));
}

/** The option types node's parser needs to tell a flag's value from a word (every value flag takes one string). */
function optionTypes(c: CommandDef): Record<string, { type: "boolean" | "string" }> {
  return Object.fromEntries(Object.entries(c.flags).map(([n, d]) => [n, { type: d.type === "boolean" ? "boolean" as const : "string" as const }]));
}

/**
 * The words a command declares (`positionals`, e.g. `sweep run FILE`), checked, and the flags around them:
 * the words may stand before, between or after the flags (a flag's value is never taken for one). Words
 * beyond those declared stay in `rest`, for parseCommand to refuse.
 */
export function splitPositionals(c: CommandDef, argv: string[]): { positionals: string[]; rest: string[] } {
  const defs = c.positionals ?? [];
  if (defs.length === 0) return { positionals: [], rest: argv };
  const { tokens } = parseArgs({ args: argv, options: optionTypes(c), strict: false, allowPositionals: true, tokens: true });
  const at = tokens.filter((t) => t.kind === "positional").slice(0, defs.length).map((t) => t.index);
  const words = at.map((i) => argv[i]);
  defs.forEach((p, k) => {
    const word = words[k];
    if (word === undefined && !p.optional) throw new UsageError(`expected ${p.name}${p.choices ? ` (${p.choices.join(", ")})` : ""} (randmask ${c.name} --help)`);
    if (word !== undefined && p.choices && !p.choices.includes(word)) throw new UsageError(`${p.name} ${JSON.stringify(word)}: expected one of ${p.choices.join(", ")}`);
  });
  return { positionals: words, rest: argv.filter((_, i) => !at.includes(i)) };
}

/**
 * `--flag -1` → `--flag=-1` for flags that take a value: node's parser reads a
 * value starting with "-" as an option ("argument is ambiguous"), which hides
 * the real check of the value.
 */
function joinNegativeValues(c: CommandDef, argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const name = /^--([^=]+)$/.exec(argv[i])?.[1];
    const d = name === undefined ? undefined : c.flags[name];
    if (d && d.type !== "boolean" && i + 1 < argv.length && /^-\d|^-\.\d/.test(argv[i + 1])) out.push(`${argv[i]}=${argv[++i]}`);
    else out.push(argv[i]);
  }
  return out;
}

/**
 * Parses and checks argv (flags only) against the command's flags; every fault is a UsageError naming the flag,
 * including a flag that takes one value given twice (which value was meant is not ours to guess).
 */
export function parseCommand<F extends Flags>(c: CommandDef<F>, argv: string[]): FlagValues<F> {
  // every value flag is collected as a list, so a repeated one can be refused
  const options = Object.fromEntries(Object.entries(c.flags).map(([n, d]) =>
    [n, { type: d.type === "boolean" ? "boolean" as const : "string" as const, multiple: d.type !== "boolean" }]));
  let raw: Record<string, string | boolean | (string | boolean)[] | undefined>;
  try {
    raw = parseArgs({ args: joinNegativeValues(c, argv), options, strict: true, allowPositionals: false }).values;
  } catch (e) {
    // node's last line says how to give a value starting with "-" (--prompt=-h); its first says what is wrong
    const lines = (e as Error).message.split("\n");
    const how = /ambiguous/.test(lines[0]) ? ` ${lines[lines.length - 1]}` : "";
    // a word beyond a command's declared ones: "does not take positional arguments" would be untrue of `sweep`
    const extra = /^Unexpected argument '(.*)'/s.exec(lines[0]);
    if (extra && c.positionals?.length) {
      throw new UsageError(`unexpected argument ${JSON.stringify(extra[1])}: randmask ${c.name} takes ${c.positionals.map((p) => (p.optional ? `[${p.name}]` : p.name)).join(" ")} and flags`);
    }
    throw new UsageError(`${lines[0]}${how} (randmask ${c.name} --help lists the flags)`);
  }
  const out: Record<string, unknown> = {};
  for (const [name, d] of Object.entries(c.flags)) {
    const v = raw[name];
    if (v === undefined) {
      if (d.required) throw new UsageError(`--${name} is required: ${d.description}`);
      out[name] = d.type === "boolean" ? false : d.multiple ? [] : d.default;
      continue;
    }
    if (d.multiple) { out[name] = (v as string[]).map((s) => checkValue(name, d, s)); continue; }
    if (Array.isArray(v) && v.length > 1) {
      // a list flag (--data a,b) given once per item, as many tools take it: say how to give several
      const several = d.type === "list" || d.arg?.includes(",") ? ` (several: one comma-separated list, --${name} ${v.join(",")})` : "";
      throw new UsageError(`--${name} given ${v.length} times (${v.map((x) => JSON.stringify(x)).join(", ")}); it takes one value${several}`);
    }
    out[name] = checkValue(name, d, Array.isArray(v) ? v[0] : v);
  }
  return out as FlagValues<F>;
}

function checkValue(name: string, d: FlagDef, v: string | boolean): unknown {
  if (typeof v === "boolean") return v;
  const bad = (expected: string) => new UsageError(`--${name} ${JSON.stringify(v)}: expected ${expected}`);
  if (v.trim() === "" && d.type !== "string") throw bad(d.expected ?? "a value");
  if (d.choices && !d.choices.includes(v)) throw bad(`one of ${d.choices.join(", ")}`);
  switch (d.type) {
    case "number":
    case "integer": {
      const n = decimalNumber(v);
      const ok = Number.isFinite(n) && (d.type === "number" || Number.isSafeInteger(n)) && (d.check?.(n) ?? true);
      if (!ok) throw bad(d.expected ?? (d.type === "integer" ? "an integer" : "a number"));
      return n;
    }
    case "list":
      return v.split(",").map((s) => s.trim()).filter(Boolean);
    case "dir":
      if (!existsSync(v)) throw new UsageError(`--${name} ${v}: folder does not exist`);
      if (!statSync(v).isDirectory()) throw new UsageError(`--${name} ${v}: is a file, expected a folder`);
      return v;
    case "file":
      if (!existsSync(v)) throw new UsageError(`--${name} ${v}: file does not exist`);
      if (statSync(v).isDirectory()) throw new UsageError(`--${name} ${v}: is a folder, expected a file`);
      return v;
    default:
      return v;
  }
}

/** A number written in decimal (1e-3 and .5 too), or NaN: Number() would also take 0x10, 0b11, 0o7 and Infinity. */
export function decimalNumber(v: string): number {
  return /^\s*[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?\s*$/i.test(v) ? Number(v) : NaN;
}

/** A JSON-valued flag, checked by `check`. */
export function jsonValue<T>(name: string, v: string | undefined, check: (x: unknown) => x is T, expected: string): T | undefined {
  if (v === undefined) return undefined;
  let parsed: unknown;
  try { parsed = JSON.parse(v); } catch {
    throw new UsageError(`--${name}: not valid JSON (expected ${expected})`);
  }
  if (!check(parsed)) throw new UsageError(`--${name}: expected ${expected}`);
  return parsed;
}

export function isIntMatrix(v: unknown): v is number[][] {
  return Array.isArray(v) && v.length > 0 && v.every((r) => Array.isArray(r) && r.length > 0 && r.every((x) => Number.isInteger(x))) &&
    (v as number[][]).every((r) => r.length === (v as number[][])[0].length);
}
