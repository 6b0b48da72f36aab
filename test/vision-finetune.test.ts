// Image fine-tuning end to end (Appendix B.2's loop on the tiny fixtures):
// `finetune` / `eval` for image tasks, the head choices, gradient accumulation,
// reproducibility, and image tasks in sweep files.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadVisionModel, type VisionModel } from "../src/models/vision/index.js";
import { LinearHead } from "../src/models/vision/head.js";
import { ViT } from "../src/models/vision/vit.js";
import { readPreprocessorConfig } from "../src/models/vision/preprocess.js";
import { PeftModel } from "../src/peft/peft-model.js";
import { imageSplits, loadImageTask } from "../src/tasks/image-tasks.js";
import { IMAGE_TRAIN_DEFAULTS, trainImages } from "../src/train/image-trainer.js";
import { expandSweep, SweepFileError } from "../src/sweep/spec.js";
import { ResultsDb } from "../src/sweep/db.js";
import { repoRoot, sharedDir } from "./helpers.js";

const cli = join(repoRoot, "dist", "src", "cli", "main.js");
const vit = join(sharedDir, "fixtures", "vit-tiny");
const clip = join(sharedDir, "fixtures", "clip-vision-tiny");
const work = mkdtempSync(join(tmpdir(), "randmask-vft-"));
// the shared raw subsets written in the official formats (the pipeline script's writer)
const { writeCifar10, writeGtsrb } = await import(join(repoRoot, "scripts", "vision-data.mjs")) as Record<string, (src: string, out: string) => string>;
const cifar = writeCifar10(join(sharedDir, "data", "vision"), join(work, "cifar10")) as string;
const gtsrb = writeGtsrb(join(sharedDir, "data", "vision"), join(work, "gtsrb")) as string;
const env = { ...process.env, RANDMASK_THREADS: "1" };
const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { env, encoding: "utf8" });
const small = ["--steps", "6", "--batch-size", "16", "--eval-every", "3", "--train-size", "64", "--dev-size", "32", "--test-size", "48", "--quiet"];

