// Faults a fresh user found, each held at the right behaviour: a tokenizer
// whose ids the model lacks is named before any work (finetune, generate,
// hessian, pretrain); finetune's batch/accumulation mismatch is a usage error
// before --out exists; AdaLoRA's schedule is named by the flags that set it;
// report --out that is a file is named; negative flag values reach the value's own check; method
// options are named by their flags (exit 2), flags another method reads are
// refused, a LoRA rank above a target's is refused; no command is a usage
// error; convert checks the weights against config.json before writing.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from "node:fs";
import Database from "better-sqlite3";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parityTask, repoRoot, sharedDir, tinyTextModel } from "./helpers.js";
import { loadCheckpoint } from "../src/io/checkpoint.js";
import { saveFile } from "../src/io/safetensors.js";
import { tensor } from "../src/engine/index.js";
import { FLAGS_OF_METHOD } from "../src/cli/method-flags.js";
import { METHODS } from "../src/peft/registry.js";

const cli = join(repoRoot, "dist", "src", "cli", "main.js");
const work = mkdtempSync(join(tmpdir(), "randmask-faults-"));
const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: "utf8", env: { ...process.env, RANDMASK_THREADS: "1" } });
const model = tinyTextModel(join(work, "model"));
const data = parityTask(join(work, "data"));
// the 512-id reference OPT with the 50k-id OPT tokenizer: they do not belong together
const small = join(work, "small");
spawnSync("cp", ["-r", join(sharedDir, "fixtures", "opt-tiny-prenorm"), small]);
for (const f of ["vocab.json", "merges.txt"]) copyFileSync(join(sharedDir, "tokenizers", "opt", f), join(small, f));
const sizes = ["--train-size", "8", "--dev-size", "4", "--test-size", "4"];

test("finetune: a tokenizer beyond the model's vocabulary is named, and --out is never created", () => {
  const out = join(work, "vocab-out");
  const r = run("finetune", "--model", small, "--task", "jsonl", "--data-dir", data, "--method", "bitfit", ...sizes, "--out", out);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /token ids .* beyond the model's vocabulary of 512 \(vocab_size in .*config\.json\)/);
  assert.ok(!existsSync(out));
});

test("finetune: --batch-size not a multiple of --grad-accum is a usage error (exit 2) before --out exists", () => {
  const out = join(work, "accum-out");
  const r = run("finetune", "--model", model, "--task", "jsonl", "--data-dir", data, "--method", "lora", ...sizes, "--grad-accum", "3", "--out", out);
  assert.equal(r.status, 2, r.stderr);
  assert.equal(r.stderr, "randmask finetune: --batch-size 8 must be a multiple of --grad-accum 3\n");
  assert.ok(!existsSync(out));
  // image tasks: their default batch (128) is checked the same way
  const vit = join(sharedDir, "fixtures", "vit-tiny");
  const img = run("finetune", "--model", vit, "--task", "cifar10", "--data-dir", data, "--method", "full", "--grad-accum", "3", "--out", out);
  assert.equal(img.status, 2, img.stderr);
  assert.equal(img.stderr, "randmask finetune: --batch-size 128 must be a multiple of --grad-accum 3\n");
  assert.ok(!existsSync(out));
});

