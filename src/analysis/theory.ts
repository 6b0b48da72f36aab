// Section 5 of Xu & Zhang (ICML 2024) in numbers: an overparameterised linear
// model y = X w* + ε, X ∈ R^{n×d} (d ≫ n), trained on the coordinates a
// random mask M = diag(m), m_j ~ Bernoulli(p), keeps. The loss
// L(w) = ‖y − X M w‖² / (2n) has Hessian M XᵀX M / n, whose nonzero spectrum
// is that of the n×n matrix X M Xᵀ (M² = M), so everything runs through n×n
// eigen-decompositions (libtorch's linalg_eigh), in float64.
import { Tensor, tensor, tidy, keep, zeros } from "../engine/index.js";
import { Xoshiro128 } from "../peft/rng.js";

export interface TheoryOptions {
  /** Examples (rows of X). */
  n: number;
  /** Parameters (columns of X); the theory wants d ≫ n. */
  d: number;
  /** Entries of X are uniform in [0, r]. */
  r: number;
  /** Label noise standard deviation σ. */
  sigma: number;
  /** Mask densities p ∈ (0, 1]. */
  ps: number[];
  /** Failure probability δ of the eigenvalue deviation bound. */
  delta: number;
  /** Seeds X, masks, the teacher w* and the noise (randmask's xoshiro128**). */
  seed: number;
  /** Gradient-descent steps per run. */
  steps: number;
  /** Noise draws for the Monte Carlo estimate of E‖ŵ‖². */
  draws: number;
  /** Teacher scale: w*_j ~ N(0, signal²/d), so ‖w*‖ ≈ signal. 0 gives pure-noise labels. */
  signal: number;
  /** Bisection steps for the empirical stability edge (in units of 2n/λ₁). */
  edgeBisections: number;
  /** Learning rates, in units of 2n/λ₁, whose loss curves are kept (the plot's "just below/above"). */
  curveFactors: number[];
}

export const THEORY_DEFAULTS: TheoryOptions = {
  n: 32, d: 4096, r: 1, sigma: 0.5, ps: [1, 0.5, 0.2, 0.1, 0.05, 0.02], delta: 0.05, seed: 0,
  steps: 1000, draws: 200, signal: 1, edgeBisections: 14, curveFactors: [0.95, 1.05],
};

export interface GdRun {
  /** Learning rate in units of 2n/λ₁. */
  factor: number;
  lr: number;
  /** L(w_t) for t = 0 … steps (stops early once non-finite). */
  losses: number[];
  diverged: boolean;
}

export interface TheoryRow {
  p: number;
  /** Kept coordinates |{j : m_j = 1}|. */
  kept: number;
  /** Eigenvalues of X M Xᵀ = nonzero eigenvalues of M XᵀX M, descending [n]. */
  lambda: number[];
  /** p · eigenvalues of X Xᵀ, descending [n]. */
  pMu: number[];
  /** max_i |λ_i − p μ_i|. */
  maxDeviation: number;
  /** The matrix-Bernstein bound t(δ) on that deviation (see eigenvalueDeviationBound). */
  bound: number;
  /** Proposition 5.2's edge 2n/λ₁. */
  lrEdge: number;
  /** The empirical edge in units of 2n/λ₁: GD from 0 stays bounded below it and blows up above. */
  empiricalEdgeFactor: number;
  curves: GdRun[];
  /** GD at the first curve factor below 1, from w = 0: ‖w_T − ŵ‖ / ‖ŵ‖ for the same labels. */
  gdToMinNorm: number;
  /** Monte Carlo mean and standard error of ‖ŵ‖² over noise draws (ŵ the min-norm least-squares solution). */
  normSqMean: number;
  normSqStderr: number;
  /** Proposition 5.3's σ² Σ_i 1/λ_i. */
  normBound: number;
  /** The exact expectation ‖A⁺ X w*‖² + σ² Σ 1/λ_i (A = X M restricted to kept columns). */
  normExpected: number;
}

export interface TheoryResult { options: TheoryOptions; mu: number[]; rows: TheoryRow[] }

