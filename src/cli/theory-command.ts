// `randmask theory`: Section 5's linear-regression predictions checked numerically.
import { existsSync, mkdirSync, readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { writeFileAtomic, writeJsonAtomic } from "../io/atomic.js";
import { THEORY_DEFAULTS, runTheory, theoryMarkdown, type TheoryOptions } from "../analysis/theory.js";
import { eigenRatioSpec, gdCurvesSpec, normSpec } from "../analysis/theory-plots.js";
import { vegaLiteSvg } from "../analysis/vega-svg.js";
import { UsageError, numberFlag, parseFlags } from "./args.js";

const positiveInt = (v: number) => Number.isSafeInteger(v) && v > 0;

function numberList(flags: Record<string, unknown>, name: string, dflt: number[], check: (v: number) => boolean, expected: string): number[] {
  const v = flags[name];
  if (v === undefined) return dflt;
  const list = String(v).split(",").map((s) => s.trim());
  const nums = list.map(Number);
  if (list.some((s) => s === "") || !nums.every(check)) throw new UsageError(`--${name} ${JSON.stringify(v)}: expected ${expected}`);
  return nums;
}

export async function theoryCommand(argv: string[]): Promise<void> {
  const flags = parseFlags(argv, {
    n: { type: "string" }, d: { type: "string" }, r: { type: "string" }, sigma: { type: "string" }, p: { type: "string" },
    delta: { type: "string" }, seed: { type: "string" }, steps: { type: "string" }, draws: { type: "string" }, signal: { type: "string" },
    bisections: { type: "string" }, "curve-factors": { type: "string" }, out: { type: "string" }, json: { type: "boolean" }, quiet: { type: "boolean" },
  });
  const D = THEORY_DEFAULTS;
  const o: TheoryOptions = {
    n: numberFlag(flags, "n", D.n, positiveInt, "a positive integer"),
    d: numberFlag(flags, "d", D.d, positiveInt, "a positive integer"),
    r: numberFlag(flags, "r", D.r, (v) => v > 0 && Number.isFinite(v), "a positive number"),
    sigma: numberFlag(flags, "sigma", D.sigma, (v) => v >= 0 && Number.isFinite(v), "a number ≥ 0"),
    ps: numberList(flags, "p", D.ps, (v) => v > 0 && v <= 1, "comma-separated densities in (0, 1]"),
    delta: numberFlag(flags, "delta", D.delta, (v) => v > 0 && v < 1, "in (0, 1)"),
    seed: numberFlag(flags, "seed", D.seed, (v) => Number.isSafeInteger(v) && v >= 0, "a non-negative integer"),
    steps: numberFlag(flags, "steps", D.steps, positiveInt, "a positive integer"),
    draws: numberFlag(flags, "draws", D.draws, (v) => Number.isSafeInteger(v) && v >= 2, "an integer ≥ 2"),
    signal: numberFlag(flags, "signal", D.signal, (v) => v >= 0 && Number.isFinite(v), "a number ≥ 0"),
    edgeBisections: numberFlag(flags, "bisections", D.edgeBisections, (v) => Number.isSafeInteger(v) && v >= 0, "a non-negative integer"),
    curveFactors: numberList(flags, "curve-factors", D.curveFactors, (v) => v > 0 && Number.isFinite(v), "comma-separated positive numbers"),
  };
  if (o.d < o.n) throw new UsageError(`--d ${o.d}: must be at least --n ${o.n} (the theory is about d ≫ n)`);
  const out = flags.out === undefined ? null : resolve(String(flags.out));
  if (out && existsSync(out) && readdirSync(out).length > 0) throw new UsageError(`--out ${out}: exists and is not empty; nothing was written`);

  const started = Date.now();
  const res = runTheory(o, (line) => { if (!flags.quiet) process.stderr.write(`${line}\n`); });
  const wall = (Date.now() - started) / 1000;
  const markdown = theoryMarkdown(res);
  const json = { ...res, wall_time_s: wall };
  if (out) {
    // render everything before writing anything
    const svgs = {
      "eigen-ratio.svg": await vegaLiteSvg(eigenRatioSpec(res)),
      "gd-loss.svg": await vegaLiteSvg(gdCurvesSpec(res)),
      "norm.svg": await vegaLiteSvg(normSpec(res)),
    };
    mkdirSync(out, { recursive: true });
    writeJsonAtomic(join(out, "theory.json"), json);
    writeFileAtomic(join(out, "theory.md"), `# randmask theory\n\n${markdown}`);
    for (const [name, svg] of Object.entries(svgs)) writeFileAtomic(join(out, name), svg);
  }
  process.stdout.write(flags.json ? JSON.stringify(json) + "\n" : markdown + (out ? `\nwritten to ${out}\n` : ""));
}
