// `randmask logits` and `randmask info`: run and describe a Hugging Face model folder (any supported family).
import { join } from "node:path";
import { tensor, tidy, noGrad } from "../engine/index.js";
import { checkpointTensors, dominantFloatingDtype } from "../io/checkpoint.js";
import { readConfigJson } from "../models/config-fields.js";
import { loadCausalLM } from "../models/registry.js";
import { DTYPE_BYTES } from "../engine/tensor.js";
import { UsageError, defineCommand, isIntMatrix, jsonValue } from "./args.js";
import { DEVICE_FLAG, DTYPE_FLAG, MODEL_FLAG, dtypeOf, useDevice } from "./shared-flags.js";
import { isVisionModelDir } from "../models/vision/index.js";
import { visionLogits } from "./vision-logits.js";
import { visionInfo } from "./vision-info.js";

export const logitsCommand = defineCommand({
  name: "logits",
  summary: "Run the model and print its outputs as JSON: a language model's logits for token ids ({\"logits\": [batch][seq][vocab]}), " +
    "or a vision model's for pixel values (logits, or image_embeds / pooler_output and last_hidden_state).",
  usage: "randmask logits --model DIR --input-ids JSON [--attention-mask JSON] [--dtype fp32|bf16]\n" +
    "       randmask logits --model DIR --pixel-values FILE.json [--head FILE.safetensors] [--dtype fp32|bf16]",
  flags: {
    model: MODEL_FLAG,
    "input-ids": { type: "string", arg: "JSON", description: "language models: rectangular JSON array of token-id rows, e.g. [[2,100,200]]" },
    "attention-mask": { type: "string", arg: "JSON", defaultText: "all ones", description: "0/1 rows shaped like --input-ids (0: padding)" },
    "pixel-values": { type: "file", arg: "FILE.json", description: "vision models: JSON array [batch, 3, H, W] of normalised pixels" },
    head: { type: "file", arg: "FILE.safetensors", description: "vision models: a fixed linear head applied to the features" },
    dtype: DTYPE_FLAG,
    device: DEVICE_FLAG,
  },
  example: "logits --model ~/opt-125m --input-ids '[[2,100,200],[1,2,300]]' --attention-mask '[[1,1,1],[0,1,1]]'",
  run(v) {
    useDevice(v.device);
    if (isVisionModelDir(v.model)) {
      // the other kind's flags first: they say what was meant
      for (const f of ["input-ids", "attention-mask"] as const) if (v[f] !== undefined) throw new UsageError(`--${f} is for language models; ${v.model} is a vision model (give --pixel-values)`);
      if (v["pixel-values"] === undefined) throw new UsageError("--pixel-values FILE.json is required for a vision model");
      return visionLogits(v.model, v["pixel-values"], dtypeOf(v.dtype), v.head);
    }
    for (const f of ["pixel-values", "head"] as const) if (v[f] !== undefined) throw new UsageError(`--${f} is for vision models; ${v.model} is a language model (give --input-ids)`);
    if (v["input-ids"] === undefined) throw new UsageError("--input-ids is required for a language model");
    const ids = jsonValue("input-ids", v["input-ids"], isIntMatrix, "a rectangular JSON array of token-id rows, e.g. [[2,100,200]]")!;
    const mask = jsonValue("attention-mask", v["attention-mask"], isIntMatrix, "a JSON array of 0/1 rows shaped like --input-ids");
    if (mask && (mask.length !== ids.length || mask[0].length !== ids[0].length || !mask.flat().every((x) => x === 0 || x === 1))) {
      throw new UsageError("--attention-mask: expected 0/1 rows with the same shape as --input-ids");
    }
    const model = loadCausalLM(v.model, { dtype: dtypeOf(v.dtype) });
    try {
      const vocab = model.config.vocabSize;
      if (ids.flat().some((t) => t < 0 || t >= vocab)) throw new UsageError(`--input-ids: token ids must lie in [0, ${vocab})`);
      // positions count a row's attended tokens (padding takes none); learned position tables end at the limit
      const max = model.config.maxPositionEmbeddings;
      const longest = Math.max(...(mask ?? ids).map((r) => (mask ? r.filter((x) => x === 1).length : r.length)));
      if (longest > max) {
        throw new UsageError(`--input-ids: a row of ${longest} tokens, but the model has ${max} positions (max_position_embeddings in config.json)`);
      }
      const logits = noGrad(() => tidy(() => {
        const shape = [ids.length, ids[0].length];
        const out = model.forward(tensor(ids.flat(), shape, "int64"), { attentionMask: mask ? tensor(mask.flat(), shape, "int64") : undefined });
        return out.logits.to("float32").toNested();
      }));
      process.stdout.write(JSON.stringify({ logits }) + "\n");
    } finally {
      model.dispose();
    }
  },
});

export const infoCommand = defineCommand({
  name: "info",
  summary: "Describe a model folder: architecture, sizes, parameter count, dtype and memory; for a vision model also the trainable count of each PEFT method at the paper's standard settings.",
  flags: { model: MODEL_FLAG, dtype: DTYPE_FLAG, json: { type: "boolean", description: "one JSON line instead of a table" } },
  example: "info --model ~/opt-125m --json",
  run(v) {
    if (isVisionModelDir(v.model)) return visionInfo(v.model, dtypeOf(v.dtype), v.json);
    const model = loadCausalLM(v.model, { dtype: dtypeOf(v.dtype) });
    const c = model.config;
    const params = model.numParameters();
    const info = {
      architecture: c.architecture,
      modelType: c.modelType, layers: c.numHiddenLayers, hidden: c.hiddenSize, heads: c.numAttentionHeads,
      kvHeads: c.numKeyValueHeads, headDim: c.headDim, vocab: c.vocabSize, maxPositions: c.maxPositionEmbeddings,
      tiedHead: c.tieWordEmbeddings, ...model.family.describe(c),
      parameters: params, checkpointDtype: dominantFloatingDtype(checkpointTensors(v.model)) ?? c.torchDtype, loadedDtype: model.dtype,
      memoryBytes: params * DTYPE_BYTES[model.dtype],
    };
    if (info.checkpointDtype !== c.torchDtype) {
      process.stderr.write(`randmask info: note: the weights are stored in ${info.checkpointDtype}; config.json's torch_dtype says ${c.torchDtype}` +
        `${["torch_dtype", "dtype"].some((k) => k in readConfigJson(join(v.model, "config.json"))) ? "" : " (its default: the field is absent)"}\n`);
    }
    if (v.json) process.stdout.write(JSON.stringify(info) + "\n");
    else {
      for (const [k, x] of Object.entries(info)) {
        const shown = k === "memoryBytes" ? `${(Number(x) / 2 ** 20).toFixed(1)} MiB` : k === "parameters" ? Number(x).toLocaleString("en-US") : x;
        process.stdout.write(`${k.padEnd(16)} ${shown}\n`);
      }
    }
    model.dispose();
  },
});