/**
 * Deviation bound for the masked spectrum, by the matrix Bernstein inequality
 * (Tropp 2012, "User-friendly tail bounds for sums of random matrices", Thm 1.4)
 * and Weyl's inequality. This is randmask's derivation, standing in for
 * Theorem 5.1 of the paper, whose exact statement was not available here.
 *
 * X M Xᵀ − p X Xᵀ = Σ_j (m_j − p) x_j x_jᵀ (x_j ∈ R^n the columns of X) is a sum
 * of independent, zero-mean, symmetric n×n matrices with
 *   ‖(m_j − p) x_j x_jᵀ‖ ≤ L = max(p, 1−p) · max_j ‖x_j‖²  (L = 0 at p = 1, where m_j − p ≡ 0),
 *   ‖Σ_j E(m_j − p)² (x_j x_jᵀ)²‖ = v = p(1−p) · λ_max(Σ_j ‖x_j‖² x_j x_jᵀ).
 * So P(‖Σ‖ ≥ t) ≤ 2n · exp(−(t²/2) / (v + L t / 3)); solving for probability δ,
 *   t(δ) = L ℓ / 3 + sqrt((L ℓ / 3)² + 2 v ℓ),  ℓ = ln(2n/δ),
 * and by Weyl, with probability ≥ 1 − δ over the mask (X fixed),
 *   |λ_i(M XᵀX M) − p λ_i(XᵀX)| ≤ t(δ) for every i ≤ n.
 * `colNormSq` [d] are ‖x_j‖²; `weightedTop` is λ_max(X diag(‖x_j‖²) Xᵀ).
 */
export function eigenvalueDeviationBound(n: number, p: number, delta: number, maxColNormSq: number, weightedTop: number): number {
  const ell = Math.log((2 * n) / delta);
  const L = (p === 1 ? 0 : Math.max(p, 1 - p)) * maxColNormSq;
  const v = p * (1 - p) * weightedTop;
  const a = (L * ell) / 3;
  return a + Math.sqrt(a * a + 2 * v * ell);
}

/** Standard normal draws by Box–Muller from the seeded generator. */
function gaussians(rng: Xoshiro128, count: number): Float64Array {
  const out = new Float64Array(count);
  for (let i = 0; i < count; i += 2) {
    const u1 = (rng.nextU32() + 1) / 0x100000000; // (0, 1]: log stays finite
    const u2 = rng.nextFloat();
    const rad = Math.sqrt(-2 * Math.log(u1));
    out[i] = rad * Math.cos(2 * Math.PI * u2);
    if (i + 1 < count) out[i + 1] = rad * Math.sin(2 * Math.PI * u2);
  }
  return out;
}

/** Eigenvalues of a symmetric matrix, descending. */
function eigvalsDesc(m: Tensor): number[] {
  return tidy(() => m.eigh()[0].toNumbers().reverse());
}

/**
 * Gradient descent from w = 0 on L(w) = ‖y − A w‖² / (2n), A [n, k] the kept
 * columns of X and y [n, 1]: w ← w + (lr/n) Aᵀ (y − A w). Stops once the loss
 * is non-finite or exceeds 1e200. `diverged`: the final loss is not below the
 * initial one (a stable run's loss only falls).
 */
export function gradientDescent(a: Tensor, y: Tensor, lr: number, steps: number): { losses: number[]; diverged: boolean; w: Tensor } {
  const n = a.size(0);
  let w = keep(zeros([a.size(1), 1], "float64"));
  const losses: number[] = [];
  for (let t = 0; ; t++) {
    const r = tidy(() => y.sub(a.matmul(w)));
    const loss = tidy(() => r.pow(2).sum().item()) / (2 * n);
    losses.push(loss);
    if (t === steps || !Number.isFinite(loss) || loss > 1e200) { r.dispose(); break; }
    const next = keep(tidy(() => w.add(a.transpose(0, 1).matmul(r), lr / n)));
    r.dispose();
    w.dispose();
    w = next;
  }
  const last = losses[losses.length - 1];
  return { losses, diverged: !(last < losses[0]), w };
}

