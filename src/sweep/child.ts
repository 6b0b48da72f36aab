// One sweep run in its own process (so a crash or a kill stays isolated):
// `node child.js RUN_ID CONFIG_JSON OUT_DIR`. The parent holds our stdin open;
// when it dies the pipe closes and we exit, so no orphan keeps training.
import { finetune } from "../train/run.js";
import { finetuneImages } from "../train/image-run.js";
import { isImageTask } from "../tasks/image-tasks.js";
import { setDefaultDevice } from "../engine/index.js";
import type { TrainOptions } from "../train/trainer.js";
import type { ImageTrainOptions } from "../train/image-trainer.js";
import type { SampleSizes } from "../tasks/sampling.js";
import type { RunConfig } from "./spec.js";

process.stdin.on("end", () => process.exit(143));
process.stdin.resume();

const [, configJson, out] = process.argv.slice(2);
const c = JSON.parse(configJson) as RunConfig;
try {
  if (isImageTask(c.task)) {
    // as `finetune --device` does for image tasks (the text path sets it itself, from `device`)
    if (c.device !== undefined) setDefaultDevice(c.device);
    const s = c.sizes as Partial<SampleSizes>;
    await finetuneImages({
      modelDir: c.model, task: c.task, dataDir: c.dataDir, method: c.method, methodOptions: c.methodOptions, dtype: c.dtype, out,
      sizes: { train: s.train, val: s.dev, test: s.test }, train: c.train as Omit<ImageTrainOptions, "log" | "quiet">, quiet: true,
    });
  } else {
    await finetune({
      modelDir: c.model, tokenizerDir: c.tokenizer ?? undefined, task: c.task, dataDir: c.dataDir, method: c.method,
      methodOptions: c.methodOptions, dtype: c.dtype, out, sizes: c.sizes as SampleSizes, train: c.train as Omit<TrainOptions, "log" | "quiet">, quiet: true,
      gradientCheckpointing: c.gradientCheckpointing, device: c.device, hessian: c.hessian,
    });
  }
  process.exit(0);
} catch (e) {
  process.stderr.write(`${(e as Error).message}\n`);
  if (process.env.RANDMASK_DEBUG) process.stderr.write(`${(e as Error).stack}\n`);
  process.exit(1);
}
