// One fine-tuning run as the paper runs it: sample the task's data, attach a
// PEFT method, train, evaluate the best epoch on test, and write the run
// folder (adapter/, metrics.json, predictions.jsonl, train.log, loss.svg) without touching
// anything that was there.
import { join, resolve } from "node:path";
import { getDefaultDevice, setDefaultDevice, type DType } from "../engine/index.js";
import { loadCausalLM } from "../models/registry.js";
import type { CausalLM } from "../models/causal-lm.js";
import { BpeTokenizer } from "../tokenizer/bpe-tokenizer.js";
import { PeftModel } from "../peft/peft-model.js";
import type { MethodConfig } from "../peft/method.js";
import { getTask } from "../tasks/registry.js";
import { loadTaskData, type SampleSizes, DEFAULT_SIZES } from "../tasks/sampling.js";
import { maxLength, predict, writePredictions, type Metrics } from "../eval/evaluate.js";
import { RANDMASK_VERSION } from "../version.js";
import { encodeOptions } from "../eval/encode.js";
import { checkTokenIds } from "../tokenizer/vocab-check.js";
import { prepare } from "./objectives.js";
import { train, stepsPerEpoch, type Distance, type TrainOptions } from "./trainer.js";
import { checkRunStart, methodLine, openRunLog, parameterCounts, prepareOutDir, writeRunResults, type RunRecordBase } from "./run-folder.js";
import { hessianNorm, type HessianEstimate } from "../analysis/hessian.js";

/**
 * Hessian ℓ2 norms a run measures (the paper's Figure 4a): before training (the method at
 * initialisation) and/or after (the weights the adapter holds), each exactly as
 * `randmask hessian` with the run's seed and sample sizes would measure it.
 */
export interface RunHessianOptions {
  when: ("before" | "after")[];
  /** Training examples the loss is averaged over (drawn with the run's seed from its training sample). */
  examples: number;
  /** Examples per Hessian-vector product pass (memory only). */
  batchSize: number;
  /** Power-iteration steps at most. */
  maxIters: number;
  /** Stop when the eigenvalue's relative change is below this. */
  tol: number;
}

/** One measurement as metrics.json records it. */
export interface HessianRecord {
  norm: number; eigenvalue: number; iterations: number; converged: boolean; relative_change: number | null;
  examples: number; seed: number; tol: number; max_iters: number; wall_time_s: number;
}

export interface FinetuneOptions {
  modelDir: string;
  tokenizerDir?: string;
  task: string;
  dataDir: string;
  method: string;
  methodOptions: MethodConfig;
  dtype: DType;
  /** Where the model, adapter, batches and optimizer state live ("cpu", "cuda", "cuda:N"); default cpu. */
  device?: string;
  out: string;
  sizes?: SampleSizes;
  train: Omit<TrainOptions, "log" | "quiet">;
  quiet?: boolean;
  /** Recompute layers in backward instead of keeping activations (less memory, ~1.5× step time). */
  gradientCheckpointing?: boolean;
  /** How the adapter is written (see PeftModel.save). */
  save?: { storeIndices?: boolean; format?: "randmask" | "peft" };
  /** False leaves `test` null (an LR sweep scores only the chosen run on test). Default true. */
  evaluateTest?: boolean;
  /** Hessian norms to measure in this process (before and/or after training); none by default. */
  hessian?: RunHessianOptions;
}

export interface RunRecord extends RunRecordBase<Metrics> {
  diverged: { step: number; epoch: number; reason: string } | null;
  best_epoch: number | null;
  dev_per_epoch: { epoch: number; train_loss: number; dev: Metrics; distance: Distance }[];
  data: { task: string; seed: number; train: number; dev: number; test: number; fallback_from_validation: boolean };
  /** Hessian ℓ2 norms when asked for (FinetuneOptions.hessian); `after` is null when no epoch completed. */
  hessian?: { before: HessianRecord | null; after: HessianRecord | null };
}

/** Throws RangeError naming the first invalid field of a RunHessianOptions. */
export function checkHessianOptions(h: RunHessianOptions): void {
  if (!Array.isArray(h.when) || h.when.length === 0 || !h.when.every((w) => w === "before" || w === "after")) {
    throw new RangeError(`hessian.when: expected a non-empty list of before, after`);
  }
  for (const k of ["examples", "batchSize", "maxIters"] as const) {
    if (!(Number.isSafeInteger(h[k]) && h[k] > 0)) throw new RangeError(`hessian.${k}: expected a positive integer, got ${JSON.stringify(h[k])}`);
  }
  if (!(typeof h.tol === "number" && h.tol > 0 && Number.isFinite(h.tol))) throw new RangeError(`hessian.tol: expected a positive number, got ${JSON.stringify(h.tol)}`);
}

export async function finetune(o: FinetuneOptions): Promise<RunRecord> {
  const started = Date.now();
  const out = resolve(o.out);
  // Everything is read and checked before --out is created, so a run that
  // fails validation leaves nothing behind and can simply be rerun.
  checkRunStart(out, o.modelDir, o.train);
  if (o.hessian) checkHessianOptions(o.hessian);
  const device = o.device ?? "cpu";
  // checkpoint() calls back into JS from backward, which CUDA's autograd runs on its own thread
  if (device !== "cpu" && o.gradientCheckpointing) throw new Error(`--gradient-checkpointing: CPU only; drop it with --device ${device}`);
  const task = getTask(o.task, o.dataDir);
  const sampled = loadTaskData(task, o.dataDir, o.train.seed, o.sizes ?? DEFAULT_SIZES);
  const tok = BpeTokenizer.fromDir(o.tokenizerDir ?? o.modelDir);
  const outerDevice = getDefaultDevice();
  setDefaultDevice(device);
  try {
    return await finetuneOn(o, { started, out, device, task, sampled, tok });
  } finally {
    setDefaultDevice(outerDevice);
  }
}

