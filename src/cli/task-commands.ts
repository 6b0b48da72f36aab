// `randmask finetune` and `randmask eval`.
import { existsSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { loadCausalLM, readModelConfig } from "../models/registry.js";
import { shapesOf } from "../peft/shapes.js";
import { BpeTokenizer } from "../tokenizer/bpe-tokenizer.js";
import { PeftModel } from "../peft/peft-model.js";
import { getTask } from "../tasks/registry.js";
import { loadTaskData } from "../tasks/sampling.js";
import { predict, writePredictions } from "../eval/evaluate.js";
import { finetune } from "../train/run.js";
import { Progress } from "../train/progress.js";
import { SCHEDULES } from "../train/schedule.js";
import { UsageError, defineCommand, positiveInt, type FlagDef } from "./args.js";
import { METHOD_FLAGS, methodOptions, modelDirShapes, resolveMethodFlags } from "./method-flags.js";
import { DATA_FLAGS, VISION_USE, checkModelFolder, checkOutputFolder, dtypeOf, imageSizes, sampleSizes, useDevice } from "./shared-flags.js";
import { isImageTask } from "../tasks/image-tasks.js";
import { outputFolderFault } from "../io/output-folder.js";
import { isVisionModelDir, modelTypeOf } from "../models/vision/index.js";
import { finetuneImages } from "../train/image-run.js";
import { IMAGE_TRAIN_DEFAULTS, imageStepDefaults } from "../train/image-trainer.js";
import { TRAIN_DEFAULTS, stepsPerEpoch } from "../train/trainer.js";
import { evalImages } from "./image-eval-command.js";

/** An image task needs a vision model and a text task a language model: one error naming both flags otherwise. */
export function checkModality(task: string, model: string): void {
  const image = isImageTask(task);
  if (image !== isVisionModelDir(model)) {
    throw new UsageError(image ? `--task ${task} is an image task, but --model ${model} is not a vision model (vit, clip_vision_model, clip)`
      : `--task ${task} is a text task, but --model ${model} is a vision model (model_type ${JSON.stringify(modelTypeOf(model))} in config.json); ${VISION_USE}`);
  }
}

const training = "training flags";
/** Flags only one kind of task reads (the others apply to both). */
const TEXT_TASK_FLAGS = ["epochs", "warmup-ratio", "gradient-checkpointing"] as const;
const IMAGE_TASK_FLAGS = ["steps", "warmup-steps", "eval-every", "head"] as const;
const output = "output flags";

export const finetuneCommand = defineCommand({
  name: "finetune",
  summary: "Fine-tune a model on a task with one PEFT method. Writes --out/adapter/ (the best epoch), metrics.json, " +
    "predictions.jsonl (best epoch on test), train.log and loss.svg; refuses an --out that holds files and creates " +
    "nothing there until every flag and input has been checked. Image tasks (a vision model: vit, clip) train for --steps with " +
    "Appendix B.2's defaults and a fixed head, keep the best validation step, and write head.safetensors when they fitted a probe.",
  flags: {
    ...DATA_FLAGS,
    ...METHOD_FLAGS,
    seed: { ...METHOD_FLAGS.seed, description: "seed of the data sample, initialisation, training order and (unless --mask-seed) the mask" },
    lr: { type: "number", default: 1e-3, check: (v) => v > 0, expected: "a positive number", group: training, description: "learning rate (AdamW)" },
    epochs: { type: "integer", defaultText: String(TRAIN_DEFAULTS.epochs), check: positiveInt, expected: "a positive integer", group: training,
      description: "text tasks: passes over the train sample (image tasks use --steps)" },
    "batch-size": { type: "integer", defaultText: "8; image tasks 128", check: positiveInt, expected: "a positive integer", group: training, description: "examples per optimizer step" },
    "grad-accum": { type: "integer", default: 1, check: positiveInt, expected: "a positive integer", group: training, description: "micro-batches per step (same step, less memory)" },
    "max-grad-norm": { type: "number", default: 1.0, check: (v) => v >= 0, expected: "a number ≥ 0 (0 turns clipping off)", group: training, description: "gradient clipping norm; 0: off" },
    schedule: { type: "string", choices: SCHEDULES, defaultText: "constant; image tasks cosine", group: training, description: "learning-rate schedule" },
    "warmup-ratio": { type: "number", defaultText: String(TRAIN_DEFAULTS.warmupRatio), check: (v) => v >= 0 && v < 1, expected: "in [0, 1)", group: training,
      description: "text tasks: share of steps with linear warmup" },
    "weight-decay": { type: "number", defaultText: "0; image tasks 0.1", check: (v) => v >= 0, expected: "a number ≥ 0", group: training, description: "AdamW weight decay" },
    steps: { type: "integer", defaultText: String(IMAGE_TRAIN_DEFAULTS.steps), check: positiveInt, expected: "a positive integer", group: training,
      description: "image tasks: optimizer steps (Appendix B.2; text tasks use --epochs)" },
    "warmup-steps": { type: "integer", defaultText: "10% of --steps (200 of 2000)", check: (v) => v >= 0, expected: "an integer ≥ 0", group: training,
      description: "image tasks: steps of linear warm-up" },
    "eval-every": { type: "integer", defaultText: "--steps / 4", check: positiveInt, expected: "a positive integer", group: training,
      description: "image tasks: validation every this many steps; the best step's weights are kept" },
    head: { type: "string", arg: "FILE|probe", group: training,
      description: "image tasks: the fixed head, a safetensors file (weight [classes, dim], optional bias); 'probe' fits a linear probe on frozen features " +
        "(default: the checkpoint's classifier, else a probe; a probe deviates from the paper's CLIP zero-shot head)" },
    "divergence-factor": { type: "number", default: 5, check: (v) => v === 0 || v > 1, expected: "0 (off) or a number > 1", group: training,
      description: "stop as diverged when the loss exceeds this × the first step's; 0: off" },
    "gradient-checkpointing": { type: "boolean", group: training, description: "text tasks: recompute layers in backward (less memory, ~1.5× time)" },
    out: { type: "string", required: true, arg: "DIR", group: output, description: "run folder to create (must be absent or empty)" },
    "store-indices": { type: "boolean", group: output, description: "store mask indices in the adapter too (they are regenerated from the seed otherwise)" },
    "adapter-format": { type: "string", choices: ["randmask", "peft"], default: "randmask", group: output, description: "adapter files: randmask's, or Hugging Face PEFT's (LoRA only)" },
    quiet: { type: "boolean", group: output, description: "no progress or log lines on stderr" },
  },
  example: "finetune --model ~/opt-125m --task sst2 --data-dir ~/data/nlp --method random-mask --trainable-ratio 1e-5 --lr 1e-1 --out runs/sst2-rm",
  async run(v) {
    if (v["adapter-format"] === "peft" && v.method !== "lora") throw new UsageError("--adapter-format peft: only LoRA adapters have a Hugging Face PEFT format");
    // a run stopped by a signal (Ctrl-C) leaves its train.log and nothing else: fine-tuning does not resume
    if (existsSync(join(v.out, "train.log")) && !existsSync(join(v.out, "metrics.json"))) {
      throw new UsageError(`--out ${v.out}: holds an unfinished run (train.log without metrics.json: stopped, or still running); ` +
        "finetune does not resume: remove that folder to run again, or give another --out");
    }
    checkOutputFolder("out", v.out, "the run's adapter, metrics and logs", { empty: true });
    checkModality(v.task, v.model);
    const image = isImageTask(v.task);
    // flags the other kind of task reads would be silently ignored: refused when given
    const foreign = (image ? TEXT_TASK_FLAGS : IMAGE_TASK_FLAGS).filter((f) => v[f] !== undefined && v[f] !== false);
    if (foreign.length > 0) {
      throw new UsageError(`${foreign.map((f) => `--${f}`).join(", ")}: ${image ? "text" : "image"} tasks only (--task ${v.task} is ${image ? "an image" : "a text"} task; ` +
        (image ? "image tasks train for --steps, with --warmup-steps and --eval-every)" : "text tasks train for --epochs, with --warmup-ratio)"));
    }
    const batchSize = v["batch-size"] ?? (image ? IMAGE_TRAIN_DEFAULTS.batchSize : TRAIN_DEFAULTS.batchSize);
    if (batchSize % v["grad-accum"] !== 0) throw new UsageError(`--batch-size ${batchSize} must be a multiple of --grad-accum ${v["grad-accum"]}`);
    if (image) {
      if (v["adapter-format"] === "peft") throw new UsageError("--adapter-format peft: Hugging Face PEFT adapters are written for language models only");
      const steps = v.steps ?? IMAGE_TRAIN_DEFAULTS.steps;
      const byDefault = imageStepDefaults(steps);
      const warmupSteps = v["warmup-steps"] ?? byDefault.warmupSteps;
      if (warmupSteps >= steps) throw new UsageError(`--warmup-steps ${warmupSteps} must be fewer than --steps ${steps}`);
      // method flags checked against the checkpoint's shapes as `count` does, before the device, data or --out are touched
      resolveMethodFlags(v, modelDirShapes(v.model), v.method === "adalora" ? { totalSteps: steps } : {}, { totalSteps: `--steps ${steps}` });
      useDevice(v.device);
      const d = IMAGE_TRAIN_DEFAULTS;
      const record = await finetuneImages({
        modelDir: v.model, task: v.task, dataDir: v["data-dir"], method: v.method, methodOptions: methodOptions(v), dtype: dtypeOf(v.dtype),
        out: v.out, sizes: imageSizes(v), head: v.head, quiet: v.quiet, save: { storeIndices: v["store-indices"] },
        train: {
          lr: v.lr, steps, warmupSteps, batchSize, gradAccum: v["grad-accum"], maxGradNorm: v["max-grad-norm"],
          schedule: (v.schedule ?? d.schedule) as (typeof SCHEDULES)[number], weightDecay: v["weight-decay"] ?? d.weightDecay,
          divergenceFactor: v["divergence-factor"], evalEvery: v["eval-every"] ?? byDefault.evalEvery, seed: v.seed, evalBatchRows: v["eval-batch"],
        },
      });
      process.stdout.write(JSON.stringify({ status: record.status, test: record.test, best_dev: record.best_dev, diverged: record.diverged }) + "\n");
      return;
    }
    // method flags checked against the model's shapes (config.json only) first, so a bad one is a usage error naming the flag;
    // AdaLoRA's schedule is checked against the most steps --train-size allows (finetune checks the real count again)
    const epochs = v.epochs ?? TRAIN_DEFAULTS.epochs;
    const config = join(v.model, "config.json");
    if (existsSync(config)) {
      const perEpoch = stepsPerEpoch(sampleSizes(v).train, batchSize);
      resolveMethodFlags(v, shapesOf(readModelConfig(config)), { totalSteps: perEpoch * epochs },
        { totalSteps: `the ${perEpoch * epochs} steps of --epochs ${epochs} (${perEpoch} per epoch: --train-size ${sampleSizes(v).train} / --batch-size ${batchSize})` });
    }
    useDevice(v.device);
    checkModelFolder("model", v.model);
    const record = await finetune({
      modelDir: v.model,
      tokenizerDir: v.tokenizer,
      task: v.task,
      dataDir: v["data-dir"],
      method: v.method,
      methodOptions: methodOptions(v),
      dtype: dtypeOf(v.dtype),
      device: v.device,
      out: v.out,
      sizes: sampleSizes(v),
      quiet: v.quiet,
      save: { storeIndices: v["store-indices"], format: v["adapter-format"] as "randmask" | "peft" },
      gradientCheckpointing: v["gradient-checkpointing"],
      train: {
        lr: v.lr, epochs, batchSize, gradAccum: v["grad-accum"], maxGradNorm: v["max-grad-norm"],
        schedule: (v.schedule ?? TRAIN_DEFAULTS.schedule) as (typeof SCHEDULES)[number], warmupRatio: v["warmup-ratio"] ?? TRAIN_DEFAULTS.warmupRatio,
        weightDecay: v["weight-decay"] ?? TRAIN_DEFAULTS.weightDecay,
        divergenceFactor: v["divergence-factor"], seed: v.seed, evalBatchRows: v["eval-batch"],
      },
    });
    process.stdout.write(JSON.stringify({ status: record.status, test: record.test, best_dev: record.best_dev, diverged: record.diverged }) + "\n");
  },
});

const PREDICTIONS_FLAG = {
  type: "string", arg: "FILE.jsonl",
  description: "also write one JSON line per example: prompt, gold, prediction, and option scores (classification) or F1/EM (generation)",
} as const satisfies FlagDef;

/** Checks an output file path before anything is read: its folder exists and this user may write it, and the path is not a folder. */
export function checkOutputFile(flag: string, file: string): void {
  // each of these would fail only when the file is written, after the whole evaluation
  if (file.trim() === "" || /[/\\]$/.test(file)) throw new UsageError(`--${flag} ${JSON.stringify(file)}: expected a file name`);
  const dir = dirname(resolve(file));
  if (!existsSync(dir)) throw new UsageError(`--${flag} ${file}: folder ${dir} does not exist`);
  if (!statSync(dir).isDirectory()) throw new UsageError(`--${flag} ${file}: ${dir} is a file, not a folder`);
  // the file is written beside itself and renamed into place: the folder must take new files
  if (outputFolderFault(dir)?.kind === "not-writable") throw new UsageError(`--${flag} ${file}: ${dir} is not writable by this user (expected a folder it may write)`);
  if (existsSync(file) && statSync(file).isDirectory()) throw new UsageError(`--${flag} ${file}: is a folder, expected a file name`);
}

export const evalCommand = defineCommand({
  name: "eval",
  summary: "Evaluate a model (with an adapter, if given) on a task's sampled split; prints the metrics as one JSON line.",
  flags: {
    ...DATA_FLAGS,
    adapter: { type: "dir", description: "adapter folder to apply (finetune's --out/adapter)" },
    split: { type: "string", choices: ["test", "dev", "train"], default: "test", group: "data flags", description: "which sampled split to evaluate" },
    head: { type: "string", arg: "FILE.safetensors", description: "image tasks: the fixed head (finetune's --out/head.safetensors when it fitted a probe; default: the checkpoint's classifier)" },
    predictions: PREDICTIONS_FLAG,
  },
  example: "eval --model ~/opt-125m --adapter runs/sst2-rm/adapter --task sst2 --data-dir ~/data/nlp --predictions sst2-test.jsonl",
  run(v) {
    if (v.predictions !== undefined) checkOutputFile("predictions", v.predictions);
    checkModality(v.task, v.model);
    useDevice(v.device);
    checkModelFolder("model", v.model);
    if (isImageTask(v.task)) return evalImages(v);
    if (v.head !== undefined) throw new UsageError("--head applies to image tasks only");
    const task = getTask(v.task, v["data-dir"]);
    const sampled = loadTaskData(task, v["data-dir"], v.seed, sampleSizes(v));
    const tokDir = v.tokenizer ?? v.model;
    const tok = BpeTokenizer.fromDir(tokDir);
    const model = loadCausalLM(v.model, { dtype: dtypeOf(v.dtype) });
    try {
      const peft = v.adapter ? PeftModel.load(model, v.adapter) : null;
      const examples = sampled[v.split as "train" | "dev" | "test"];
      const progress = new Progress(`eval ${task.name}/${v.split}`, examples.length, "examples");
      const { metrics, predictions } = predict(model, tok, task.kind, examples, {
        batchRows: v["eval-batch"], onProgress: (done) => progress.update(done),
        sources: { tokenizer: `the tokenizer in ${tokDir}`, config: join(v.model, "config.json") },
      });
      if (v.predictions !== undefined) writePredictions(v.predictions, predictions);
      process.stdout.write(JSON.stringify({ task: task.name, split: v.split, adapter: v.adapter ?? null, ...metrics }) + "\n");
      peft?.remove();
    } finally {
      model.dispose();
    }
  },
});
