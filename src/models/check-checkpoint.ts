// A causal LM's stored tensors against its config.json, from the checkpoint's
// headers alone (no tensor data read): the names the family's loader accepts
// (wrapper prefix present or not, GPT-2's causal-mask buffers, a tied head
// stored or not) and the shapes config.json implies (GPT-2's Conv1D stored
// [in, out]). `randmask convert` runs it before it writes anything.
import { checkpointTensors } from "../io/checkpoint.js";
import type { ModelConfig } from "./causal-lm.js";
import { familyOf } from "./registry.js";

/** Prefixes the families' loaders add to keys saved from the base model (src/io/state-dict-keys.ts). */
const PREFIXES = ["model.", "transformer."];

/**
 * Throws an Error naming the file and the tensor for the first stored tensor whose shape
 * differs from what `config` implies, or that such a model does not have, and naming the
 * folder and the tensors for those the config needs that no file holds.
 */
export function checkCheckpointShapes(dir: string, config: ModelConfig): void {
  const family = familyOf(config);
  const expected = family.expectedShapes(config);
  const seen = new Map<string, string>();
  for (const t of checkpointTensors(dir)) {
    if (family.name === "gpt2" && /(^|\.)attn\.(bias|masked_bias)$/.test(t.name)) continue; // buffers the loader drops
    const name = expected.has(t.name) ? t.name : PREFIXES.map((p) => p + t.name).find((n) => expected.has(n));
    if (name === undefined) throw new Error(`${t.file}: tensor '${t.name}' is not a parameter of a ${config.architecture} with this config.json`);
    if (seen.has(name)) throw new Error(`${t.file}: tensor '${t.name}' gives '${name}' a second time (also in ${seen.get(name)})`);
    seen.set(name, t.file);
    const module = name.replace(/\.weight$/, "");
    const want = family.isConv1D?.(module) && name.endsWith(".weight") ? [...expected.get(name)!].reverse() : expected.get(name)!;
    if (t.shape.join() !== want.join()) {
      throw new Error(`${t.file}: tensor '${t.name}' has shape [${t.shape}] but config.json implies [${want}]`);
    }
  }
  // a head tied to the embedding may be left out (OPT's loader ties a missing one in any case)
  const optional = (k: string) => k === "lm_head.weight" && (config.tieWordEmbeddings || family.name === "opt");
  const missing = [...expected.keys()].filter((k) => !seen.has(k) && !optional(k));
  if (missing.length) {
    throw new Error(`${dir}: the checkpoint lacks ${missing.length} tensor(s) config.json needs: ${missing.slice(0, 5).join(", ")}${missing.length > 5 ? ", …" : ""}`);
  }
}
