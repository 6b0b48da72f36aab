// What text (run.ts) and image (image-run.ts) fine-tuning runs share about
// their run folder: --out is refused when it holds anything, train.log gets
// every line timestamped (echoed to stderr unless quiet), and metrics.json
// plus the train-loss chart (loss.svg/png) are written at the end.
import { appendFileSync, existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { writeJsonAtomic } from "../io/atomic.js";
import { outputFolderFault } from "../io/output-folder.js";
import type { PeftModel } from "../peft/peft-model.js";
import type { Distance } from "./trainer.js";
import { lineChartSpec } from "../plot/line-chart.js";
import { renderChart } from "../plot/render.js";

/** metrics.json's fields common to text and image runs; `M` is the task's metrics (text: Metrics, image: ImageMetrics). */
export interface RunRecordBase<M> {
  status: "completed" | "diverged";
  /** Test metrics of the best dev (validation) weights; null when none completed or test was not asked for. */
  test: M | null;
  best_dev: M | null;
  /** ℓ2 distance from init of the saved (best) weights: trainable tensors and effective weight change. */
  distance_from_init: Distance;
  train_loss: { step: number; loss: number }[];
  trainable_params: number;
  trainable_ratio: number;
  total_params: number;
  wall_time_s: number;
  config: Record<string, unknown>;
  /** What the saved adapter records beyond its tensors (its config's "meta"; AdaLoRA: the ranks kept). */
  method_state: Record<string, unknown>;
  randmask_version: string;
}

/** Refuses an output folder that holds anything, or that is (or lies under) a file, so nothing the user had is overwritten; creates nothing. */
export function checkOutDir(out: string): void {
  const fault = outputFolderFault(out, { empty: true });
  if (fault) throw new Error(`--out ${out}: ${fault.text}${fault.kind === "file" ? ", expected a folder" : ""}; nothing was written`);
}

/** Refuses a non-empty output folder, then creates it. */
export function prepareOutDir(out: string): void {
  checkOutDir(out);
  mkdirSync(out, { recursive: true });
}

/**
 * The checks every run makes before reading data: an empty --out, an existing model folder, and a
 * batch size (examples or images per optimizer step) that gradAccum micro-batches divide.
 */
export function checkRunStart(out: string, modelDir: string, train: { batchSize: number; gradAccum: number }): void {
  checkOutDir(out);
  if (!existsSync(modelDir)) throw new Error(`${modelDir}: model folder does not exist`);
  if (train.gradAccum < 1 || train.batchSize % train.gradAccum !== 0) {
    throw new Error(`--batch-size ${train.batchSize} must be a multiple of --grad-accum ${train.gradAccum}`);
  }
}

/**
 * The run's log once `out` exists: `earlier` lines (already timestamped, logged before the folder could be made)
 * go first; each later line is appended to out/train.log with an ISO timestamp and echoed to stderr unless `quiet`.
 */
export function openRunLog(out: string, quiet: boolean, earlier: string[] = []): (line: string) => void {
  const logFile = join(out, "train.log");
  if (earlier.length) appendFileSync(logFile, earlier.map((l) => `${l}\n`).join(""));
  return (line: string) => {
    appendFileSync(logFile, `${new Date().toISOString()} ${line}\n`);
    if (!quiet) process.stderr.write(`${line}\n`);
  };
}

/** The log line naming the method and its trainable share of the base model. */
export function methodLine(method: string, peft: PeftModel): string {
  return `method ${method}: ${peft.trainableCount()} trainable of ${peft.base.numParameters} (${(peft.trainableRatio() * 100).toPrecision(3)}%)`;
}

/** metrics.json's parameter counts: trainable, their share of the base model's, and the base model's. */
export function parameterCounts(peft: PeftModel): { trainable_params: number; trainable_ratio: number; total_params: number } {
  return { trainable_params: peft.trainableCount(), trainable_ratio: peft.trainableRatio(), total_params: peft.base.numParameters };
}

/** Writes out/metrics.json (atomically) and the train-loss chart out/loss.svg and loss.png (per optimizer step). */
export async function writeRunResults<M>(out: string, record: RunRecordBase<M>, losses: { step: number; loss: number }[],
  chart: { title: string; yTitle: string }): Promise<void> {
  writeJsonAtomic(join(out, "metrics.json"), record);
  await renderChart(lineChartSpec([{ name: "train loss", points: losses.map((l) => [l.step, l.loss]) }],
    { title: chart.title, xTitle: "optimizer step", yTitle: chart.yTitle }), join(out, "loss"));
}
