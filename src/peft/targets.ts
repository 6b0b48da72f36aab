// Resolving `targetModules` patterns to linear-module names, Hugging Face PEFT
// style: a pattern matches a module whose name equals it or ends with
// ".<pattern>"; a pattern starting with "re:" is a regular expression on the full name.
// Without targetModules, a method targets its family's "attention q and v"
// (OPT, Llama: q_proj, v_proj; GPT-2: the fused c_attn).
import { PeftConfigError } from "./method.js";
import type { ModelShapes } from "./shapes.js";

export function parseTargets(method: string, raw: unknown, shapes: ModelShapes): string[] {
  if (raw === undefined) return [...shapes.family.defaultTargets];
  const list = typeof raw === "string" ? raw.split(",").map((s) => s.trim()).filter(Boolean) : raw;
  if (!Array.isArray(list) || list.length === 0 || !list.every((s) => typeof s === "string" && s.length > 0)) {
    throw new PeftConfigError(method, `targetModules must be a non-empty list of module-name patterns, got ${JSON.stringify(raw)}`);
  }
  return list as string[];
}

export function matchTargets(method: string, patterns: string[], moduleNames: Iterable<string>): string[] {
  const names = [...moduleNames];
  const matched = new Set<string>();
  for (const p of patterns) {
    const re = p.startsWith("re:") ? new RegExp(p.slice(3)) : null;
    const hits = names.filter((n) => (re ? re.test(n) : n === p || n.endsWith(`.${p}`)));
    if (hits.length === 0) {
      throw new PeftConfigError(method, `target pattern '${p}' matches no linear module (modules look like ${names[0] ?? "?"})`);
    }
    hits.forEach((h) => matched.add(h));
  }
  return names.filter((n) => matched.has(n));
}
