// `randmask demo`: the quick run end to end on a tiny random OPT, LR choice by
// dev only, bad input, and the shipped opt-mini when present.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chooseByDev, parseResultsTable, type DemoRecord } from "../src/train/demo.js";
import { OPTForCausalLM } from "../src/models/opt.js";
import { readHeader } from "../src/io/safetensors.js";
import { repoRoot, tinyTextModel } from "./helpers.js";

const cli = join(repoRoot, "dist", "src", "cli", "main.js");
const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: "utf8" });
const work = mkdtempSync(join(tmpdir(), "randmask-demo-"));
const model = tinyTextModel(join(work, "model"));

test("demo --quick: table on stdout, metrics.json, adapters and plots; test scored only for the chosen LR", () => {
  const out = join(work, "quick");
  const started = Date.now();
  const r = run("demo", "--quick", "--model", model, "--out", out, "--quiet");
  assert.equal(r.status, 0, r.stderr);
  assert.ok(Date.now() - started < 60_000, "the quick demo should take well under a minute");
  const m = JSON.parse(readFileSync(join(out, "metrics.json"), "utf8")) as DemoRecord;
  assert.deepEqual(m.methods.map((x) => x.method), ["random-mask", "lora", "full"]);
  assert.deepEqual([m.protocol.train, m.protocol.dev, m.protocol.test, m.protocol.epochs, m.protocol.fallback_from_validation], [48, 24, 24, 1, false]);
  assert.equal(m.deviations, "--quick: 48 train / 24 dev / 24 test examples and 1 epoch; numbers mean nothing");
  for (const acc of [m.zero_shot.dev_accuracy, m.zero_shot.test_accuracy]) assert.ok(acc >= 0 && acc <= 1);
  for (const x of m.methods) {
    assert.ok(x.chosen_lr !== null && x.grid.some((g) => g.lr === x.chosen_lr), `${x.method}: chosen LR from its grid`);
    assert.ok(x.test_accuracy! >= 0 && x.test_accuracy! <= 1 && x.dev_accuracy! >= 0 && x.dev_accuracy! <= 1);
    const chosen = x.grid.find((g) => g.lr === x.chosen_lr)!;
    assert.equal(x.dev_accuracy, chosen.best_dev!.accuracy);
    assert.ok(x.grid.every((g) => g.best_dev!.accuracy! <= chosen.best_dev!.accuracy!), `${x.method}: the best dev accuracy wins`);
    const adapter = join(chosen.dir, "adapter");
    assert.equal(x.adapter_bytes, readdirSync(adapter).reduce((n, f) => n + statSync(join(adapter, f)).size, 0));
    for (const g of x.grid) assert.equal(JSON.parse(readFileSync(join(g.dir, "metrics.json"), "utf8")).test, null, "grid runs never see test");
  }
  const [rm, lora, full] = m.methods;
  assert.equal(rm.grid.length, 2);
  assert.ok(rm.trainable_params < lora.trainable_params * 2 && full.trainable_params === 3288704, "trainable counts");
  assert.ok(rm.adapter_bytes < full.adapter_bytes / 100);
  for (const f of ["results.md", "dev-accuracy.svg", "train-loss.svg", "lr-grid.svg", "dev-accuracy.png", "train-loss.png", "lr-grid.png"]) assert.ok(existsSync(join(out, f)), f);
  // the printed table is the one in metrics.json and parses back to the same numbers
  assert.ok(r.stdout.includes(m.table));
  const rows = parseResultsTable(r.stdout);
  assert.equal(rows.get("zero-shot")!.test, Number(m.zero_shot.test_accuracy.toFixed(3)));
  for (const x of m.methods) assert.equal(rows.get(x.label)!.test, Number(x.test_accuracy!.toFixed(3)));
});

