// ℓ2 distances from the initial weights (the paper's Figure 4c / 11): the norm
// of a change summed in quadrature over tensors or modules, in float64 outside
// autograd.
import { Tensor, noGrad, tidy } from "../engine/index.js";

/** sqrt(Σ‖aᵢ − bᵢ‖²) over paired tensors of equal shapes (any float dtype). */
export function changeNorm(now: Tensor[], initial: Tensor[]): number {
  if (now.length !== initial.length) throw new Error(`changeNorm: ${now.length} tensors now, ${initial.length} initially`);
  return quadrature(now.map((t, i) => noGrad(() => tidy(() => t.to("float64").sub(initial[i].to("float64")).norm().item()))));
}

/** sqrt(Σ‖dᵢ‖_F²) of per-module changes, each given as a function making the dense ΔW (freed after use). */
export function deltaNorm(deltas: (() => Tensor)[]): number {
  return quadrature(deltas.map((d) => noGrad(() => tidy(() => d().to("float64").norm().item()))));
}

function quadrature(norms: number[]): number {
  return Math.sqrt(norms.reduce((s, n) => s + n * n, 0));
}
