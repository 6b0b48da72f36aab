// Faults a demanding new user found in the training commands, each held at the
// right behaviour: a prefix longer than the model's positions allow is a usage
// error, and a prefix's virtual tokens count against the positions everywhere
// (training, evaluation, generate); an invalid --target-modules regular expression
// (or a PEFT adapter's) is named; a run whose last step leaves weights that
// overflow is diverged, not "completed" with prediction -1, and eval refuses such
// scores; progress counts the examples trained; data files with a byte-order mark
// read as without it; an empty train.jsonl, a folder where a data file belongs, or
// a row of the other kind is named; a run stopped by Ctrl-C is named as unfinished
// when its --out is given again; empty output paths and impossible --predictions
// files are usage errors before any work; a model folder without config.json is
// named as such.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parityTask, repoRoot, tinyTextModel } from "./helpers.js";
import { loadFile, saveFile } from "../src/io/safetensors.js";
import { getTask } from "../src/tasks/registry.js";
import { loadTaskData } from "../src/tasks/sampling.js";

const cli = join(repoRoot, "dist", "src", "cli", "main.js");
const work = mkdtempSync(join(tmpdir(), "randmask-train-faults-"));
const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: "utf8", env: { ...process.env, RANDMASK_THREADS: "1" } });
const model = tinyTextModel(join(work, "model")); // 64 positions
const data = parityTask(join(work, "data"));
const sizes = ["--train-size", "8", "--dev-size", "4", "--test-size", "4"];
/** One epoch unless `extra` says otherwise (a flag may be given once). */
const finetune = (dataDir: string, out: string, ...extra: string[]) =>
  run("finetune", "--model", model, "--task", "jsonl", "--data-dir", dataDir, ...sizes, ...(extra.includes("--epochs") ? [] : ["--epochs", "1"]), "--out", out, ...extra);

/** A generation task (rows with "answers"): evaluation generates up to 50 tokens after each prompt. */
function answersTask(dir: string): string {
  mkdirSync(dir, { recursive: true });
  const rows = Array.from({ length: 20 }, (_, i) => JSON.stringify({ prompt: `Q: what is ${i} plus one? A:`, answers: [String(i + 1)] })).join("\n") + "\n";
  for (const f of ["train.jsonl", "validation.jsonl"]) writeFileSync(join(dir, f), rows);
  return dir;
}

test("prefix-tuning: the virtual tokens take positions; too many is a usage error, and any that fit train, evaluate and generate", () => {
  const tooMany = join(work, "prefix-1000");
  let r = finetune(data, tooMany, "--method", "prefix", "--num-virtual-tokens", "1000");
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /^randmask finetune: prefix: --num-virtual-tokens 1000 leaves too few of the model's 64 positions .*at most 62\n$/);
  assert.ok(!existsSync(tooMany));
  // 60 of 64 positions: the prompts are cut to the 4 left (an index error before)
  r = finetune(data, join(work, "prefix-60"), "--method", "prefix", "--num-virtual-tokens", "60");
  assert.equal(r.status, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).status, "completed");
  // generation: 20 virtual tokens + prompt + 50 new tokens exceed 64 positions; new tokens are capped (an index error before)
  const gen = join(work, "prefix-gen");
  r = finetune(answersTask(join(work, "answers")), gen, "--method", "prefix", "--num-virtual-tokens", "20");
  assert.equal(r.status, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).test.n, 4);
  r = run("hessian", "--model", model, "--task", "jsonl", "--data-dir", data, "--method", "prefix", "--num-virtual-tokens", "100", "--examples", "2", "--max-iters", "1");
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--num-virtual-tokens 100 leaves too few/);
  // generate: --max-new-tokens counts the adapter's prefix too
  r = run("generate", "--model", model, "--adapter", join(gen, "adapter"), "--prompt", "hello there", "--max-new-tokens", "60");
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--max-new-tokens 60: the model has 64 positions, 20 of them taken by the adapter's prefix; at most 43/);
  r = run("generate", "--model", model, "--adapter", join(gen, "adapter"), "--prompt", "hello there", "--max-new-tokens", "43", "--json");
  assert.equal(r.status, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).tokens.length, 43);
});

