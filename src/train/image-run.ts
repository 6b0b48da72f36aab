// One image fine-tuning run (the paper's Table 2 protocol, Appendix B.2): load
// the task's dataset and the vision tower, fix the head, attach a PEFT method,
// train for a number of steps, evaluate the best validation step on test, and
// write the run folder (adapter/, head.safetensors when a probe was fitted,
// metrics.json, predictions.jsonl, train.log, loss.svg/png) without touching
// anything that was there: every split image is decoded once before --out is made.
import { join, resolve } from "node:path";
import type { DType } from "../engine/index.js";
import { writeFileAtomic } from "../io/atomic.js";
import { loadVisionModel } from "../models/vision/index.js";
import { readPreprocessorConfig } from "../models/vision/preprocess.js";
import type { MethodConfig } from "../peft/method.js";
import { PeftModel } from "../peft/peft-model.js";
import { getMethod } from "../peft/registry.js";
import { modelShapes } from "../peft/shapes.js";
import type { VisionModel } from "../models/vision/common.js";
import { checkSplitImages, imageSplits, loadImageTask, type ImageSizes } from "../tasks/image-tasks.js";
import { Progress } from "./progress.js";
import { predictImages, type ImageMetrics } from "../eval/image-eval.js";
import { RANDMASK_VERSION } from "../version.js";
import { checkRunStart, methodLine, openRunLog, parameterCounts, prepareOutDir, writeRunResults, type RunRecordBase } from "./run-folder.js";
import { resolveHead, type HeadSource } from "./image-head.js";
import { trainImages, type ImageTrainOptions } from "./image-trainer.js";
import type { Distance } from "./trainer.js";

export interface ImageFinetuneOptions {
  modelDir: string;
  task: string;
  dataDir: string;
  method: string;
  methodOptions: MethodConfig;
  dtype: DType;
  out: string;
  sizes?: ImageSizes;
  /** `--head`: a head file, "probe", or absent (the checkpoint's classifier, else a probe). */
  head?: string;
  train: Omit<ImageTrainOptions, "log" | "quiet">;
  quiet?: boolean;
  save?: { storeIndices?: boolean };
  evaluateTest?: boolean;
}

export interface ImageRunRecord extends RunRecordBase<ImageMetrics> {
  diverged: { step: number; reason: string } | null;
  best_step: number | null;
  /** Always null / empty: image runs count steps, not epochs (kept so the sweep database reads either record). */
  best_epoch: null;
  dev_per_epoch: never[];
  dev_per_eval: { step: number; train_loss: number; dev: ImageMetrics; distance: Distance }[];
  /** Where the fixed head came from; "linear-probe" is a deviation from the paper's CLIP zero-shot head. */
  head: HeadSource;
  data: { task: string; seed: number; train: number; dev: number; test: number; classes: number };
}

export async function finetuneImages(o: ImageFinetuneOptions): Promise<ImageRunRecord> {
  const started = Date.now();
  const out = resolve(o.out);
  // everything is read and checked before --out is created
  checkRunStart(out, o.modelDir, o.train);
  if (o.train.warmupSteps >= o.train.steps) throw new Error(`--warmup-steps ${o.train.warmupSteps} must be fewer than --steps ${o.train.steps}`);
  const ds = loadImageTask(o.task, o.dataDir);
  const splits = imageSplits(ds, o.sizes ?? {}, o.train.seed);
  const checking = new Progress(`${o.task}: decoding each image once`, splits.train.length + splits.val.length + splits.test.length,
    "images", process.stderr, o.quiet ?? false);
  checkSplitImages(splits, (done) => checking.update(done));
  const model = loadVisionModel(o.modelDir, { dtype: o.dtype });
  const lines: string[] = [];
  const log = (line: string) => { lines.push(`${new Date().toISOString()} ${line}`); if (!o.quiet) process.stderr.write(`${line}\n`); };
  let peft: PeftModel<VisionModel>;
  let head;
  const pre = readPreprocessorConfig(o.modelDir, model.config);
  try {
    const methodOptions = o.method === "adalora" ? { totalSteps: o.train.steps, ...o.methodOptions } : o.methodOptions;
    // options checked before the (possibly slow) probe, which is fitted on the base features, before the method attaches
    getMethod(o.method).resolveConfig(methodOptions, modelShapes(model));
    head = resolveHead(model, o.head, ds.classes.length, splits.train, pre, log);
    peft = PeftModel.create<VisionModel>(model, o.method, methodOptions);
  } catch (e) {
    model.dispose();
    throw e;
  }

  prepareOutDir(out);
  const runLog = openRunLog(out, o.quiet ?? false, lines);
  runLog(`task ${o.task}: ${splits.train.length} train / ${splits.val.length} val (held out of train) / ${splits.test.length} test, ${ds.classes.length} classes`);
  runLog(`head: ${head.source} [${head.head.numClasses}, ${head.head.dim}] (fixed)`);
  runLog(methodLine(o.method, peft));
  if (head.source === "linear-probe") head.head.save(join(out, "head.safetensors"));

  try {
    const result = await trainImages(peft, head.head, pre, splits, { ...o.train, log: runLog, quiet: o.quiet ?? false });
    const tested = result.bestStep !== null && (o.evaluateTest ?? true)
      ? predictImages(model, head.head, splits.test, pre, { batch: o.train.evalBatchRows }) : null;
    if (tested) {
      runLog(`test (step ${result.bestStep} weights): ${JSON.stringify(tested.metrics)}`);
      writeFileAtomic(join(out, "predictions.jsonl"), tested.predictions.map((x) => JSON.stringify(x)).join("\n") + "\n");
    }
    if (result.bestStep !== null) peft.save(join(out, "adapter"), o.save);
    const record: ImageRunRecord = {
      status: result.status,
      diverged: result.diverged ?? null,
      test: tested?.metrics ?? null,
      best_dev: result.bestVal,
      best_step: result.bestStep,
      best_epoch: null,
      dev_per_epoch: [],
      dev_per_eval: result.evals.map((e) => ({ step: e.step, train_loss: e.trainLoss, dev: e.val, distance: e.distance })),
      distance_from_init: result.distance,
      train_loss: result.losses,
      ...parameterCounts(peft),
      head: head.source,
      wall_time_s: (Date.now() - started) / 1000,
      data: { task: o.task, seed: o.train.seed, train: splits.train.length, dev: splits.val.length, test: splits.test.length, classes: ds.classes.length },
      config: { model: o.modelDir, task: o.task, method: o.method, method_config: peft.instance.config, dtype: o.dtype, head: o.head ?? null, ...o.train },
      method_state: peft.instance.stateMeta(),
      randmask_version: RANDMASK_VERSION,
    };
    await writeRunResults(out, record, result.losses, { title: `${o.task} · ${o.method} · lr ${o.train.lr}`, yTitle: "cross-entropy (nats/image)" });
    return record;
  } finally {
    peft.remove();
    model.dispose();
    if (head.source !== "checkpoint") head.head.dispose();
  }
}
