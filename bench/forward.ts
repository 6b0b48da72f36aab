// `npm run bench:forward`: forward time of an OPT-125m-shaped model (random
// weights), batch 8 × 64 tokens, fp32 and bf16, all logits and last-2 logits.
import { tensor, tidy, noGrad, type DType } from "../src/engine/index.js";
import { OPTForCausalLM } from "../src/models/opt.js";
import { presetConfig } from "../src/models/presets.js";
import { parseFlags, timeIt } from "./timing.js";

const { json, quick } = parseFlags(process.argv.slice(2));
const batch = 8, seq = 64;
const ids = tensor(Array.from({ length: batch * seq }, (_, i) => (i * 7919) % 50000 + 3), [batch, seq], "int64");
const lastTwo = tensor(Array.from({ length: batch * 2 }, (_, i) => seq - 2 + (i % 2)), [batch, 2], "int64");
for (const dtype of ["float32", "bfloat16"] as DType[]) {
  const model = OPTForCausalLM.random(presetConfig("opt-125m", { dropout: 0 }), { dtype });
  for (const [what, logitsAt] of [["all logits", undefined], ["last-2 logits", lastTwo]] as const) {
    const t = await timeIt(() => noGrad(() => tidy(() => { model.forward(ids, { logitsAt }); })), { minSeconds: quick ? 0.5 : 2 });
    const row = { bench: "forward", model: "opt-125m", batch, seq, dtype, logits: what, ms: t.medianMs };
    console.log(json ? JSON.stringify(row) : `opt-125m forward ${batch}x${seq} ${dtype.padEnd(8)} ${what.padEnd(13)} ${t.medianMs.toFixed(1)} ms`);
  }
  model.dispose();
}
