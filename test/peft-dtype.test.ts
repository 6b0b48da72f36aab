// dtypes and adapters: the base fingerprint identifies the checkpoint, not the
// dtype it was loaded in; merging into a bf16 model adds in float32 and rounds once.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { tensor, tidy, noGrad, keep } from "../src/engine/index.js";
import { OPTForCausalLM } from "../src/models/opt.js";
import { PeftModel, fingerprint } from "../src/peft/peft-model.js";
import type { LoraInstance } from "../src/peft/lora/index.js";
import { repoRoot, sharedDir } from "./helpers.js";

const fixture = join(sharedDir, "fixtures", "opt-tiny-prenorm");
const cli = join(repoRoot, "dist", "src", "cli", "main.js");
const tmp = () => mkdtempSync(join(tmpdir(), "randmask-dtype-"));

/** float32 → bfloat16 → float32, round to nearest even (the rounding libtorch and the hardware use). */
function bf16(x: number): number {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer);
  u[0] = ((u[0] + 0x7fff + ((u[0] >>> 16) & 1)) >>> 16) << 16;
  return f[0];
}

for (const [made, used] of [["bfloat16", "float32"], ["float32", "bfloat16"]] as const) {
  test(`an adapter made on the base loaded in ${made} loads on the same checkpoint loaded in ${used}`, () => tidy(() => {
    const dir = join(tmp(), "adapter");
    const a = OPTForCausalLM.load(fixture, { dtype: made });
    const peft = PeftModel.create(a, "random-mask", { trainableRatio: 0.01, seed: 2 });
    peft.save(dir);
    peft.remove(); a.dispose();
    const b = OPTForCausalLM.load(fixture, { dtype: used });
    PeftModel.load(b, dir).remove();
    // a base that differs beyond bf16's precision is still refused
    const q = "model.decoder.layers.0.self_attn.q_proj.weight";
    noGrad(() => b.params.get(q)!.copy_(b.params.get(q)!.mul(1.05)));
    assert.throws(() => PeftModel.load(b, dir), /made for a different base model/);
    b.dispose();
  }));
}

test("an adapter written before the bf16-rounded hash (values hashed as float32) still loads on its fp32 base", () => tidy(() => {
  const dir = join(tmp(), "adapter");
  const model = OPTForCausalLM.load(fixture);
  const peft = PeftModel.create(model, "lora", { r: 2 });
  peft.save(dir);
  peft.remove();
  const cfgFile = join(dir, "adapter_config.json");
  const cfg = JSON.parse(readFileSync(cfgFile, "utf8"));
  const names = Object.keys(cfg.base_model.shapes);
  cfg.base_model = fingerprint(model, names, "float32");
  assert.equal(cfg.base_model.hash_values, undefined);
  writeFileSync(cfgFile, JSON.stringify(cfg));
  PeftModel.load(model, dir).remove();
  // the old hash is of float32 values: a bf16 load of the base does not match it
  const bf = OPTForCausalLM.load(fixture, { dtype: "bfloat16" });
  assert.throws(() => PeftModel.load(bf, dir), /different base model/);
  bf.dispose(); model.dispose();
}));

test("merging LoRA into a bf16 model: every entry is the float32 merge rounded once to bf16", () => tidy(() => {
  const model = OPTForCausalLM.load(fixture, { dtype: "bfloat16" });
  // r = 1 and s = α/r = 2: each delta entry is one float32 product times 2, exact in any BLAS
  const peft = PeftModel.create(model, "lora", { r: 1, alpha: 2, targetModules: ["layers.0.self_attn.v_proj"] });
  const m = (peft.instance as LoraInstance).modules.get("model.decoder.layers.0.self_attn.v_proj")!;
  noGrad(() => m.b.copy_(tensor(Float32Array.from({ length: 64 }, (_, i) => 0.003 * Math.sin(i + 1)), [64, 1], "float32")));
  const W = Array.from(m.base.weight.to("float32").toArray() as Float32Array);
  const A = Array.from(m.a.toArray() as Float32Array), B = Array.from(m.b.toArray() as Float32Array);
  const merged = peft.withMerged((sd) => keep(sd.get("model.decoder.layers.0.self_attn.v_proj.weight")!.to("float32")));
  const got = merged.toArray() as Float32Array;
  let changed = 0;
  for (let i = 0; i < 64; i++) for (let j = 0; j < 64; j++) {
    const want = bf16(Math.fround(W[i * 64 + j] + Math.fround(2 * Math.fround(B[i] * A[j]))));
    assert.equal(got[i * 64 + j], want, `entry [${i},${j}]`);
    if (want !== W[i * 64 + j]) changed++;
  }
  assert.ok(changed > 1000, `the merge changed ${changed} entries`);
  peft.remove(); model.dispose();
}));

test("merge --dtype: a bf16-trained adapter merges on the fp32 load of its base, and the output is in the asked dtype", () => tidy(() => {
  const work = tmp();
  const model = OPTForCausalLM.load(fixture, { dtype: "bfloat16" });
  const peft = PeftModel.create(model, "lora", { r: 2 });
  noGrad(() => peft.trainableParams().forEach((p) => p.copy_(p.add(0.02))));
  peft.save(join(work, "adapter"));
  peft.remove(); model.dispose();
  for (const dtype of ["fp32", "bf16"]) {
    const r = spawnSync(process.execPath, [cli, "merge", "--model", fixture, "--adapter", join(work, "adapter"), "--out", join(work, dtype), "--dtype", dtype], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(readFileSync(join(work, dtype, "config.json"), "utf8")).torch_dtype, dtype === "fp32" ? "float32" : "bfloat16");
  }
}));
