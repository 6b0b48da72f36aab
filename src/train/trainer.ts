// The training loop: AdamW, LR schedule, gradient accumulation and clipping,
// dev evaluation after each epoch keeping the best (load_best_model_at_end),
// and divergence ending the run cleanly: a NaN/Inf loss or gradient (or dev scores), or a
// loss that explodes past divergenceFactor × the first step's loss (in fp32 a
// run at a far too large LR rarely reaches NaN; it blows up, then collapses).
import { AdamW, clipGradNorm, manualSeed, settle, tidy } from "../engine/index.js";
import type { CausalLM } from "../models/causal-lm.js";
import type { PeftModel } from "../peft/peft-model.js";
import type { BpeTokenizer } from "../tokenizer/bpe-tokenizer.js";
import type { Example, TaskKind, TrainObjective } from "../tasks/types.js";
import { evaluate, headline, maxLength, type Metrics } from "../eval/evaluate.js";
import { NonFiniteScoresError } from "../eval/non-finite.js";
import { Xoshiro128 } from "../peft/rng.js";
import { batchLoss, prepare } from "./objectives.js";
import { lrAt, type ScheduleName } from "./schedule.js";
import { Progress } from "./progress.js";
import { BestWeights, snapshot } from "./snapshots.js";
import { lossDivergence } from "./divergence.js";
import { changeNorm } from "../peft/delta-norm.js";

export interface TrainOptions {
  lr: number;
  epochs: number;
  /** Examples per optimizer step. */
  batchSize: number;
  /** Micro-batches per step (batchSize is split among them). */
  gradAccum: number;
  /** Global gradient-norm clip; 0 turns it off. */
  maxGradNorm: number;
  schedule: ScheduleName;
  warmupRatio: number;
  weightDecay: number;
  /** A step loss above this multiple of the first step's marks divergence; 0 disables. */
  divergenceFactor: number;
  /** Data order and dropout. */
  seed: number;
  /** Sequences per forward pass when evaluating. */
  evalBatchRows: number;
  log: (line: string) => void;
  quiet: boolean;
}

/** ℓ2 distances from the initial weights: of the trainable tensors, and of the effective weight change (PeftInstance.weightDeltaNorm; null for methods without one). */
export interface Distance { trainable: number; weight: number | null }

/** The defaults of `randmask finetune` (MeZO/the paper's fine-tuning setup, constant LR). */
export const TRAIN_DEFAULTS: Omit<TrainOptions, "log" | "quiet"> = {
  lr: 1e-3, epochs: 5, batchSize: 8, gradAccum: 1, maxGradNorm: 1.0, schedule: "constant", warmupRatio: 0, weightDecay: 0,
  divergenceFactor: 5, seed: 0, evalBatchRows: 32,
};

export interface EpochRecord { epoch: number; trainLoss: number; dev: Metrics; distance: Distance }

export interface TrainResult {
  status: "completed" | "diverged";
  diverged?: { step: number; epoch: number; reason: string };
  /** Loss of every optimizer step. */
  losses: { step: number; loss: number }[];
  epochs: EpochRecord[];
  /** The epoch whose weights the model holds at the end (best dev), or null. */
  bestEpoch: number | null;
  bestDev: Metrics | null;
  steps: number;
  /** Distance from init of the weights the model holds at the end. */
  distance: Distance;
}

export function stepsPerEpoch(trainSize: number, batchSize: number): number {
  return Math.ceil(trainSize / batchSize);
}

