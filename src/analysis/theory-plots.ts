// The figures of `randmask theory` as Vega-Lite specs: the masked spectrum
// against p·spectrum, GD loss curves around the stability edge, and E‖ŵ‖²
// against Proposition 5.3's bound.
import type { TopLevelSpec } from "vega-lite";
import type { TheoryResult } from "./theory.js";

const SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json";

/** λ_i(M XᵀX M) / (p λ_i(XᵀX)) for the largest and smallest i, with the bound t(δ) as 1 ± t/(pμ_i). */
export function eigenRatioSpec(res: TheoryResult): TopLevelSpec {
  const n = res.options.n;
  // the band for small eigenvalues is wide; clamp it to the plotted range [0, 2]
  const band = (r: TheoryResult["rows"][number], i: number) =>
    ({ lo: Math.max(0, 1 - r.bound / r.pMu[i]), hi: Math.min(2, 1 + r.bound / r.pMu[i]) });
  const values = res.rows.flatMap((r) => [
    { p: r.p, which: "i = 1 (largest)", ratio: r.lambda[0] / r.pMu[0], ...band(r, 0) },
    { p: r.p, which: "i = n (smallest)", ratio: r.lambda[n - 1] / r.pMu[n - 1], ...band(r, n - 1) },
  ]);
  const x = { field: "p", type: "quantitative" as const, scale: { type: "log" as const }, title: "mask density p" };
  return {
    $schema: SCHEMA, title: "Masked spectrum vs p × full spectrum (band: Bernstein bound at δ, clamped to [0, 2])", width: 480, height: 300,
    data: { values },
    layer: [
      { mark: { type: "area", opacity: 0.15 }, encoding: { x, y: { field: "lo", type: "quantitative" }, y2: { field: "hi" }, color: { field: "which", type: "nominal" } } },
      { mark: { type: "line", point: true }, encoding: { x, y: { field: "ratio", type: "quantitative", title: "λᵢ(MXᵀXM) / (p·λᵢ(XᵀX))", scale: { domain: [0, 2] } }, color: { field: "which", type: "nominal", title: "eigenvalue" } } },
    ],
  } as TopLevelSpec;
}

/** Loss against step for each p at the kept learning-rate factors (log y; at most 200 points a curve). */
export function gdCurvesSpec(res: TheoryResult): TopLevelSpec {
  const values = res.rows.flatMap((r) => r.curves.flatMap((c) => {
    const stride = Math.max(1, Math.ceil(c.losses.length / 200));
    return c.losses.flatMap((loss, step) => (step % stride === 0 || step === c.losses.length - 1) && Number.isFinite(loss) && loss > 0
      ? [{ step, loss, p: String(r.p), lr: `${c.factor} × 2n/λ₁${c.diverged ? " (diverged)" : ""}` }] : []);
  }));
  return {
    $schema: SCHEMA, title: "Gradient descent just below and above 2n/λ₁ (Proposition 5.2)", width: 480, height: 300,
    data: { values },
    mark: { type: "line", clip: true },
    encoding: {
      x: { field: "step", type: "quantitative", title: "GD step" },
      y: { field: "loss", type: "quantitative", scale: { type: "log" }, title: "L(w) = ‖y − XMw‖² / (2n)" },
      color: { field: "p", type: "nominal", title: "p" },
      strokeDash: { field: "lr", type: "nominal", title: "learning rate", legend: { labelLimit: 300 } },
    },
  } as TopLevelSpec;
}

/** Monte Carlo E‖ŵ‖² (± 2 se) and σ²Σ1/λᵢ against p, log-log. */
export function normSpec(res: TheoryResult): TopLevelSpec {
  const values = res.rows.flatMap((r) => [
    { p: r.p, series: "E‖ŵ‖² (Monte Carlo)", value: r.normSqMean, lo: r.normSqMean - 2 * r.normSqStderr, hi: r.normSqMean + 2 * r.normSqStderr },
    { p: r.p, series: "σ²Σ1/λᵢ (Prop. 5.3)", value: r.normBound, lo: r.normBound, hi: r.normBound },
  ]);
  const x = { field: "p", type: "quantitative" as const, scale: { type: "log" as const }, title: "mask density p" };
  return {
    $schema: SCHEMA, title: "Norm of the min-norm solution vs Proposition 5.3's bound", width: 480, height: 300,
    data: { values },
    layer: [
      { mark: { type: "line", point: true }, encoding: { x, y: { field: "value", type: "quantitative", scale: { type: "log" }, title: "‖ŵ‖²" }, color: { field: "series", type: "nominal", title: "" } } },
      { mark: "rule", encoding: { x, y: { field: "lo", type: "quantitative" }, y2: { field: "hi" }, color: { field: "series", type: "nominal" } } },
    ],
  } as TopLevelSpec;
}
