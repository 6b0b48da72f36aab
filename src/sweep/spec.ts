// Sweep files: the paper's grids (model × task × method × trainable ratio ×
// learning rate × seed × epochs) as one JSON or YAML file, expanded into fully
// resolved run configurations, each identified by a hash of its configuration.
import { createHash } from "node:crypto";
import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { checkDevice, type DType } from "../engine/index.js";
import { unreadOptions, type MethodConfig } from "../peft/method.js";
import { getMethod } from "../peft/registry.js";
import { modelShapes, shapesOf } from "../peft/shapes.js";
import { isVisionModelDir, loadVisionModel } from "../models/vision/index.js";
import { isImageTask, loadImageTask } from "../tasks/image-tasks.js";
import { IMAGE_TRAIN_DEFAULTS, imageStepDefaults, type ImageTrainOptions } from "../train/image-trainer.js";
import { readConfig } from "../models/config.js";
import { getTask } from "../tasks/registry.js";
import { DEFAULT_SIZES, type SampleSizes } from "../tasks/sampling.js";
import { SCHEDULES } from "../train/schedule.js";
import { TRAIN_DEFAULTS, type TrainOptions } from "../train/trainer.js";
import { checkHessianOptions, type RunHessianOptions } from "../train/run.js";

/** Everything one fine-tuning run depends on; its hash is the run's identity. */
export interface RunConfig {
  /** Absolute path of the model folder. */
  model: string;
  tokenizer: string | null;
  task: string;
  /** Absolute path of the data folder. */
  dataDir: string;
  method: string;
  /** The method's raw options (trainableRatio, and seed = the run's seed unless given). */
  methodOptions: MethodConfig;
  dtype: DType;
  /** Image tasks: train / dev (validation, held out of train) / test counts, the whole split where a key is absent. */
  sizes: SampleSizes | Partial<SampleSizes>;
  /** Text tasks: epochs-based options; image tasks: ImageTrainOptions (steps, warm-up steps, Appendix B.2's defaults). */
  train: Omit<TrainOptions, "log" | "quiet"> | Omit<ImageTrainOptions, "log" | "quiet">;
  gradientCheckpointing: boolean;
  /** Hessian norms measured inside the run (absent: none, and the id is what it was before this field existed). */
  hessian?: RunHessianOptions;
  /** "cuda" / "cuda:N" when the file says so; absent (the CPU) otherwise, so older files keep their run ids. */
  device?: string;
}

export interface SweepRun { id: string; config: RunConfig }
export interface Sweep { name: string; file: string; runs: SweepRun[] }

export class SweepFileError extends Error {
  constructor(file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = "SweepFileError";
  }
}

type TrainFixed = Record<string, unknown>;
const TRAIN_KEYS = Object.keys(TRAIN_DEFAULTS).filter((k) => !["lr", "epochs", "seed"].includes(k));
const IMAGE_KEYS = Object.keys(IMAGE_TRAIN_DEFAULTS).filter((k) => k !== "seed");
const GRID_KEYS = ["lrs", "seeds", "epochs", "train", "options", "hessian"] as const;
/** `randmask hessian`'s defaults. */
const HESSIAN_DEFAULTS: RunHessianOptions = { when: ["before", "after"], examples: 64, batchSize: 8, maxIters: 100, tol: 1e-3 };
const TOP_KEYS = ["name", "models", "tokenizer", "tasks", "dataDir", "dtype", "sizes", "gradientCheckpointing", "device", "methods", ...GRID_KEYS];

/** JSON with sorted keys: equal configurations give equal text, hence equal ids. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(",")}]`;
  if (v !== null && typeof v === "object") {
    return `{${Object.keys(v).sort().filter((k) => (v as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((v as Record<string, unknown>)[k])}`).join(",")}}`;
  }
  return JSON.stringify(v);
}

/** The run's identity: the first 16 hex digits of sha256 over its canonical configuration. */
export function runId(config: RunConfig): string {
  return createHash("sha256").update(canonicalJson(config)).digest("hex").slice(0, 16);
}

/**
 * Reads a sweep file (`.json`, or `.yaml`/`.yml`) and expands it into runs.
 * Paths in it are relative to the file. Throws SweepFileError naming the file
 * and key for anything malformed, an unknown method, task or method option (or
 * one the entry's method does not read), or a missing model folder, before anything is written.
 */
export function loadSweep(file: string): Sweep {
  if (!existsSync(file)) throw new SweepFileError(file, "not found");
  if (!statSync(file).isFile()) throw new SweepFileError(file, "is a folder, expected a sweep file (JSON or YAML)");
  const text = readFileSync(file, "utf8").replace(/^\uFEFF/, ""); // the byte-order mark Windows editors write
  let raw: unknown;
  try {
    raw = /\.ya?ml$/i.test(file) ? parseYaml(text) : JSON.parse(text);
  } catch (e) {
    throw new SweepFileError(file, `not valid ${/\.ya?ml$/i.test(file) ? "YAML" : "JSON"} (${(e as Error).message})`);
  }
  return expandSweep(raw, file);
}