export async function train(peft: PeftModel<CausalLM>, tok: BpeTokenizer, task: { kind: TaskKind; objective: TrainObjective },
  data: { train: Example[]; dev: Example[] }, o: TrainOptions): Promise<TrainResult> {
  if (data.train.length === 0) throw new Error("no training examples");
  if (o.gradAccum < 1 || o.batchSize % o.gradAccum !== 0) throw new Error(`batch size ${o.batchSize} must be a multiple of gradient accumulation ${o.gradAccum}`);
  const model = peft.model;
  const prepared = prepare(tok, task.kind, task.objective, data.train, maxLength(model));
  const params = peft.trainableParams();
  const opt = new AdamW(params, { lr: o.lr, weightDecay: o.weightDecay });
  const perEpoch = stepsPerEpoch(prepared.length, o.batchSize);
  const total = perEpoch * o.epochs;
  const warmup = Math.round(o.warmupRatio * total);
  const micro = o.batchSize / o.gradAccum;
  const result: TrainResult = { status: "completed", losses: [], epochs: [], bestEpoch: null, bestDev: null, steps: 0,
    distance: { trainable: 0, weight: null } };
  const best = new BestWeights();
  const initial = snapshot(params);
  const distance = (): Distance => ({ trainable: changeNorm(params, initial), weight: peft.instance.weightDeltaNorm?.(initial) ?? null });
  manualSeed(o.seed);
  // examples actually trained on: a last batch may be short, and a batch larger than the sample holds all of it
  const progress = new Progress("train", prepared.length * o.epochs, "ex", process.stderr, o.quiet);

  try {
    let step = 0;
    for (let epoch = 1; epoch <= o.epochs && result.status === "completed"; epoch++) {
      model.training = true;
      const order = new Xoshiro128(o.seed, `order:${epoch}`).shuffle(prepared.map((_, i) => i));
      let epochLoss = 0;
      for (let s = 0; s < perEpoch; s++) {
        const idx = order.slice(s * o.batchSize, (s + 1) * o.batchSize);
        const loss = tidy(() => {
          let sum = 0;
          for (let m = 0; m < idx.length; m += micro) {
            const part = idx.slice(m, m + micro);
            let l = batchLoss(model, part.map((i) => prepared[i])).mul(part.length / idx.length);
            const reg = peft.instance.regularizationLoss?.();
            if (reg) l = l.add(reg.mul(part.length / idx.length));
            sum += l.item();
            if (Number.isFinite(sum)) l.backward();
          }
          return sum;
        });
        step++;
        const lossFault = lossDivergence(loss, result.losses[0]?.loss ?? loss, o.divergenceFactor);
        if (lossFault) { result.status = "diverged"; result.diverged = { step, epoch, reason: lossFault }; break; }
        const gradNorm = clipGradNorm(params, o.maxGradNorm);
        if (!Number.isFinite(gradNorm)) { result.status = "diverged"; result.diverged = { step, epoch, reason: `gradient norm is ${gradNorm}` }; break; }
        opt.lr = lrAt(o.schedule, o.lr, step - 1, total, warmup);
        opt.step();
        peft.instance.afterOptimizerStep?.(step);
        opt.zeroGrad();
        result.losses.push({ step, loss });
        epochLoss += loss;
        progress.update((epoch - 1) * prepared.length + Math.min((s + 1) * o.batchSize, prepared.length), `examples · step ${step}/${total} · epoch ${epoch} · loss ${loss.toFixed(4)} ·`);
        await settle();
      }
      opt.zeroGrad();
      if (result.status === "diverged") break;
      let dev: Metrics;
      try {
        dev = evaluate(model, tok, task.kind, data.dev, { batchRows: o.evalBatchRows });
      } catch (e) {
        // the epoch's last step left weights whose outputs overflow: no later step's loss would tell
        if (!(e instanceof NonFiniteScoresError)) throw e;
        result.status = "diverged";
        result.diverged = { step, epoch, reason: `dev scores are not finite after step ${step} (the weights overflowed)` };
        break;
      }
      const record = { epoch, trainLoss: epochLoss / perEpoch, dev, distance: distance() };
      result.epochs.push(record);
      o.log(`epoch ${epoch}: train loss ${record.trainLoss.toFixed(4)}, dev ${JSON.stringify(dev)}, distance from init ${JSON.stringify(record.distance)}`);
      if (result.bestDev === null || headline(dev) > headline(result.bestDev)) {
        best.save(params);
        result.bestDev = dev;
        result.bestEpoch = epoch;
      }
    }
    result.steps = result.losses.length;
    if (result.diverged) o.log(`diverged at step ${result.diverged.step} (epoch ${result.diverged.epoch}): ${result.diverged.reason}`);
  } finally {
    opt.zeroGrad();
    model.training = false;
    best.restore(params);
    result.distance = distance();
    initial.forEach((t) => t.dispose());
  }
  return result;
}
