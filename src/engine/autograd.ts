// Autograd helpers over libtorch's engine: grad-mode scopes and torch.autograd.grad.
import { native } from "./native.js";
import { Tensor } from "./tensor.js";
import { tidy } from "./scope.js";

/** Runs fn with gradient recording off (restored afterwards, even on throw). */
export function noGrad<R>(fn: () => R): R {
  const prev: boolean = native.setGradEnabled(false);
  try { return fn(); } finally { native.setGradEnabled(prev); }
}

/** Runs fn with gradient recording on. */
export function enableGrad<R>(fn: () => R): R {
  const prev: boolean = native.setGradEnabled(true);
  try { return fn(); } finally { native.setGradEnabled(prev); }
}

export function isGradEnabled(): boolean {
  return native.isGradEnabled();
}

export interface GradOptions {
  /** Weights for a vector-Jacobian product; defaults to ones for scalar outputs. */
  gradOutputs?: Tensor[];
  /** Keep the graph of the gradient itself (for Hessian-vector products). */
  createGraph?: boolean;
  /** Return null for inputs the outputs do not depend on, instead of throwing. */
  allowUnused?: boolean;
}

/** d(outputs)/d(inputs), like torch.autograd.grad. */
export function grad(outputs: Tensor[], inputs: Tensor[], opts: GradOptions = {}): (Tensor | null)[] {
  const res: (object | null)[] = native.autogradGrad(
    outputs.map((t) => t.handle), inputs.map((t) => t.handle),
    opts.gradOutputs ? opts.gradOutputs.map((t) => t.handle) : null,
    opts.createGraph ?? false, opts.allowUnused ?? false);
  return res.map((r) => (r === null ? null : new Tensor(r as Tensor["handle"])));
}

/**
 * Activation checkpointing: runs fn(input) now without keeping its
 * intermediates, and again during backward to get its gradients (parameters
 * used inside fn receive theirs there). `input` must require grad. Randomness
 * inside fn (dropout) must repeat on the second run: reseed inside fn.
 * Throws for an input off the CPU.
 */
export function checkpoint(fn: (x: Tensor) => Tensor, input: Tensor): Tensor {
  // CUDA's autograd runs backward on a device thread, which must not call into JS.
  if (input.device !== "cpu") throw new Error(`checkpoint: CPU tensors only (input on ${input.device})`);
  return new Tensor(native.checkpoint((h: Tensor["handle"]) => {
    const x = new Tensor(h);
    return tidy(() => fn(x)).handle;
  }, input.handle));
}
