// Neural-network functions over tensors (the torch.nn.functional subset we use).
import { native } from "./native.js";
import { Tensor } from "./tensor.js";

export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  return new Tensor(native.linear(x.handle, weight.handle, bias ? bias.handle : null));
}

/**
 * linear() for a frozen weight: saves no activation for backward (dX = dY·W),
 * which is most of a PEFT model's activation memory. The bias may train.
 */
export function frozenLinear(x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  return new Tensor(native.frozenLinear(x.handle, weight.handle, bias ? bias.handle : null));
}

/** ReLU that keeps a 1-byte mask for backward instead of its output. */
export function reluMask(x: Tensor): Tensor {
  return new Tensor(native.reluMask(x.handle));
}

/** out = beta·input + alpha·(a @ b), batched. */
export function baddbmm(input: Tensor, a: Tensor, b: Tensor, beta = 1, alpha = 1): Tensor {
  return new Tensor(native.baddbmm(input.handle, a.handle, b.handle, beta, alpha));
}

export function layerNorm(x: Tensor, normalizedShape: number[], weight: Tensor | null, bias: Tensor | null, eps = 1e-5): Tensor {
  return new Tensor(native.layerNorm(x.handle, normalizedShape, weight?.handle ?? null, bias?.handle ?? null, eps));
}

export function embedding(weight: Tensor, ids: Tensor): Tensor {
  return new Tensor(native.embedding(weight.handle, ids.handle));
}

export function dropout(x: Tensor, p: number, training: boolean): Tensor {
  if (!training || p === 0) return x;
  return new Tensor(native.dropout(x.handle, p, training));
}

const REDUCTION = { none: 0, mean: 1, sum: 2 } as const;

/** Cross-entropy of logits [N, C] against class ids [N] (int64). */
export function crossEntropy(logits: Tensor, targets: Tensor,
  opts: { ignoreIndex?: number; reduction?: keyof typeof REDUCTION } = {}): Tensor {
  return new Tensor(native.crossEntropy(logits.handle, targets.handle, opts.ignoreIndex ?? -100,
    REDUCTION[opts.reduction ?? "mean"]));
}

/**
 * y = x·(W + S)ᵀ + b with S sparse: `indices` are flat positions in W (int64,
 * sorted, distinct), `values` their deltas. W must be frozen; gradients flow
 * to x, values (by SDDMM) and b.
 */
export function sparseDeltaLinear(x: Tensor, weight: Tensor, bias: Tensor | null, indices: Tensor, values: Tensor): Tensor {
  return new Tensor(native.sparseDeltaLinear(x.handle, weight.handle, bias?.handle ?? null, indices.handle, values.handle));
}

/** out[k] = Σ_t a[t, rows[k]]·b[t, cols[k]]: the sampled dense-dense product alone. */
export function sddmm(a: Tensor, b: Tensor, rows: Tensor, cols: Tensor): Tensor {
  return new Tensor(native.sddmm(a.handle, b.handle, rows.handle, cols.handle));
}
