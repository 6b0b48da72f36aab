// Shared test utilities: finite-difference gradient checks and paths.
import assert from "node:assert/strict";
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Tensor, tensor, tidy, noGrad } from "../src/engine/index.js";
import { OPTForCausalLM } from "../src/models/opt.js";
import type { CausalLM } from "../src/models/causal-lm.js";
import { parseConfig, toHfConfig } from "../src/models/config.js";
import { saveFile } from "../src/io/safetensors.js";
import { writeJsonAtomic } from "../src/io/atomic.js";

export const repoRoot = (() => {
  let d = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(d, "package.json"))) d = dirname(d);
  return d;
})();
/** ../shared, or RANDMASK_SHARED_DIR (a GPU machine gets the few files it needs from scripts/pack-gpu-bundle.sh). */
export const sharedDir = process.env.RANDMASK_SHARED_DIR || join(repoRoot, "..", "shared");

/** Deterministic pseudo-random float64 data in [-1, 1). */
export function det(n: number, seed: number): Float64Array {
  const out = new Float64Array(n);
  let s = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    out[i] = (s / 4294967296) * 2 - 1;
  }
  return out;
}

/**
 * Checks autograd against central finite differences in float64. `f` maps the
 * inputs to any tensor; the scalar checked is Σ f(x)·w for a fixed random w.
 */
export function gradCheck(name: string, f: (xs: Tensor[]) => Tensor, inputs: { data: ArrayLike<number>; shape: number[] }[],
  opts: { eps?: number; tol?: number; differentiable?: boolean[] } = {}): void {
  const eps = opts.eps ?? 1e-6;
  const tol = opts.tol ?? 1e-6;
  tidy(() => {
    const xs = inputs.map((i, k) => {
      const t = tensor(Float64Array.from(i.data), i.shape, "float64");
      if (opts.differentiable?.[k] ?? true) t.setRequiresGrad(true);
      return t;
    });
    const out = f(xs);
    const w = tensor(det(out.numel, 99), out.shape, "float64");
    out.mul(w).sum().backward();
    const scalar = (vals: Float64Array[]): number => noGrad(() => tidy(() =>
      f(vals.map((v, k) => tensor(v, inputs[k].shape, "float64"))).mul(w).sum().item()));
    inputs.forEach((inp, k) => {
      if (!(opts.differentiable?.[k] ?? true)) return;
      const analytic = xs[k].grad;
      assert.ok(analytic, `${name}: no gradient for input ${k}`);
      const a = analytic.toArray() as Float64Array;
      const base = inputs.map((i) => Float64Array.from(i.data));
      for (let j = 0; j < inp.data.length; j++) {
        const plus = base.map((b) => b.slice()); plus[k][j] += eps;
        const minus = base.map((b) => b.slice()); minus[k][j] -= eps;
        const numeric = (scalar(plus) - scalar(minus)) / (2 * eps);
        const err = Math.abs(numeric - a[j]);
        assert.ok(err <= tol * Math.max(1, Math.abs(numeric)),
          `${name}: d/dx${k}[${j}] autograd ${a[j]} vs finite difference ${numeric}`);
      }
    });
  });
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/**
 * A small random-weight OPT folder with the real OPT tokenizer (vocab 50272,
 * hidden 64, 2 layers), for end-to-end runs on text.
 */
export function tinyTextModel(dir: string): string {
  const cfg = parseConfig({ model_type: "opt", vocab_size: 50272, hidden_size: 64, num_hidden_layers: 2, ffn_dim: 128,
    num_attention_heads: 4, max_position_embeddings: 64, dropout: 0 });
  const m = OPTForCausalLM.random(cfg, { seed: 0, std: 0.1 });
  mkdirSync(dir, { recursive: true });
  saveFile(join(dir, "model.safetensors"), m.stateDict());
  writeJsonAtomic(join(dir, "config.json"), toHfConfig(cfg));
  for (const f of ["vocab.json", "merges.txt"]) copyFileSync(join(sharedDir, "tokenizers", "opt", f), join(dir, f));
  m.dispose();
  return dir;
}

/** A learnable classification task in the generic JSONL format: the label is the word's index parity. */
export function parityTask(dir: string): string {
  const words = ("apple river house green table music stone light paper window garden silver orange planet winter " +
    "summer yellow forest bridge candle doctor engine finger hammer island jacket kitten ladder mirror needle").split(" ");
  let s = 1;
  const rnd = () => { s = (s * 16807) % 2147483647; return s / 2147483647; };
  const row = () => {
    const i = Math.floor(rnd() * words.length);
    return JSON.stringify({ prompt: `The word is ${words[i]}. Answer:`, options: [" no", " yes"], label: i % 2 });
  };
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "train.jsonl"), Array.from({ length: 400 }, row).join("\n") + "\n");
  writeFileSync(join(dir, "validation.jsonl"), Array.from({ length: 200 }, row).join("\n") + "\n");
  return dir;
}

/**
 * Small options for every registered method, as the per-method tests (CPU, vision towers, CUDA) create
 * them; `trainableRatio` is the masking methods' share of the model.
 */
export function methodTestOptions(trainableRatio = 0.01): Record<string, Record<string, unknown>> {
  return {
    "random-mask": { trainableRatio, seed: 3 },
    "structured-mask": { trainableRatio, seed: 3 },
    lora: { r: 4, alpha: 8 },
    adalora: { initR: 6, targetR: 4, totalSteps: 10 },
    bitfit: {},
    adapter: { bottleneck: 4 },
    prefix: { numVirtualTokens: 3 },
    full: {},
  };
}

/**
 * A left-padded fixture case's logits asked at per-row positions (each row's last token and one inside it),
 * with and without gradient checkpointing, against the Hugging Face reference logits of every position:
 * the last layer runs at those rows only, so this checks its logitsAt path.
 */
export function checkLogitsAtRows(model: CausalLM, c: { input_ids: number[][]; attention_mask: number[][]; logits: number[][][] }): void {
  const ids = (rows: number[][]) => tensor(rows.flat(), [rows.length, rows[0].length], "int64");
  const seq = c.input_ids[0].length;
  const pos = c.attention_mask.map((row, b) => [seq - 1, row.indexOf(1) + b + 1]);
  for (const checkpointing of [false, true]) {
    model.gradientCheckpointing = checkpointing;
    try {
      const got = model.forward(ids(c.input_ids), { attentionMask: ids(c.attention_mask), logitsAt: ids(pos) }).logits.toNested() as number[][][];
      let maxErr = 0;
      pos.forEach((row, b) => row.forEach((t, k) => c.logits[b][t].forEach((v, j) => { maxErr = Math.max(maxErr, Math.abs(v - got[b][k][j])); })));
      assert.ok(maxErr <= 1e-4, `checkpointing ${checkpointing}: max |logit error| ${maxErr}`);
    } finally { model.gradientCheckpointing = false; }
  }
}
