// Distance from init (the paper's Fig. 4c): each method's effective weight
// change ‖ΔW‖ against a hand computation in float64 JavaScript.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { Tensor, tensor, noGrad, keep } from "../src/engine/index.js";
import { OPTForCausalLM } from "../src/models/opt.js";
import { PeftModel } from "../src/peft/peft-model.js";
import { det, sharedDir } from "./helpers.js";

const fixture = join(sharedDir, "fixtures", "opt-tiny-prenorm");
const snapshot = (ts: Tensor[]) => ts.map((t) => keep(noGrad(() => t.detach().clone())));
const nums = (t: Tensor) => Array.from(t.to("float64").toArray() as Float64Array);
/** Sets a trainable tensor to deterministic values (outside autograd). */
const perturb = (t: Tensor, seed: number, scale: number) =>
  noGrad(() => t.copy_(tensor(Array.from(det(t.numel, seed), (v) => v * scale), t.shape, "float32").to(t.dtype)));
const close = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) <= 1e-6 * Math.max(1, Math.abs(b)), `${what}: ${a} vs hand ${b}`);

test("LoRA: ‖(α/r)·(BA − B₀A₀)‖ summed in quadrature over modules, against a hand matmul", () => {
  const model = OPTForCausalLM.load(fixture);
  const peft = PeftModel.create(model, "lora", { r: 4, alpha: 12, seed: 1 });
  const params = peft.trainableParams();
  const initial = snapshot(params);
  assert.equal(peft.instance.weightDeltaNorm!(initial), 0, "B starts at zero, so the model starts unchanged");
  params.forEach((p, i) => perturb(p, 10 + i, 0.5)); // A and B both move: ΔW = s(BA − B₀A₀) with B₀ = 0
  let sq = 0;
  for (let m = 0; m < params.length / 2; m++) {
    const [a, b] = [params[2 * m], params[2 * m + 1]];
    const [r, inF] = a.shape;
    const out = b.shape[0];
    const A = nums(a), B = nums(b);
    for (let i = 0; i < out; i++) for (let j = 0; j < inF; j++) {
      let s = 0;
      for (let k = 0; k < r; k++) s += B[i * r + k] * A[k * inF + j];
      sq += (3 * s) ** 2; // α/r = 12/4
    }
  }
  close(peft.instance.weightDeltaNorm!(initial), Math.sqrt(sq), "LoRA ‖ΔW‖");
  peft.remove();
  model.dispose();
});

test("masking, AdaLoRA, BitFit and full fine-tuning: ‖ΔW‖ equals the norm of the merged weights' change", () => {
  for (const [method, options] of [["random-mask", { trainableRatio: 0.02, seed: 2 }], ["structured-mask", { trainableRatio: 0.02, seed: 2 }],
    ["adalora", { initR: 4, targetR: 2, totalSteps: 10 }], ["full", {}], ["bitfit", {}]] as const) {
    const model = OPTForCausalLM.load(fixture);
    const before = new Map([...model.params].map(([k, v]) => [k, nums(v)]));
    const peft = PeftModel.create(model, method, options);
    const params = peft.trainableParams();
    const initial = snapshot(params);
    params.forEach((p, i) => perturb(p, 30 + i, 0.1));
    let sq = 0;
    peft.withMerged((state) => {
      for (const [k, v] of state) nums(v).forEach((x, j) => { sq += (x - before.get(k)![j]) ** 2; });
    });
    const norm = peft.instance.weightDeltaNorm!(initial);
    // merged weights are rounded to float32, so agree to float32 precision
    assert.ok(Math.abs(norm - Math.sqrt(sq)) <= 1e-5 * Math.sqrt(sq), `${method}: ${norm} vs merged ${Math.sqrt(sq)}`);
    assert.ok(norm > 0);
    peft.remove();
    model.dispose();
  }
});

test("methods that add modules have no weight delta", () => {
  const model = OPTForCausalLM.load(fixture);
  for (const method of ["adapter", "prefix"]) {
    const peft = PeftModel.create(model, method, {});
    assert.equal(peft.instance.weightDeltaNorm, undefined, method);
    peft.remove();
  }
  model.dispose();
});
