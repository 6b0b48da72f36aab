// Per-example predictions (eval --predictions, finetune's predictions.jsonl),
// and finetune's validation before anything is created in --out.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { noGrad, tidy } from "../src/engine/index.js";
import { OPTForCausalLM } from "../src/models/opt.js";
import { BpeTokenizer } from "../src/tokenizer/bpe-tokenizer.js";
import { getTask } from "../src/tasks/registry.js";
import { loadTaskData } from "../src/tasks/sampling.js";
import { encodeOptions } from "../src/eval/encode.js";
import { continuationLogProbs } from "../src/eval/scoring.js";
import { bestOver, exactMatch, tokenF1 } from "../src/eval/squad-metrics.js";
import { parityTask, repoRoot, tinyTextModel } from "./helpers.js";

const cli = join(repoRoot, "dist", "src", "cli", "main.js");
const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: "utf8" });
const work = mkdtempSync(join(tmpdir(), "randmask-pred-"));
const modelDir = tinyTextModel(join(work, "model"));
const data = parityTask(join(work, "data"));
const sizes = ["--train-size", "40", "--dev-size", "20", "--test-size", "30"];
const readLines = (f: string) => readFileSync(f, "utf8").trim().split("\n").map((l) => JSON.parse(l));
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

test("eval --predictions: accuracy from the file's lines equals the printed accuracy; option scores equal the scoring function's", () => {
  const file = join(work, "preds.jsonl");
  const r = run("eval", "--model", modelDir, "--task", "jsonl", "--data-dir", data, "--seed", "2", "--predictions", file, "--eval-batch", "8", ...sizes);
  assert.equal(r.status, 0, r.stderr);
  const printed = JSON.parse(r.stdout);
  const lines = readLines(file);
  assert.equal(lines.length, 30);
  assert.equal(printed.n, 30);
  // recomputed from each line's own scores and gold label
  const right = lines.map((l) => {
    const means = l.scores.map((s: { mean_logprob: number }) => s.mean_logprob);
    assert.equal(l.prediction, means.indexOf(Math.max(...means)));
    assert.equal(l.right, l.prediction === l.label);
    return l.right ? 1 : 0;
  });
  assert.equal(mean(right), printed.accuracy);

  // the same examples scored directly, one at a time
  const task = getTask("jsonl", data);
  const test = loadTaskData(task, data, 2, { train: 40, dev: 20, test: 30 }).test;
  const model = OPTForCausalLM.load(modelDir);
  const tok = BpeTokenizer.fromDir(modelDir);
  const encoded = encodeOptions(tok, test, model.config.maxPositionEmbeddings);
  test.forEach((e, i) => {
    assert.equal(lines[i].index, i);
    assert.equal(lines[i].prompt, e.prompt);
    assert.deepEqual(lines[i].options, e.options);
    assert.equal(lines[i].label, e.label);
    const direct = noGrad(() => tidy(() => continuationLogProbs(model, encoded[i]).toNumbers()));
    lines[i].scores.forEach((s: { mean_logprob: number; tokens: number }, k: number) => {
      assert.ok(Math.abs(s.mean_logprob - direct[k]) < 1e-5, `example ${i} option ${k}: ${s.mean_logprob} vs ${direct[k]}`);
      assert.equal(s.tokens, encoded[i][k].ids.length - encoded[i][k].start);
      assert.equal(s.tokens, tok.encode(e.options![k], { addBos: false }).length);
    });
  });
  model.dispose();
});

