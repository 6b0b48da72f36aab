// Flags several commands share (model folder, dtype, task data), declared once.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { outputFolderFault } from "../io/output-folder.js";
import { setDefaultDevice, type DType } from "../engine/index.js";
import { SUPPORTED_MODEL_TYPES } from "../models/registry.js";
import { modelTypeOf } from "../models/vision/index.js";
import { isVisionModelType } from "../models/vision/config.js";
import { TASK_NAMES } from "../tasks/registry.js";
import { IMAGE_TASK_NAMES, type ImageSizes } from "../tasks/image-tasks.js";
import { DEFAULT_SIZES, type SampleSizes } from "../tasks/sampling.js";
import { UsageError, nonNegInt, positiveInt, type FlagDef, type FlagValues } from "./args.js";

export const MODEL_FLAG = {
  type: "dir", required: true, description: "Hugging Face model folder (config.json, weights, tokenizer files)",
} as const satisfies FlagDef;

export const DTYPE_FLAG = {
  type: "string", choices: ["fp32", "bf16"], default: "fp32", description: "dtype the weights are loaded and run in",
} as const satisfies FlagDef;

export function dtypeOf(v: string): DType {
  return v === "bf16" ? "bfloat16" : "float32";
}

export const DEVICE_FLAG = {
  type: "string", default: "cpu", arg: "DEV",
  description: "where weights, adapters, inputs and optimizer state live: cpu, cuda or cuda:N (needs an addon built against a CUDA libtorch)",
} as const satisfies FlagDef;

/**
 * Makes --device the engine's default device (setDefaultDevice), before anything is
 * loaded. A malformed name is a UsageError; CUDA that this build or machine lacks an
 * Error naming --device.
 */
export function useDevice(device: string): void {
  if (!/^(cpu|cuda(:\d+)?)$/.test(device)) throw new UsageError(`--device ${JSON.stringify(device)}: expected cpu, cuda or cuda:N`);
  try {
    setDefaultDevice(device);
  } catch (e) {
    throw new Error(`--${(e as Error).message}`);
  }
}

const sizeFlag = (dflt: number, what: string, image: string) => ({
  type: "integer", defaultText: `${dflt}; image tasks: ${image}`, check: positiveInt, expected: "a positive integer", group: "data flags",
  description: `${what} examples sampled`,
}) as const satisfies FlagDef;

/** Which task, where its files are, and how many examples the seeded protocol draws. */
export const DATA_FLAGS = {
  model: MODEL_FLAG,
  tokenizer: { type: "dir", defaultText: "--model", description: "folder with the tokenizer files" },
  dtype: DTYPE_FLAG,
  device: DEVICE_FLAG,
  task: { type: "string", required: true, choices: [...TASK_NAMES, ...IMAGE_TASK_NAMES], arg: "T", group: "data flags",
    description: "task (jsonl: your own train/validation/test.jsonl; cifar10 … image-folder: image classification with a vision model)" },
  "data-dir": { type: "dir", required: true, group: "data flags", description: "folder holding the task's dataset files" },
  seed: { type: "integer", default: 0, check: nonNegInt, expected: "a non-negative integer", group: "data flags", description: "seed of the data sample" },
  "train-size": sizeFlag(1000, "train", "all that remain after validation"),
  "dev-size": sizeFlag(500, "dev (validation)", "10% of the train split, at most 5000, held out of it"),
  "test-size": sizeFlag(1000, "test", "the whole test split"),
  "eval-batch": { type: "integer", default: 32, check: positiveInt, expected: "a positive integer", description: "sequences per evaluation forward pass" },
} as const satisfies Record<string, FlagDef>;

export function sampleSizes(v: Pick<FlagValues<typeof DATA_FLAGS>, "train-size" | "dev-size" | "test-size">): SampleSizes {
  return { train: v["train-size"] ?? DEFAULT_SIZES.train, dev: v["dev-size"] ?? DEFAULT_SIZES.dev, test: v["test-size"] ?? DEFAULT_SIZES.test };
}

/** An image task's sizes: only those given (the rest: the whole split, see imageSplits). */
export function imageSizes(v: FlagValues<typeof DATA_FLAGS>): ImageSizes {
  return { train: v["train-size"], val: v["dev-size"], test: v["test-size"] };
}

/**
 * Checks a folder an output flag names before anything is read or written: it may not be empty text, neither it
 * nor the nearest existing path above it may be a file (mkdir would fail there with a raw EEXIST / ENOTDIR) or
 * unwritable, and with `empty` an existing folder must hold nothing; `beside`: see outputFolderFault. `holds` says what goes there. Throws UsageError (exit 2) naming the flag.
 */
export function checkOutputFolder(flag: string, dir: string, holds: string, o: { empty?: boolean; beside?: boolean } = {}): void {
  // an empty path would resolve to the working folder
  if (dir.trim() === "") throw new UsageError(`--${flag} ${JSON.stringify(dir)}: expected a folder path (for ${holds})`);
  const fault = outputFolderFault(dir, o);
  if (fault?.kind === "file") throw new UsageError(`--${flag} ${dir}: ${fault.text}, expected a folder (for ${holds})`);
  if (fault?.kind === "not-writable") throw new UsageError(`--${flag} ${dir}: ${fault.text}; nothing was written (expected a folder it may write, for ${holds})`);
  if (fault) throw new UsageError(`--${flag} ${dir}: ${fault.text}; nothing was written (expected an absent or empty folder for ${holds})`);
}

/** Where a vision folder does run, for errors that refuse one where a language model is needed. */
export const VISION_USE = `vision models run with finetune or eval on an image task (--task ${IMAGE_TASK_NAMES.join("|")}), logits --pixel-values, info and count`;

/**
 * Refuses a model folder without config.json (bad input, exit 1, as `info` says it; the error names the flag),
 * where a command loads the model: otherwise a missing tokenizer or an unreadable config.json would be reported instead.
 */
export function checkModelFolder(flag: string, dir: string): void {
  if (!existsSync(join(dir, "config.json"))) {
    throw new Error(`--${flag} ${dir}: no config.json (expected a Hugging Face model folder: config.json, weights, tokenizer files)`);
  }
}

/**
 * Refuses a vision checkpoint (config.json's model_type vit, clip_vision_model, clip) where a command needs a
 * language model, naming the flag and the model_type, before a missing tokenizer or the like would be reported.
 * Throws UsageError (exit 2).
 */
export function checkLanguageModel(flag: string, dir: string): void {
  const type = modelTypeOf(dir);
  if (isVisionModelType(type)) {
    throw new UsageError(`--${flag} ${dir}: model_type ${JSON.stringify(type)} (config.json) is a vision model; this command needs a language model ` +
      `(${SUPPORTED_MODEL_TYPES.join(", ")}); ${VISION_USE}`);
  }
}