interface Prepared {
  started: number; out: string; device: string; task: ReturnType<typeof getTask>;
  sampled: ReturnType<typeof loadTaskData>; tok: BpeTokenizer;
}

async function finetuneOn(o: FinetuneOptions, { started, out, device, task, sampled, tok }: Prepared): Promise<RunRecord> {
  const model = loadCausalLM(o.modelDir, { dtype: o.dtype });
  model.gradientCheckpointing = o.gradientCheckpointing ?? false;
  const totalSteps = stepsPerEpoch(sampled.train.length, o.train.batchSize) * o.train.epochs;
  const methodOptions = o.method === "adalora" ? { totalSteps, ...o.methodOptions } : o.methodOptions;
  let peft: PeftModel<CausalLM> | undefined;
  try {
    peft = PeftModel.create(model, o.method, methodOptions);
    // every example tokenised now (a prefix's virtual tokens take positions), so a row that cannot be scored or trained fails before --out exists
    const maxLen = maxLength(model);
    const ids: number[][] = prepare(tok, task.kind, task.objective, sampled.train, maxLen)
      .flatMap((p) => (p.kind === "options" ? p.rows.map((r) => r.ids) : [p.row.ids]));
    if (task.kind === "classification") for (const split of [sampled.dev, sampled.test]) ids.push(...encodeOptions(tok, split, maxLen).flat().map((r) => r.ids));
    checkTokenIds(ids, model.config.vocabSize, { tokenizer: `the tokenizer in ${o.tokenizerDir ?? o.modelDir}`, config: join(o.modelDir, "config.json") });
  } catch (e) {
    peft?.remove();
    model.dispose();
    throw e;
  }

  prepareOutDir(out);
  const log = openRunLog(out, o.quiet ?? false);
  log(`task ${task.name}: ${sampled.sizes.train} train / ${sampled.sizes.dev} dev / ${sampled.sizes.test} test` +
    `${sampled.fallback ? " (drawn from the validation split: the train split is missing or tiny)" : ""}`);
  log(methodLine(o.method, peft));

  const hessian = o.hessian;
  const measure = (when: "before" | "after"): HessianRecord | null => {
    if (!hessian?.when.includes(when)) return null;
    const t0 = Date.now();
    const est: HessianEstimate & { examples: number } = hessianNorm(peft, tok, task, sampled.train,
      { examples: hessian.examples, batchSize: hessian.batchSize, maxIters: hessian.maxIters, tol: hessian.tol, seed: o.train.seed });
    const rec: HessianRecord = { norm: est.norm, eigenvalue: est.eigenvalue, iterations: est.iterations, converged: est.converged,
      relative_change: Number.isNaN(est.relativeChange) ? null : est.relativeChange, examples: est.examples, seed: o.train.seed,
      tol: hessian.tol, max_iters: hessian.maxIters, wall_time_s: (Date.now() - t0) / 1000 };
    log(`hessian ${when} training: ‖H‖₂ ≈ ${est.norm.toPrecision(6)} (${est.iterations} iterations, ${est.converged ? "converged" : "NOT converged"})`);
    return rec;
  };

  try {
    const before = measure("before");
    const result = await train(peft, tok, task, sampled, { ...o.train, log, quiet: o.quiet ?? false });
    // test metrics only for weights that are not diverged: the best completed epoch
    const tested = result.bestEpoch !== null && (o.evaluateTest ?? true)
      ? predict(model, tok, task.kind, sampled.test, { batchRows: o.train.evalBatchRows }) : null;
    const test = tested?.metrics ?? null;
    if (tested) {
      log(`test (epoch ${result.bestEpoch} weights): ${JSON.stringify(test)}`);
      writePredictions(join(out, "predictions.jsonl"), tested.predictions);
    }
    if (result.bestEpoch !== null) peft.save(join(out, "adapter"), o.save);
    // after: the saved (best-epoch) weights, the ones `randmask hessian --adapter` reads back
    const after = result.bestEpoch !== null ? measure("after") : null;

    const record: RunRecord = {
      status: result.status,
      diverged: result.diverged ?? null,
      test,
      best_dev: result.bestDev,
      best_epoch: result.bestEpoch,
      dev_per_epoch: result.epochs.map((e) => ({ epoch: e.epoch, train_loss: e.trainLoss, dev: e.dev, distance: e.distance })),
      distance_from_init: result.distance,
      train_loss: result.losses,
      ...parameterCounts(peft),
      wall_time_s: (Date.now() - started) / 1000,
      data: { task: task.name, seed: o.train.seed, ...sampled.sizes, fallback_from_validation: sampled.fallback },
      config: { model: o.modelDir, task: o.task, method: o.method, method_config: peft.instance.config, dtype: o.dtype, device, ...o.train },
      method_state: peft.instance.stateMeta(),
      ...(hessian ? { hessian: { before, after } } : {}),
      randmask_version: RANDMASK_VERSION,
    };
    await writeRunResults(out, record, result.losses, { title: `${task.name} · ${o.method} · lr ${o.train.lr}`, yTitle: "loss (nats/token)" });
    return record;
  } finally {
    peft.remove();
    model.dispose();
  }
}
