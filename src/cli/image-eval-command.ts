// `randmask eval` for image tasks: accuracy of a vision tower (with an adapter,
// if given) and its fixed head on a split of the seeded protocol.
import { loadVisionModel } from "../models/vision/index.js";
import { ViT } from "../models/vision/vit.js";
import { readPreprocessorConfig } from "../models/vision/preprocess.js";
import { PeftModel } from "../peft/peft-model.js";
import { imageSplits, loadImageTask } from "../tasks/image-tasks.js";
import { predictImages } from "../eval/image-eval.js";
import { writeFileAtomic } from "../io/atomic.js";
import { resolveHead } from "../train/image-head.js";
import { Progress } from "../train/progress.js";
import { UsageError } from "./args.js";
import { dtypeOf } from "./shared-flags.js";

export interface ImageEvalFlags {
  model: string; task: string; "data-dir": string; dtype: string; seed: number; split: string; "eval-batch": number;
  "train-size"?: number; "dev-size"?: number; "test-size"?: number; adapter?: string; head?: string; predictions?: string;
}

/** Prints {"task", "split", "adapter", "head", "accuracy", "n"} as one JSON line. */
export function evalImages(v: ImageEvalFlags): void {
  const ds = loadImageTask(v.task, v["data-dir"]);
  const splits = imageSplits(ds, { train: v["train-size"], val: v["dev-size"], test: v["test-size"] }, v.seed);
  const model = loadVisionModel(v.model, { dtype: dtypeOf(v.dtype) });
  try {
    const pre = readPreprocessorConfig(v.model, model.config);
    if (v.head === undefined && !(model instanceof ViT && model.hasClassifier)) {
      throw new UsageError(`--head FILE.safetensors is required: ${v.model} has no classifier (finetune writes the probe it fitted to --out/head.safetensors)`);
    }
    if (v.head === "probe") throw new UsageError("--head probe: eval uses the head the run was trained with; give its file (finetune's --out/head.safetensors)");
    const { head, source } = resolveHead(model, v.head, ds.classes.length, [], pre);
    const peft = v.adapter ? PeftModel.load(model, v.adapter) : null;
    const examples = v.split === "dev" ? splits.val : v.split === "train" ? splits.train : splits.test;
    const progress = new Progress(`eval ${v.task}/${v.split}`, examples.length, "images");
    const { metrics, predictions } = predictImages(model, head, examples, pre, { batch: v["eval-batch"], onProgress: (d) => progress.update(d) });
    if (v.predictions !== undefined) writeFileAtomic(v.predictions, predictions.map((p) => JSON.stringify(p)).join("\n") + "\n");
    process.stdout.write(JSON.stringify({ task: v.task, split: v.split, adapter: v.adapter ?? null, head: v.head ?? source, ...metrics }) + "\n");
    peft?.remove();
    if (source !== "checkpoint") head.dispose();
  } finally {
    model.dispose();
  }
}
