// Which modules a method adapts. randmask's own `targetModules` are patterns
// that match a module whose name equals them or ends with ".<pattern>"; a
// pattern starting with "re:" is a regular expression searched in the full
// name. Hugging Face PEFT configs use PEFT's rules (peftTargets below).
// Without targetModules, a method targets its family's "attention q and v"
// (OPT, Llama: q_proj, v_proj; GPT-2: the fused c_attn); vision towers default
// to their MLP (fc1, fc2: the paper's Table 2) and map Hugging Face's older
// ViT names (intermediate.dense, output.dense, query, value) to theirs.
import { PeftConfigError } from "./method.js";
import type { ModelShapes } from "./shapes.js";

export function parseTargets(method: string, raw: unknown, shapes: ModelShapes): string[] {
  if (raw === undefined) return [...shapes.family.defaultTargets];
  // a single "re:" pattern is one regular expression: its commas ({1,2}) do not split it
  const list = typeof raw === "string" ? (raw.startsWith("re:") ? [raw] : raw.split(",").map((s) => s.trim()).filter(Boolean)) : raw;
  if (!Array.isArray(list) || list.length === 0 || !list.every((s) => typeof s === "string" && s.length > 0)) {
    throw new PeftConfigError(method, `targetModules must be a non-empty list of module-name patterns, got ${JSON.stringify(raw)}`);
  }
  const aliases = shapes.family.targetAliases ?? {};
  return (list as string[]).map((p) => aliases[p] ?? p);
}

export function matchTargets(method: string, patterns: string[], moduleNames: Iterable<string>): string[] {
  const names = [...moduleNames];
  const matched = new Set<string>();
  for (const p of patterns) {
    const re = p.startsWith("re:") ? regExp(method, `targetModules pattern '${p}'`, p.slice(3)) : null;
    const hits = names.filter((n) => (re ? re.test(n) : n === p || n.endsWith(`.${p}`)));
    if (hits.length === 0) {
      throw new PeftConfigError(method, `targetModules pattern '${p}' matches no linear module (modules look like ${names[0] ?? "?"})`);
    }
    hits.forEach((h) => matched.add(h));
  }
  return names.filter((n) => matched.has(n));
}

/** `source` compiled; a pattern that is no regular expression is a PeftConfigError naming `what`, not a SyntaxError. */
function regExp(method: string, what: string, source: string): RegExp {
  try { return new RegExp(source); } catch (e) {
    throw new PeftConfigError(method, `${what} is not a valid regular expression (${(e as Error).message.replace(/^Invalid regular expression: /, "")})`);
  }
}

/** A Python regular expression (as PEFT configs hold them) compiled for JavaScript, anchored at both ends. */
function fullMatch(pattern: string): RegExp {
  return regExp("lora", `pattern ${JSON.stringify(pattern)}`, `^(?:${pattern})$`);
}

/**
 * PEFT's `get_pattern_key` (peft/utils/other.py): the first key of a
 * rank_pattern / alpha_pattern, in the file's order, that matches the end of
 * the module name at a dot boundary, as `re.match(rf"(.*\.)?({key})$", name)`.
 */
export function patternKey(keys: string[], moduleName: string): string | undefined {
  return keys.find((k) => regExp("lora", `rank_pattern / alpha_pattern key ${JSON.stringify(k)}`, `^(?:.*\\.)?(?:${k})$`).test(moduleName));
}

export interface PeftTargetSpec {
  /** A string is one regular expression over the full name (re.fullmatch); a list holds names or name suffixes. */
  target_modules: string | string[];
  layers_to_transform?: number | number[] | null;
  layers_pattern?: string | string[] | null;
  exclude_modules?: string | string[] | null;
  modules_to_save?: string[] | null;
}

/**
 * Module names a Hugging Face PEFT config targets, as PEFT 0.21's
 * `check_target_module_exists` decides (peft/tuners/tuners_utils.py):
 * - "all-linear": every linear layer but the output head, as a list of last name parts;
 * - a string: one regular expression that must match the whole module name;
 * - a list: exact names or ".<entry>" suffixes; entries that match nothing are fine;
 *   then `layers_to_transform` keeps modules whose layer index (the number after
 *   `.<layers_pattern>.`, or after any `.<name>.` without a pattern) is listed;
 * - `exclude_modules` (same string / list rules) and modules inside a
 *   `modules_to_save` entry are never targets.
 * `linears` are the modules randmask can adapt; `others` are modules PEFT could
 * target that randmask cannot (the output head, embeddings): matching one is an error.
 * Throws a PeftConfigError naming the field when nothing (or an unsupported module) matches.
 */
export function peftTargets(method: string, spec: PeftTargetSpec, linears: string[], others: string[]): string[] {
  let targets = spec.target_modules;
  if (typeof targets === "string" && targets.toLowerCase() === "all-linear") {
    targets = [...new Set(linears.map((n) => n.slice(n.lastIndexOf(".") + 1)))];
  }
  const excluded = (name: string): boolean => {
    const ex = spec.exclude_modules;
    if (ex && (typeof ex === "string" ? fullMatch(ex).test(name) : ex.some((e) => name === e || name.endsWith(`.${e}`)))) return true;
    return (spec.modules_to_save ?? []).some((m) => new RegExp(`^(?:.*\\.)?${m}(?:$|\\..*)`).test(name));
  };
  const layerIndexes = spec.layers_to_transform;
  const useLayers = layerIndexes !== null && layerIndexes !== undefined && !(Array.isArray(layerIndexes) && layerIndexes.length === 0);
  const patterns = spec.layers_pattern ? (typeof spec.layers_pattern === "string" ? [spec.layers_pattern] : spec.layers_pattern) : [];
  const layerIndex = (name: string): number | null => {
    const res = patterns.length ? patterns.map((p) => new RegExp(`^.*\\.${p}\\.(\\d+)\\.`)) : [/^.*\.[^.]*\.(\d+)\./];
    for (const re of res) { const m = re.exec(name); if (m) return Number(m[1]); }
    return null;
  };
  const matches = (name: string): boolean => {
    if (excluded(name)) return false;
    if (typeof targets === "string") return fullMatch(targets).test(name);
    if (targets.includes(name)) return true;
    if (!targets.some((t) => name.endsWith(`.${t}`))) return false;
    if (!useLayers) return true;
    const i = layerIndex(name);
    return i !== null && (typeof layerIndexes === "number" ? i === layerIndexes : (layerIndexes as number[]).includes(i));
  };
  const unsupported = others.filter(matches);
  if (unsupported.length) {
    throw new PeftConfigError(method, `target_modules ${JSON.stringify(spec.target_modules)} matches ${unsupported.join(", ")}, which randmask cannot adapt (linear layers inside the decoder only)`);
  }
  const hits = linears.filter(matches);
  if (hits.length === 0) {
    throw new PeftConfigError(method, `target_modules ${JSON.stringify(spec.target_modules)}` +
      `${useLayers ? ` with layers_to_transform ${JSON.stringify(layerIndexes)}` : ""} matches no module of this model (modules look like ${linears[0] ?? "?"})`);
  }
  return hits;
}
