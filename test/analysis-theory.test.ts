// Section 5's predictions on a seeded instance, and the engine's symmetric eigensolver.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { tensor, tidy } from "../src/engine/index.js";
import { THEORY_DEFAULTS, gradientDescent, runTheory, type TheoryOptions } from "../src/analysis/theory.js";
import { Xoshiro128 } from "../src/peft/rng.js";
import { det, repoRoot } from "./helpers.js";

test("eigh: known 2×2 spectrum, ascending order, and V diag(λ) Vᵀ rebuilds a random symmetric matrix", () => tidy(() => {
  const [l2] = tensor([2, 1, 1, 2], [2, 2], "float64").eigh();
  assert.deepEqual(l2.toNumbers().map((v) => Math.round(v * 1e12) / 1e12), [1, 3]);
  const n = 7;
  const b = tensor(det(n * n, 5), [n, n], "float64");
  const a = b.add(b.transpose(0, 1));
  const [l, v] = a.eigh();
  const vals = l.toNumbers();
  assert.ok(vals.every(Number.isFinite));
  for (let i = 1; i < n; i++) assert.ok(vals[i] >= vals[i - 1], "eigenvalues ascend");
  const rebuilt = v.mul(l.reshape([1, n])).matmul(v.transpose(0, 1));
  assert.ok(rebuilt.allclose(a, 1e-10, 1e-10), "V diag(λ) Vᵀ = A");
  assert.ok(v.transpose(0, 1).matmul(v).allclose(tensor(Array.from({ length: n * n }, (_, k) => (k % (n + 1) === 0 ? 1 : 0)), [n, n], "float64"), 1e-10, 1e-10));
  // trace and Frobenius norm are spectral invariants computed without the solver
  const trace = Array.from({ length: n }, (_, i) => a.toNumbers()[i * n + i]).reduce((s, x) => s + x, 0);
  assert.ok(Math.abs(vals.reduce((s, x) => s + x, 0) - trace) < 1e-10);
}));

const opts: TheoryOptions = { ...THEORY_DEFAULTS, n: 16, d: 1024, ps: [0.5, 0.1], steps: 400, draws: 400, edgeBisections: 8 };
const res = runTheory(opts);

test("theory: masked eigenvalues deviate from p·λᵢ(XᵀX) by less than the Bernstein bound", () => {
  for (const r of res.rows) {
    assert.equal(r.lambda.length, opts.n);
    assert.ok(r.maxDeviation <= r.bound, `p=${r.p}: max |λᵢ − pμᵢ| ${r.maxDeviation} > bound ${r.bound}`);
    assert.ok(r.maxDeviation > 0 && r.lambda.every((l) => l > 0));
    // the bound is about p·μ, not μ: the unmasked spectrum is far outside it for p < 1
    assert.ok(Math.abs(res.mu[0] - r.lambda[0]) > r.bound, `p=${r.p}: λ₁ is not distinguishable from μ₁`);
  }
});

test("theory: the n×n route gives the nonzero spectrum of the k×k matrix M XᵀX M", () => tidy(() => {
  // rebuild X and the p=0.1 mask from the same streams, then eigh of the kept-column Gram AᵀA directly
  const { n, d } = opts;
  const xr = new Xoshiro128(opts.seed, "theory:X");
  const x = tensor(Float64Array.from({ length: n * d }, () => opts.r * xr.nextFloat()), [n, d], "float64");
  const mr = new Xoshiro128(opts.seed, "theory:mask:0.1");
  const kept: number[] = [];
  for (let j = 0; j < d; j++) if (mr.nextFloat() < 0.1) kept.push(j);
  const a = x.indexSelect(1, tensor(kept, [kept.length], "int64"));
  const big = a.transpose(0, 1).matmul(a).eigh()[0].toNumbers().reverse().slice(0, n);
  const row = res.rows.find((r) => r.p === 0.1)!;
  assert.equal(row.kept, kept.length);
  big.forEach((l, i) => assert.ok(Math.abs(l - row.lambda[i]) <= 1e-8 * big[0], `λ${i + 1}: ${l} vs ${row.lambda[i]}`));
}));

