// The package entry point exposes a working API (a short training loop through it).
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import * as randmask from "../src/index.js";
import { sharedDir } from "./helpers.js";

test("the package entry point trains an adapter end to end", async () => {
  const { OPTForCausalLM, PeftModel, AdamW, tidy, settle, causalLmLoss, tensor } = randmask;
  const model = OPTForCausalLM.load(join(sharedDir, "fixtures", "opt-tiny-prenorm"));
  const peft = PeftModel.create(model, "random-mask", { trainableRatio: 1e-2, seed: 0 });
  const opt = new AdamW(peft.trainableParams(), { lr: 1e-1 });
  const ids = tensor([2, 100, 200, 300], [1, 4], "int64");
  const losses: number[] = [];
  for (let step = 0; step < 5; step++) {
    losses.push(tidy(() => { const l = causalLmLoss(model.forward(ids).logits, ids); l.backward(); return l.item(); }));
    opt.step();
    opt.zeroGrad();
    await settle();
  }
  assert.ok(losses[4] < losses[0], `loss ${losses[0]} → ${losses[4]}`);
  assert.deepEqual(randmask.METHODS.map((m) => m.name).length, 8);
  assert.ok(randmask.TASK_NAMES.includes("jsonl"));
  assert.equal(typeof randmask.generate, "function");
  assert.equal(typeof randmask.predict, "function");
  peft.remove();
  model.dispose();
});
