// `randmask logits` and `randmask info`: run and describe a Hugging Face model folder (any supported family).
import { tensor, tidy, noGrad, type DType } from "../engine/index.js";
import { loadCausalLM } from "../models/registry.js";
import { DTYPE_BYTES } from "../engine/tensor.js";
import { UsageError, isIntMatrix, jsonFlag, parseFlags, requireString } from "./args.js";
import { isVisionModelDir } from "../models/vision/index.js";
import { visionLogits } from "./vision-logits.js";

export function dtypeFlag(flags: Record<string, unknown>): DType {
  const v = (flags.dtype as string | undefined) ?? "fp32";
  const map: Record<string, DType> = { fp32: "float32", float32: "float32", bf16: "bfloat16", bfloat16: "bfloat16" };
  if (!(v in map)) throw new UsageError(`--dtype ${JSON.stringify(v)}: expected fp32 or bf16`);
  return map[v];
}

export function logitsCommand(argv: string[]): void {
  const flags = parseFlags(argv, { model: { type: "string" }, "input-ids": { type: "string" }, "attention-mask": { type: "string" },
    "pixel-values": { type: "string" }, head: { type: "string" }, dtype: { type: "string" } });
  const dir = requireString(flags, "model");
  if (isVisionModelDir(dir)) {
    if (typeof flags["pixel-values"] !== "string") throw new UsageError("--pixel-values FILE.json is required for a vision model");
    return visionLogits(dir, flags["pixel-values"], dtypeFlag(flags), flags.head as string | undefined);
  }
  const ids = jsonFlag(flags, "input-ids", isIntMatrix, "a rectangular JSON array of token-id rows, e.g. [[2,100,200]]");
  if (!ids) throw new UsageError("--input-ids is required");
  const mask = jsonFlag(flags, "attention-mask", isIntMatrix, "a JSON array of 0/1 rows shaped like --input-ids");
  if (mask && (mask.length !== ids.length || mask[0].length !== ids[0].length || !mask.flat().every((x) => x === 0 || x === 1))) {
    throw new UsageError("--attention-mask: expected 0/1 rows with the same shape as --input-ids");
  }
  const model = loadCausalLM(dir, { dtype: dtypeFlag(flags) });
  const vocab = model.config.vocabSize;
  if (ids.flat().some((t) => t < 0 || t >= vocab)) throw new UsageError(`--input-ids: token ids must lie in [0, ${vocab})`);
  const logits = noGrad(() => tidy(() => {
    const shape = [ids.length, ids[0].length];
    const out = model.forward(tensor(ids.flat(), shape, "int64"), { attentionMask: mask ? tensor(mask.flat(), shape, "int64") : undefined });
    return out.logits.to("float32").toNested();
  }));
  process.stdout.write(JSON.stringify({ logits }) + "\n");
  model.dispose();
}

export function infoCommand(argv: string[]): void {
  const flags = parseFlags(argv, { model: { type: "string" }, dtype: { type: "string" }, json: { type: "boolean" } });
  const model = loadCausalLM(requireString(flags, "model"), { dtype: dtypeFlag(flags) });
  const c = model.config;
  const params = model.numParameters();
  const info = {
    architecture: c.architecture,
    modelType: c.modelType, layers: c.numHiddenLayers, hidden: c.hiddenSize, heads: c.numAttentionHeads,
    kvHeads: c.numKeyValueHeads, headDim: c.headDim, vocab: c.vocabSize, maxPositions: c.maxPositionEmbeddings,
    tiedHead: c.tieWordEmbeddings, ...model.family.describe(c),
    parameters: params, checkpointDtype: c.torchDtype, loadedDtype: model.dtype,
    memoryBytes: params * DTYPE_BYTES[model.dtype],
  };
  if (flags.json) process.stdout.write(JSON.stringify(info) + "\n");
  else {
    for (const [k, v] of Object.entries(info)) {
      const shown = k === "memoryBytes" ? `${(Number(v) / 2 ** 20).toFixed(1)} MiB` : k === "parameters" ? Number(v).toLocaleString("en-US") : v;
      process.stdout.write(`${k.padEnd(16)} ${shown}\n`);
    }
  }
  model.dispose();
}
