// AdamW (libtorch's implementation) and gradient clipping.
import { native } from "./native.js";
import { Tensor } from "./tensor.js";

/** One parameter's AdamW state (torch's AdamWParamState): steps taken and the two moments, shaped like it. */
export interface AdamWParamState { step: number; expAvg: Tensor; expAvgSq: Tensor }

type NativeParamState = { step: number; expAvg: unknown; expAvgSq: unknown } | null;

export interface AdamWOptions {
  lr: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** Decoupled weight decay; 0 by default (the paper's and MeZO's setting). */
  weightDecay?: number;
}

export class AdamW {
  private readonly impl: {
    step(): void; zeroGrad(): void; setLr(lr: number): void; stateBytes(): number;
    getState(): NativeParamState[]; setState(s: NativeParamState[]): void;
  };
  readonly params: Tensor[];
  private lrNow: number;

  constructor(params: Tensor[], opts: AdamWOptions) {
    this.params = params;
    this.lrNow = opts.lr;
    this.impl = new native.AdamW(params.map((p) => p.handle), {
      lr: opts.lr, beta1: opts.beta1 ?? 0.9, beta2: opts.beta2 ?? 0.999, eps: opts.eps ?? 1e-8,
      weightDecay: opts.weightDecay ?? 0,
    });
  }
  step(): void { this.impl.step(); }
  /** Drops the gradients (set to none), freeing their memory. */
  zeroGrad(): void { this.impl.zeroGrad(); }
  get lr(): number { return this.lrNow; }
  set lr(v: number) { this.lrNow = v; this.impl.setLr(v); }
  /** Bytes of optimizer state (first and second moments). */
  stateBytes(): number { return this.impl.stateBytes(); }

  /** Copies of each parameter's state, in `params` order; null where the parameter was never stepped. Caller disposes. */
  getState(): (AdamWParamState | null)[] {
    return this.impl.getState().map((s) => s && {
      step: s.step, expAvg: new Tensor(s.expAvg as never), expAvgSq: new Tensor(s.expAvgSq as never),
    });
  }

  /** Replaces the state with copies of `state` (as getState returns it); throws on a count or shape mismatch. */
  setState(state: (AdamWParamState | null)[]): void {
    this.impl.setState(state.map((s) => s && { step: s.step, expAvg: s.expAvg.handle, expAvgSq: s.expAvgSq.handle }));
  }
}

/**
 * Scales gradients so their global L2 norm is at most maxNorm (HF Trainer's
 * max_grad_norm). Returns the norm before clipping; NaN/Inf are returned as is.
 */
export function clipGradNorm(params: Tensor[], maxNorm: number): number {
  return native.clipGradNorm(params.map((p) => p.handle), maxNorm);
}
