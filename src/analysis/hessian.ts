// The ℓ2 norm of the training loss's Hessian with respect to the trainable
// parameters (the paper's Figure 4a): power iteration on Hessian-vector
// products by double backward (Pearlmutter 1994; as in PyHessian,
// Yao et al. 2020), on a fixed, seeded set of training examples.
import { Tensor, grad, keep, noGrad, tidy, tensor } from "../engine/index.js";
import { Xoshiro128 } from "../peft/rng.js";
import type { CausalLM } from "../models/causal-lm.js";
import type { PeftModel } from "../peft/peft-model.js";
import type { BpeTokenizer } from "../tokenizer/bpe-tokenizer.js";
import type { Example, TaskKind, TrainObjective } from "../tasks/types.js";
import { maxLength } from "../eval/evaluate.js";
import { batchLoss, prepare } from "../train/objectives.js";
import { checkTokenIds, type VocabSources } from "../tokenizer/vocab-check.js";

export interface PowerIterationOptions {
  /** Cap on Hessian-vector products. */
  maxIters: number;
  /** Stop once |λ_k − λ_{k−1}| < tol · |λ_k|. Keep it above the parameters' rounding (~1e-6 for float32). */
  tol: number;
  /** Seeds the start vector (randmask's generator, stream "hessian:v0"). */
  seed: number;
  /** Called after each iteration with the current Rayleigh quotient. */
  onIteration?: (iteration: number, eigenvalue: number) => void;
}

export interface HessianEstimate {
  /** The Rayleigh quotient vᵀHv at the last iterate: the dominant eigenvalue, with its sign. */
  eigenvalue: number;
  /** |eigenvalue|: the estimate of ‖H‖₂. */
  norm: number;
  iterations: number;
  /** Whether the relative change fell below tol before the cap. */
  converged: boolean;
  /** |λ_k − λ_{k−1}| / |λ_k| at the last iteration (NaN after one). */
  relativeChange: number;
  /** Rayleigh quotient after each iteration. */
  history: number[];
}

const dot = (a: Tensor[], b: Tensor[]): number => tidy(() => a.reduce((s, t, i) => s + t.mul(b[i]).sum().item(), 0));

/**
 * H·v for the loss Σ_k lossTerms[k](), H its Hessian with respect to `params`
 * (each term is differentiated on its own, so only one term's graph lives at a
 * time). `v` matches `params` in shapes and dtypes; returns new tensors the
 * caller owns. Parameters a term does not depend on get zeros; a term may
 * return null (nothing to add).
 */
export function hessianVectorProduct(params: Tensor[], lossTerms: (() => Tensor | null)[], v: Tensor[]): Tensor[] {
  const acc = params.map((p, i) => keep(tidy(() => v[i].mul(0).to(p.dtype))));
  let reached = false;
  for (const term of lossTerms) {
    tidy(() => {
      const loss = term();
      if (loss === null) return;
      const gs = grad([loss], params, { createGraph: true, allowUnused: true });
      const used = gs.flatMap((g, i) => (g ? [{ g, i }] : []));
      if (used.length === 0) return;
      reached = true;
      const gv = used.map(({ g, i }) => g.mul(v[i]).sum()).reduce((s, t) => s.add(t));
      const hv = grad([gv], used.map(({ i }) => params[i]), { allowUnused: true });
      hv.forEach((h, k) => { if (h) acc[used[k].i].addScaled_(h, 1); });
    });
  }
  if (!reached) {
    acc.forEach((t) => t.dispose());
    // (reentrant activation checkpointing also hides parameters from grad(): turn it off first)
    throw new Error("hessian: the loss does not reach the parameters through autograd.grad " +
      "(not trainable, or hidden by activation checkpointing)");
  }
  return acc;
}

/**
 * Power iteration for the eigenvalue of largest magnitude of the Hessian of
 * Σ lossTerms with respect to `params` [any shapes]. Each step v ← Hv/‖Hv‖;
 * the estimate is the Rayleigh quotient vᵀHv (‖v‖ = 1), which keeps the sign
 * (‖Hv‖ alone would not) and converges twice as fast as ‖Hv‖ for a symmetric H.
 * Gradients must be deterministic (dropout off) for the products to be one matrix.
 */
