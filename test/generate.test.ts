// Greedy decoding: the KV cache changes nothing but speed.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { liveHandles } from "../src/engine/index.js";
import { OPTForCausalLM } from "../src/models/opt.js";
import { greedyGenerate } from "../src/models/generate.js";
import { sharedDir } from "./helpers.js";

const dir = join(sharedDir, "fixtures", "opt-tiny-prenorm");
const ref = JSON.parse(readFileSync(join(dir, "reference.json"), "utf8"));
const model = OPTForCausalLM.load(dir);

test("greedy decoding reproduces Hugging Face's tokens", () => {
  const { prompt, steps, tokens } = ref.greedy_no_cache;
  assert.deepEqual(greedyGenerate(model, [prompt], { maxNewTokens: steps, noCache: true })[0], tokens);
  assert.deepEqual(greedyGenerate(model, [prompt], { maxNewTokens: steps })[0], tokens);
});

test("KV-cached generation equals uncached decoding token for token, batched with left padding", () => {
  const prompts = [[2, 5, 9, 200, 17], [2, 300], [2, 44, 45, 46, 47, 48, 49, 50, 51]];
  const before = liveHandles().count;
  const cached = greedyGenerate(model, prompts, { maxNewTokens: 20 });
  const uncached = greedyGenerate(model, prompts, { maxNewTokens: 20, noCache: true });
  assert.deepEqual(cached, uncached);
  assert.ok(cached.every((r) => r.length === 20));
  // each row also equals decoding it alone (padding changes nothing)
  prompts.forEach((p, i) => assert.deepEqual(greedyGenerate(model, [p], { maxNewTokens: 20 })[0], cached[i]));
  assert.equal(liveHandles().count, before, "generation leaked tensor handles");
});

test("generation stops at a stop token, per row", () => {
  const prompts = [[2, 5, 9, 200, 17], [2, 300]];
  const free = greedyGenerate(model, prompts, { maxNewTokens: 10 });
  const stopAt = free[0][3];
  const stopped = greedyGenerate(model, prompts, { maxNewTokens: 10, stopTokenIds: [stopAt] });
  assert.deepEqual(stopped[0], free[0].slice(0, free[0].indexOf(stopAt)));
  const k = free[1].indexOf(stopAt);
  assert.deepEqual(stopped[1], k < 0 ? free[1] : free[1].slice(0, k));
});