export function expandSweep(raw: unknown, file: string): Sweep {
  const fail = (msg: string): never => { throw new SweepFileError(file, msg); };
  const base = dirname(resolve(file));
  const top = object(raw, "the top level", fail);
  unknownKeys(top, TOP_KEYS, "", fail);
  const models = list(top.models, "models", fail, isString, "folder paths").map((m) => resolve(base, m));
  const tasks = list(top.tasks, "tasks", fail, isString, "task names");
  if (typeof top.dataDir !== "string") fail("dataDir: expected the data folder's path");
  const dataDir = resolve(base, top.dataDir as string);
  const tokenizer = top.tokenizer === undefined || top.tokenizer === null ? null : resolve(base, string(top.tokenizer, "tokenizer", fail));
  const dtype = dtypeOf(top.dtype, fail);
  const sizes = sizesOf(top.sizes, fail);
  // image tasks: only the sizes the file gives (the rest: whole splits, see imageSplits)
  const imageSizes: Partial<SampleSizes> = top.sizes === undefined ? {} : Object.fromEntries(Object.entries(sizes).filter(([k]) => (top.sizes as Record<string, unknown>)[k] !== undefined));
  const checkpointing = top.gradientCheckpointing === undefined ? false : bool(top.gradientCheckpointing, "gradientCheckpointing", fail);
  const device = deviceOf(top.device, fail);
  if (device && checkpointing) fail(`gradientCheckpointing: CPU only; drop it with device ${device}`);
  for (const t of tasks) { if (!isImageTask(t)) try { getTask(t, dataDir); } catch (e) { fail(`tasks: ${(e as Error).message}`); } }
  const shapes = models.map((m) => {
    if (!existsSync(join(m, "config.json"))) fail(`models: ${m} has no config.json`);
    const vision = isVisionModelDir(m);
    const wrong = tasks.filter((t) => isImageTask(t) !== vision);
    if (wrong.length) fail(`models: ${m} is ${vision ? "a vision" : "a language"} model, but task(s) ${wrong.join(", ")} need ${vision ? "a language" : "a vision"} model`);
    if (!vision) return shapesOf(readConfig(join(m, "config.json")));
    // a vision checkpoint's shapes depend on its tensors (classifier, pooler, projection)
    const model = loadVisionModel(m);
    try { return modelShapes(model); } finally { model.dispose(); }
  });

  const entries = list(top.methods, "methods", fail, (v): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v), "objects");
  const runs: SweepRun[] = [];
  entries.forEach((entry, i) => {
    const at = `methods[${i}]`;
    unknownKeys(entry, ["method", "trainableRatios", ...GRID_KEYS], `${at}.`, fail);
    const method = string(entry.method, `${at}.method`, fail);
    let def;
    try { def = getMethod(method); } catch (e) { fail(`${at}.method: ${(e as Error).message}`); }
    // a method entry's own grid replaces the top level's
    const grid = (key: "lrs" | "seeds" | "epochs", check: (v: unknown) => v is number, what: string, dflt?: number): number[] => {
      const [v, where] = entry[key] !== undefined ? [entry[key], `${at}.${key}`] : [top[key], key];
      return v === undefined && dflt !== undefined ? [dflt] : list(v, where, fail, check, what);
    };
    const lrs = grid("lrs", (v): v is number => typeof v === "number" && v > 0 && Number.isFinite(v), "positive numbers");
    const seeds = grid("seeds", (v): v is number => Number.isSafeInteger(v) && (v as number) >= 0, "non-negative integers", TRAIN_DEFAULTS.seed);
    const epochs = grid("epochs", (v): v is number => Number.isSafeInteger(v) && (v as number) > 0, "positive integers", TRAIN_DEFAULTS.epochs);
    const ratios: (number | undefined)[] = entry.trainableRatios === undefined ? [undefined]
      : list(entry.trainableRatios, `${at}.trainableRatios`, fail, (v): v is number => typeof v === "number" && v > 0 && v <= 1, "numbers in (0, 1]");
    const trainRaw = { ...(top.train === undefined ? {} : object(top.train, "train", fail)),
      ...(entry.train === undefined ? {} : object(entry.train, `${at}.train`, fail)) };
    const trainAt = entry.train !== undefined ? `${at}.train` : "train";
    const fixedFor = (task: string) => trainOf(trainRaw, trainAt, fail, isImageTask(task));
    // a method entry's hessian replaces the top level's; `hessian: false` turns it off for the entry
    const hessian = entry.hessian !== undefined ? hessianOf(entry.hessian, `${at}.hessian`, fail)
      : top.hessian !== undefined ? hessianOf(top.hessian, "hessian", fail) : undefined;
    const own = entry.options === undefined ? {} : object(entry.options, `${at}.options`, fail);
    const options = { ...(top.options === undefined ? {} : object(top.options, "options", fail)), ...own };
    // an option the method does not read would be ignored silently: refused, as finetune refuses its flag
    // (but `seed`: every run's methodOptions carry one, which a queued job's config brings back here)
    const unread = unreadOptions(def!, options).filter((k) => k !== "seed").map((k) => (k in own ? `${at}.options.${k}` : `options.${k}`));
    if (entry.trainableRatios !== undefined && !def!.options.includes("trainableRatio")) unread.push(`${at}.trainableRatios`);
    if (unread.length > 0) {
      fail(`${unread.join(", ")}: not ${unread.length > 1 ? "options" : "an option"} of method ${method} ` +
        `(its options: ${def!.options.length ? def!.options.join(", ") : "none"})`);
    }
    models.forEach((model, mi) => {
      // image runs count steps (train.steps), not epochs
      for (const task of tasks) for (const ratio of ratios) for (const lr of lrs) for (const ep of isImageTask(task) ? [0] : epochs) for (const seed of seeds) {
        const methodOptions: MethodConfig = { ...options, ...(ratio === undefined ? {} : { trainableRatio: ratio }) };
        if (methodOptions.seed === undefined) methodOptions.seed = seed; // the mask follows the run's seed, as in finetune
        try { def!.resolveConfig(methodOptions, shapes[mi]); } catch (e) { fail(`${at}: ${(e as Error).message}`); }
        const image = isImageTask(task);
        const config: RunConfig = { model, tokenizer: image ? null : tokenizer, task, dataDir, method, methodOptions, dtype,
          sizes: image ? imageSizes : sizes,
          train: (image ? { ...fixedFor(task), lr, seed } : { ...fixedFor(task), lr, epochs: ep, seed }) as RunConfig["train"], gradientCheckpointing: checkpointing, device,
          ...(hessian ? { hessian } : {}) };
        if (image && hessian) fail(`${at}.hessian: measured for text tasks only (task ${task} is an image task)`);
        runs.push({ id: runId(config), config });
      }
    });
  });
  const unique = new Map(runs.map((r) => [r.id, r]));
  const name = top.name === undefined ? file.replace(/^.*\//, "").replace(/\.(json|ya?ml)$/i, "") : string(top.name, "name", fail);
  return { name, file: resolve(file), runs: [...unique.values()] };
}

