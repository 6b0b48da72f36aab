// Activation checkpointing: same loss and gradients as the plain backward,
// and dropout repeats its masks when a layer is recomputed.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { readFileSync } from "node:fs";
import { tensor, tidy, manualSeed, noGrad, checkpoint, AdamW } from "../src/engine/index.js";
import { OPTForCausalLM } from "../src/models/opt.js";
import { parseConfig } from "../src/models/config.js";
import { PeftModel } from "../src/peft/peft-model.js";
import { causalLmLoss } from "../src/models/lm-loss.js";
import { det, sharedDir } from "./helpers.js";

const fixture = join(sharedDir, "fixtures", "opt-tiny-prenorm");
const ids = tensor([2, 10, 20, 30, 40, 50, 60], [1, 7], "int64");

test("checkpoint() recomputes in backward and gives the plain gradients", () => tidy(() => {
  const w = tensor(det(12, 1), [3, 4], "float64").setRequiresGrad(true);
  const x = tensor(det(8, 2), [2, 4], "float64").setRequiresGrad(true);
  const f = (t: typeof x) => t.matmul(w.transpose(0, 1)).tanh().pow(2).sum(1, true);
  f(x).sum().backward();
  const [gx1, gw1] = [x.grad!, w.grad!];
  x.clearGrad(); w.clearGrad();
  let calls = 0;
  const y = checkpoint((t) => { calls++; return f(t); }, x);
  assert.equal(calls, 1);
  y.sum().backward();
  assert.equal(calls, 2, "backward recomputes the function once");
  // parameters used inside receive their gradients during the recomputation
  assert.ok(gx1.allclose(x.grad!, 1e-12, 1e-12) && gw1.allclose(w.grad!, 1e-12, 1e-12));
  assert.throws(() => checkpoint(f, tensor([1, 2, 3, 4], [1, 4], "float64")), /input must require grad/);
}));

test("gradient checkpointing leaves the model's loss and gradients unchanged", () => tidy(() => {
  const model = OPTForCausalLM.load(fixture);
  const peft = PeftModel.create(model, "random-mask", { trainableRatio: 0.01 });
  const step = (ck: boolean) => {
    model.gradientCheckpointing = ck;
    const loss = causalLmLoss(model.forward(ids).logits, ids);
    loss.backward();
    const g = peft.trainableParams().map((p) => p.grad!.toNumbers()).flat();
    peft.trainableParams().forEach((p) => p.clearGrad());
    return { loss: loss.item(), g };
  };
  const plain = step(false), ck = step(true);
  assert.equal(ck.loss, plain.loss);
  assert.deepEqual(ck.g, plain.g);
  peft.remove(); model.dispose();
}));

test("with dropout, checkpointed gradients match finite differences (masks repeat on recompute)", () => tidy(() => {
  const cfg = JSON.parse(readFileSync(join(fixture, "config.json"), "utf8"));
  const model = OPTForCausalLM.random(parseConfig({ ...cfg, dropout: 0.3, attention_dropout: 0.2 }), { seed: 3, dtype: "float64", std: 0.1 });
  model.training = true;
  model.gradientCheckpointing = true;
  const peft = PeftModel.create(model, "lora", { r: 2 });
  noGrad(() => peft.trainableParams().forEach((p, i) => p.copy_(p.add(0.05 * (i + 1)))));
  const lossAt = () => { manualSeed(11); return causalLmLoss(model.forward(ids).logits, ids); };
  const b = peft.trainableParams()[1];
  lossAt().backward();
  const u = tensor(det(b.numel, 5), b.shape, "float32");
  const analytic = b.grad!.to("float64").mul(u.to("float64")).sum().item();
  const eps = 1e-3;
  const at = (sign: number) => noGrad(() => { b.addScaled_(u, sign * eps); const l = lossAt().item(); b.addScaled_(u, -sign * eps); return l; });
  const numeric = (at(1) - at(-1)) / (2 * eps);
  assert.ok(Math.abs(analytic - numeric) <= 2e-3 * Math.max(1, Math.abs(numeric)), `analytic ${analytic} vs numeric ${numeric}`);
  peft.remove(); model.dispose();
}));

// The recompute must not disturb the random stream the next steps draw from
// (torch.utils.checkpoint's preserve_rng_state): with dropout on, the loss
// curve of several optimizer steps is the same with and without checkpointing.
const METHOD_CONFIGS: [string, Record<string, unknown>][] = [
  ["random-mask", { trainableRatio: 0.01 }], ["structured-mask", { trainableRatio: 0.01 }],
  ["lora", { r: 2, dropout: 0.2 }], ["adalora", { initR: 4, targetR: 2, dropout: 0.2 }], ["bitfit", {}],
  ["adapter", { bottleneck: 4 }], ["prefix", { numVirtualTokens: 2 }], ["full", {}],
];

for (const [method, options] of METHOD_CONFIGS) {
  test(`${method}: with dropout, four steps give the same loss curve with and without checkpointing`, () => {
    const cfg = JSON.parse(readFileSync(join(fixture, "config.json"), "utf8"));
    const curve = (ck: boolean) => tidy(() => {
      const model = OPTForCausalLM.random(parseConfig({ ...cfg, dropout: 0.2, attention_dropout: 0.1 }), { seed: 5, std: 0.1 });
      model.training = true;
      model.gradientCheckpointing = ck;
      const peft = PeftModel.create(model, method, { ...options, seed: 1 });
      const opt = new AdamW(peft.trainableParams(), { lr: 1e-2 });
      manualSeed(7);
      const losses: number[] = [];
      for (let step = 0; step < 4; step++) {
        tidy(() => {
          const loss = causalLmLoss(model.forward(ids).logits, ids);
          loss.backward();
          losses.push(loss.item());
        });
        opt.step(); opt.zeroGrad();
      }
      peft.remove(); model.dispose();
      return losses;
    });
    const plain = curve(false), ck = curve(true);
    assert.ok(new Set(plain).size === plain.length, "the losses change from step to step");
    assert.deepEqual(ck, plain);
  });
}