test("eval --predictions for generation: each line's F1/EM from its own text and answers, averaging to the printed F1/EM", () => {
  const gen = join(work, "gen");
  mkdirSync(gen);
  const rows = Array.from({ length: 16 }, (_, i) => JSON.stringify({ prompt: `Question: what is ${i % 4}?\nAnswer:`, answers: [["zero", "one", "two", "three"][i % 4], "a number"] }));
  writeFileSync(join(gen, "train.jsonl"), rows.join("\n"));
  writeFileSync(join(gen, "validation.jsonl"), rows.slice(0, 8).join("\n"));
  const file = join(work, "gen.jsonl");
  const r = run("eval", "--model", modelDir, "--task", "jsonl", "--data-dir", gen, "--predictions", file, "--test-size", "8");
  assert.equal(r.status, 0, r.stderr);
  const printed = JSON.parse(r.stdout);
  const lines = readLines(file);
  assert.equal(lines.length, 8);
  for (const l of lines) {
    assert.equal(typeof l.prediction, "string");
    assert.equal(l.f1, bestOver(l.answers, l.prediction, tokenF1));
    assert.equal(l.em, bestOver(l.answers, l.prediction, exactMatch));
  }
  assert.equal(mean(lines.map((l) => l.f1)), printed.f1);
  assert.equal(mean(lines.map((l) => l.em)), printed.em);
});

test("eval --predictions into a folder that does not exist is a usage error before anything is read", () => {
  const r = run("eval", "--model", modelDir, "--task", "jsonl", "--data-dir", data, "--predictions", join(work, "no", "p.jsonl"));
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--predictions \S+p\.jsonl: folder \S+no does not exist/);
});

test("finetune that fails validation creates nothing in --out; the rerun then works and writes predictions.jsonl", () => {
  const out = join(work, "run");
  const base = ["--model", modelDir, "--task", "jsonl", "--data-dir", data, "--method", "random-mask", "--out", out, "--quiet", ...sizes];
  const faults: [string[], RegExp][] = [
    [["--trainable-ratio", "2"], /--trainable-ratio must be in \(0, 1\], got 2/], // a method option, checked against the model
    [["--trainable-ratio", "1e-3", "--lr", "fast"], /--lr "fast": expected a positive number/],
    [["--trainable-ratio", "1e-3", "--tokenizer", join(work, "data")], /no tokenizer found/],
  ];
  for (const [extra, re] of faults) {
    const r = run("finetune", ...base, ...extra);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, re);
    assert.ok(!existsSync(out), `${extra.join(" ")}: --out was created`);
  }
  const bad = join(work, "bad-data");
  mkdirSync(bad);
  writeFileSync(join(bad, "train.jsonl"), '{"prompt": "x", "options": ["a"], "label": 0}\n');
  const r0 = run("finetune", ...base.map((a) => (a === data ? bad : a)), "--trainable-ratio", "1e-3");
  assert.match(r0.stderr, /train\.jsonl/);
  assert.ok(!existsSync(out), "bad data: --out was created");

  // a test row too long for the model's 64 positions is found before training starts
  const long = join(work, "long-data");
  mkdirSync(long);
  const row = (option: string) => JSON.stringify({ prompt: "The word is apple. Answer:", options: [" no", option], label: 0 });
  writeFileSync(join(long, "train.jsonl"), Array.from({ length: 8 }, () => row(" yes")).join("\n"));
  writeFileSync(join(long, "validation.jsonl"), [row(" yes"), row(" yes" + " very".repeat(80))].join("\n"));
  const r1 = run("finetune", ...base.map((a) => (a === data ? long : a)), "--trainable-ratio", "1e-3");
  assert.match(r1.stderr, /is longer than the model's 64 positions/);
  assert.ok(!existsSync(out), "unscorable row: --out was created");

  const r = run("finetune", ...base, "--trainable-ratio", "1e-3", "--seed", "3", "--epochs", "1");
  assert.equal(r.status, 0, r.stderr);
  const m = JSON.parse(readFileSync(join(out, "metrics.json"), "utf8"));
  const lines = readLines(join(out, "predictions.jsonl"));
  assert.equal(lines.length, m.test.n);
  assert.equal(mean(lines.map((l) => (l.right ? 1 : 0))), m.test.accuracy);
  // the mask finetune trained is the one count describes for the same flags
  const c = run("count", "--model", modelDir, "--method", "random-mask", "--trainable-ratio", "1e-3", "--seed", "3", "--json");
  assert.equal(JSON.parse(c.stdout).trainable, m.trainable_params);
});