test("an invalid regular expression in --target-modules, or in a PEFT adapter's target_modules, is named", () => {
  const out = join(work, "bad-re");
  let r = finetune(data, out, "--method", "lora", "--target-modules", "re:((");
  assert.equal(r.status, 2);
  assert.match(r.stderr, /^randmask finetune: lora: --target-modules pattern 're:\(\(' is not a valid regular expression \(.*Unterminated group\)\n$/);
  assert.ok(!existsSync(out));
  const peft = join(work, "peft-lora");
  r = finetune(data, peft, "--method", "lora", "--adapter-format", "peft");
  assert.equal(r.status, 0, r.stderr);
  const cfgFile = join(peft, "adapter", "adapter_config.json");
  writeFileSync(cfgFile, JSON.stringify({ ...JSON.parse(readFileSync(cfgFile, "utf8")), target_modules: "((q_proj" }));
  r = run("eval", "--model", model, "--adapter", join(peft, "adapter"), "--task", "jsonl", "--data-dir", data, "--test-size", "4");
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^randmask eval: lora: .*peft-lora\/adapter: pattern "\(\(q_proj" is not a valid regular expression/);
});

test("weights that overflow at an epoch's last step: the run is diverged (no adapter), and eval refuses non-finite scores", () => {
  // one step at LR 1e30: its loss is finite (taken before the update), the weights after it give NaN logits
  const out = join(work, "huge-lr");
  let r = finetune(data, out, "--method", "random-mask", "--trainable-ratio", "1e-3", "--lr", "1e30");
  assert.equal(r.status, 0, r.stderr);
  const rec = JSON.parse(readFileSync(join(out, "metrics.json"), "utf8"));
  assert.equal(rec.status, "diverged");
  assert.deepEqual(rec.diverged, { step: 1, epoch: 1, reason: "dev scores are not finite after step 1 (the weights overflowed)" });
  assert.equal(rec.best_epoch, null);
  assert.ok(!existsSync(join(out, "adapter")) && !existsSync(join(out, "predictions.jsonl")));
  // an adapter whose outputs overflow: one error, no predictions file with prediction -1
  const lora = join(work, "lora-ok");
  r = finetune(data, lora, "--method", "lora");
  assert.equal(r.status, 0, r.stderr);
  const weights = join(lora, "adapter", "adapter_model.safetensors");
  const tensors = loadFile(weights);
  for (const [k, t] of tensors) if (k.endsWith("lora_B.weight")) tensors.set(k, t.add(1e30));
  saveFile(weights, tensors);
  const predictions = join(work, "overflow.jsonl");
  r = run("eval", "--model", model, "--adapter", join(lora, "adapter"), "--task", "jsonl", "--data-dir", data, "--test-size", "4", "--predictions", predictions);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^randmask eval: the model's option scores for example \d+ are not finite/m);
  assert.ok(!existsSync(predictions));
  // the same of a generation task's greedy answers and of generate (before: f1 0 from answers decoded out of NaN, exit 0;
  // generate printed the prompt alone, or sampled garbage)
  r = run("eval", "--model", model, "--adapter", join(lora, "adapter"), "--task", "jsonl", "--data-dir", answersTask(join(work, "answers-nan")),
    "--test-size", "4", "--predictions", predictions);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /^randmask eval: the model's next-token logits for example 0 are not finite/m);
  assert.ok(!existsSync(predictions));
  for (const sampling of [[], ["--temperature", "1"]]) {
    r = run("generate", "--model", model, "--adapter", join(lora, "adapter"), "--prompt", "hello", "--max-new-tokens", "3", ...sampling);
    assert.equal(r.status, 1, r.stderr);
    assert.equal(r.stderr, "randmask generate: the model's next-token logits for prompt 0 are not finite after 0 new token(s) " +
      "(NaN or infinite logits: the weights or the adapter overflowed)\n");
    assert.equal(r.stdout, "");
  }
});

