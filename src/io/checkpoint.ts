// A model folder's weights, whatever form Hugging Face left them in:
// safetensors (single or sharded) first, else PyTorch `.bin` (single or sharded),
// read by the code-free pickle reader. Callers get one Map of tensors by name.
import { existsSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { FLOATING_DTYPES, type DType, type Tensor } from "../engine/index.js";
import { CheckpointError } from "./checkpoint-error.js";
import { SafetensorsError, loadFile, readHeader } from "./safetensors.js";
import { loadTorchFile, readTorchCheckpoint } from "./torch-checkpoint.js";

export type CheckpointFormat = "safetensors" | "pytorch";

const LAYOUTS: { format: CheckpointFormat; single: string; index: string; Err: typeof SafetensorsError | typeof CheckpointError }[] = [
  { format: "safetensors", single: "model.safetensors", index: "model.safetensors.index.json", Err: SafetensorsError },
  { format: "pytorch", single: "pytorch_model.bin", index: "pytorch_model.bin.index.json", Err: CheckpointError },
];

/** Which files hold a folder's weights and in which format (an index's shards, or the single file). */
export function checkpointFiles(dir: string): { format: CheckpointFormat; files: string[] } {
  for (const { format, single, index, Err } of LAYOUTS) {
    const indexFile = join(dir, index);
    if (existsSync(indexFile)) {
      let parsed: { weight_map?: Record<string, unknown> };
      try { parsed = JSON.parse(readFileSync(indexFile, "utf8")); } catch (e) {
        throw new Err(indexFile, `not valid JSON (${(e as Error).message})`);
      }
      if (!parsed?.weight_map || typeof parsed.weight_map !== "object") throw new Err(indexFile, "has no weight_map object");
      const shards = [...new Set(Object.values(parsed.weight_map))];
      for (const s of shards) {
        // shard names are file names in this folder, never paths elsewhere
        if (typeof s !== "string" || s === "" || basename(s) !== s || s === "..") throw new Err(indexFile, `weight_map names ${JSON.stringify(s)}, not a file in this folder`);
      }
      const missing = (shards as string[]).filter((s) => !existsSync(join(dir, s)));
      if (missing.length > 0) {
        throw new Err(indexFile, `weight_map names ${missing.length} shard(s) missing from ${dir}: ${missing.slice(0, 3).join(", ")}${missing.length > 3 ? ", …" : ""}`);
      }
      return { format, files: (shards as string[]).map((f) => join(dir, f)) };
    }
    if (existsSync(join(dir, single))) return { format, files: [join(dir, single)] };
  }
  throw new SafetensorsError(dir, `no weights in this folder (looked for ${LAYOUTS.flatMap((l) => [l.single, l.index]).join(", ")})`);
}

/**
 * Loads a model folder's weights (safetensors or PyTorch .bin, single or
 * sharded), tensors keyed as stored. Throws SafetensorsError / CheckpointError
 * naming the offending file; nothing stays allocated after an error.
 */
export function loadCheckpoint(dir: string, filter?: (name: string) => boolean): Map<string, Tensor> {
  const { format, files } = checkpointFiles(dir);
  const out = new Map<string, Tensor>();
  try {
    for (const f of files) {
      for (const [k, v] of format === "safetensors" ? loadFile(f, filter) : loadTorchFile(f, filter)) {
        if (out.has(k)) {
          v.dispose();
          throw new (format === "safetensors" ? SafetensorsError : CheckpointError)(f, `tensor '${k}' appears in more than one shard`);
        }
        out.set(k, v);
      }
    }
  } catch (e) {
    for (const t of new Set(out.values())) t.dispose();
    throw e;
  }
  return out;
}

/**
 * The floating-point dtype holding most of the values among `tensors` (stored headers or loaded tensors): what a
 * checkpoint is, whatever config.json's torch_dtype says (often absent or stale). Null without floating tensors.
 */
export function dominantFloatingDtype(tensors: Iterable<{ dtype: DType; shape: number[] }>): DType | null {
  const elements = new Map<DType, number>();
  for (const t of tensors) {
    if (FLOATING_DTYPES.includes(t.dtype)) elements.set(t.dtype, (elements.get(t.dtype) ?? 0) + t.shape.reduce((a, b) => a * b, 1));
  }
  return [...elements].sort((a, b) => b[1] - a[1])[0]?.[0] ?? null;
}

/** Name, dtype, shape and file of every stored tensor, read from headers only (no tensor data). */
export function checkpointTensors(dir: string): { name: string; dtype: DType; shape: number[]; file: string }[] {
  const { format, files } = checkpointFiles(dir);
  return files.flatMap((f) => (format === "safetensors" ? readHeader(f).tensors : readTorchCheckpoint(f).tensors)
    .map(({ name, dtype, shape }) => ({ name, dtype, shape, file: f })));
}
