// The training loop for image classifiers (the paper's Appendix B.2): a
// vision tower with a PEFT method and a FIXED linear head, cross-entropy on
// the head's logits, AdamW (0.9, 0.999, 1e-8) with weight decay, a cosine
// schedule with linear warm-up over a fixed number of optimizer steps (batch
// 128 by default, split into micro-batches by gradient accumulation),
// validation accuracy at intervals keeping the best weights, and divergence
// ending the run cleanly (as the text loop, src/train/trainer.ts).
import { AdamW, clipGradNorm, crossEntropy, manualSeed, settle, tensor, tidy, type Tensor } from "../engine/index.js";
import type { ImageExample } from "../data/vision/index.js";
import type { VisionModel } from "../models/vision/common.js";
import type { LinearHead } from "../models/vision/head.js";
import { pixelBatch } from "../models/vision/features.js";
import type { PreprocessorConfig } from "../models/vision/preprocess.js";
import type { PeftModel } from "../peft/peft-model.js";
import { changeNorm } from "../peft/delta-norm.js";
import { Xoshiro128 } from "../peft/rng.js";
import { predictImages, type ImageMetrics } from "../eval/image-eval.js";
import { NonFiniteScoresError } from "../eval/non-finite.js";
import { lrAt, type ScheduleName } from "./schedule.js";
import { Progress } from "./progress.js";
import { BestWeights, snapshot } from "./snapshots.js";
import { lossDivergence } from "./divergence.js";
import type { Distance } from "./trainer.js";

export interface ImageTrainOptions {
  lr: number;
  /** Optimizer steps (Appendix B.2: 2000). */
  steps: number;
  /** Steps of linear warm-up (Appendix B.2: 200). */
  warmupSteps: number;
  /** Images per optimizer step (Appendix B.2: 128). */
  batchSize: number;
  /** Micro-batches per step (batchSize is split among them). */
  gradAccum: number;
  /** Global gradient-norm clip; 0 turns it off. */
  maxGradNorm: number;
  schedule: ScheduleName;
  /** AdamW's decoupled weight decay (Appendix B.2: 0.1). */
  weightDecay: number;
  /** A step loss above this multiple of the first step's marks divergence; 0 disables. */
  divergenceFactor: number;
  /** Validation every this many steps (and after the last); the best accuracy's weights are kept. */
  evalEvery: number;
  /** Data order and dropout. */
  seed: number;
  /** Images per forward pass when evaluating. */
  evalBatchRows: number;
  log: (line: string) => void;
  quiet: boolean;
}

/**
 * The warm-up and validation interval of a run of `steps` optimizer steps when not given, for finetune and
 * sweep files alike: Appendix B.2's warm-up share (200 of 2000 steps, rounded), and validation 4 times a run.
 */
export function imageStepDefaults(steps: number): { warmupSteps: number; evalEvery: number } {
  return { warmupSteps: Math.round(steps / 10), evalEvery: Math.max(1, Math.ceil(steps / 4)) };
}

/** Appendix B.2's setup, as `finetune` uses it for image tasks. */
export const IMAGE_TRAIN_DEFAULTS: Omit<ImageTrainOptions, "log" | "quiet" | "lr"> = {
  steps: 2000, ...imageStepDefaults(2000), batchSize: 128, gradAccum: 1, maxGradNorm: 1.0, schedule: "cosine", weightDecay: 0.1,
  divergenceFactor: 5, seed: 0, evalBatchRows: 64,
};

export interface ImageEvalRecord { step: number; trainLoss: number; val: ImageMetrics; distance: Distance }

export interface ImageTrainResult {
  status: "completed" | "diverged";
  diverged?: { step: number; reason: string };
  losses: { step: number; loss: number }[];
  evals: ImageEvalRecord[];
  /** The step whose weights the model holds at the end (best validation accuracy), or null. */
  bestStep: number | null;
  bestVal: ImageMetrics | null;
  steps: number;
  distance: Distance;
}

/**
 * Trains `peft`'s parameters (plus `extraParams`, e.g. a head being pretrained)
 * to classify `data.train` through `head`; ends holding the weights of the best
 * validation accuracy.
 * @throws Error for no training images or a batch size that gradAccum does not divide.
 */