/**
 * Reads each (task, dataDir) of the sweep once, as a run would (text: every split file parsed; image: the
 * dataset's files found and read), so a missing or malformed data file is one error before any run starts
 * instead of a failure in every run. Not part of expandSweep: a queue worker validates each job without it.
 * @throws SweepFileError naming the sweep file, the task and the data file.
 */
export function checkSweepData(sweep: Sweep): void {
  const seen = new Set<string>();
  for (const { config: c } of sweep.runs) {
    const key = JSON.stringify([c.task, c.dataDir]);
    if (seen.has(key)) continue;
    seen.add(key);
    try {
      if (isImageTask(c.task)) loadImageTask(c.task, c.dataDir);
      else getTask(c.task, c.dataDir).load(c.dataDir);
    } catch (e) {
      throw new SweepFileError(sweep.file, `dataDir: task ${c.task}: ${(e as Error).message}`);
    }
  }
}

// ------------------------------------------------------------ validation helpers

type Fail = (msg: string) => never;
const isString = (v: unknown): v is string => typeof v === "string" && v !== "";

function object(v: unknown, at: string, fail: Fail): Record<string, unknown> {
  if (v === null || typeof v !== "object" || Array.isArray(v)) fail(`${at}: expected an object`);
  return v as Record<string, unknown>;
}
function string(v: unknown, at: string, fail: Fail): string {
  if (!isString(v)) fail(`${at}: expected a non-empty string`);
  return v as string;
}
function bool(v: unknown, at: string, fail: Fail): boolean {
  if (typeof v !== "boolean") fail(`${at}: expected true or false`);
  return v as boolean;
}
function list<T>(v: unknown, at: string, fail: Fail, check: (x: unknown) => x is T, what: string): T[] {
  if (!Array.isArray(v) || v.length === 0 || !v.every(check)) fail(`${at}: expected a non-empty list of ${what}`);
  return v as T[];
}
function unknownKeys(o: Record<string, unknown>, known: readonly string[], prefix: string, fail: Fail): void {
  for (const k of Object.keys(o)) if (!known.includes(k)) fail(`unknown key '${prefix}${k}' (expected one of ${known.join(", ")})`);
}
/** undefined for the CPU (absent or "cpu"); a CUDA device this machine has, else a failure naming `device`. */
function deviceOf(v: unknown, fail: Fail): string | undefined {
  if (v === undefined || v === "cpu") return undefined;
  if (typeof v !== "string") fail(`device: expected cpu, cuda or cuda:N, got ${JSON.stringify(v)}`);
  try { return checkDevice(v as string); } catch (e) { return fail((e as Error).message); }
}
function dtypeOf(v: unknown, fail: Fail): DType {
  const map: Record<string, DType> = { fp32: "float32", float32: "float32", bf16: "bfloat16", bfloat16: "bfloat16" };
  if (v === undefined) return "float32";
  if (typeof v !== "string" || !(v in map)) fail(`dtype: expected fp32 or bf16, got ${JSON.stringify(v)}`);
  return map[v as string];
}
function sizesOf(v: unknown, fail: Fail): SampleSizes {
  if (v === undefined) return DEFAULT_SIZES;
  const o = object(v, "sizes", fail);
  unknownKeys(o, ["train", "dev", "test"], "sizes.", fail);
  const out = { ...DEFAULT_SIZES };
  for (const k of ["train", "dev", "test"] as const) {
    if (o[k] === undefined) continue;
    if (!Number.isSafeInteger(o[k]) || (o[k] as number) <= 0) fail(`sizes.${k}: expected a positive integer`);
    out[k] = o[k] as number;
  }
  return out;
}
function hessianOf(v: unknown, at: string, fail: Fail): RunHessianOptions | undefined {
  if (v === false || v === null) return undefined;
  const o = object(v, at, fail);
  unknownKeys(o, Object.keys(HESSIAN_DEFAULTS), `${at}.`, fail);
  const h = { ...HESSIAN_DEFAULTS, ...o } as RunHessianOptions;
  if (Array.isArray(h.when)) h.when = [...new Set(h.when)].sort() as RunHessianOptions["when"]; // [after, before] is the same run as [before, after]
  try { checkHessianOptions(h); } catch (e) { fail((e as Error).message.replace(/^hessian\./, `${at}.`)); }
  return h;
}
/** A run's fixed training options: text tasks' (TRAIN_DEFAULTS) or image tasks' (IMAGE_TRAIN_DEFAULTS, Appendix B.2), keys of the other kind ignored. */
function trainOf(o: Record<string, unknown>, at: string, fail: Fail, image: boolean): TrainFixed {
  unknownKeys(o, [...new Set([...TRAIN_KEYS, ...IMAGE_KEYS])], `${at}.`, fail);
  const keys = image ? IMAGE_KEYS : TRAIN_KEYS;
  const defaults = (image ? IMAGE_TRAIN_DEFAULTS : TRAIN_DEFAULTS) as unknown as Record<string, unknown>;
  const out: TrainFixed = Object.fromEntries(keys.map((k) => [k, defaults[k]]));
  for (const k of keys) {
    const v = o[k];
    if (v === undefined) continue;
    if (k === "schedule") {
      if (!SCHEDULES.includes(v as never)) fail(`${at}.schedule: expected ${SCHEDULES.join(", ")}`);
    } else if (["batchSize", "gradAccum", "evalBatchRows", "steps", "evalEvery"].includes(k)) {
      if (!Number.isSafeInteger(v) || (v as number) <= 0) fail(`${at}.${k}: expected a positive integer`);
    } else if (k === "warmupSteps") {
      if (!Number.isSafeInteger(v) || (v as number) < 0) fail(`${at}.${k}: expected a non-negative integer`);
    } else if (typeof v !== "number" || !Number.isFinite(v) || v < 0) fail(`${at}.${k}: expected a non-negative number`);
    out[k] = v;
  }
  // what finetune refuses as flags (--batch-size / --grad-accum, --warmup-ratio, --divergence-factor) would fail or mislead every run
  if ((out.batchSize as number) % (out.gradAccum as number) !== 0) fail(`${at}.batchSize: ${out.batchSize} must be a multiple of gradAccum ${out.gradAccum}`);
  if (typeof out.warmupRatio === "number" && out.warmupRatio >= 1) fail(`${at}.warmupRatio: expected a number in [0, 1)`);
  const factor = out.divergenceFactor;
  if (typeof factor === "number" && factor !== 0 && factor <= 1) fail(`${at}.divergenceFactor: expected 0 (off) or a number > 1`);
  // warm-up and validation interval scale with the steps as in finetune unless given
  if (image) for (const [k, v] of Object.entries(imageStepDefaults(out.steps as number))) if (o[k] === undefined) out[k] = v;
  if (image && (out.warmupSteps as number) >= (out.steps as number)) fail(`${at}.warmupSteps: ${out.warmupSteps} must be fewer than steps ${out.steps}`);
  return out;
}
