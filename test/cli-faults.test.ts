// Faults a fresh user found, each held at the right behaviour: a tokenizer
// whose ids the model lacks is named before any work (finetune, generate);
// finetune's batch/accumulation mismatch is caught before --out exists;
// negative flag values reach the value's own check.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parityTask, repoRoot, sharedDir, tinyTextModel } from "./helpers.js";

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

test("finetune: --batch-size not a multiple of --grad-accum fails before --out exists", () => {
  const out = join(work, "accum-out");
  const r = run("finetune", "--model", model, "--task", "jsonl", "--data-dir", data, "--method", "lora", ...sizes, "--grad-accum", "3", "--out", out);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /--batch-size 8 must be a multiple of --grad-accum 3/);
  assert.ok(!existsSync(out));
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