export async function trainImages(peft: PeftModel<VisionModel>, head: LinearHead, p: PreprocessorConfig,
  data: { train: ImageExample[]; val: ImageExample[] }, o: ImageTrainOptions, extraParams: Tensor[] = []): Promise<ImageTrainResult> {
  if (data.train.length === 0) throw new Error("no training images");
  if (o.gradAccum < 1 || o.batchSize % o.gradAccum !== 0) throw new Error(`batch size ${o.batchSize} must be a multiple of gradient accumulation ${o.gradAccum}`);
  const model = peft.model;
  const params = [...peft.trainableParams(), ...extraParams];
  const opt = new AdamW(params, { lr: o.lr, weightDecay: o.weightDecay, beta1: 0.9, beta2: 0.999, eps: 1e-8 });
  const micro = o.batchSize / o.gradAccum;
  const result: ImageTrainResult = { status: "completed", losses: [], evals: [], bestStep: null, bestVal: null, steps: 0, distance: { trainable: 0, weight: null } };
  const initial = snapshot(params);
  const distance = (): Distance => ({ trainable: changeNorm(params, initial), weight: peft.instance.weightDeltaNorm?.(initial.slice(0, params.length - extraParams.length)) ?? null });
  const best = new BestWeights();
  manualSeed(o.seed);
  const progress = new Progress("train", o.steps, "steps", process.stderr, o.quiet);

  // batches walk seeded permutations of the train set, a fresh one each pass
  let order: number[] = [];
  let pass = 0;
  const nextBatch = (): ImageExample[] => {
    const out: ImageExample[] = [];
    while (out.length < o.batchSize) {
      if (order.length === 0) {
        pass++;
        order = new Xoshiro128(o.seed, `image-order:${pass}`).shuffle(data.train.map((_, i) => i));
      }
      out.push(data.train[order.pop()!]);
    }
    return out;
  };

  try {
    let sinceEval = 0;
    for (let step = 1; step <= o.steps; step++) {
      model.training = true;
      const batch = nextBatch();
      const loss = tidy(() => {
        let sum = 0;
        for (let m = 0; m < batch.length; m += micro) {
          const part = batch.slice(m, m + micro);
          const labels = tensor(part.map((e) => e.label), [part.length], "int64");
          let l = crossEntropy(head.forward(model.features(pixelBatch(part, p))), labels).mul(part.length / batch.length);
          const reg = peft.instance.regularizationLoss?.();
          if (reg) l = l.add(reg.mul(part.length / batch.length));
          sum += l.item();
          if (Number.isFinite(sum)) l.backward();
        }
        return sum;
      });
      const lossFault = lossDivergence(loss, result.losses[0]?.loss ?? loss, o.divergenceFactor);
      if (lossFault) { result.status = "diverged"; result.diverged = { step, reason: lossFault }; break; }
      const gradNorm = clipGradNorm(params, o.maxGradNorm);
      if (!Number.isFinite(gradNorm)) { result.status = "diverged"; result.diverged = { step, reason: `gradient norm is ${gradNorm}` }; break; }
      opt.lr = lrAt(o.schedule, o.lr, step - 1, o.steps, o.warmupSteps);
      opt.step();
      peft.instance.afterOptimizerStep?.(step);
      opt.zeroGrad();
      result.losses.push({ step, loss });
      sinceEval += loss;
      progress.update(step, `steps · loss ${loss.toFixed(4)} · lr ${opt.lr.toExponential(2)} ·`);
      await settle();
      if (step % o.evalEvery === 0 || step === o.steps) {
        let val: ImageMetrics;
        try {
          val = predictImages(model, head, data.val, p, { batch: o.evalBatchRows }).metrics;
        } catch (e) {
          // a step left weights whose outputs overflow, which its loss (taken before the update) could not show
          if (!(e instanceof NonFiniteScoresError)) throw e;
          result.status = "diverged";
          result.diverged = { step, reason: `validation scores are not finite after step ${step} (the weights overflowed)` };
          break;
        }
        const n = step % o.evalEvery === 0 ? o.evalEvery : step % o.evalEvery;
        const record = { step, trainLoss: sinceEval / n, val, distance: distance() };
        sinceEval = 0;
        result.evals.push(record);
        o.log(`step ${step}: train loss ${record.trainLoss.toFixed(4)}, val accuracy ${val.accuracy.toFixed(4)} (${val.n}), distance from init ${JSON.stringify(record.distance)}`);
        if (result.bestVal === null || val.accuracy > result.bestVal.accuracy) {
          best.save(params);
          result.bestVal = val;
          result.bestStep = step;
        }
      }
    }
    result.steps = result.losses.length;
    if (result.diverged) o.log(`diverged at step ${result.diverged.step}: ${result.diverged.reason}`);
  } finally {
    opt.zeroGrad();
    model.training = false;
    best.restore(params);
    result.distance = distance();
    initial.forEach((t) => t.dispose());
  }
  return result;
}