test("theory: GD converges at 0.95·2n/λ₁, diverges at 1.05·2n/λ₁, and the empirical edge is 2n/λ₁ (Proposition 5.2)", () => {
  for (const r of res.rows) {
    const below = r.curves.find((c) => c.factor === 0.95)!;
    const above = r.curves.find((c) => c.factor === 1.05)!;
    assert.ok(!below.diverged && below.losses[below.losses.length - 1] < 1e-6 * below.losses[0],
      `p=${r.p}: loss at 0.95 edge ${below.losses[0]} → ${below.losses[below.losses.length - 1]}`);
    assert.ok(above.diverged && above.losses[above.losses.length - 1] > 1e6 * above.losses[0],
      `p=${r.p}: loss at 1.05 edge ${above.losses[0]} → ${above.losses[above.losses.length - 1]}`);
    assert.ok(Math.abs(r.empiricalEdgeFactor - 1) < 0.01, `p=${r.p}: empirical edge ${r.empiricalEdgeFactor} × 2n/λ₁`);
    // GD from 0 goes to the min-norm solution
    assert.ok(r.gdToMinNorm < 1e-3, `p=${r.p}: ‖w_GD − ŵ‖/‖ŵ‖ = ${r.gdToMinNorm}`);
  }
  // sparser masks allow larger learning rates: the edge grows as p falls
  assert.ok(res.rows[1].lrEdge > 3 * res.rows[0].lrEdge);
});

test("theory: E‖ŵ‖² ≥ σ²Σ1/λᵢ (Proposition 5.3), with equality for pure-noise labels", () => {
  for (const r of res.rows) {
    assert.ok(r.normSqMean - 3 * r.normSqStderr > r.normBound, `p=${r.p}: ${r.normSqMean} ± ${r.normSqStderr} vs bound ${r.normBound}`);
    assert.ok(Math.abs(r.normSqMean - r.normExpected) < 4 * r.normSqStderr, `p=${r.p}: MC ${r.normSqMean} vs exact ${r.normExpected}`);
  }
  const noise = runTheory({ ...opts, signal: 0, ps: [0.1], edgeBisections: 0, curveFactors: [] }).rows[0];
  assert.ok(Math.abs(noise.normSqMean - noise.normBound) < 4 * noise.normSqStderr, `${noise.normSqMean} ± ${noise.normSqStderr} vs ${noise.normBound}`);
  // sparser masks give more distant solutions
  assert.ok(res.rows[1].normBound > 3 * res.rows[0].normBound);
});

test("gradientDescent reports a non-finite run as diverged", () => tidy(() => {
  const a = tensor([1, 0, 0, 1], [2, 2], "float64");
  const run = gradientDescent(a, tensor([1, 1], [2, 1], "float64"), 1e6, 200);
  assert.ok(run.diverged && run.losses.length < 201);
  run.w.dispose();
}));

test("randmask theory CLI writes the table, JSON and three SVG plots, and refuses bad flags and a non-empty --out", () => {
  const cli = join(repoRoot, "dist", "src", "cli", "main.js");
  const out = join(mkdtempSync(join(tmpdir(), "randmask-theory-")), "run");
  const args = ["theory", "--n", "8", "--d", "256", "--p", "1,0.25", "--steps", "200", "--draws", "20", "--bisections", "4"];
  const r = spawnSync(process.execPath, [cli, ...args, "--out", out], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /\| 0\.25 \|/);
  assert.deepEqual(readdirSync(out).sort(), ["eigen-ratio.png", "eigen-ratio.svg", "gd-loss.png", "gd-loss.svg", "norm.png", "norm.svg", "theory.json", "theory.md"]);
  assert.match(readFileSync(join(out, "gd-loss.svg"), "utf8"), /^<svg[^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  const json = JSON.parse(readFileSync(join(out, "theory.json"), "utf8"));
  assert.equal(json.rows.length, 2);
  assert.equal(json.rows[0].maxDeviation, 0); // p = 1 keeps everything
  const again = spawnSync(process.execPath, [cli, ...args, "--out", out], { encoding: "utf8" });
  assert.equal(again.status, 2);
  assert.match(again.stderr, /exists and is not empty/);
  writeFileSync(join(out, "keep.txt"), "x");
  const bad = spawnSync(process.execPath, [cli, "theory", "--p", "0.5,2"], { encoding: "utf8" });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--p "0\.5,2": expected comma-separated densities in \(0, 1\]/);
  const few = spawnSync(process.execPath, [cli, "theory", "--n", "64", "--d", "100", "--p", "0.1"], { encoding: "utf8" });
  // refused before any density is computed: a usage error naming --p (it used to fail after the denser ones, exit 1)
  assert.equal(few.status, 2);
  assert.match(few.stderr, /--p 0\.1: the mask keeps p·d = 10 of d=100 coordinates on average, fewer than n=64/);
  const late = spawnSync(process.execPath, [cli, "theory", "--n", "8", "--d", "64", "--p", "1,0.1", "--steps", "5", "--draws", "2"], { encoding: "utf8" });
  assert.equal(late.status, 2);
  assert.match(late.stderr, /^randmask theory: --p 0\.1: /);
  assert.doesNotMatch(late.stderr, /p=1:/); // nothing computed first
});
