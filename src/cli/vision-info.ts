// `randmask info` for a vision folder: family, shape, parameter counts, and
// what each PEFT method trains at the paper's standard settings (Table 2:
// Random Masking at 1%, 0.1%, 0.01% and LoRA r=8 on the MLP layers; BitFit,
// adapters, full fine-tuning with the classifier head fixed).
import type { DType } from "../engine/index.js";
import { DTYPE_BYTES } from "../engine/tensor.js";
import { loadVisionModel } from "../models/vision/index.js";
import { sequenceLength } from "../models/vision/config.js";
import { getMethod } from "../peft/registry.js";
import { modelShapes } from "../peft/shapes.js";

const STANDARD: [string, string, Record<string, unknown>][] = [
  ["random-mask 1%", "random-mask", { trainableRatio: 1e-2 }],
  ["random-mask 0.1%", "random-mask", { trainableRatio: 1e-3 }],
  ["random-mask 0.01%", "random-mask", { trainableRatio: 1e-4 }],
  ["lora r=8", "lora", { r: 8, alpha: 16 }],
  ["bitfit", "bitfit", {}],
  ["adapter 8", "adapter", { bottleneck: 8 }],
  ["full", "full", {}],
];

/** Prints the facts as a table, or one JSON line with `json`. */
export function visionInfo(dir: string, dtype: DType, json: boolean): void {
  const model = loadVisionModel(dir, { dtype });
  try {
    const c = model.config;
    const shapes = modelShapes(model);
    const trainable: Record<string, number | string> = {};
    for (const [label, method, options] of STANDARD) {
      const def = getMethod(method);
      try { trainable[label] = def.count(def.resolveConfig({ seed: 0, ...options }, shapes), shapes); } catch (e) { trainable[label] = `n/a (${(e as Error).message})`; }
    }
    const info = {
      architecture: model.architecture, modelType: c.modelType, imageSize: c.imageSize, patchSize: c.patchSize, channels: c.numChannels,
      tokens: sequenceLength(c), layers: c.numHiddenLayers, hidden: c.hiddenSize, heads: c.numAttentionHeads, intermediate: c.intermediateSize,
      activation: c.hiddenAct, featureDim: model.featureDim, classes: "id2label" in c && c.id2label.length ? c.id2label.length : null,
      fixedHead: [...shapes.fixed], defaultTargets: model.defaultTargets.join(","),
      parameters: shapes.totalParams, loadedDtype: model.dtype, memoryBytes: shapes.totalParams * DTYPE_BYTES[model.dtype], trainable,
    };
    if (json) { process.stdout.write(JSON.stringify(info) + "\n"); return; }
    for (const [k, x] of Object.entries(info)) {
      if (k === "trainable") continue;
      const shown = k === "memoryBytes" ? `${(Number(x) / 2 ** 20).toFixed(1)} MiB` : k === "parameters" ? Number(x).toLocaleString("en-US")
        : Array.isArray(x) ? (x.join(", ") || "none") : x;
      process.stdout.write(`${k.padEnd(18)} ${shown}\n`);
    }
    process.stdout.write("trainable (MLP targets, ratio of all parameters):\n");
    for (const [k, n] of Object.entries(trainable)) {
      process.stdout.write(`  ${k.padEnd(18)} ${typeof n === "number" ? `${n.toLocaleString("en-US")} (${((n / shapes.totalParams) * 100).toPrecision(3)}%)` : n}\n`);
    }
  } finally {
    model.dispose();
  }
}