test("demo --random-weights fine-tunes a seeded random-weight copy of the model's shape; --quick excludes --protocol", () => {
  const out = join(work, "random");
  const r = run("demo", "--quick", "--random-weights", "--model", model, "--out", out, "--quiet");
  assert.equal(r.status, 0, r.stderr);
  const m = JSON.parse(readFileSync(join(out, "metrics.json"), "utf8")) as DemoRecord;
  const copy = join(out, "random-weights-model");
  assert.equal(m.random_weights, true);
  assert.equal(m.model, copy);
  const given = JSON.parse(readFileSync(join(model, "config.json"), "utf8"));
  const made = JSON.parse(readFileSync(join(copy, "config.json"), "utf8"));
  for (const k of ["hidden_size", "num_hidden_layers", "num_attention_heads", "ffn_dim", "vocab_size", "max_position_embeddings"]) assert.equal(made[k], given[k], k);
  assert.deepEqual(readFileSync(join(copy, "vocab.json")), readFileSync(join(model, "vocab.json")));
  const a = OPTForCausalLM.load(model), b = OPTForCausalLM.load(copy);
  const name = "model.decoder.layers.0.self_attn.q_proj.weight";
  assert.ok(Math.abs(Number(a.params.get(name)!.toArray()[0]) - Number(b.params.get(name)!.toArray()[0])) > 0, "other weights than --model's");
  a.dispose(); b.dispose();
  const both = run("demo", "--quick", "--protocol", "--model", model, "--out", join(work, "o-both"));
  assert.equal(both.status, 2);
  assert.match(both.stderr, /--quick and --protocol exclude each other/);
  assert.equal(existsSync(join(work, "o-both")), false);
});

test("LR choice reads dev metrics only: a test number that would change it is never read", () => {
  const poisoned = (lr: number, dev: number) => ({
    lr, best_dev: { accuracy: dev, n: 500 },
    get test(): never { throw new Error("the LR choice read a test metric"); },
  });
  assert.equal(chooseByDev([poisoned(1e-3, 0.61), poisoned(1e-2, 0.74), poisoned(1e-1, 0.70)])!.lr, 1e-2);
  assert.equal(chooseByDev([poisoned(1e-3, 0.7), poisoned(1e-2, 0.7)])!.lr, 1e-3, "ties go to the first LR of the grid");
  assert.equal(chooseByDev([{ lr: 1, best_dev: null }])?.lr, undefined, "all diverged: nothing chosen");
});

test("demo bad input: missing model folder, non-empty --out, missing data; nothing written", () => {
  const noModel = run("demo", "--quick", "--model", join(work, "nope"), "--out", join(work, "o1"));
  assert.equal(noModel.status, 2, "a missing folder is a usage error, found before anything is read");
  assert.match(noModel.stderr, /--model .*nope: folder does not exist/);
  assert.ok(!existsSync(join(work, "o1")));
  const full = join(work, "full-out");
  mkdirSync(full);
  writeFileSync(join(full, "keep.txt"), "mine");
  const busy = run("demo", "--quick", "--model", model, "--out", full);
  assert.equal(busy.status, 2, "a non-empty --out is a usage error, as for every command creating its --out");
  assert.equal(busy.stderr, `randmask demo: --out ${full}: exists and is not empty; nothing was written (expected an absent or empty folder for the demo's run folder)\n`);
  assert.deepEqual(readdirSync(full), ["keep.txt"]);
  const noData = run("demo", "--quick", "--model", model, "--data-dir", work, "--out", join(work, "o2"));
  assert.equal(noData.status, 1);
  assert.match(noData.stderr, /glue_sst2_train\.tsv/);
  assert.ok(!existsSync(join(work, "o2")));
  const noTokenizer = join(work, "no-tokenizer");
  mkdirSync(noTokenizer);
  for (const f of ["config.json", "model.safetensors"]) writeFileSync(join(noTokenizer, f), readFileSync(join(model, f)));
  const noTok = run("demo", "--quick", "--model", noTokenizer, "--out", join(work, "o3"));
  assert.equal(noTok.status, 1);
  assert.match(noTok.stderr, /no tokenizer found/);
  assert.ok(!existsSync(join(work, "o3")), "a model folder without tokenizer files leaves no --out behind");
});

