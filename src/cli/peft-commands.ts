// `randmask count` (the paper's Params column for any method config) and
// `randmask merge` (a standalone checkpoint with an adapter folded in).
import { join, resolve } from "node:path";
import { copySideFiles } from "../io/side-files.js";
import { writeFolderAtomically, writeJsonAtomic } from "../io/atomic.js";
import { noGrad, tidy, keep, type DType, type Tensor } from "../engine/index.js";
import { saveFile } from "../io/safetensors.js";
import { checkpointTensors } from "../io/checkpoint.js";
import { loadCausalLM, readModelConfig, toHfModelConfig } from "../models/registry.js";
import { PRESET_NAMES, presetConfig } from "../models/presets.js";
import { getMethod } from "../peft/registry.js";
import { PeftModel } from "../peft/peft-model.js";
import { shapesOf } from "../peft/shapes.js";
import { UsageError, defineCommand } from "./args.js";
import { METHOD_FLAGS, modelDirShapes, resolveMethodFlags } from "./method-flags.js";
import { DTYPE_FLAG, MODEL_FLAG, checkLanguageModel, checkOutputFolder, dtypeOf } from "./shared-flags.js";

export const countCommand = defineCommand({
  name: "count",
  summary: "Count a method's trainable parameters for a model (the paper's Params column); reads only config.json (a vision folder's weights too). " +
    "Takes the same method flags as finetune, so the same flags count the same mask.",
  usage: "randmask count (--model DIR | --preset NAME) --method M [method flags] [--json]",
  flags: {
    model: { ...MODEL_FLAG, required: false, description: "Hugging Face model folder (only config.json is read)" },
    preset: { type: "string", choices: PRESET_NAMES, description: "a known architecture instead of --model" },
    ...METHOD_FLAGS,
    json: { type: "boolean", description: "one JSON line: method, trainable, total, ratio" },
  },
  example: "count --preset opt-125m --method random-mask --trainable-ratio 1e-5 --seed 3",
  run(v) {
    if ((v.model === undefined) === (v.preset === undefined)) throw new UsageError("give --model DIR (a Hugging Face folder) or --preset NAME (e.g. opt-125m)");
    const def = getMethod(v.method);
    // a language model's config.json is read (counting needs shapes, not weights); a vision checkpoint is loaded
    const shapes = v.model !== undefined ? modelDirShapes(v.model) : shapesOf(presetConfig(v.preset!));
    const methodConfig = resolveMethodFlags(v, shapes);
    const trainable = def.count(methodConfig, shapes);
    const row = { method: def.name, trainable, total: shapes.totalParams, ratio: trainable / shapes.totalParams };
    if (v.json) process.stdout.write(JSON.stringify(row) + "\n");
    else process.stdout.write(`${def.name}: ${trainable.toLocaleString("en-US")} trainable of ${shapes.totalParams.toLocaleString("en-US")} ` +
      `(${(row.ratio * 100).toPrecision(3)}%)\n`);
  },
});

export const mergeCommand = defineCommand({
  name: "merge",
  summary: "Fold an adapter into the base weights and write a standalone Hugging Face folder (config, safetensors, tokenizer files) to a new --out.",
  flags: {
    model: MODEL_FLAG,
    adapter: { type: "dir", required: true, description: "adapter folder (finetune's --out/adapter)" },
    out: { type: "string", required: true, arg: "DIR", description: "folder to create (must be absent or empty)" },
    dtype: { type: "string", choices: DTYPE_FLAG.choices, defaultText: "the checkpoint's", description: "load the base and save the result in this dtype (deltas are added in fp32, rounded once)" },
  },
  example: "merge --model ~/opt-125m --adapter runs/sst2-rm/adapter --out opt-125m-sst2",
  run(v) {
    checkOutputFolder("out", v.out, "the merged model", { empty: true, beside: true });
    checkLanguageModel("model", v.model);
    merge(v.model, v.adapter, resolve(v.out), v.dtype === undefined ? undefined : dtypeOf(v.dtype));
  },
});

function merge(modelDir: string, adapterDir: string, out: string, dtype: DType | undefined): void {
  // --dtype: the base is loaded and the result saved in it; without it, the base
  // is loaded in float32 and the result keeps the checkpoint's dtype (deltas are
  // always added in float32 and rounded once)
  const embed = checkpointTensors(modelDir).find((t) => /(embed_tokens|wte)\.weight$/.test(t.name));
  const loadDtype = dtype ?? "float32";
  const saveDtype = dtype ?? embed?.dtype ?? "float32";
  const model = loadCausalLM(modelDir, { dtype: loadDtype });
  const peft = PeftModel.load(model, adapterDir);
  peft.checkMergeable(); // before any folder is made
  writeFolderAtomically(out, (tmp) => {
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
    copySideFiles(modelDir, tmp);
  });
  process.stdout.write(`merged ${peft.definition.name} adapter into ${out}\n`);
  peft.remove();
  model.dispose();
}