export function hessianTopEigenvalue(params: Tensor[], lossTerms: (() => Tensor | null)[], o: PowerIterationOptions): HessianEstimate {
  if (params.length === 0) throw new Error("hessian: no trainable parameters");
  if (!(o.maxIters >= 1) || !(o.tol > 0)) throw new RangeError("hessian: maxIters must be ≥ 1 and tol > 0");
  const rng = new Xoshiro128(o.seed, "hessian:v0");
  let v = params.map((p) => keep(tensor(Float64Array.from({ length: p.numel }, () => rng.nextFloat() * 2 - 1), p.shape, "float64").to(p.dtype)));
  const normalize = (xs: Tensor[]): Tensor[] => {
    const nrm = Math.sqrt(dot(xs, xs));
    return xs.map((x) => keep(tidy(() => (nrm > 0 ? x.div(nrm) : x.clone()))));
  };
  const swap = (next: Tensor[]) => { v.forEach((t) => t.dispose()); v = next; };
  swap(normalize(v));
  const history: number[] = [];
  let relativeChange = NaN;
  let converged = false;
  try {
    for (let k = 1; k <= o.maxIters; k++) {
      const hv = hessianVectorProduct(params, lossTerms, v);
      const lambda = dot(v, hv);
      const hvNorm = Math.sqrt(dot(hv, hv));
      history.push(lambda);
      o.onIteration?.(k, lambda);
      if (!Number.isFinite(lambda)) { hv.forEach((t) => t.dispose()); throw new Error(`hessian: Hessian-vector product is not finite at iteration ${k}`); }
      if (k > 1) relativeChange = Math.abs(lambda - history[k - 2]) / Math.max(Math.abs(lambda), Number.MIN_VALUE);
      if (hvNorm === 0) { hv.forEach((t) => t.dispose()); converged = true; break; }  // H v = 0: the loss is flat along v
      swap(normalize(hv));
      hv.forEach((t) => t.dispose());
      if (relativeChange < o.tol) { converged = true; break; }
    }
  } finally {
    v.forEach((t) => t.dispose());
  }
  const eigenvalue = history[history.length - 1];
  return { eigenvalue, norm: Math.abs(eigenvalue), iterations: history.length, converged, relativeChange, history };
}

export interface HessianNormOptions extends PowerIterationOptions {
  /** How many training examples (drawn with the seed from `examples`). */
  examples: number;
  /** Examples per forward pass (memory only: the loss is their mean either way). */
  batchSize: number;
  /** Names of the tokenizer and config files, for the error when the tokenizer's ids exceed the model's vocabulary. */
  sources?: VocabSources;
}

/**
 * ‖∇²L‖₂ for L the mean training loss (trainer's objective, src/train/objectives.ts,
 * plus the method's regulariser if it has one) over `o.examples` examples drawn
 * with `o.seed` from `examples`, with respect to the PEFT method's trainable
 * tensors. Runs in eval mode (no dropout) without activation checkpointing, and
 * restores both settings after. Throws an Error naming `o.sources` when the tokenizer
 * gives ids beyond the model's vocabulary.
 * For sweeps: call it on a freshly created method (before training) and on the
 * trained one (after).
 */
export function hessianNorm(peft: PeftModel<CausalLM>, tok: BpeTokenizer, task: { kind: TaskKind; objective: TrainObjective },
  examples: Example[], o: HessianNormOptions): HessianEstimate & { examples: number; trainable: number } {
  if (examples.length === 0) throw new Error("hessian: no training examples");
  if (!(Number.isSafeInteger(o.examples) && o.examples > 0)) throw new RangeError("hessian: examples must be a positive integer");
  if (!(Number.isSafeInteger(o.batchSize) && o.batchSize > 0)) throw new RangeError("hessian: batchSize must be a positive integer");
  const order = new Xoshiro128(o.seed, "hessian:examples").shuffle(examples.map((_, i) => i));
  const chosen = order.slice(0, Math.min(o.examples, examples.length)).map((i) => examples[i]);
  const model = peft.model;
  const prepared = prepare(tok, task.kind, task.objective, chosen, maxLength(model));
  checkTokenIds(prepared.flatMap((p) => (p.kind === "options" ? p.rows.map((r) => r.ids) : [p.row.ids])), model.config.vocabSize, o.sources);
  const terms: (() => Tensor | null)[] = [];
  for (let s = 0; s < prepared.length; s += o.batchSize) {
    const part = prepared.slice(s, s + o.batchSize);
    terms.push(() => batchLoss(model, part).mul(part.length / prepared.length));
  }
  const reg = peft.instance.regularizationLoss;
  if (reg) terms.push(() => reg.call(peft.instance));
  const wasTraining = model.training;
  const wasCheckpointing = model.gradientCheckpointing;
  model.training = false;
  // reentrant checkpointing sends parameter gradients to .grad, out of autograd.grad's reach
  model.gradientCheckpointing = false;
  try {
    const est = hessianTopEigenvalue(peft.trainableParams(), terms, o);
    return { ...est, examples: prepared.length, trainable: peft.trainableCount() };
  } finally {
    model.training = wasTraining;
    model.gradientCheckpointing = wasCheckpointing;
    noGrad(() => peft.trainableParams().forEach((p) => p.clearGrad()));
  }
}
