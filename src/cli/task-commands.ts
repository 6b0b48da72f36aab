// `randmask finetune` and `randmask eval`.
import { join } from "node:path";
import { loadCausalLM } from "../models/registry.js";
import { BpeTokenizer } from "../tokenizer/bpe-tokenizer.js";
import { PeftModel } from "../peft/peft-model.js";
import { getTask } from "../tasks/registry.js";
import { loadTaskData, type SampleSizes } from "../tasks/sampling.js";
import { evaluate } from "../eval/evaluate.js";
import { finetune } from "../train/run.js";
import { Progress } from "../train/progress.js";
import { SCHEDULES, type ScheduleName } from "../train/schedule.js";
import { UsageError, numberFlag, parseFlags, requireString, type FlagSpec } from "./args.js";
import { METHOD_FLAG_SPEC, methodOptions } from "./method-flags.js";
import { dtypeFlag } from "./model-commands.js";

const DATA_FLAGS: FlagSpec = {
  model: { type: "string" }, tokenizer: { type: "string" }, task: { type: "string" }, "data-dir": { type: "string" },
  dtype: { type: "string" }, seed: { type: "string" }, "train-size": { type: "string" }, "dev-size": { type: "string" },
  "test-size": { type: "string" }, "eval-batch": { type: "string" },
};

const positiveInt = (v: number) => Number.isSafeInteger(v) && v > 0;
const nonNegInt = (v: number) => Number.isSafeInteger(v) && v >= 0;

/** --train-size, --dev-size, --test-size (the sampling protocol's sizes). */
export function sizes(flags: Record<string, unknown>): SampleSizes {
  return {
    train: numberFlag(flags, "train-size", 1000, positiveInt, "a positive integer"),
    dev: numberFlag(flags, "dev-size", 500, positiveInt, "a positive integer"),
    test: numberFlag(flags, "test-size", 1000, positiveInt, "a positive integer"),
  };
}

export async function finetuneCommand(argv: string[]): Promise<void> {
  const flags = parseFlags(argv, {
    ...DATA_FLAGS, ...METHOD_FLAG_SPEC, method: { type: "string" }, out: { type: "string" }, lr: { type: "string" },
    epochs: { type: "string" }, "batch-size": { type: "string" }, "grad-accum": { type: "string" },
    "max-grad-norm": { type: "string" }, schedule: { type: "string" }, "warmup-ratio": { type: "string" },
    "weight-decay": { type: "string" }, "divergence-factor": { type: "string" }, quiet: { type: "boolean" },
    "store-indices": { type: "boolean" }, "adapter-format": { type: "string" }, "gradient-checkpointing": { type: "boolean" },
  });
  const schedule = (flags.schedule as string | undefined) ?? "constant";
  if (!SCHEDULES.includes(schedule as ScheduleName)) throw new UsageError(`--schedule ${JSON.stringify(schedule)}: expected ${SCHEDULES.join(", ")}`);
  const seed = numberFlag(flags, "seed", 0, nonNegInt, "a non-negative integer");
  const format = (flags["adapter-format"] as string | undefined) ?? "randmask";
  if (format !== "randmask" && format !== "peft") throw new UsageError(`--adapter-format ${JSON.stringify(format)}: expected randmask or peft (LoRA only)`);
  if (format === "peft" && flags.method !== "lora") throw new UsageError("--adapter-format peft: only LoRA adapters have a Hugging Face PEFT format");
  const options = methodOptions(flags);
  if (options.seed === undefined) options.seed = seed; // the mask follows the run's seed unless --mask-seed says otherwise
  const record = await finetune({
    modelDir: requireString(flags, "model"),
    tokenizerDir: flags.tokenizer as string | undefined,
    task: requireString(flags, "task"),
    dataDir: requireString(flags, "data-dir"),
    method: requireString(flags, "method"),
    methodOptions: options,
    dtype: dtypeFlag(flags),
    out: requireString(flags, "out"),
    sizes: sizes(flags),
    quiet: Boolean(flags.quiet),
    save: { storeIndices: Boolean(flags["store-indices"]), format },
    gradientCheckpointing: Boolean(flags["gradient-checkpointing"]),
    train: {
      lr: numberFlag(flags, "lr", 1e-3, (v) => v > 0 && Number.isFinite(v), "a positive number"),
      epochs: numberFlag(flags, "epochs", 5, positiveInt, "a positive integer"),
      batchSize: numberFlag(flags, "batch-size", 8, positiveInt, "a positive integer"),
      gradAccum: numberFlag(flags, "grad-accum", 1, positiveInt, "a positive integer"),
      maxGradNorm: numberFlag(flags, "max-grad-norm", 1.0, (v) => v >= 0, "a number ≥ 0 (0 turns clipping off)"),
      schedule: schedule as ScheduleName,
      warmupRatio: numberFlag(flags, "warmup-ratio", 0, (v) => v >= 0 && v < 1, "in [0, 1)"),
      weightDecay: numberFlag(flags, "weight-decay", 0, (v) => v >= 0, "a number ≥ 0"),
      divergenceFactor: numberFlag(flags, "divergence-factor", 5, (v) => v === 0 || v > 1, "0 (off) or a number > 1"),
      seed,
      evalBatchRows: numberFlag(flags, "eval-batch", 32, positiveInt, "a positive integer"),
    },
  });
  process.stdout.write(JSON.stringify({ status: record.status, test: record.test, best_dev: record.best_dev, diverged: record.diverged }) + "\n");
}

export function evalCommand(argv: string[]): void {
  const flags = parseFlags(argv, { ...DATA_FLAGS, adapter: { type: "string" }, split: { type: "string" } });
  const split = (flags.split as string | undefined) ?? "test";
  if (!["train", "dev", "test"].includes(split)) throw new UsageError(`--split ${JSON.stringify(split)}: expected train, dev or test`);
  const modelDir = requireString(flags, "model");
  const dataDir = requireString(flags, "data-dir");
  const task = getTask(requireString(flags, "task"), dataDir);
  const seed = numberFlag(flags, "seed", 0, nonNegInt, "a non-negative integer");
  const sampled = loadTaskData(task, dataDir, seed, sizes(flags));
  const tokDir = (flags.tokenizer as string | undefined) ?? modelDir;
  const tok = BpeTokenizer.fromDir(tokDir);
  const model = loadCausalLM(modelDir, { dtype: dtypeFlag(flags) });
  const peft = flags.adapter ? PeftModel.load(model, String(flags.adapter)) : null;
  const examples = split === "train" ? sampled.train : split === "dev" ? sampled.dev : sampled.test;
  const progress = new Progress(`eval ${task.name}/${split}`, examples.length, "examples");
  const metrics = evaluate(model, tok, task.kind, examples, {
    batchRows: numberFlag(flags, "eval-batch", 32, positiveInt, "a positive integer"),
    onProgress: (done) => progress.update(done),
    sources: { tokenizer: `the tokenizer in ${tokDir}`, config: join(modelDir, "config.json") },
  });
  process.stdout.write(JSON.stringify({ task: task.name, split, adapter: flags.adapter ?? null, ...metrics }) + "\n");
  peft?.remove();
  model.dispose();
}