test("finetune on an image task writes the run folder; eval of its adapter reproduces the test accuracy", () => {
  const out = join(work, "run-rm");
  const r = run("finetune", "--model", vit, "--task", "cifar10", "--data-dir", cifar, "--method", "random-mask", "--trainable-ratio", "0.01",
    "--lr", "1e-2", "--out", out, ...small);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(readdirSync(out).sort(), ["adapter", "loss.png", "loss.svg", "metrics.json", "predictions.jsonl", "train.log"]);
  const m = JSON.parse(readFileSync(join(out, "metrics.json"), "utf8"));
  assert.equal(m.head, "checkpoint");
  assert.deepEqual(m.data, { task: "cifar10", seed: 0, train: 64, dev: 32, test: 48, classes: 10 });
  assert.equal(m.train_loss.length, 6);
  assert.deepEqual(m.dev_per_eval.map((e: { step: number }) => e.step), [3, 6]);
  // B.2's defaults where no flag was given: cosine, weight decay 0.1, warm-up 10% of the steps
  assert.equal(m.config.schedule, "cosine");
  assert.equal(m.config.weightDecay, 0.1);
  assert.equal(m.config.warmupSteps, 1);
  assert.equal(m.trainable_ratio, m.trainable_params / 81226);
  const preds = readFileSync(join(out, "predictions.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
  assert.equal(preds.length, 48);
  assert.equal(preds.filter((p) => p.correct).length / 48, m.test.accuracy);
  const e = run("eval", "--model", vit, "--task", "cifar10", "--data-dir", cifar, "--adapter", join(out, "adapter"), "--test-size", "48", "--dev-size", "32");
  assert.equal(e.status, 0, e.stderr);
  assert.equal(JSON.parse(e.stdout).accuracy, m.test.accuracy);
});

test("a linear-probe head is fitted once, saved, and eval needs it back; class-count and modality mismatches are one clear error", () => {
  const out = join(work, "run-probe");
  const r = run("finetune", "--model", clip, "--task", "gtsrb", "--data-dir", gtsrb, "--method", "lora", "--lr", "1e-3", "--out", out, ...small);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(JSON.parse(readFileSync(join(out, "metrics.json"), "utf8")).head, "linear-probe");
  assert.ok(existsSync(join(out, "head.safetensors")));
  const acc = JSON.parse(readFileSync(join(out, "metrics.json"), "utf8")).test.accuracy;
  const e = run("eval", "--model", clip, "--task", "gtsrb", "--data-dir", gtsrb, "--adapter", join(out, "adapter"), "--head", join(out, "head.safetensors"),
    "--test-size", "48", "--dev-size", "32");
  assert.equal(e.status, 0, e.stderr);
  assert.equal(JSON.parse(e.stdout).accuracy, acc);
  assert.match(run("eval", "--model", clip, "--task", "gtsrb", "--data-dir", gtsrb).stderr, /--head FILE.safetensors is required: .* has no classifier/);
  const mismatch = run("finetune", "--model", vit, "--task", "gtsrb", "--data-dir", gtsrb, "--method", "lora", "--out", join(work, "x"), ...small);
  assert.match(mismatch.stderr, /the checkpoint's classifier has 10 classes but the task has 43; give --head FILE.safetensors with \[43, 64\] or --head probe/);
  assert.ok(!existsSync(join(work, "x")), "nothing written for a refused run");
  assert.match(run("finetune", "--model", vit, "--task", "sst2", "--data-dir", gtsrb, "--method", "lora", "--out", join(work, "y")).stderr,
    /--task sst2 is a text task, but --model .* is a vision model/);
});

test("image finetune checks method flags as count does, and refuses text-task flags: exit 2 naming the flag, --out never created", () => {
  const out = join(work, "refused");
  const cases: [string[], RegExp][] = [
    [["--method", "random-mask", "--trainable-ratio", "1e-2", "--lora-r", "4"], /--lora-r: not a flag of --method random-mask/],
    [["--method", "random-mask", "--trainable-ratio", "2"], /--trainable-ratio must be in \(0, 1\], got 2/],
    [["--method", "prefix"], /prefix-tuning needs a causal language model/],
    [["--method", "adalora", "--adalora-tinit", "4", "--adalora-tfinal", "2"], /--adalora-tinit \+ --adalora-tfinal \(6\) must be below --steps 6$/m],
    [["--method", "lora", "--epochs", "3"], /^randmask finetune: --epochs: text tasks only \(--task cifar10 is an image task; image tasks train for --steps/],
    [["--method", "lora", "--warmup-ratio", "0", "--gradient-checkpointing"], /--warmup-ratio, --gradient-checkpointing: text tasks only/],
  ];
  for (const [flags, re] of cases) {
    const r = run("finetune", "--model", vit, "--task", "cifar10", "--data-dir", cifar, ...flags, "--out", out, ...small);
    assert.equal(r.status, 2, `${flags.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, re);
    assert.doesNotMatch(r.stderr, /trainableRatio|numVirtualTokens|totalSteps|(?<!-)\btinit\b/);
    assert.ok(!existsSync(out), flags.join(" "));
  }
  // count says the same for the same flags
  const c = run("count", "--model", vit, "--method", "random-mask", "--trainable-ratio", "2");
  assert.equal(c.status, 2, c.stderr);
  assert.match(c.stderr, /--trainable-ratio must be in \(0, 1\], got 2/);
});

test("a corrupt test image is found before training: one error naming the file, --out never created", () => {
  const bad = join(work, "gtsrb-bad");
  cpSync(gtsrb, bad, { recursive: true });
  const broken = join(bad, "GTSRB", "Final_Test", "Images", "00500.ppm");
  truncateSync(broken, 2000);
  const out = join(work, "corrupt-out");
  // the whole test split (no --test-size): every image is decoded once before the model loads
  const r = run("finetune", "--model", clip, "--task", "gtsrb", "--data-dir", bad, "--method", "lora", "--out", out,
    "--steps", "6", "--batch-size", "16", "--eval-every", "3", "--train-size", "64", "--dev-size", "32", "--quiet");
  assert.equal(r.status, 1, r.stderr);
  assert.equal(r.stderr, `randmask finetune: ${broken}: truncated PPM: 32×32×3 needs 3072 bytes of pixels, file has 1987\n`);
  assert.ok(!existsSync(out), "nothing written");
});

test("gradient accumulation gives the same steps as one large batch; the same seed gives the same run", async () => {
  const ds = loadImageTask("cifar10", cifar);
  const splits = imageSplits(ds, { train: 32, val: 16 }, 0);
  const losses = async (gradAccum: number) => {
    const model = loadVisionModel(vit);
    const peft = PeftModel.create<VisionModel>(model, "full");
    const r = await trainImages(peft, LinearHead.fromClassifier(model as ViT), readPreprocessorConfig(vit, model.config), splits,
      { ...IMAGE_TRAIN_DEFAULTS, lr: 1e-3, steps: 4, warmupSteps: 1, batchSize: 16, gradAccum, evalEvery: 4, log: () => {}, quiet: true });
    peft.remove();
    model.dispose();
    return r.losses.map((l) => l.loss);
  };
  const one = await losses(1);
  const four = await losses(4);
  one.forEach((l, i) => assert.ok(Math.abs(l - four[i]) < 1e-5, `step ${i + 1}: ${l} vs ${four[i]}`));
  assert.deepEqual(await losses(1), one);
  assert.ok(one[3] < one[0], `loss should fall: ${one}`);
});

test("sweep files take image tasks (Appendix B.2 defaults, steps instead of epochs) and run them", () => {
  const raw = { name: "img", models: [vit], tasks: ["cifar10"], dataDir: cifar, lrs: [1e-2], sizes: { train: 32, dev: 16, test: 16 },
    train: { steps: 3, batchSize: 16, evalEvery: 3 }, methods: [{ method: "random-mask", trainableRatios: [0.01] }, { method: "full" }] };
  const file = join(work, "img.json");
  writeFileSync(file, JSON.stringify(raw));
  const sweep = expandSweep(raw, file);
  assert.equal(sweep.runs.length, 2);
  const t = sweep.runs[0].config.train as Record<string, unknown>;
  assert.deepEqual([t.steps, t.warmupSteps, t.batchSize, t.schedule, t.weightDecay, t.epochs], [3, 0, 16, "cosine", 0.1, undefined]);
  assert.equal((expandSweep({ ...raw, train: {} }, file).runs[0].config.train as Record<string, unknown>).warmupSteps, 200, "200 of 2000 steps by default");
  assert.throws(() => expandSweep({ ...raw, train: { steps: 3, warmupSteps: 5 } }, file), /train.warmupSteps: 5 must be fewer than steps 3/);
  assert.throws(() => expandSweep({ ...raw, tasks: ["sst2"] }, file), (e) => e instanceof SweepFileError && /is a vision model, but task\(s\) sst2 need a language model/.test(e.message));

  const db = join(work, "img.sqlite");
  const r = run("sweep", "run", file, "--db", db, "--out-dir", join(work, "sweep-runs"));
  assert.equal(r.status, 0, r.stderr);
  const d = ResultsDb.open(db);
  try {
    const rows = d.rows();
    assert.equal(rows.length, 2);
    assert.ok(rows.every((x) => x.status === "completed" && typeof x.test_metric === "number"), JSON.stringify(rows.map((x) => [x.status, x.error])));
  } finally { d.close(); }
});

test("image weights that overflow after a step: the run is diverged (no adapter, no predictions), not scored by an argmax over NaN", () => {
  // one step at LR 1e30: its loss is finite (taken before the update), the weights after it give non-finite logits
  const out = join(work, "huge-lr");
  const r = run("finetune", "--model", vit, "--task", "cifar10", "--data-dir", cifar, "--method", "random-mask", "--trainable-ratio", "0.01",
    "--lr", "1e30", "--out", out, "--steps", "1", "--eval-every", "1", "--batch-size", "16", "--train-size", "32", "--dev-size", "16", "--test-size", "16", "--quiet");
  assert.equal(r.status, 0, r.stderr);
  const m = JSON.parse(readFileSync(join(out, "metrics.json"), "utf8"));
  assert.equal(m.status, "diverged");
  assert.deepEqual(m.diverged, { step: 1, reason: "validation scores are not finite after step 1 (the weights overflowed)" });
  assert.deepEqual([m.best_step, m.test], [null, null]);
  assert.ok(!existsSync(join(out, "adapter")) && !existsSync(join(out, "predictions.jsonl")));
});
