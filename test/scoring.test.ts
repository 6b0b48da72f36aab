// Option scoring: the shared-prompt path for single-token options against
// per-sequence log-softmax of full logits, and its gradient against finite differences
// (scores are float32, as for every model dtype, hence the tolerances).
import { test } from "node:test";
import assert from "node:assert/strict";
import { noGrad, tensor, tidy } from "../src/engine/index.js";
import { OPTForCausalLM } from "../src/models/opt.js";
import { parseConfig } from "../src/models/config.js";
import { PeftModel } from "../src/peft/peft-model.js";
import { continuationLogProbs } from "../src/eval/scoring.js";
import { encodeOptions, type Scored } from "../src/eval/encode.js";
import { predictOptions } from "../src/eval/evaluate.js";
import { BpeTokenizer } from "../src/tokenizer/bpe-tokenizer.js";
import type { Example } from "../src/tasks/types.js";
import { join } from "node:path";
import { det, sharedDir } from "./helpers.js";

const cfg = parseConfig({ model_type: "opt", vocab_size: 50, hidden_size: 16, num_hidden_layers: 2, ffn_dim: 32,
  num_attention_heads: 2, max_position_embeddings: 32, dropout: 0 });
// two prompts with two single-token options each (different lengths, so padding), one prompt with one option
const rows: Scored[] = [
  { ids: [2, 7, 8, 9, 11], start: 4 }, { ids: [2, 7, 8, 9, 12], start: 4 },
  { ids: [2, 20, 21, 11], start: 3 }, { ids: [2, 20, 21, 12], start: 3 },
  { ids: [2, 30, 31, 32, 33, 34, 40], start: 6 },
];

/** log p(ids[start] | ids[:start]) from the full sequence's logits, one sequence at a time. */
function reference(model: OPTForCausalLM): number[] {
  return rows.map((r) => noGrad(() => tidy(() => {
    const logits = model.forward(tensor(r.ids, [1, r.ids.length], "int64")).logits;
    return logits.logSoftmax(-1).toNumbers()[(r.start - 1) * cfg.vocabSize + r.ids[r.start]];
  })));
}

test("single-token options sharing a prompt score as their own full sequences", () => tidy(() => {
  const model = OPTForCausalLM.random(cfg, { seed: 4, dtype: "float64", std: 0.3 });
  const got = noGrad(() => continuationLogProbs(model, rows).toNumbers());
  const want = reference(model);
  got.forEach((g, i) => assert.ok(Math.abs(g - want[i]) < 1e-6, `row ${i}: ${g} vs ${want[i]}`));
  assert.ok(Math.abs(want[0] - want[1]) > 1e-6, "options of one prompt must score differently");
  model.dispose();
}));

test("gradient through the shared-prompt scores matches finite differences", () => tidy(() => {
  const model = OPTForCausalLM.random(cfg, { seed: 5, dtype: "float64", std: 0.3 });
  const peft = PeftModel.create(model, "lora", { r: 2 });
  noGrad(() => peft.trainableParams().forEach((p, i) => p.copy_(p.add(0.05 * (i + 1)))));
  const w = tensor(det(rows.length, 3), [rows.length], "float64");
  const objective = () => continuationLogProbs(model, rows).to("float64").mul(w).sum();
  const b = peft.trainableParams()[1];
  objective().backward();
  const u = tensor(det(b.numel, 7), b.shape, "float32");
  const analytic = b.grad!.to("float64").mul(u.to("float64")).sum().item();
  const eps = 1e-3;
  const at = (sign: number) => noGrad(() => { b.addScaled_(u, sign * eps); const v = objective().item(); b.addScaled_(u, -sign * eps); return v; });
  const numeric = (at(1) - at(-1)) / (2 * eps);
  assert.ok(Math.abs(analytic) > 1e-6, "the check needs a non-zero gradient");
  assert.ok(Math.abs(analytic - numeric) <= 1e-3 * Math.max(1, Math.abs(numeric)), `analytic ${analytic} vs numeric ${numeric}`);
  peft.remove(); model.dispose();
}));

test("predictOptions batches by length but returns predictions in the examples' order", () => tidy(() => {
  const model = OPTForCausalLM.random(parseConfig({ model_type: "opt", vocab_size: 50272, hidden_size: 16, num_hidden_layers: 1,
    ffn_dim: 32, num_attention_heads: 2, max_position_embeddings: 64, dropout: 0 }), { seed: 6, dtype: "float64", std: 0.5 });
  const tok = BpeTokenizer.fromDir(join(sharedDir, "tokenizers", "opt"));
  const words = "a dull , lifeless and overlong film that never finds its feet but the cast is wonderful".split(" ");
  const examples: Example[] = Array.from({ length: 24 }, (_, i) => ({
    prompt: `${words.slice(0, 1 + ((i * 7) % words.length)).join(" ")} It was`, options: [" terrible", " great"], label: 0,
  }));
  const want = examples.map((e) => noGrad(() => tidy(() => {
    const s = continuationLogProbs(model, encodeOptions(tok, [e], 64)[0]).toNumbers();
    return s.indexOf(Math.max(...s));
  })));
  assert.ok(new Set(want).size === 2, "the check needs both options predicted somewhere");
  assert.deepEqual(predictOptions(model, tok, examples, { batchRows: 6 }), want);
  model.dispose();
}));
