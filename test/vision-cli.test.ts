// `randmask logits --pixel-values` for the vision fixtures, against Hugging Face's outputs.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { tensor } from "../src/engine/index.js";
import { saveFile } from "../src/io/safetensors.js";
import { repoRoot, sharedDir } from "./helpers.js";

const cli = join(repoRoot, "dist", "src", "cli", "main.js");
const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: "utf8" });
const tmp = mkdtempSync(join(tmpdir(), "vision-cli-"));

function maxErr(a: unknown, b: unknown): number {
  if (Array.isArray(a)) {
    assert.ok(Array.isArray(b) && a.length === b.length, "shapes differ");
    return Math.max(...a.map((x, i) => maxErr(x, (b as unknown[])[i])));
  }
  return Math.abs((a as number) - (b as number));
}

function fixture(name: string): { dir: string; ref: Record<string, unknown>; pixels: string } {
  const dir = join(sharedDir, "fixtures", name);
  const ref = JSON.parse(readFileSync(join(dir, "reference.json"), "utf8"));
  const pixels = join(tmp, `${name}-pixels.json`);
  writeFileSync(pixels, JSON.stringify(ref.pixel_values));
  return { dir, ref, pixels };
}

test("randmask logits --pixel-values prints a ViT classifier's logits", () => {
  const { dir, ref, pixels } = fixture("vit-tiny");
  const r = run("logits", "--model", dir, "--pixel-values", pixels);
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.deepEqual(Object.keys(out), ["logits"]);
  assert.ok(maxErr(out.logits, ref.logits) <= 1e-4);
});

test("randmask logits --pixel-values prints CLIP's image_embeds and last_hidden_state", () => {
  const { dir, ref, pixels } = fixture("clip-vision-tiny");
  const r = run("logits", "--model", dir, "--pixel-values", pixels);
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.deepEqual(Object.keys(out).sort(), ["image_embeds", "last_hidden_state"]);
  assert.ok(maxErr(out.image_embeds, ref.image_embeds) <= 1e-4);
  assert.ok(maxErr(out.last_hidden_state, ref.last_hidden_state) <= 1e-4);
});

test("--head runs CLIP's features through a fixed head file (normalised by default for CLIP)", () => {
  const { dir, ref, pixels } = fixture("clip-vision-tiny");
  const head = join(tmp, "head.safetensors");
  // weight rows e0 and e1 + e2 with bias (0.5, 0), no normalise flag
  const w = new Float32Array(2 * 32);
  w[0] = 1; w[32 + 1] = 1; w[32 + 2] = 1;
  const t = new Map([["weight", tensor(w, [2, 32])], ["bias", tensor([0.5, 0], [2])]]);
  saveFile(head, t);
  const r = run("logits", "--model", dir, "--pixel-values", pixels, "--head", head);
  assert.equal(r.status, 0, r.stderr);
  const { logits } = JSON.parse(r.stdout);
  (ref.image_embeds as number[][]).forEach((e, b) => {
    const norm = Math.hypot(...e);
    assert.ok(Math.abs(logits[b][0] - (e[0] / norm + 0.5)) < 1e-4 && Math.abs(logits[b][1] - (e[1] + e[2]) / norm) < 1e-4, `row ${b}`);
  });
  const wrong = join(tmp, "wrong-head.safetensors");
  saveFile(wrong, new Map([["weight", tensor(new Float32Array(3 * 64), [3, 64])]]));
  const bad = run("logits", "--model", dir, "--pixel-values", pixels, "--head", wrong);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /wrong-head\.safetensors: 'weight' is \[3,64\] but the model's features have 32 dimensions/);
});

test("bad pixel files give one clear error naming the file", () => {
  const dir = join(sharedDir, "fixtures", "vit-tiny");
  const ragged = join(tmp, "ragged.json");
  writeFileSync(ragged, JSON.stringify([[[[0, 1], [2]]]]));
  let r = run("logits", "--model", dir, "--pixel-values", ragged);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--pixel-values .*ragged\.json: expected a rectangular JSON array \[batch, channels, height, width\]/);
  const small = join(tmp, "small.json");
  writeFileSync(small, JSON.stringify([Array.from({ length: 3 }, () => Array.from({ length: 8 }, () => Array(8).fill(0)))]));
  r = run("logits", "--model", dir, "--pixel-values", small);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /small\.json: shape \[1,3,8,8\], but the model takes \[batch, 3, 32, 32\]/);
  r = run("logits", "--model", dir, "--pixel-values", join(tmp, "absent.json"));
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--pixel-values .*absent\.json: file does not exist/);
  r = run("logits", "--model", dir);
  assert.match(r.stderr, /--pixel-values FILE\.json is required for a vision model/);
  // the other modality's flag is named first (main's order since the logits flags fix)
  r = run("logits", "--model", dir, "--input-ids", "[[1,2]]");
  assert.match(r.stderr, /--input-ids is for language models; .*vit-tiny is a vision model \(give --pixel-values\)/);
});

test("a vision checkpoint given to a text command's --model is named as a vision model (its model_type), not as lacking a tokenizer", () => {
  const data = join(tmp, "text-data");
  mkdirSync(data);
  writeFileSync(join(data, "train.jsonl"), `${JSON.stringify({ prompt: "a", options: [" no", " yes"], label: 0 })}\n`);
  for (const [name, type] of [["vit-tiny", "vit"], ["clip-vision-tiny", "clip_vision_model"]]) {
    const dir = join(sharedDir, "fixtures", name);
    const out = join(tmp, `text-out-${name}`);
    const commands: string[][] = [
      ["generate", "--model", dir, "--prompt", "The movie was"],
      ["tokenize", "--model", dir, "--text", "hi"],
      ["hessian", "--model", dir, "--task", "jsonl", "--data-dir", data, "--method", "full"],
      ["merge", "--model", dir, "--adapter", tmp, "--out", out],
      ["demo", "--quick", "--model", dir, "--out", out],
    ];
    for (const args of commands) {
      const r = run(...args);
      assert.equal(r.status, 2, `${args[0]} ${name}: ${r.stderr}`);
      assert.equal(r.stderr.split("\n").length, 2, "one line");
      assert.ok(r.stderr.startsWith(`randmask ${args[0]}: --model ${dir}: model_type "${type}" (config.json) is a vision model; ` +
        "this command needs a language model (opt, gpt2, llama, mistral, qwen2); vision models run with finetune or eval on an image task (--task cifar10|"), r.stderr);
      assert.doesNotMatch(r.stderr, /tokenizer/);
    }
    // finetune and eval on a text task say the same, naming --task too
    for (const cmd of ["finetune", "eval"]) {
      const r = run(cmd, "--model", dir, "--task", "jsonl", "--data-dir", data, ...(cmd === "finetune" ? ["--method", "full", "--out", out] : []));
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, new RegExp(`^randmask ${cmd}: --task jsonl is a text task, but --model .*${name} is a vision model \\(model_type "${type}" in config\\.json\\); ` +
        "vision models run with finetune or eval on an image task"));
    }
    assert.ok(!existsSync(out), "nothing written");
  }
});