/**
 * Runs the three comparisons of Section 5 for every p (`log` gets a line per p).
 *
 * Proposition 5.2: the Hessian of L is M XᵀX M / n, so GD is stable iff
 * lr < 2 / λ_max(Hessian) = 2n/λ₁. Proposition 5.3 as checked here (our
 * derivation of the comparison): with A the kept columns, ŵ = A⁺y and
 * y = Xw* + ε, E‖ŵ‖² = ‖A⁺Xw*‖² + σ² tr((AAᵀ)⁻¹) = ‖A⁺Xw*‖² + σ² Σᵢ 1/λᵢ ≥ σ² Σᵢ 1/λᵢ,
 * with equality for w* = 0; λᵢ shrink roughly like p, so sparser masks give
 * farther solutions.
 */
export function runTheory(o: TheoryOptions, log: (line: string) => void = () => {}): TheoryResult {
  validate(o);
  return tidy(() => {
    const { n, d } = o;
    const xRng = new Xoshiro128(o.seed, "theory:X");
    const xData = new Float64Array(n * d);
    for (let i = 0; i < xData.length; i++) xData[i] = o.r * xRng.nextFloat();
    const x = tensor(xData, [n, d], "float64");
    const xt = x.transpose(0, 1);
    const mu = eigvalsDesc(x.matmul(xt));
    const colNormSq = x.pow(2).sum(0);                                     // [d]
    const maxColNormSq = colNormSq.amax(0).item();
    const weightedTop = eigvalsDesc(x.mul(colNormSq.reshape([1, d])).matmul(xt))[0];
    const wStar = tensor(gaussians(new Xoshiro128(o.seed, "theory:w*"), d).map((g) => g * o.signal / Math.sqrt(d)), [d, 1], "float64");
    const clean = x.matmul(wStar);                                          // X w* [n, 1]
    const yGd = clean.add(tensor(gaussians(new Xoshiro128(o.seed, "theory:noise:gd"), n), [n, 1], "float64"), o.sigma);
    const noise = tensor(gaussians(new Xoshiro128(o.seed, "theory:noise"), n * o.draws), [n, o.draws], "float64");
    const ys = clean.add(noise, o.sigma);                                   // [n, draws]

    const rows = o.ps.map((p) => tidy(() => {
      const maskRng = new Xoshiro128(o.seed, `theory:mask:${p}`);
      const kept: number[] = [];
      for (let j = 0; j < d; j++) if (p === 1 || maskRng.nextFloat() < p) kept.push(j);
      if (kept.length < n) {
        throw new Error(`p=${p}: the mask keeps ${kept.length} of d=${d} coordinates, fewer than n=${n}; ` +
          "the theory is about the overparameterised regime (raise d or p)");
      }
      const a = x.indexSelect(1, tensor(kept, [kept.length], "int64"));   // X M, kept columns [n, k]
      const [evAsc, u] = a.matmul(a.transpose(0, 1)).eigh();
      const lambda = evAsc.toNumbers().reverse();
      const pMu = mu.map((m) => p * m);
      const maxDeviation = Math.max(...lambda.map((l, i) => Math.abs(l - pMu[i])));
      const bound = eigenvalueDeviationBound(n, p, o.delta, maxColNormSq, weightedTop);

      // Proposition 5.2: GD is stable iff lr < 2n/λ₁ (the Hessian is M XᵀX M / n).
      const lrEdge = (2 * n) / lambda[0];
      const runAt = (factor: number) => gradientDescent(a, yGd, factor * lrEdge, o.steps);
      let lo = 0.5, hi = 1.5;
      for (let b = 0; b < o.edgeBisections; b++) {
        const mid = (lo + hi) / 2;
        const run = runAt(mid);
        run.w.dispose();
        if (run.diverged) hi = mid; else lo = mid;
      }
      // Proposition 5.3: ŵ = A⁺ y = Aᵀ U Λ⁻¹ Uᵀ y (min-norm solution; the GD limit from 0).
      const pinvT = a.transpose(0, 1).matmul(u.div(evAsc.reshape([1, n])));  // Aᵀ U Λ⁻¹ [k, n]
      const minNorm = (y: Tensor) => pinvT.matmul(u.transpose(0, 1).matmul(y));
      let gdToMinNorm = NaN;
      const curves = o.curveFactors.map((factor) => {
        const run = runAt(factor);
        if (factor < 1 && Number.isNaN(gdToMinNorm)) {
          const wHat = minNorm(yGd);
          gdToMinNorm = run.w.sub(wHat).norm().item() / wHat.norm().item();
        }
        run.w.dispose();
        return { factor, lr: factor * lrEdge, losses: run.losses, diverged: run.diverged };
      });
      const normsSq = minNorm(ys).pow(2).sum(0).toNumbers();               // [draws]
      const mean = normsSq.reduce((s, v) => s + v, 0) / normsSq.length;
      const variance = normsSq.reduce((s, v) => s + (v - mean) ** 2, 0) / Math.max(1, normsSq.length - 1);
      const normBound = o.sigma ** 2 * lambda.reduce((s, l) => s + 1 / l, 0);
      const signalPart = minNorm(clean).pow(2).sum().item();
      log(`theory: p=${p}: ${kept.length} kept, λ₁=${lambda[0].toPrecision(5)}, edge ${((lo + hi) / 2).toFixed(4)} × 2n/λ₁, ` +
        `E‖ŵ‖²=${mean.toPrecision(4)} vs σ²Σ1/λᵢ=${normBound.toPrecision(4)}`);
      return {
        p, kept: kept.length, lambda, pMu, maxDeviation, bound, lrEdge, empiricalEdgeFactor: (lo + hi) / 2, curves, gdToMinNorm,
        normSqMean: mean, normSqStderr: Math.sqrt(variance / normsSq.length), normBound, normExpected: signalPart + normBound,
      };
    }));
    return { options: o, mu, rows };
  });
}

