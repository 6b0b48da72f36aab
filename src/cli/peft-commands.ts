// `randmask count` (the paper's Params column for any method config) and
// `randmask merge` (a standalone checkpoint with an adapter folded in).
import { copyFileSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { tempPathFor, writeJsonAtomic } from "../io/atomic.js";
import { noGrad, tidy, keep, type Tensor } from "../engine/index.js";
import { saveFile } from "../io/safetensors.js";
import { checkpointTensors } from "../io/checkpoint.js";
import { loadCausalLM, readModelConfig, toHfModelConfig } from "../models/registry.js";
import { presetConfig } from "../models/presets.js";
import { getMethod } from "../peft/registry.js";
import { PeftModel } from "../peft/peft-model.js";
import { shapesOf } from "../peft/shapes.js";
import { UsageError, parseFlags, requireString } from "./args.js";
import { METHOD_FLAG_SPEC, methodOptions } from "./method-flags.js";
import { dtypeFlag } from "./model-commands.js";

export function countCommand(argv: string[]): void {
  const flags = parseFlags(argv, { model: { type: "string" }, preset: { type: "string" }, method: { type: "string" }, json: { type: "boolean" }, ...METHOD_FLAG_SPEC });
  if (!flags.model === !flags.preset) throw new UsageError("give --model DIR (a Hugging Face folder) or --preset NAME (e.g. opt-125m)");
  // only config.json is read: counting needs shapes, not weights
  const config = flags.model ? readModelConfig(join(String(flags.model), "config.json")) : presetConfig(String(flags.preset));
  const def = getMethod(requireString(flags, "method"));
  const shapes = shapesOf(config);
  const methodConfig = def.resolveConfig(methodOptions(flags), shapes);
  const trainable = def.count(methodConfig, shapes);
  const row = { method: def.name, trainable, total: shapes.totalParams, ratio: trainable / shapes.totalParams };
  if (flags.json) process.stdout.write(JSON.stringify(row) + "\n");
  else process.stdout.write(`${def.name}: ${trainable.toLocaleString("en-US")} trainable of ${shapes.totalParams.toLocaleString("en-US")} ` +
    `(${(row.ratio * 100).toPrecision(3)}%)\n`);
}

const TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt", "special_tokens_map.json", "generation_config.json"];

export function mergeCommand(argv: string[]): void {
  const flags = parseFlags(argv, { model: { type: "string" }, adapter: { type: "string" }, out: { type: "string" }, dtype: { type: "string" } });
  const modelDir = requireString(flags, "model");
  const out = resolve(requireString(flags, "out"));
  if (existsSync(out) && readdirSync(out).length > 0) throw new UsageError(`--out ${out}: exists and is not empty; nothing was written`);
  // --dtype: the base is loaded and the result saved in it; without it, the base
  // is loaded in float32 and the result keeps the checkpoint's dtype (deltas are
  // always added in float32 and rounded once)
  const embed = checkpointTensors(modelDir).find((t) => /(embed_tokens|wte)\.weight$/.test(t.name));
  const loadDtype = flags.dtype === undefined ? "float32" : dtypeFlag(flags);
  const saveDtype = flags.dtype === undefined ? embed?.dtype ?? "float32" : loadDtype;
  const model = loadCausalLM(modelDir, { dtype: loadDtype });
  const peft = PeftModel.load(model, requireString(flags, "adapter"));
  const tmp = tempPathFor(out);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  try {
    let untiedHead = false;
    peft.withMerged((stateDict) => {
      untiedHead = stateDict.has("lm_head.weight");
      const converted = new Map<string, Tensor>();
      noGrad(() => { for (const [k, v] of stateDict) converted.set(k, keep(tidy(() => v.detach().to(saveDtype)))); });
      try { saveFile(join(tmp, "model.safetensors"), converted, { format: "pt" }); } finally { converted.forEach((t) => t.dispose()); }
    });
    // an adapter that trained its own copy of a tied head (PEFT modules_to_save) unties it
    const hfConfig = toHfModelConfig(readModelConfig(join(modelDir, "config.json")));
    writeJsonAtomic(join(tmp, "config.json"), { ...hfConfig, ...(untiedHead ? { tie_word_embeddings: false } : {}), torch_dtype: saveDtype });
    for (const f of TOKENIZER_FILES) if (existsSync(join(modelDir, f))) copyFileSync(join(modelDir, f), join(tmp, f));
    if (existsSync(out)) rmSync(out, { recursive: true });
    renameSync(tmp, out);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  process.stdout.write(`merged ${peft.definition.name} adapter into ${out}\n`);
  peft.remove();
  model.dispose();
}
