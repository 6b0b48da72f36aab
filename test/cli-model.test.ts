// The `logits` and `info` commands end to end, against the Hugging Face reference.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { repoRoot, sharedDir } from "./helpers.js";

const cli = join(repoRoot, "dist", "src", "cli", "main.js");
const fixture = join(sharedDir, "fixtures", "opt-tiny-prenorm");
const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: "utf8" });

test("randmask logits prints Hugging Face's logits for a left-padded batch", () => {
  const ref = JSON.parse(readFileSync(join(fixture, "reference.json"), "utf8"));
  const c = ref.cases.find((x: { name: string }) => x.name === "batch_left_pad");
  const r = run("logits", "--model", fixture, "--input-ids", JSON.stringify(c.input_ids), "--attention-mask", JSON.stringify(c.attention_mask));
  assert.equal(r.status, 0, r.stderr);
  const { logits } = JSON.parse(r.stdout);
  assert.deepEqual([logits.length, logits[0].length, logits[0][0].length], c.logits_shape);
  let maxErr = 0;
  c.logits.forEach((row: number[][], b: number) => row.forEach((vec, t) => {
    if (c.attention_mask[b][t]) vec.forEach((v, j) => { maxErr = Math.max(maxErr, Math.abs(v - logits[b][t][j])); });
  }));
  assert.ok(maxErr < 1e-4, `max error ${maxErr}`);
});

test("randmask info reports the architecture and parameter count", () => {
  const r = run("info", "--model", fixture, "--json");
  assert.equal(r.status, 0, r.stderr);
  const info = JSON.parse(r.stdout);
  assert.equal(info.parameters, 141184);
  assert.equal(info.layers, 2);
  assert.equal(info.layerNorm, "pre");
});

test("bad flags give one clear error line and a usage exit code", () => {
  const bad = run("logits", "--model", fixture, "--input-ids", "[[2,1],[3]]");
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--input-ids: expected a rectangular JSON array/);
  // a missing --model folder is named as such, before anything is read
  const missing = run("info", "--model", join(fixture, "nope"));
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /--model \S*nope: folder does not exist/);
  const noConfig = run("info", "--model", sharedDir);
  assert.equal(noConfig.status, 1);
  assert.match(noConfig.stderr, /no config.json/);
  assert.equal(run("frobnicate").status, 2);
});