function validate(o: TheoryOptions): void {
  const posInt = (v: number) => Number.isSafeInteger(v) && v > 0;
  const checks: [string, boolean, string][] = [
    ["n", posInt(o.n), "a positive integer"], ["d", posInt(o.d), "a positive integer"],
    ["r", o.r > 0 && Number.isFinite(o.r), "a positive number"], ["sigma", o.sigma >= 0 && Number.isFinite(o.sigma), "a number ≥ 0"],
    ["delta", o.delta > 0 && o.delta < 1, "in (0, 1)"], ["steps", posInt(o.steps), "a positive integer"],
    ["draws", Number.isSafeInteger(o.draws) && o.draws >= 2, "an integer ≥ 2"], ["signal", o.signal >= 0 && Number.isFinite(o.signal), "a number ≥ 0"],
    ["p", o.ps.length > 0 && o.ps.every((p) => p > 0 && p <= 1), "a list of densities in (0, 1]"],
    ["seed", Number.isSafeInteger(o.seed) && o.seed >= 0, "a non-negative integer"],
  ];
  for (const [name, ok, expected] of checks) if (!ok) throw new RangeError(`theory: ${name} must be ${expected}`);
}

/** The results as a markdown table. */
export function theoryMarkdown(res: TheoryResult): string {
  const o = res.options;
  const f = (v: number) => (Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(3) : v.toPrecision(4));
  const lines = [
    `n=${o.n}, d=${o.d}, X_ij ~ U[0, ${o.r}], σ=${o.sigma}, ‖w*‖≈${o.signal}, δ=${o.delta}, seed ${o.seed}, ${o.steps} GD steps, ${o.draws} noise draws`,
    "",
    "| p | kept | λ₁ / pμ₁ | λₙ / pμₙ | max dev | bound t(δ) | 2n/λ₁ | empirical edge (×2n/λ₁) | E‖ŵ‖² (± se) | σ²Σ1/λᵢ | exact E‖ŵ‖² |",
    "|---|---|---|---|---|---|---|---|---|---|---|",
    ...res.rows.map((r) => `| ${r.p} | ${r.kept} | ${f(r.lambda[0] / r.pMu[0])} | ${f(r.lambda[o.n - 1] / r.pMu[o.n - 1])} | ${f(r.maxDeviation)} | ` +
      `${f(r.bound)} | ${f(r.lrEdge)} | ${r.empiricalEdgeFactor.toFixed(4)} | ${f(r.normSqMean)} ± ${f(r.normSqStderr)} | ${f(r.normBound)} | ${f(r.normExpected)} |`),
  ];
  return lines.join("\n") + "\n";
}
