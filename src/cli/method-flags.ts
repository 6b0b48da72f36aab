// The PEFT method flags, declared once: every command that builds a mask or
// an adapter (count, finetune, …) takes exactly these, so one flag set gives
// one mask everywhere.
import { join } from "node:path";
import { PeftConfigError, type MethodConfig } from "../peft/method.js";
import { METHODS, getMethod } from "../peft/registry.js";
import { modelShapes, shapesOf, type ModelShapes } from "../peft/shapes.js";
import { readModelConfig } from "../models/registry.js";
import { isVisionModelDir, loadVisionModel } from "../models/vision/index.js";
import { UsageError, nonNegInt, positiveInt, type FlagDef, type FlagValues } from "./args.js";

const group = "method flags";

export const METHOD_FLAGS = {
  method: { type: "string", required: true, choices: METHODS.map((m) => m.name), description: "PEFT method", arg: "M", group },
  seed: { type: "integer", default: 0, check: nonNegInt, expected: "a non-negative integer", group,
    description: "run seed; the mask's seed unless --mask-seed is given" },
  "trainable-ratio": { type: "number", description: "trainable share of the WHOLE model (the paper's meaning); masks", group },
  density: { type: "number", description: "trainable share of each target matrix; masks (instead of --trainable-ratio)", group },
  "mask-kind": { type: "string", choices: ["bernoulli", "exact"], defaultText: "bernoulli", group,
    description: "each entry independently, or exactly the requested count" },
  "mask-seed": { type: "integer", check: nonNegInt, expected: "a non-negative integer", defaultText: "--seed", group,
    description: "seed of the mask alone" },
  "target-modules": { type: "list", arg: "q_proj,v_proj", defaultText: "the method's own", group,
    description: "module names or suffixes to adapt (re:REGEX for a pattern)" },
  "lora-r": { type: "integer", check: positiveInt, expected: "a positive integer", defaultText: "8", group, description: "LoRA rank" },
  "lora-alpha": { type: "number", defaultText: "16", group, description: "LoRA alpha (scale alpha/r)" },
  "lora-dropout": { type: "number", defaultText: "0", group, description: "LoRA input dropout" },
  "adalora-init-r": { type: "integer", defaultText: "12", group, description: "AdaLoRA initial rank per module" },
  "adalora-target-r": { type: "integer", defaultText: "8", group, description: "AdaLoRA average rank after pruning" },
  "adalora-tinit": { type: "integer", defaultText: "0", group, description: "AdaLoRA steps before pruning starts" },
  "adalora-tfinal": { type: "integer", defaultText: "0", group, description: "AdaLoRA final steps at the target budget" },
  "adalora-orth-reg-weight": { type: "number", defaultText: "0.5", group, description: "AdaLoRA orthogonality regulariser weight" },
  bottleneck: { type: "integer", defaultText: "8", group, description: "adapter bottleneck width" },
  "num-virtual-tokens": { type: "integer", defaultText: "5", group, description: "prefix length" },
} as const satisfies Record<string, FlagDef>;

/** Flag → method option key (the methods validate values against the model's shapes). */
const OPTION_KEYS: Partial<Record<keyof typeof METHOD_FLAGS, string>> = {
  "trainable-ratio": "trainableRatio", density: "density", "mask-kind": "maskKind", "target-modules": "targetModules",
  "lora-r": "r", "lora-alpha": "alpha", "lora-dropout": "dropout", "adalora-init-r": "initR", "adalora-target-r": "targetR",
  "adalora-tinit": "tinit", "adalora-tfinal": "tfinal", "adalora-orth-reg-weight": "orthRegWeight", bottleneck: "bottleneck",
  "num-virtual-tokens": "numVirtualTokens",
};

type MethodFlag = Exclude<keyof typeof METHOD_FLAGS, "method" | "seed">;
/** Flag → option key for every method flag; --mask-seed sets the method's own seed. */
const KEY_OF_FLAG = { ...OPTION_KEYS, "mask-seed": "seed" } as Record<MethodFlag, string>;

