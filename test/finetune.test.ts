// Fine-tuning end to end through the CLI, on a small random OPT with the real
// tokenizer and a learnable task in the generic JSONL format.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, existsSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parityTask, repoRoot, tinyTextModel } from "./helpers.js";
import { lossDivergence } from "../src/train/divergence.js";

const cli = join(repoRoot, "dist", "src", "cli", "main.js");
const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: "utf8" });
const work = mkdtempSync(join(tmpdir(), "randmask-ft-"));
const model = tinyTextModel(join(work, "model"));
const data = parityTask(join(work, "data"));
const sizes = ["--train-size", "300", "--dev-size", "100", "--test-size", "200"];

test("random-mask fine-tuning learns the task; eval --adapter reproduces the test accuracy", () => {
  const zeroShot = JSON.parse(run("eval", "--model", model, "--task", "jsonl", "--data-dir", data, ...sizes).stdout);
  const out = join(work, "rm");
  const r = run("finetune", "--model", model, "--task", "jsonl", "--data-dir", data, "--method", "random-mask", "--density", "0.1",
    "--lr", "1e-2", "--epochs", "4", "--out", out, "--quiet", ...sizes);
  assert.equal(r.status, 0, r.stderr);
  const m = JSON.parse(readFileSync(join(out, "metrics.json"), "utf8"));
  assert.equal(m.status, "completed");
  assert.ok(m.test.accuracy >= 0.9, `test accuracy ${m.test.accuracy}`);
  assert.ok(m.test.accuracy > zeroShot.accuracy + 0.3, `zero-shot ${zeroShot.accuracy}`);
  const losses = m.train_loss.map((l: { loss: number }) => l.loss);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  assert.ok(mean(losses.slice(-20)) < 0.5 * mean(losses.slice(0, 20)), "training loss did not fall");
  assert.equal(m.dev_per_epoch.length, 4);
  assert.equal(m.data.train, 300);
  assert.ok(m.trainable_params > 0 && m.trainable_ratio > 0 && m.wall_time_s > 0);
  for (const f of ["train.log", "loss.svg", "loss.png", "adapter/adapter_config.json"]) assert.ok(existsSync(join(out, f)), f);
  const again = JSON.parse(run("eval", "--model", model, "--adapter", join(out, "adapter"), "--task", "jsonl", "--data-dir", data, ...sizes).stdout);
  assert.equal(again.accuracy, m.test.accuracy);
  assert.equal(again.n, m.test.n);
});

test("full fine-tuning at LR 1e-1 is reported as diverged with exit code 0", () => {
  const out = join(work, "full");
  const r = run("finetune", "--model", model, "--task", "jsonl", "--data-dir", data, "--method", "full", "--lr", "1e-1",
    "--epochs", "2", "--out", out, "--quiet", ...sizes);
  assert.equal(r.status, 0, r.stderr);
  const m = JSON.parse(readFileSync(join(out, "metrics.json"), "utf8"));
  assert.equal(m.status, "diverged");
  assert.ok(m.diverged.step >= 1);
  assert.match(m.diverged.reason, /^(loss is (NaN|Infinity)|loss exploded: \S+ > 5 × first step's \S+|gradient norm is \S+)$/);
  assert.equal(m.test, null, "no test number from diverged weights");
});

test("a loss ends a run as diverged when not finite, or above --divergence-factor × the first step's (0: never)", () => {
  assert.equal(lossDivergence(NaN, 1, 10), "loss is NaN");
  assert.equal(lossDivergence(-Infinity, 1, 0), "loss is -Infinity");
  assert.equal(lossDivergence(10.5, 1.04, 10), "loss exploded: 10.50 > 10 × first step's 1.040");
  assert.equal(lossDivergence(10.4, 1.04, 10), null, "at the bound: not above it");
  assert.equal(lossDivergence(1e30, 1, 0), null);
});

test("generation tasks train with the LM loss and report F1/EM", () => {
  const gen = join(work, "gen");
  mkdirSync(gen);
  const rows = Array.from({ length: 40 }, (_, i) => JSON.stringify({ prompt: `Question: what is ${i % 4}?\nAnswer:`, answers: [["zero", "one", "two", "three"][i % 4]] }));
  writeFileSync(join(gen, "train.jsonl"), rows.join("\n"));
  writeFileSync(join(gen, "validation.jsonl"), rows.slice(0, 12).join("\n"));
  const out = join(work, "gen-run");
  const r = run("finetune", "--model", model, "--task", "jsonl", "--data-dir", gen, "--method", "lora", "--lr", "1e-2", "--epochs", "1",
    "--out", out, "--quiet", "--train-size", "30", "--dev-size", "10", "--test-size", "12");
  assert.equal(r.status, 0, r.stderr);
  const m = JSON.parse(readFileSync(join(out, "metrics.json"), "utf8"));
  assert.equal(m.test.n, 12);
  assert.ok(m.test.f1 >= 0 && m.test.f1 <= 1 && m.test.em >= 0 && m.test.em <= 1);
});

test("bad input is one clear error: unknown task or method, missing data, non-empty --out", () => {
  const base = ["--model", model, "--data-dir", data, "--out", join(work, "x")];
  assert.match(run("finetune", ...base, "--task", "nope", "--method", "lora").stderr, /--task "nope": expected one of sst2, .*jsonl/);
  assert.match(run("finetune", ...base, "--task", "jsonl", "--method", "nope").stderr, /--method "nope": expected one of random-mask, /);
  assert.match(run("finetune", "--model", model, "--data-dir", work, "--out", join(work, "y"), "--task", "rte", "--method", "lora").stderr,
    /rte\/train\.jsonl: data file not found/);
  const r = run("finetune", "--model", model, "--data-dir", data, "--out", data, "--task", "jsonl", "--method", "lora");
  assert.match(r.stderr, /exists and is not empty; nothing was written/);
  assert.match(run("finetune", ...base, "--task", "jsonl", "--method", "lora", "--lr", "fast").stderr, /--lr "fast": expected a positive number/);
  assert.ok(!existsSync(join(work, "x")) && !existsSync(join(work, "y")), "a failed run created its --out");
});