test("progress counts the examples trained: a batch larger than the sample, and a short last batch", () => {
  let r = finetune(data, join(work, "big-batch"), "--method", "bitfit", "--batch-size", "100");
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /train 8\/8 examples · step 1\/1/);
  assert.doesNotMatch(r.stderr, /100\/100/);
  r = finetune(data, join(work, "short-batch"), "--method", "bitfit", "--batch-size", "6", "--grad-accum", "3", "--epochs", "2");
  assert.equal(r.status, 0, r.stderr);
  // 8 examples a pass, in batches of 6 and 2 (it said 24/24 before)
  assert.match(r.stderr, /train 16\/16 examples · step 4\/4 · epoch 2/);
});

test("data files: a byte-order mark and CRLF line ends read as plain LF files; an empty train.jsonl or a folder is named", () => {
  const plain = loadTaskData(getTask("jsonl", data), data, 0, { train: 8, dev: 4, test: 4 });
  const rows = readFileSync(join(data, "train.jsonl"), "utf8");
  const bom = join(work, "bom");
  mkdirSync(bom);
  writeFileSync(join(bom, "train.jsonl"), "\uFEFF" + rows.replace(/\n/g, "\r\n"));
  writeFileSync(join(bom, "validation.jsonl"), "\uFEFF" + readFileSync(join(data, "validation.jsonl"), "utf8"));
  const read = loadTaskData(getTask("jsonl", bom), bom, 0, { train: 8, dev: 4, test: 4 });
  const strip = (xs: { source?: string }[]) => xs.map(({ source: _, ...e }) => e);
  for (const k of ["train", "dev", "test"] as const) assert.deepEqual(strip(read[k]), strip(plain[k]), k);
  // SST-2's TSV: the header's first column is "label" after the mark
  const sst2 = join(work, "sst2-bom");
  mkdirSync(join(sst2, "sst2"), { recursive: true });
  const tsv = "\uFEFFlabel\tsentence\n" + Array.from({ length: 10 }, (_, i) => `${i % 2}\tsentence number ${i}`).join("\n") + "\n";
  for (const f of ["glue_sst2_train.tsv", "glue_sst2_dev.tsv"]) writeFileSync(join(sst2, "sst2", f), tsv);
  assert.equal(getTask("sst2", sst2).load(sst2).train!.length, 10);
  // a Latin-1 file: named by its line (its "é" read as U+FFFD into the examples before, without a word)
  const latin1 = join(work, "latin1");
  mkdirSync(latin1);
  writeFileSync(join(latin1, "train.jsonl"), Buffer.concat([Buffer.from(rows.split("\n").slice(0, 3).join("\n") + "\n"),
    Buffer.from('{"prompt": "caf\xe9 or tea?", "options": [" no", " yes"], "label": 1}\n', "latin1")]));
  writeFileSync(join(latin1, "validation.jsonl"), rows);
  assert.throws(() => loadTaskData(getTask("jsonl", latin1), latin1, 0, { train: 2, dev: 2, test: 2 }),
    /latin1\/train\.jsonl:4: not UTF-8 text \(save the file as UTF-8\)$/);

  const empty = join(work, "empty-train");
  mkdirSync(empty);
  writeFileSync(join(empty, "train.jsonl"), "\n\n");
  writeFileSync(join(empty, "validation.jsonl"), rows);
  let r = finetune(empty, join(work, "empty-out"), "--method", "bitfit");
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^randmask finetune: .*empty-train\/train\.jsonl: holds no examples \(expected one JSON object per line\)\n$/);
  const folder = join(work, "folder-train");
  mkdirSync(join(folder, "train.jsonl"), { recursive: true });
  r = finetune(folder, join(work, "folder-out"), "--method", "bitfit");
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^randmask finetune: .*folder-train\/train\.jsonl: is a folder, expected a data file\n$/);
  assert.ok(!existsSync(join(work, "empty-out")) && !existsSync(join(work, "folder-out")));
  // a generation row among classification rows is named by its line
  const mixed = join(work, "mixed");
  mkdirSync(mixed);
  writeFileSync(join(mixed, "train.jsonl"), rows.split("\n").slice(0, 2).join("\n") + '\n{"prompt": "x", "answers": ["y"]}\n');
  assert.throws(() => getTask("jsonl", mixed), /mixed\/train\.jsonl:3: a generation row, but the file's first row \(.*train\.jsonl:1\) is classification/);
});

