// Reading a Hugging Face folder's weights into a family's parameter map:
// key renaming (prefixes real uploads omit), dtype conversion, Conv1D
// transposition to [out, in], head tying, and one shape check against config.json.
import { type DType, type Tensor, keep, noGrad, ones, randn, tidy, manualSeed, zeros } from "../engine/index.js";
import { loadCheckpoint } from "../io/checkpoint.js";
import type { ModelConfig } from "./causal-lm.js";

/** Refuses dtypes the CPU build cannot compute in, before any weight is read. */
export function checkComputeDtype(dtype: DType, dir: string): void {
  if (dtype === "float16") {
    throw new Error(`${dir}: cannot load in float16 on the CPU: libtorch 1.13's CPU kernels have no float16 layer norm or matmul; ` +
      "load in float32 or bfloat16 (float16 checkpoints are converted at load)");
  }
}

export interface WeightSpec {
  /** Hugging Face name → our name (null drops it, e.g. GPT-2's stored causal-mask buffers). */
  rename: (key: string) => string | null;
  /** Tensors stored [in, out] (Conv1D) to transpose to [out, in]. */
  transposed?: (name: string) => boolean;
  /** Name of the input embedding the head is tied to. */
  embedKey: string;
  expected: Map<string, number[]>;
}

export function loadWeights(dir: string, config: ModelConfig, dtype: DType, spec: WeightSpec): Map<string, Tensor> {
  checkComputeDtype(dtype, dir);
  const raw = loadCheckpoint(dir);
  const params = new Map<string, Tensor>();
  try {
    for (const [key, t] of raw) {
      const name = spec.rename(key);
      if (name === null) { t.dispose(); continue; }
      if (params.has(name)) throw new Error(`${dir}: tensors '${key}' and another key both name '${name}'`);
      let out = t;
      if (t.dtype !== dtype || spec.transposed?.(name)) {
        out = keep(noGrad(() => tidy(() => {
          const c = t.dtype === dtype ? t : t.to(dtype);
          return spec.transposed?.(name) ? c.transpose(0, 1).contiguous() : c;
        })));
        t.dispose();
      }
      params.set(name, out);
    }
    if (config.tieWordEmbeddings || !params.has("lm_head.weight")) {
      params.get("lm_head.weight")?.dispose();
      const embed = params.get(spec.embedKey);
      if (embed && config.tieWordEmbeddings) params.set("lm_head.weight", embed);
      else params.delete("lm_head.weight");
    }
    checkShapes(dir, config, params, spec.expected);
  } catch (e) {
    for (const t of new Set([...raw.values(), ...params.values()])) if (!t.isDisposed) t.dispose();
    throw e;
  }
  return params;
}

function checkShapes(dir: string, config: ModelConfig, params: Map<string, Tensor>, expected: Map<string, number[]>): void {
  const missing = [...expected.keys()].filter((k) => !params.has(k));
  if (missing.length) throw new Error(`${dir}: checkpoint lacks ${missing.length} tensor(s) the config needs: ${missing.slice(0, 5).join(", ")}${missing.length > 5 ? ", …" : ""}`);
  const unexpected = [...params.keys()].filter((k) => !expected.has(k));
  if (unexpected.length) throw new Error(`${dir}: checkpoint has tensor(s) a ${config.architecture} with this config does not: ${unexpected.slice(0, 5).join(", ")}`);
  for (const [k, shape] of expected) {
    const got = params.get(k)!.shape;
    if (got.join() !== shape.join()) throw new Error(`${dir}: tensor '${k}' has shape [${got}] but config.json implies [${shape}]`);
  }
}

/**
 * Random weights in the expected shapes: norms' weights 1, biases 0, the rest
 * N(0, std²); the head tied when the config says so.
 */
export function randomWeights(config: ModelConfig, expected: Map<string, number[]>, embedKey: string,
  opts: { seed?: number; dtype?: DType; std?: number }): Map<string, Tensor> {
  manualSeed(opts.seed ?? 0);
  const dtype = opts.dtype ?? "float32";
  const std = opts.std ?? 0.02;
  const params = new Map<string, Tensor>();
  noGrad(() => tidy(() => {
    for (const [name, shape] of expected) {
      if (name === "lm_head.weight" && config.tieWordEmbeddings) continue;
      let t: Tensor;
      if (/(norm|ln_\w+|ln_f)\.weight$/.test(name)) t = ones(shape, dtype);
      else if (name.endsWith(".bias")) t = zeros(shape, dtype);
      else {
        t = randn(shape).mul_(std);
        if (dtype !== "float32") t = t.to(dtype);
      }
      params.set(name, keep(t));
    }
  }));
  if (config.tieWordEmbeddings) params.set("lm_head.weight", params.get(embedKey)!);
  return params;
}