/**
 * The flags each method reads (--method and --seed apply to every one); the others are refused.
 * Derived from the options each method declares (MethodDefinition.options), which sweep files are checked against too.
 */
export const FLAGS_OF_METHOD: Record<string, readonly MethodFlag[]> = Object.fromEntries(METHODS.map((m) =>
  [m.name, (Object.keys(KEY_OF_FLAG) as MethodFlag[]).filter((f) => m.options.includes(KEY_OF_FLAG[f]))]));

/**
 * A method's error with its option names (trainableRatio, r, …) replaced by the flags that set them,
 * and each of `extraNames`' keys, with the value after it ("totalSteps (1000)"), by its phrase.
 */
function withFlagNames(method: string, message: string, extraNames: Record<string, string>): string {
  const keys = Object.entries(OPTION_KEYS).filter(([flag]) => FLAGS_OF_METHOD[method]?.includes(flag as MethodFlag));
  let out = message;
  for (const [flag, key] of keys) out = out.replace(new RegExp(`\\b${key}\\b(?: \\(--[a-z-]+\\))?`, "g"), `--${flag}`);
  for (const [key, phrase] of Object.entries(extraNames)) out = out.replace(new RegExp(`\\b${key}\\b(?: \\([^)]*\\))?`, "g"), phrase);
  return out;
}

/** What a command that does not train says AdaLoRA's schedule is (the method's default length). */
const NO_TRAINING = { totalSteps: "AdaLoRA's default 1000 total steps (finetune counts them from --epochs, or --steps for image tasks)" };

/**
 * The method's resolved configuration for these flags on a model of these shapes (`extra`: options
 * the command adds, e.g. AdaLoRA's totalSteps; `extraNames`: how the error calls each, by the flags
 * that set it). Throws UsageError (exit 2) naming the flag: a method flag the chosen method does not
 * read, or a value the method refuses for this model.
 */
export function resolveMethodFlags(v: FlagValues<typeof METHOD_FLAGS>, shapes: ModelShapes, extra: MethodConfig = {},
  extraNames: Record<string, string> = NO_TRAINING): MethodConfig {
  const def = getMethod(v.method);
  const own = FLAGS_OF_METHOD[def.name] ?? [];
  const stray = (Object.keys(OPTION_KEYS) as MethodFlag[]).concat("mask-seed").filter((f) => v[f] !== undefined && !own.includes(f));
  if (stray.length > 0) {
    throw new UsageError(`${stray.map((f) => `--${f}`).join(", ")}: not ${stray.length > 1 ? "flags" : "a flag"} of --method ${def.name} ` +
      `(its flags: ${own.length ? own.map((f) => `--${f}`).join(", ") : "none besides --seed"})`);
  }
  try {
    return def.resolveConfig({ ...methodOptions(v), ...extra }, shapes);
  } catch (e) {
    if (e instanceof PeftConfigError) throw new UsageError(withFlagNames(def.name, e.message, extraNames));
    throw e;
  }
}

/**
 * The shapes a model folder's method flags are checked against: a language model's from config.json
 * alone; a vision checkpoint is loaded (float32, CPU default device; then freed) because its classifier,
 * pooler and projection are known only from its tensors. Throws Error naming the folder or file when unreadable.
 */
export function modelDirShapes(dir: string): ModelShapes {
  if (!isVisionModelDir(dir)) return shapesOf(readModelConfig(join(dir, "config.json")));
  const model = loadVisionModel(dir);
  try { return modelShapes(model); } finally { model.dispose(); }
}

/** The method options the flags give; the mask seed is --mask-seed, else --seed. */
export function methodOptions(v: FlagValues<typeof METHOD_FLAGS>): MethodConfig {
  const out: MethodConfig = {};
  for (const [flag, key] of Object.entries(OPTION_KEYS)) {
    const value = v[flag as keyof typeof METHOD_FLAGS];
    if (value !== undefined) out[key] = value;
  }
  out.seed = v["mask-seed"] ?? v.seed;
  return out;
}