test("Ctrl-C mid-run: exit 130, only train.log left; the same command again names the unfinished run instead of 'not empty'", async () => {
  const out = join(work, "stopped");
  const args = ["finetune", "--model", model, "--task", "jsonl", "--data-dir", data, "--train-size", "390", "--dev-size", "4", "--test-size", "4",
    "--epochs", "5", "--batch-size", "2", "--method", "bitfit", "--out", out];
  const child = spawn(process.execPath, [cli, ...args], { env: { ...process.env, RANDMASK_THREADS: "1" }, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  let sent = false;
  child.stderr!.on("data", (d: Buffer) => {
    stderr += d.toString();
    if (!sent && /train \d+\/1950 examples/.test(stderr)) sent = child.kill("SIGINT");
  });
  const signal = await new Promise<string | null>((done) => child.once("close", (_c: number | null, sig: string | null) => done(sig)));
  assert.equal(signal, "SIGINT", stderr);
  assert.deepEqual(readdirSync(out), ["train.log"]);
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: "utf8", env: { ...process.env, RANDMASK_THREADS: "1" } });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--out .*stopped: holds an unfinished run \(train\.log without metrics\.json: stopped, or still running\); finetune does not resume/);
  assert.deepEqual(readdirSync(out), ["train.log"]);
});

test("an empty output path or --db, or a predictions file under a file or ending in '/', is a usage error before any work", () => {
  let r = finetune(data, "", "--method", "bitfit");
  assert.equal(r.status, 2);
  assert.match(r.stderr, /^randmask finetune: --out "": expected a folder path \(for the run's adapter, metrics and logs\)\n$/); // it said "exists and is not empty" (the working folder)
  r = run("theory", "--out", "");
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--out "": expected a folder path/);
  // an empty --db: "--db FILE is required" (sweep) or "--db : not found" (report, exit 1) before
  for (const args of [["sweep", "status"], ["sweep", "collect", "--queue", "redis://127.0.0.1:1/0"], ["report", "--out", join(work, "no-report")]]) {
    r = run(...args, "--db", "");
    assert.equal(r.status, 2, args.join(" "));
    assert.match(r.stderr, /^randmask (sweep \w+|report): --db "": expected the results database file \(SQLite\)\n$/);
  }
  assert.ok(!existsSync(join(work, "no-report")));
  const under = join(data, "train.jsonl", "p.jsonl");
  for (const [file, re] of [["", /--predictions "": expected a file name/], [`${join(work, "preds")}/`, /--predictions ".*preds\/": expected a file name/],
    [under, /--predictions .*train\.jsonl\/p\.jsonl: .*train\.jsonl is a file, not a folder/]] as [string, RegExp][]) {
    // these failed only when writing, after the whole evaluation (a raw ENOENT / ENOTDIR)
    r = run("eval", "--model", model, "--task", "jsonl", "--data-dir", data, "--test-size", "4", "--predictions", file);
    assert.equal(r.status, 2, file);
    assert.match(r.stderr, re);
    assert.doesNotMatch(r.stderr, /eval jsonl\/test/, "nothing evaluated first");
  }
  assert.ok(!existsSync(join(work, "preds")));
});

test("a model folder without config.json is named as such by finetune, eval, hessian and pretrain --init-from", () => {
  // it said "no tokenizer found" (finetune, eval) or "config.json: cannot read: ENOENT" (hessian, pretrain)
  const notModel = join(work, "not-a-model");
  mkdirSync(notModel);
  const re = /^randmask \w+: --(model|init-from) .*not-a-model: no config\.json \(expected a Hugging Face model folder/;
  for (const args of [
    ["finetune", "--model", notModel, "--task", "jsonl", "--data-dir", data, "--method", "bitfit", "--out", join(work, "nm-out")],
    ["eval", "--model", notModel, "--task", "jsonl", "--data-dir", data],
    ["hessian", "--model", notModel, "--task", "jsonl", "--data-dir", data, "--method", "bitfit"],
    ["pretrain", "--init-from", notModel, "--data", join(data, "train.jsonl"), "--max-steps", "1", "--out", join(work, "nm-out")],
  ]) {
    const r = run(...args);
    assert.equal(r.status, 1, args[0]);
    assert.match(r.stderr, re, args[0]);
  }
  assert.ok(!existsSync(join(work, "nm-out")));
});
