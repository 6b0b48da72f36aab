// randmask's OPT against Hugging Face transformers' outputs for the shared fixture.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { tensor, tidy, Tensor } from "../src/engine/index.js";
import { OPTForCausalLM } from "../src/models/opt.js";
import { causalLmLoss, perSequenceLoss, tokenNll } from "../src/models/lm-loss.js";
import { checkLogitsAtRows, sharedDir } from "./helpers.js";

const dir = join(sharedDir, "fixtures", "opt-tiny-prenorm");
const ref = JSON.parse(readFileSync(join(dir, "reference.json"), "utf8"));
const model = OPTForCausalLM.load(dir);

interface Case { name: string; input_ids: number[][]; attention_mask: number[][]; labels: number[][]; loss: number;
  per_sequence_loss: number[]; per_token_nll: number[][]; logits: number[][][]; logits_positions?: number[];
  grads?: Record<string, number[][]>; grad_norms?: Record<string, number> }

const ids = (rows: number[][]) => tensor(rows.flat(), [rows.length, rows[0].length], "int64");

for (const c of ref.cases as Case[]) {
  test(`logits and losses match Hugging Face: ${c.name}`, () => tidy(() => {
    const mask = ids(c.attention_mask);
    const logits = model.forward(ids(c.input_ids), { attentionMask: mask }).logits;
    const got = logits.toNested() as number[][][];
    const positions = c.logits_positions ?? c.input_ids[0].map((_, i) => i);
    let maxErr = 0;
    c.logits.forEach((row, b) => row.forEach((vec, k) => {
      const t = positions[k];
      if (c.attention_mask[b][t] === 0) return;
      vec.forEach((v, j) => { maxErr = Math.max(maxErr, Math.abs(v - got[b][t][j])); });
    }));
    assert.ok(maxErr <= 1e-4, `${c.name}: max |logit error| ${maxErr}`);
    const labels = ids(c.labels);
    assert.ok(Math.abs(causalLmLoss(logits, labels).item() - c.loss) < 1e-5, "loss");
    perSequenceLoss(logits, labels).toNumbers().forEach((v, i) => assert.ok(Math.abs(v - c.per_sequence_loss[i]) < 1e-5, "per-sequence loss"));
    const nll = tokenNll(logits, labels).toNested() as number[][];
    c.per_token_nll.forEach((row, b) => row.forEach((v, t) => assert.ok(Math.abs(v - nll[b][t]) < 1e-4, `nll[${b}][${t}]`)));
  }));
}

test("logits at requested positions equal the full logits there", () => tidy(() => {
  const c = (ref.cases as Case[]).find((x) => x.name === "max_positions")!;
  const pos = c.logits_positions!;
  const at = model.forward(ids(c.input_ids), { logitsAt: tensor(pos, [1, pos.length], "int64") }).logits;
  const full = model.forward(ids(c.input_ids)).logits.narrow(1, pos[0], pos.length);
  assert.ok(at.allclose(full, 1e-5, 1e-6));
}));

// With logitsAt the last layer runs at those rows only (queries, MLP, residual): its logits must still be
// Hugging Face's, for per-row positions in a left-padded batch, with and without checkpointing.
test("logits at per-row positions of a left-padded batch match Hugging Face (the last layer runs at those rows only)", () => tidy(() => {
  checkLogitsAtRows(model, (ref.cases as Case[]).find((x) => x.name === "batch_left_pad")!);
}));

for (const viaRows of [false, true]) test(`gradients match Hugging Face for the left-padded batch${viaRows ? " (logits asked at every position)" : ""}`, () => tidy(() => {
  const c = (ref.cases as Case[]).find((x) => x.grads)!;
  const params = [...new Set(model.params.values())];
  params.forEach((p) => p.setRequiresGrad(true));
  try {
    // logitsAt naming every position runs the last layer through its gathered-rows path: the same gradients
    const seq = c.input_ids[0].length;
    const every = ids(c.input_ids.map(() => Array.from({ length: seq }, (_, t) => t)));
    causalLmLoss(model.forward(ids(c.input_ids), { attentionMask: ids(c.attention_mask), ...(viaRows ? { logitsAt: every } : {}) }).logits, ids(c.labels)).backward();
    for (const [name, expected] of Object.entries(c.grads!)) {
      const g = model.params.get(name)!.grad!;
      const flat = expected.flat();
      const got = g.toNumbers();
      const scale = Math.max(...flat.map(Math.abs));
      const err = Math.max(...flat.map((v, i) => Math.abs(v - got[i])));
      assert.ok(err / scale < 1e-4, `${name}: relative gradient error ${err / scale}`);
    }
    for (const [name, norm] of Object.entries(c.grad_norms!)) {
      if (/k_proj\.bias/.test(name)) continue; // analytically zero; the reference holds rounding noise
      const got = model.params.get(name)!.grad!.norm().item();
      assert.ok(Math.abs(got - norm) <= 1e-4 * Math.max(norm, 1e-3), `${name}: grad norm ${got} vs ${norm}`);
    }
  } finally {
    params.forEach((p: Tensor) => { p.clearGrad(); p.setRequiresGrad(false); });
  }
}));

test("parameter count matches the reference", () => {
  assert.equal(model.numParameters(), ref.num_parameters);
});
