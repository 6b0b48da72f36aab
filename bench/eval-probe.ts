// Evaluation throughput on OPT-125m's shapes (random weights): option scoring
// of SST-2-shaped examples (26-token prompts, 2 one-token options), and greedy
// generation with the KV cache. Prints one JSON line.
import { tidy, noGrad } from "../src/engine/index.js";
import { OPTForCausalLM } from "../src/models/opt.js";
import { presetConfig } from "../src/models/presets.js";
import { greedyGenerate } from "../src/models/generate.js";
import { continuationLogProbs } from "../src/eval/scoring.js";
import type { Scored } from "../src/eval/encode.js";

const { quick } = JSON.parse(process.argv[2] ?? "{}") as { quick?: boolean };
const model = OPTForCausalLM.random(presetConfig("opt-125m", { dropout: 0 }), { seed: 0 });
const tokenAt = (i: number) => (i * 7919) % 50000 + 3;

const examples = quick ? 32 : 128;
const rows: Scored[] = [];
for (let e = 0; e < examples; e++) {
  const prompt = [2, ...Array.from({ length: 25 }, (_, i) => tokenAt(e * 31 + i))];
  for (const option of [6587, 372]) rows.push({ ids: [...prompt, option], start: prompt.length });
}
noGrad(() => tidy(() => { continuationLogProbs(model, rows.slice(0, 32)); }));
let t0 = performance.now();
for (let i = 0; i < rows.length; i += 32) noGrad(() => tidy(() => { continuationLogProbs(model, rows.slice(i, i + 32)).toNumbers(); }));
const scoreSeconds = (performance.now() - t0) / 1000;

const genBatch = 8, newTokens = quick ? 8 : 32;
const prompts = Array.from({ length: genBatch }, (_, b) => [2, ...Array.from({ length: 48 + b * 2 }, (_, i) => tokenAt(b * 97 + i))]);
greedyGenerate(model, prompts.slice(0, 1), { maxNewTokens: 2 });
t0 = performance.now();
greedyGenerate(model, prompts, { maxNewTokens: newTokens });
const genSeconds = (performance.now() - t0) / 1000;
console.log(JSON.stringify({ score_examples_per_s: examples / scoreSeconds, gen_batch: genBatch, gen_tokens_per_s: (genBatch * newTokens) / genSeconds }));
