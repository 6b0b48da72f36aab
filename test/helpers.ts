// Shared test utilities: finite-difference gradient checks and paths.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Tensor, tensor, tidy, noGrad } from "../src/engine/index.js";

export const repoRoot = (() => {
  let d = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(d, "package.json"))) d = dirname(d);
  return d;
})();
export const sharedDir = join(repoRoot, "..", "shared");

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
