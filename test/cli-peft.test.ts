// `randmask count` and `randmask merge` end to end.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, statSync, writeFileSync, existsSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { tensor, tidy, noGrad } from "../src/engine/index.js";
import { OPTForCausalLM } from "../src/models/opt.js";
import { PeftModel } from "../src/peft/peft-model.js";
import { SIDE_FILES } from "../src/io/side-files.js";
import { repoRoot, sharedDir } from "./helpers.js";

const cli = join(repoRoot, "dist", "src", "cli", "main.js");
const fixture = join(sharedDir, "fixtures", "opt-tiny-prenorm");
const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: "utf8" });

test("count --json gives the paper's Params column", () => {
  const r = run("count", "--preset", "opt-125m", "--method", "random-mask", "--trainable-ratio", "1e-5", "--mask-kind", "exact", "--json");
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { method: "random-mask", trainable: 1252, total: 125239296, ratio: 1252 / 125239296 });
  const lora = JSON.parse(run("count", "--preset", "opt-125m", "--method", "lora", "--lora-r", "8", "--json").stdout);
  assert.equal(lora.trainable, 24 * 8 * (768 + 768));
  const bad = run("count", "--preset", "opt-125m", "--method", "random-mask", "--trainable-ratio", "0");
  assert.equal(bad.status, 2, "a method option is a usage error");
  assert.match(bad.stderr, /--trainable-ratio must be in \(0, 1\]/);
  const unknown = run("count", "--preset", "opt-125m", "--method", "nope");
  assert.equal(unknown.status, 2);
  assert.match(unknown.stderr, /--method "nope": expected one of random-mask, .*lora/);
});

for (const method of ["random-mask", "lora"]) {
  test(`merge writes a standalone checkpoint equal to the ${method} adapter's outputs`, () => tidy(() => {
    const model = OPTForCausalLM.load(fixture);
    const peft = PeftModel.create(model, method, method === "lora" ? { r: 4 } : { trainableRatio: 0.02, seed: 4 });
    noGrad(() => peft.trainableParams().forEach((p, i) => p.copy_(p.add(0.05 * (i % 2 ? 1 : -1)))));
    const ids = tensor([2, 11, 22, 33, 44], [1, 5], "int64");
    const expected = noGrad(() => model.forward(ids).logits);
    const work = mkdtempSync(join(tmpdir(), "randmask-merge-"));
    peft.save(join(work, "adapter"));
    const r = run("merge", "--model", fixture, "--adapter", join(work, "adapter"), "--out", join(work, "merged"));
    assert.equal(r.status, 0, r.stderr);
    const merged = OPTForCausalLM.load(join(work, "merged"));
    assert.ok(noGrad(() => merged.forward(ids).logits).allclose(expected, 1e-5, 1e-5));
    assert.equal(JSON.parse(readFileSync(join(work, "merged", "config.json"), "utf8")).model_type, "opt");
    // an existing, non-empty output is never overwritten
    writeFileSync(join(work, "keep.txt"), "user data");
    const again = run("merge", "--model", fixture, "--adapter", join(work, "adapter"), "--out", work);
    assert.equal(again.status, 2);
    assert.match(again.stderr, /exists and is not empty; nothing was written/);
    assert.ok(existsSync(join(work, "keep.txt")));
    merged.dispose(); peft.remove(); model.dispose();
  }));
}

test("merge and convert carry every side file (SentencePiece, generation, preprocessor, chat template), byte for byte, writable even from a read-only source", () => {
  const work = mkdtempSync(join(tmpdir(), "randmask-side-"));
  const src = join(work, "model");
  mkdirSync(src);
  for (const f of ["config.json", "model.safetensors"]) copyFileSync(join(fixture, f), join(src, f));
  const side: Record<string, Buffer> = {};
  // the list, and the chat templates transformers ≥ 4.47 saves beside the tokenizer (they win over tokenizer_config.json's)
  for (const f of [...SIDE_FILES, "chat_template.jinja", "chat_template.json"]) side[f] = Buffer.from(`${f} of the source model \u00e9\n`);
  for (const [f, bytes] of Object.entries(side)) writeFileSync(join(src, f), bytes);
  for (const f of readdirSync(src)) chmodSync(join(src, f), 0o444);
  const model = OPTForCausalLM.load(src);
  const peft = PeftModel.create(model, "random-mask", { trainableRatio: 0.02, seed: 1 });
  peft.save(join(work, "adapter"));
  peft.remove(); model.dispose();
  for (const [name, args] of [["merge", ["--adapter", join(work, "adapter")]], ["convert", []]] as const) {
    const out = join(work, name);
    const r = run(name, "--model", src, ...args, "--out", out);
    assert.equal(r.status, 0, r.stderr);
    for (const [f, bytes] of Object.entries(side)) {
      assert.ok(readFileSync(join(out, f)).equals(bytes), `${name}: ${f}`);
      assert.ok(statSync(join(out, f)).mode & 0o200, `${name}: ${f} is writable by its owner`);
    }
  }
});
