// `randmask convert`: any weights folder randmask reads (safetensors or PyTorch
// .bin, single or sharded) → a Hugging Face safetensors folder. It works on the
// checkpoint level (tensors as stored, config.json, tokenizer files), so it
// converts every model family alike. The output appears whole or not at all:
// it is written into a temp folder beside --out and renamed into place.
import { existsSync, readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { copySideFiles } from "../io/side-files.js";
import { type DType, DTYPE_BYTES, FLOATING_DTYPES, type Tensor, noGrad } from "../engine/index.js";
import { writeFolderAtomically, writeJsonAtomic } from "../io/atomic.js";
import { checkpointFiles, dominantFloatingDtype, loadCheckpoint } from "../io/checkpoint.js";
import { readConfigJson } from "../models/config-fields.js";
import { saveFile, saveSharded } from "../io/safetensors.js";
import { UsageError, defineCommand } from "./args.js";
import { MODEL_FLAG, checkOutputFolder } from "./shared-flags.js";
import { checkCheckpointShapes } from "../models/check-checkpoint.js";
import { SUPPORTED_MODEL_TYPES, parseModelConfig } from "../models/registry.js";
import { isVisionModelType } from "../models/vision/config.js";
import { loadVisionModel } from "../models/vision/index.js";

const DTYPES: Record<string, DType> = { fp32: "float32", bf16: "bfloat16", fp16: "float16" };
/** "2GB" → 2e9 bytes, "500MiB" → 500·2²⁰, "1000" → 1000 (transformers' convert_file_size_to_int units). */
export function parseShardSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KIB|MIB|GIB|TIB)?$/i.exec(text.trim());
  const scale: Record<string, number> = { B: 1, KB: 1e3, MB: 1e6, GB: 1e9, TB: 1e12, KIB: 2 ** 10, MIB: 2 ** 20, GIB: 2 ** 30, TIB: 2 ** 40 };
  const bytes = m ? Math.floor(Number(m[1]) * scale[(m[2] ?? "B").toUpperCase()]) : NaN;
  if (!(bytes >= 1)) throw new UsageError(`--max-shard-size ${JSON.stringify(text)}: expected a size such as 2GB, 500MB or 1GiB`);
  return bytes;
}

export const convertCommand = defineCommand({
  name: "convert",
  summary: "Convert any weights folder randmask reads (safetensors or PyTorch .bin, single or sharded) into a Hugging Face " +
    "safetensors folder (config, weights sharded above the limit with an index, tokenizer files); the output appears whole or not at all.",
  flags: {
    model: MODEL_FLAG,
    out: { type: "string", required: true, arg: "DIR", description: "folder to create (must be absent or empty)" },
    dtype: { type: "string", choices: Object.keys(DTYPES), defaultText: "as stored", description: "cast floating-point tensors to this dtype" },
    "max-shard-size": { type: "string", arg: "SIZE", default: "2GB", description: "largest shard (transformers' units: 2GB, 500MB, 1GiB)" },
  },
  example: "convert --model ~/opt-125m-bin --out ~/opt-125m --dtype bf16",
  run(v) {
    checkOutputFolder("out", v.out, "the converted model", { empty: true, beside: true });
    convert(v.model, resolve(v.out), v.dtype === undefined ? undefined : DTYPES[v.dtype], parseShardSize(v["max-shard-size"]));
  },
});

function convert(modelDir: string, out: string, dtype: DType | undefined, maxShardBytes: number): void {
  const configFile = join(modelDir, "config.json");
  if (!existsSync(configFile)) throw new Error(`${modelDir}: no config.json (expected a Hugging Face model folder)`);
  const config = readConfigJson(configFile);
  const { format } = checkpointFiles(modelDir);
  checkAgainstConfig(modelDir, config, configFile);

  // the whole input is read and validated before anything is written
  const tensors = loadCheckpoint(modelDir);
  const owned = new Set(tensors.values());
  try {
    if (dtype) castFloating(tensors, dtype, owned);
    const total = [...tensors.values()].reduce((n, t) => n + t.numel * DTYPE_BYTES[t.dtype], 0);
    writeFolderAtomically(out, (tmp) => {
      if (total <= maxShardBytes) saveFile(join(tmp, "model.safetensors"), tensors, { format: "pt" });
      else saveSharded(tmp, tensors, maxShardBytes, { format: "pt" });
      // transformers' torch_dtype="auto" loads in this field's dtype: it says what the written weights are
      const stored = dominantFloatingDtype(tensors.values());
      writeJsonAtomic(join(tmp, "config.json"), stored ? { ...config, torch_dtype: stored, ...("dtype" in config ? { dtype: stored } : {}) } : config);
      copySideFiles(modelDir, tmp);
    });
    const files = readdirSync(out).filter((f) => f.endsWith(".safetensors")).length;
    process.stdout.write(`converted ${tensors.size} tensors (${format}) to ${out}: ${files} safetensors file(s), ` +
      `${(total / 2 ** 20).toFixed(1)} MiB${dtype ? `, ${dtype}` : ""}\n`);
  } finally {
    for (const t of owned) t.dispose();
  }
}

/**
 * The stored tensors' names and shapes against config.json, before anything is read or written:
 * causal LMs from the headers alone; vision towers (small) by loading them as `logits` would.
 * A model_type randmask does not run is converted unchecked, with a note.
 */
function checkAgainstConfig(dir: string, raw: Record<string, unknown>, configFile: string): void {
  if (isVisionModelType(raw.model_type)) { loadVisionModel(dir).dispose(); return; }
  if (typeof raw.model_type === "string" && !SUPPORTED_MODEL_TYPES.includes(raw.model_type)) {
    process.stderr.write(`randmask convert: note: ${configFile}: model_type ${JSON.stringify(raw.model_type)} is not one randmask runs; ` +
      "its tensors are converted as stored, unchecked against config.json\n");
    return;
  }
  checkCheckpointShapes(dir, parseModelConfig(raw, configFile));
}

/** Casts every floating tensor to `dtype` in place in the map, one at a time; a tensor stored under two names (tied) is cast once. */
function castFloating(tensors: Map<string, Tensor>, dtype: DType, owned: Set<Tensor>): void {
  const names = new Map<Tensor, string[]>();
  for (const [name, t] of tensors) names.set(t, [...(names.get(t) ?? []), name]);
  for (const [t, list] of names) {
    if (!FLOATING_DTYPES.includes(t.dtype) || t.dtype === dtype) continue;
    const c = noGrad(() => t.to(dtype));
    owned.add(c);
    for (const n of list) tensors.set(n, c);
    t.dispose();
    owned.delete(t);
  }
}
