// `randmask theory`: Section 5's linear-regression predictions checked numerically.
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { writeFileAtomic, writeJsonAtomic } from "../io/atomic.js";
import { THEORY_DEFAULTS, runTheory, theoryMarkdown, type TheoryOptions } from "../analysis/theory.js";
import { eigenRatioSpec, gdCurvesSpec, normSpec } from "../analysis/theory-plots.js";
import { chartImages } from "../plot/render.js";
import { UsageError, decimalNumber, defineCommand, nonNegInt, positiveInt } from "./args.js";
import { checkOutputFolder } from "./shared-flags.js";

const D = THEORY_DEFAULTS;

/** A comma-separated list of numbers, each checked. */
function numbers(name: string, list: string[] | undefined, dflt: number[], check: (v: number) => boolean, expected: string): number[] {
  if (list === undefined) return dflt;
  const nums = list.map(decimalNumber); // as number flags: 0x1 is no density
  if (list.length === 0 || !nums.every((x) => Number.isFinite(x) && check(x))) throw new UsageError(`--${name} ${JSON.stringify(list.join(","))}: expected ${expected}`);
  return nums;
}

export const theoryCommand = defineCommand({
  name: "theory",
  summary: "Check Section 5's linear-regression predictions numerically (eigenvalue ratios, gradient-descent curves, norms) " +
    "and print a Markdown report; --out also writes theory.json, theory.md and plots (SVG and PNG).",
  flags: {
    n: { type: "integer", default: D.n, check: positiveInt, expected: "a positive integer", description: "training examples" },
    d: { type: "integer", default: D.d, check: positiveInt, expected: "a positive integer", description: "parameters (d ≫ n)" },
    r: { type: "number", default: D.r, check: (v) => v > 0, expected: "a positive number", description: "input scale" },
    sigma: { type: "number", default: D.sigma, check: (v) => v >= 0, expected: "a number ≥ 0", description: "label noise" },
    p: { type: "list", arg: "P,P,...", defaultText: D.ps.join(","), description: "mask densities in (0, 1]" },
    delta: { type: "number", default: D.delta, check: (v) => v > 0 && v < 1, expected: "in (0, 1)", description: "failure probability of the bounds" },
    seed: { type: "integer", default: D.seed, check: nonNegInt, expected: "a non-negative integer", description: "seed of data and masks" },
    steps: { type: "integer", default: D.steps, check: positiveInt, expected: "a positive integer", description: "gradient-descent steps" },
    draws: { type: "integer", default: D.draws, check: (v) => v >= 2, expected: "an integer ≥ 2", description: "masks drawn per density" },
    signal: { type: "number", default: D.signal, check: (v) => v >= 0, expected: "a number ≥ 0", description: "norm of the true parameter" },
    bisections: { type: "integer", default: D.edgeBisections, check: nonNegInt, expected: "a non-negative integer", description: "bisection steps locating the stability edge" },
    "curve-factors": { type: "list", arg: "F,F,...", defaultText: D.curveFactors.join(","), description: "learning rates of the plotted curves, as multiples of the edge" },
    out: { type: "string", arg: "DIR", description: "also write theory.json, theory.md and the plots (SVG, PNG) here (absent or empty)" },
    json: { type: "boolean", description: "print the results as one JSON line" },
    quiet: { type: "boolean", description: "no progress lines on stderr" },
  },
  example: "theory --n 32 --d 4096 --p 0.01,0.1,1 --out runs/theory",
  async run(v) {
    const o: TheoryOptions = {
      n: v.n, d: v.d, r: v.r, sigma: v.sigma,
      ps: numbers("p", v.p, D.ps, (x) => x > 0 && x <= 1, "comma-separated densities in (0, 1]"),
      delta: v.delta, seed: v.seed, steps: v.steps, draws: v.draws, signal: v.signal, edgeBisections: v.bisections,
      curveFactors: numbers("curve-factors", v["curve-factors"], D.curveFactors, (x) => x > 0, "comma-separated positive numbers"),
    };
    if (o.d < o.n) throw new UsageError(`--d ${o.d}: must be at least --n ${o.n} (the theory is about d ≫ n)`);
    if (v.out !== undefined) checkOutputFolder("out", v.out, "theory.json, theory.md and the plots", { empty: true });
    // a density whose mask keeps fewer than n coordinates on average would fail after the denser ones were computed
    const few = o.ps.find((p) => p * o.d < o.n);
    if (few !== undefined) {
      throw new UsageError(`--p ${few}: the mask keeps p·d = ${Number((few * o.d).toPrecision(3))} of d=${o.d} coordinates on average, fewer than n=${o.n}; ` +
        `the theory is about the overparameterised regime (use p ≥ ${Number((o.n / o.d).toPrecision(3))} or raise --d)`);
    }
    const out = v.out === undefined ? null : resolve(v.out);

    const started = Date.now();
    const res = runTheory(o, (line) => { if (!v.quiet) process.stderr.write(`${line}\n`); });
    const wall = (Date.now() - started) / 1000;
    const markdown = theoryMarkdown(res);
    const json = { ...res, wall_time_s: wall };
    if (out) {
      // render everything before writing anything
      const images = {
        "eigen-ratio": await chartImages(eigenRatioSpec(res)),
        "gd-loss": await chartImages(gdCurvesSpec(res)),
        "norm": await chartImages(normSpec(res)),
      };
      mkdirSync(out, { recursive: true });
      writeJsonAtomic(join(out, "theory.json"), json);
      writeFileAtomic(join(out, "theory.md"), `# randmask theory\n\n${markdown}`);
      for (const [name, { svg, png }] of Object.entries(images)) {
        writeFileAtomic(join(out, `${name}.svg`), svg);
        writeFileAtomic(join(out, `${name}.png`), png);
      }
    }
    process.stdout.write(v.json ? JSON.stringify(json) + "\n" : markdown + (out ? `\nwritten to ${out}\n` : ""));
  },
});