test("AdaLoRA's schedule error names the flags that set the steps, never totalSteps", () => {
  const out = join(work, "adalora-out");
  const r = run("finetune", "--model", model, "--task", "jsonl", "--data-dir", data, "--method", "adalora", "--adalora-tinit", "6", "--adalora-tfinal", "4",
    ...sizes, "--epochs", "2", "--out", out);
  assert.equal(r.status, 2, r.stderr);
  assert.equal(r.stderr, "randmask finetune: adalora: --adalora-tinit + --adalora-tfinal (10) must be below the 2 steps of --epochs 2 " +
    "(1 per epoch: --train-size 8 / --batch-size 8)\n");
  assert.ok(!existsSync(out));
  const c = run("count", "--preset", "opt-125m", "--method", "adalora", "--adalora-tinit", "600", "--adalora-tfinal", "400");
  assert.equal(c.status, 2);
  assert.match(c.stderr, /\(1000\) must be below AdaLoRA's default 1000 total steps \(finetune counts them from --epochs, or --steps for image tasks\)\n$/);
  for (const e of [r.stderr, c.stderr]) assert.doesNotMatch(e, /totalSteps/);
});

test("report --out that is a file (or lies under one) is a usage error naming --out, not a raw EEXIST", () => {
  const file = join(work, "report-file");
  writeFileSync(file, "keep me\n");
  for (const out of [file, join(file, "sub")]) {
    const r = run("report", "--db", join(work, "none.sqlite"), "--out", out);
    assert.equal(r.status, 2, r.stderr);
    assert.equal(r.stderr, `randmask report: --out ${out}: ${out === file ? "is a file" : `${file} is a file`}, ` +
      "expected a folder (for report.md, results.csv and the figures)\n");
  }
  assert.equal(readFileSync(file, "utf8"), "keep me\n");
});

test("generate: a prompt the model's vocabulary cannot hold is named, not an index error", () => {
  const r = run("generate", "--model", small, "--prompt", "héllo world, a longer prompt", "--max-new-tokens", "2");
  assert.equal(r.status, 1);
  assert.match(r.stderr, /beyond the model's vocabulary of 512/);
  assert.doesNotMatch(r.stderr, /index out of range/);
});

test("a negative value reaches the flag's own check instead of 'argument is ambiguous'", () => {
  const r = run("count", "--preset", "opt-125m", "--method", "random-mask", "--trainable-ratio", "-1");
  assert.notEqual(r.status, 0);
  assert.doesNotMatch(r.stderr, /ambiguous/);
  assert.match(r.stderr, /trainable.?ratio/i);
  const ok = run("count", "--preset", "opt-125m", "--method", "random-mask", "--trainable-ratio", "1e-5", "--seed", "0");
  assert.equal(ok.status, 0, ok.stderr);
});

test("method options are named by their flags and are usage errors (exit 2), for every method option", () => {
  const count = (method: string, ...flags: string[]) => run("count", "--preset", "opt-125m", "--method", method, ...flags);
  const cases: [string, string[], RegExp][] = [
    ["random-mask", ["--trainable-ratio", "0.9"], /--trainable-ratio 0\.9 asks for \d+ values but the targets hold only/],
    ["random-mask", ["--trainable-ratio", "1e-12"], /--trainable-ratio 1e-12 gives 0 trainable values/],
    ["random-mask", ["--density", "2"], /--density must be in \(0, 1\], got 2/],
    ["random-mask", ["--density", "0.1", "--trainable-ratio", "1e-4"], /give exactly one of --trainable-ratio .* or --density/],
    ["structured-mask", [], /give exactly one of --trainable-ratio .* or --density/],
    ["random-mask", ["--trainable-ratio", "1e-4", "--target-modules", "qkv_proj"], /--target-modules pattern 'qkv_proj' matches no linear module/],
    ["lora", ["--lora-alpha", "-1"], /--lora-alpha must be a positive number, got -1/],
    ["lora", ["--lora-dropout", "1"], /--lora-dropout must be in \[0, 1\), got 1/],
    ["adalora", ["--adalora-init-r", "0"], /--adalora-init-r must be an integer ≥ 1, got 0/],
    ["adalora", ["--adalora-target-r", "20"], /--adalora-target-r 20 exceeds --adalora-init-r 12/],
    ["adalora", ["--adalora-tinit", "600", "--adalora-tfinal", "400"], /--adalora-tinit \+ --adalora-tfinal \(1000\) must be below AdaLoRA's default 1000 total steps/],
    ["adalora", ["--adalora-orth-reg-weight", "-1"], /--adalora-orth-reg-weight must be ≥ 0/],
    ["adapter", ["--bottleneck", "0"], /--bottleneck must be an integer ≥ 1, got 0/],
    ["prefix", ["--num-virtual-tokens", "0"], /--num-virtual-tokens must be an integer ≥ 1, got 0/],
  ];
  for (const [method, flags, re] of cases) {
    const r = count(method, ...flags);
    assert.equal(r.status, 2, `${method} ${flags.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, re, `${method} ${flags.join(" ")}`);
    assert.doesNotMatch(r.stderr, /trainableRatio|initR|targetR|orthRegWeight|numVirtualTokens|targetModules|(?<!-)\bdensity must/, r.stderr);
  }
  // finetune and hessian say the same, before --out exists
  const out = join(work, "opt-out");
  const ft = run("finetune", "--model", model, "--task", "jsonl", "--data-dir", data, "--method", "random-mask", "--trainable-ratio", "0.9", ...sizes, "--out", out);
  assert.equal(ft.status, 2, ft.stderr);
  assert.match(ft.stderr, /--trainable-ratio 0\.9 asks for/);
  assert.ok(!existsSync(out));
  const h = run("hessian", "--model", model, "--task", "jsonl", "--data-dir", data, "--method", "lora", "--lora-alpha", "0", ...sizes);
  assert.equal(h.status, 2, h.stderr);
  assert.match(h.stderr, /--lora-alpha must be a positive number/);
});

test("finetune on a text task refuses the image-task flags it would ignore, naming them", () => {
  const out = join(work, "image-flags-out");
  const cases: [string[], RegExp][] = [
    [["--steps", "10"], /^randmask finetune: --steps: image tasks only \(--task jsonl is a text task; text tasks train for --epochs/],
    [["--warmup-steps", "0", "--eval-every", "2"], /--warmup-steps, --eval-every: image tasks only/],
    [["--head", "probe"], /--head: image tasks only/],
  ];
  for (const [flags, re] of cases) {
    const r = run("finetune", "--model", model, "--task", "jsonl", "--data-dir", data, "--method", "bitfit", ...flags, ...sizes, "--out", out);
    assert.equal(r.status, 2, `${flags.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, re);
    assert.ok(!existsSync(out));
  }
});

test("a method flag the chosen method does not read is refused, naming the flag and the method", () => {
  const cases: [string[], RegExp][] = [
    [["--method", "random-mask", "--trainable-ratio", "1e-4", "--lora-r", "8"], /--lora-r: not a flag of --method random-mask \(its flags: --trainable-ratio, --density/],
    [["--method", "lora", "--trainable-ratio", "1e-4"], /--trainable-ratio: not a flag of --method lora/],
    [["--method", "structured-mask", "--density", "0.1", "--mask-kind", "exact"], /--mask-kind: not a flag of --method structured-mask/],
    [["--method", "full", "--mask-seed", "3", "--bottleneck", "4"], /--bottleneck, --mask-seed: not flags of --method full \(its flags: none besides --seed\)/],
  ];
  for (const [flags, re] of cases) {
    const r = run("count", "--preset", "opt-125m", ...flags);
    assert.equal(r.status, 2, `${flags.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, re);
  }
  const out = join(work, "stray-out");
  const ft = run("finetune", "--model", model, "--task", "jsonl", "--data-dir", data, "--method", "random-mask", "--trainable-ratio", "1e-3",
    "--lora-r", "4", ...sizes, "--out", out);
  assert.equal(ft.status, 2);
  assert.match(ft.stderr, /--lora-r: not a flag of --method random-mask/);
  assert.ok(!existsSync(out));
  // every method has its list, and the flags a method does read still pass
  assert.deepEqual(Object.keys(FLAGS_OF_METHOD).sort(), METHODS.map((m) => m.name).sort());
  assert.equal(run("count", "--preset", "opt-125m", "--method", "adalora", "--lora-alpha", "8", "--adalora-init-r", "6", "--adalora-target-r", "4").status, 0);
  assert.equal(run("count", "--preset", "opt-125m", "--method", "random-mask", "--trainable-ratio", "1e-4", "--mask-kind", "exact", "--mask-seed", "2").status, 0);
});

test("--lora-r (and --adalora-init-r) above min(out, in) of a target is refused", () => {
  // the tiny model's q_proj and v_proj are 64×64
  const r = run("count", "--model", model, "--method", "lora", "--lora-r", "65");
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /--lora-r 65 exceeds min\(out, in\) = 64 of 'model\.decoder\.layers\.0\.self_attn\.q_proj' \[64×64\]/);
  assert.equal(run("count", "--model", model, "--method", "lora", "--lora-r", "64").status, 0);
  const fc = run("count", "--model", model, "--method", "lora", "--target-modules", "fc1", "--lora-r", "100");
  assert.match(fc.stderr, /--lora-r 100 exceeds min\(out, in\) = 64 of '.*fc1' \[128×64\]/);
  const ada = run("count", "--model", model, "--method", "adalora", "--adalora-init-r", "80", "--adalora-target-r", "8");
  assert.equal(ada.status, 2);
  assert.match(ada.stderr, /--adalora-init-r 80 exceeds min\(out, in\) = 64/);
});

test("randmask with no arguments prints the usage to stderr and exits 2", () => {
  const r = run();
  assert.equal(r.status, 2);
  assert.equal(r.stdout, "");
  assert.match(r.stderr, /expected a command[\s\S]*usage: randmask <command> \[flags\]/);
  const help = run("--help");
  assert.equal(help.status, 0);
  assert.match(help.stdout, /usage: randmask <command>/);
});

test("hessian and pretrain: a tokenizer beyond the model's vocabulary is named before any work", () => {
  const h = run("hessian", "--model", small, "--task", "jsonl", "--data-dir", data, "--method", "bitfit", ...sizes, "--examples", "2");
  assert.equal(h.status, 1, h.stderr);
  assert.match(h.stderr, /token ids .* from the tokenizer in .*small are beyond the model's vocabulary of 512 \(vocab_size in .*small\/config\.json\)/);
  const text = join(work, "corpus.txt");
  writeFileSync(text, "Some text for pretraining, with words a 512-id vocabulary cannot hold.\n".repeat(50));
  const parent = join(work, "pretrain-parent");
  mkdirSync(parent);
  const out = join(parent, "out");
  const p = run("pretrain", "--config", join(small, "config.json"), "--tokenizer", join(sharedDir, "tokenizers", "opt"), "--data", text,
    "--max-steps", "1", "--block-size", "8", "--batch-size", "2", "--out", out);
  assert.equal(p.status, 1, p.stderr);
  assert.match(p.stderr, /token ids .* beyond the model's vocabulary of 512 \(vocab_size in .*small\/config\.json\)/);
  assert.deepEqual(readdirSync(parent), [], "--out (and its token cache) is not left behind, so the same --out works next time");
});

test("convert checks every tensor against config.json before writing: one error naming the file and the tensor", () => {
  const make = (name: string, edit: (t: Map<string, ReturnType<typeof tensor>>) => void) => {
    const dir = join(work, name);
    mkdirSync(dir);
    for (const f of ["config.json", "vocab.json", "merges.txt"]) copyFileSync(join(model, f), join(dir, f));
    const tensors = loadCheckpoint(model);
    edit(tensors);
    saveFile(join(dir, "model.safetensors"), tensors);
    for (const t of new Set(tensors.values())) t.dispose();
    return dir;
  };
  const key = "model.decoder.layers.1.fc1.weight";
  const cases: [string, (t: Map<string, ReturnType<typeof tensor>>) => void, RegExp][] = [
    ["bad-shape", (t) => { t.get(key)!.dispose(); t.set(key, tensor(new Float32Array(64 * 64), [64, 64])); },
      /bad-shape\/model\.safetensors: tensor 'model\.decoder\.layers\.1\.fc1\.weight' has shape \[64,64\] but config\.json implies \[128,64\]/],
    ["missing", (t) => { t.get(key)!.dispose(); t.delete(key); }, /missing: the checkpoint lacks 1 tensor\(s\) config\.json needs: model\.decoder\.layers\.1\.fc1\.weight/],
    ["extra", (t) => { t.set("model.decoder.layers.2.fc1.weight", tensor(new Float32Array(4), [2, 2])); },
      /extra\/model\.safetensors: tensor 'model\.decoder\.layers\.2\.fc1\.weight' is not a parameter of a OPTForCausalLM/],
  ];
  for (const [name, edit, re] of cases) {
    const src = make(name, edit);
    const parent = join(work, `${name}-parent`);
    mkdirSync(parent);
    const r = run("convert", "--model", src, "--out", join(parent, "out"));
    assert.equal(r.status, 1, `${name}: ${r.stderr}`);
    assert.match(r.stderr, re, name);
    assert.deepEqual(readdirSync(parent), [], `${name}: nothing written`);
  }
  // keys saved without the wrapper prefix, and every family's fixture, still convert
  for (const fixture of ["gpt2-tiny", "llama-tiny", "opt-tiny-prenorm", "vit-tiny", "clip-vision-tiny"]) {
    const r = run("convert", "--model", join(sharedDir, "fixtures", fixture), "--out", join(work, `conv-${fixture}`));
    assert.equal(r.status, 0, `${fixture}: ${r.stderr}`);
  }
  const bare = make("bare", (t) => { for (const [k, v] of [...t]) { t.delete(k); t.set(k.replace(/^model\./, ""), v); } });
  const ok = run("convert", "--model", bare, "--out", join(work, "conv-bare"));
  assert.equal(ok.status, 0, ok.stderr);
});

test("a vision folder where a language model is needed, and the other modality's logits flags: one clear usage error", () => {
  const vit = join(sharedDir, "fixtures", "vit-tiny");
  const hessian = run("hessian", "--model", vit, "--method", "random-mask", "--trainable-ratio", "1e-2", "--task", "jsonl", "--data-dir", data);
  assert.equal(hessian.status, 2);
  assert.match(hessian.stderr, /--model .*vit-tiny: model_type "vit" \(config\.json\) is a vision model; this command needs a language model \(opt, /);
  writeFileSync(join(work, "pv.json"), "[]"); // --pixel-values must name a file; the flags' modality is checked next
  let r = run("logits", "--model", vit, "--pixel-values", join(work, "pv.json"), "--input-ids", "[[1,2]]");
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--input-ids is for language models; .*vit-tiny is a vision model/);
  r = run("logits", "--model", model, "--input-ids", "[[1,2]]", "--pixel-values", join(work, "pv.json"));
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--pixel-values is for vision models; .* is a language model \(give --input-ids\)/);
  // the other modality's flag alone: named as such, not as a missing flag of this one
  r = run("logits", "--model", vit, "--input-ids", "[[1,2]]");
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--input-ids is for language models; .*vit-tiny is a vision model \(give --pixel-values\)\n$/);
  r = run("logits", "--model", model, "--pixel-values", join(work, "pv.json"));
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--pixel-values is for vision models; .* is a language model \(give --input-ids\)\n$/);
});

test("every output folder flag that names a file, or a path under one, is one usage error naming the flag (exit 2), before anything is written", () => {
  const parent = join(work, "out-faults");
  mkdirSync(parent);
  const file = join(parent, "a-file");
  writeFileSync(file, "keep me\n");
  const queue = ["--queue", "redis://127.0.0.1:1/0"]; // never contacted: the folders are checked first
  const cases: [string, string, (out: string) => string[], string][] = [
    ["finetune", "out", (o) => ["finetune", "--model", model, "--task", "jsonl", "--data-dir", data, "--method", "bitfit", "--out", o], "the run's adapter, metrics and logs"],
    ["convert", "out", (o) => ["convert", "--model", model, "--out", o], "the converted model"],
    ["merge", "out", (o) => ["merge", "--model", model, "--adapter", work, "--out", o], "the merged model"],
    ["pretrain", "out", (o) => ["pretrain", "--preset", "opt-125m", "--data", file, "--max-steps", "1", "--out", o], "the pretraining run"],
    ["pretrain", "cache-dir", (o) => ["pretrain", "--preset", "opt-125m", "--data", file, "--max-steps", "1", "--out", join(parent, "p"), "--cache-dir", o], "the tokenised files"],
    ["theory", "out", (o) => ["theory", "--n", "4", "--d", "8", "--out", o], "theory.json, theory.md and the plots"],
    ["sweep run", "out-dir", (o) => ["sweep", "run", join(work, "no-sweep.json"), "--db", join(parent, "r.sqlite"), "--out-dir", o], "the run folders"],
    ["sweep collect", "out-dir", (o) => ["sweep", "collect", "--db", join(parent, "c.sqlite"), "--out-dir", o, ...queue], "the run folders"],
    ["worker", "artifacts", (o) => ["worker", ...queue, "--artifacts", o], "each run's files"],
  ];
  for (const [name, flag, args, holds] of cases) {
    for (const out of [file, join(file, "sub")]) {
      const r = run(...args(out));
      assert.equal(r.status, 2, `${name} --${flag} ${out}: ${r.stderr}`);
      assert.equal(r.stderr, `randmask ${name}: --${flag} ${out}: ${out === file ? "is a file" : `${file} is a file`}, expected a folder (for ${holds})\n`);
    }
  }
  // a --db under a file: its folder, and the run folders beside it, cannot be made
  const db = join(file, "results.sqlite");
  for (const action of [["run", join(work, "no-sweep.json")], ["collect", ...queue]]) {
    const r = run("sweep", ...action, "--db", db);
    assert.equal(r.status, 2, r.stderr);
    assert.equal(r.stderr, `randmask sweep ${action[0]}: --db ${db}: ${file} is a file, expected a folder (for the database)\n`);
  }
  assert.equal(readFileSync(file, "utf8"), "keep me\n");
  assert.deepEqual(readdirSync(parent), ["a-file"], "nothing written");
  // a folder that holds files is refused the same way by every command that creates its --out
  const busy = join(parent, "busy");
  mkdirSync(busy);
  writeFileSync(join(busy, "mine.txt"), "mine");
  for (const [name, flag, args, holds] of cases.filter(([n, f]) => f === "out" && n !== "pretrain")) {
    const r = run(...args(busy));
    assert.equal(r.status, 2, `${name}: ${r.stderr}`);
    assert.equal(r.stderr, `randmask ${name}: --${flag} ${busy}: exists and is not empty; nothing was written (expected an absent or empty folder for ${holds})\n`);
  }
  assert.deepEqual(readdirSync(busy), ["mine.txt"]);
});

// Permission checks need a user they apply to: as root, the commands run as nobody (uid 65534), which must be
// able to read this checkout; as anyone else, as themselves.
const asRoot = process.getuid?.() === 0;
const unprivileged = asRoot ? { uid: 65534, gid: 65534 } : {};
const noUnprivileged = asRoot && spawnSync(process.execPath, [cli, "--version"], unprivileged).status !== 0 &&
  "running as root, and user nobody cannot read this checkout";

test("an output folder, or the folder to make it in, that this user may not write: one usage error naming the flag, before anything is written", { skip: noUnprivileged }, () => {
  const top = join(work, "perm");
  const locked = join(top, "locked");
  mkdirSync(locked, { recursive: true });
  writeFileSync(join(top, "t.txt"), "some text\n");
  for (const d of [work, data, model]) chmodSync(d, 0o755); // readable by nobody
  chmodSync(top, 0o777); // writable by nobody too: `locked` alone refuses writes
  chmodSync(locked, 0o555);
  const runAs = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: "utf8", env: { ...process.env, RANDMASK_THREADS: "1" }, ...unprivileged });
  const cases: [string, string, string, string[], string][] = [
    ["finetune", "out", join(locked, "run"), ["finetune", "--model", model, "--task", "jsonl", "--data-dir", data, "--method", "bitfit"], "the run's adapter, metrics and logs"],
    ["convert", "out", join(locked, "a", "b"), ["convert", "--model", model], "the converted model"],
    ["pretrain", "cache-dir", join(locked, "cache"), ["pretrain", "--preset", "opt-125m", "--data", join(top, "t.txt"), "--max-steps", "1", "--out", join(top, "p")], "the tokenised files"],
    ["report", "out", locked, ["report", "--db", join(top, "none.sqlite")], "report.md, results.csv and the figures"],
  ];
  for (const [name, flag, out, args, holds] of cases) {
    const r = runAs(...args, `--${flag}`, out);
    assert.equal(r.status, 2, `${name} --${flag} ${out}: ${r.stderr}`);
    assert.equal(r.stderr, `randmask ${name}: --${flag} ${out}: ${out === locked ? "" : `${locked} `}is not writable by this user; nothing was written ` +
      `(expected a folder it may write, for ${holds})\n`);
  }
  const db = join(locked, "results.sqlite");
  const r = runAs("sweep", "collect", "--queue", "redis://127.0.0.1:1/0", "--db", db);
  assert.equal(r.status, 2, r.stderr);
  assert.equal(r.stderr, `randmask sweep collect: --db ${db}: ${locked} is not writable by this user, expected a folder it may write (for the database)\n`);
  // merge and convert make their --out beside it and rename it into place: an empty --out this user may write, in a folder
  // it may not, failed after loading the model ("cannot create …: permission denied", exit 1)
  const emptyOut = join(work, "perm-empty");
  mkdirSync(join(emptyOut, "e"), { recursive: true });
  chmodSync(emptyOut, 0o555);
  chmodSync(join(emptyOut, "e"), 0o777);
  for (const [name, holds] of [["convert", "the converted model"], ["merge", "the merged model"]]) {
    const e = runAs(name, "--model", model, ...(name === "merge" ? ["--adapter", model] : []), "--out", join(emptyOut, "e"));
    assert.equal(e.status, 2, e.stderr);
    assert.equal(e.stderr, `randmask ${name}: --out ${join(emptyOut, "e")}: ${emptyOut} is not writable by this user (the output is made beside ` +
      `${join(emptyOut, "e")} and renamed onto it); nothing was written (expected a folder it may write, for ${holds})\n`);
  }
  assert.deepEqual(readdirSync(emptyOut), ["e"]);
  // a folder inside it is fine: its parent is writable
  assert.equal(runAs("convert", "--model", model, "--out", join(emptyOut, "e", "sub")).status, 0);
  // an output file's folder too: it failed with a raw EACCES (exit 1) after the whole evaluation
  const predictions = join(locked, "p.jsonl");
  const e = runAs("eval", "--model", model, "--task", "jsonl", "--data-dir", data, "--test-size", "4", "--predictions", predictions);
  assert.equal(e.status, 2, e.stderr);
  assert.equal(e.stderr, `randmask eval: --predictions ${predictions}: ${locked} is not writable by this user (expected a folder it may write)\n`);
  assert.deepEqual(readdirSync(locked), []);
  assert.deepEqual(readdirSync(top).sort(), ["locked", "t.txt"], "nothing written");
});

test("a --db that is someone else's SQLite file or a folder, and an --out that is a broken link: refused, nothing changed or left behind", () => {
  const parent = join(work, "db-faults");
  mkdirSync(parent);
  const foreign = join(parent, "theirs.sqlite");
  const theirs = new Database(foreign);
  theirs.exec("CREATE TABLE users (name TEXT); INSERT INTO users VALUES ('ada')");
  theirs.close();
  const empty = join(parent, "empty.sqlite");
  writeFileSync(empty, "");
  const before = () => [readFileSync(foreign), readFileSync(empty)];
  const kept = before();
  const queue = ["--queue", "redis://127.0.0.1:1/0"]; // a foreign database is refused before the queue is contacted
  const sweepFile = join(work, "db-faults.json");
  writeFileSync(sweepFile, JSON.stringify({ name: "db-faults", models: [model], tasks: ["jsonl"], dataDir: data, lrs: [1e-3],
    sizes: { train: 8, dev: 4, test: 4 }, epochs: [1], methods: [{ method: "bitfit" }] }));
  for (const db of [foreign, empty]) {
    for (const action of [["run", sweepFile], ["collect", ...queue], ["status"], ["results"]]) {
      const r = run("sweep", ...action, "--db", db);
      assert.equal(r.status, 1, `sweep ${action[0]} --db ${db}: ${r.stderr}`);
      assert.equal(r.stderr, `randmask sweep ${action[0]}: --db ${db}: not a randmask results database (it has no runs table; nothing was written to it)\n`);
    }
  }
  assert.deepEqual(before(), kept, "the files are byte for byte as they were");
  assert.deepEqual(readdirSync(parent).sort(), ["empty.sqlite", "theirs.sqlite"], "no run folder, no -wal/-shm left behind");
  for (const action of [["run", sweepFile], ["status"]]) {
    const r = run("sweep", ...action, "--db", parent);
    assert.equal(r.status, 2, r.stderr);
    assert.equal(r.stderr, `randmask sweep ${action[0]}: --db ${parent}: is a folder, expected the results database file (SQLite)\n`);
  }
  const link = join(parent, "gone");
  symlinkSync(join(parent, "nowhere"), link);
  const r = run("theory", "--n", "4", "--d", "8", "--out", link);
  assert.equal(r.status, 2, r.stderr);
  assert.equal(r.stderr, `randmask theory: --out ${link}: is a broken symbolic link (to ${join(parent, "nowhere")}), expected a folder (for theory.json, theory.md and the plots)\n`);
});

test("report --out refuses a folder holding other files (exit 2, untouched); it rewrites its own earlier report, removing figures that no longer apply", async () => {
  const { ResultsDb } = await import("../src/sweep/db.js");
  const { REPORT_MARKER } = await import("../src/sweep/report-folder.js");
  const dbPath = join(work, "report.sqlite");
  ResultsDb.open(dbPath, { create: true }).close();
  const theirs = join(work, "theirs");
  mkdirSync(theirs);
  writeFileSync(join(theirs, "report.md"), "my own notes\n");
  const r = run("report", "--db", dbPath, "--out", theirs);
  assert.equal(r.status, 2, r.stderr);
  assert.equal(r.stderr, `randmask report: --out ${theirs}: holds files and is not a report folder randmask wrote (no ${REPORT_MARKER} there); ` +
    "nothing was written (expected an absent or empty folder, or an earlier report's)\n");
  assert.deepEqual(readdirSync(theirs), ["report.md"]);
  assert.equal(readFileSync(join(theirs, "report.md"), "utf8"), "my own notes\n");
  // an empty folder takes a report, marked; the report may then be written again there
  const ours = join(work, "ours");
  mkdirSync(ours);
  const first = run("report", "--db", dbPath, "--out", ours);
  assert.equal(first.status, 0, first.stderr);
  assert.deepEqual(JSON.parse(readFileSync(join(ours, REPORT_MARKER), "utf8")).files, ["report.md", "results.csv"]);
  // a figure an earlier report listed, that this database no longer gives, goes; a file of the user's stays
  writeFileSync(join(ours, "fig3-metric-vs-lr.svg"), "<svg/>");
  writeFileSync(join(ours, REPORT_MARKER), JSON.stringify({ kind: "randmask-report", files: ["report.md", "results.csv", "fig3-metric-vs-lr.svg"] }));
  writeFileSync(join(ours, "notes.txt"), "mine");
  const again = run("report", "--db", dbPath, "--out", ours);
  assert.equal(again.status, 0, again.stderr);
  assert.deepEqual(readdirSync(ours).sort(), [REPORT_MARKER, "notes.txt", "report.md", "results.csv"]);
});