const shipped = join(repoRoot, "models", "opt-mini");
test("the shipped models/opt-mini loads, is bf16 and ≤ 40 MB, and its model card's demo numbers parse", { skip: !existsSync(join(shipped, "model.safetensors")) && "models/opt-mini is not in this checkout" }, () => {
  const weights = join(shipped, "model.safetensors");
  assert.ok(statSync(weights).size <= 40 * 1024 * 1024, "≤ 40 MB");
  const header = readHeader(weights);
  assert.ok(header.tensors.every((t) => t.dtype === "bfloat16"), "bf16 tensors");
  const m = OPTForCausalLM.load(shipped);
  assert.equal(m.config.vocabSize, 50272);
  m.dispose();
  for (const f of ["config.json", "vocab.json", "merges.txt", "tokenizer_config.json", "corpus-manifest.json"]) assert.ok(existsSync(join(shipped, f)), f);
  const card = readFileSync(join(shipped, "README.md"), "utf8");
  const rows = parseResultsTable(card);
  assert.ok(rows.has("zero-shot") && [...rows.keys()].some((k) => k.startsWith("Random Masking")), "zero-shot and Random Masking rows");
  const metrics = JSON.parse(readFileSync(join(shipped, "demo-metrics.json"), "utf8")) as DemoRecord;
  for (const x of metrics.methods) assert.equal(rows.get(x.label)?.test, x.test_accuracy === null ? null : Number(x.test_accuracy.toFixed(3)), `${x.label}: card = demo-metrics.json`);
});

test("header-only data files: one error naming the task and data folder, no --out left behind", () => {
  const data = join(work, "header-only");
  mkdirSync(join(data, "sst2"), { recursive: true });
  for (const f of ["train", "dev"]) writeFileSync(join(data, "sst2", `glue_sst2_${f}.tsv`), "sentence\tlabel\n");
  const r = run("demo", "--quick", "--data-dir", data, "--out", join(work, "o-empty"));
  assert.equal(r.status, 1);
  assert.match(r.stderr, /task sst2 in .*header-only: no examples for train, dev, test/);
  assert.ok(!existsSync(join(work, "o-empty")));
});

test("demo --out naming a file, or a path under one: one usage error naming --out (exit 2), before anything is read or written", () => {
  const parent = join(work, "file-parent");
  mkdirSync(parent);
  const file = join(parent, "results.txt");
  writeFileSync(file, "keep me\n");
  for (const out of [file, join(file, "run")]) {
    const r = run("demo", "--quick", "--model", model, "--out", out);
    assert.equal(r.status, 2, r.stderr);
    assert.equal(r.stderr, `randmask demo: --out ${out}: ${out === file ? "is a file" : `${file} is a file`}, expected a folder (for the demo's run folder)\n`);
  }
  assert.equal(readFileSync(file, "utf8"), "keep me\n");
  assert.deepEqual(readdirSync(parent), ["results.txt"]);
});

test("demo --quick on data smaller than it asks for: the footer and metrics.json state the sizes used, and what was asked", () => {
  const data = join(work, "small-sst2");
  mkdirSync(join(data, "sst2"), { recursive: true });
  const rows = (n: number, from: number) => Array.from({ length: n }, (_, i) => `${(i + from) % 2}\t${i % 2 ? "a fine film" : "a dull film"} number ${i + from}`);
  writeFileSync(join(data, "sst2", "glue_sst2_train.tsv"), ["label\tsentence", ...rows(30, 0)].join("\n") + "\n");
  writeFileSync(join(data, "sst2", "glue_sst2_dev.tsv"), ["label\tsentence", ...rows(12, 100)].join("\n") + "\n");
  const out = join(work, "small-quick");
  const r = run("demo", "--quick", "--model", model, "--data-dir", data, "--out", out, "--quiet");
  assert.equal(r.status, 0, r.stderr);
  const m = JSON.parse(readFileSync(join(out, "metrics.json"), "utf8")) as DemoRecord;
  const used = `${m.protocol.train} train / ${m.protocol.dev} dev / ${m.protocol.test} test examples`;
  assert.ok(m.protocol.train < 48 && m.protocol.dev < 24 && m.protocol.test < 24, JSON.stringify(m.protocol));
  // 30 training sentences are under the 100 a train split needs: every split comes from the validation file, and the footer says so
  assert.equal(m.protocol.fallback_from_validation, true);
  const footer = "train, dev and test all drawn from the validation split (the train split is missing or under 100 examples); " +
    `--quick: ${used} (the data holds fewer than the 48 / 24 / 24 asked) and 1 epoch; numbers mean nothing`;
  assert.equal(m.deviations, footer);
  assert.ok(r.stdout.includes(`\n${footer}.\n`), r.stdout);
  assert.doesNotMatch(r.stdout, /48 train/);
});
