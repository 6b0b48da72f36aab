// The matrix products a Random Masking step cannot avoid, timed alone: the
// lower bound ("floor") on its step time with this machine's BLAS, whatever
// the rest of the implementation does. Exact arithmetic needs, per step of an
// OPT (batch × seq tokens T, loss at K positions per sequence):
// - forward: every frozen linear (q, k, v, out, fc1, fc2) at T rows, except the
//   last layer, which needs k and v at T rows and the rest at the B·K loss rows
//   only; the LM head at the B·K loss rows;
// - backward: the input gradient dX = dY·W of each of those products, except
//   layer 0's q, k, v (their input, the embeddings, is frozen); no weight
//   gradient (W frozen); the values' SDDMM and the attention core are not
//   counted (small here), so the floor is a true lower bound.
// Each shape runs in this process, `runs` times after `warmup`, and counts at its fastest
// run: the floor is meant as a lower bound, so a shared machine's slow moments must not
// raise it. Prints one JSON line:
// { dtype, floor_ms, products: [{ name, rows, in, out, count, ms }] }.
//   node dist/bench/gemm-floor.js '{"dtype":"float32"}'
import { randn, tidy, noGrad, frozenLinear, type DType } from "../src/engine/index.js";
import { presetConfig } from "../src/models/presets.js";

interface FloorArgs { dtype: DType; preset?: "opt-125m" | "opt-350m" | "opt-1.3b" | "opt-13b"; batch?: number; seq?: number; lossPositions?: number; runs?: number; warmup?: number }

/** The JSON argument checked: one line naming the fault and exit 2, never a stack trace or a silent default. */
function parseArgs(text: string): FloorArgs {
  const fail = (why: string): never => { process.stderr.write(`gemm-floor: ${why}\n`); process.exit(2); };
  let a: unknown;
  try { a = JSON.parse(text); } catch (e) { fail(`the argument is not JSON (${(e as Error).message}); expected e.g. '{"dtype":"float32"}'`); }
  if (typeof a !== "object" || a === null || Array.isArray(a)) return fail("expected a JSON object, e.g. '{\"dtype\":\"float32\"}'");
  const o = a as Record<string, unknown>;
  const known = ["dtype", "preset", "batch", "seq", "lossPositions", "runs", "warmup"];
  const unknown = Object.keys(o).filter((k) => !known.includes(k));
  if (unknown.length) fail(`unknown key(s) ${unknown.join(", ")}; known: ${known.join(", ")}`);
  if (!["float32", "bfloat16", "float16"].includes(o.dtype as string)) fail(`dtype ${JSON.stringify(o.dtype)}: expected "float32", "bfloat16" or "float16"`);
  const presets = ["opt-125m", "opt-350m", "opt-1.3b", "opt-13b"];
  if (o.preset !== undefined && !presets.includes(o.preset as string)) fail(`preset ${JSON.stringify(o.preset)}: expected one of ${presets.join(", ")}`);
  for (const [k, min] of [["batch", 1], ["seq", 1], ["lossPositions", 1], ["runs", 1], ["warmup", 0]] as const) {
    if (o[k] !== undefined && !(Number.isInteger(o[k]) && (o[k] as number) >= min)) fail(`${k} ${JSON.stringify(o[k])}: expected a whole number ≥ ${min}`);
  }
  return o as unknown as FloorArgs;
}

const args = parseArgs(process.argv[2] ?? "{}");
const c = presetConfig(args.preset ?? "opt-125m");
const B = args.batch ?? 8, T = B * (args.seq ?? 64), rowsAtLoss = B * (args.lossPositions ?? 2);
const L = c.numHiddenLayers, d = c.hiddenSize, f = c.ffnDim, V = c.vocabSize;

// [name, rows, in, out, count]: one product x[rows, in]·W[out, in]ᵀ, `count` times per step.
const products: [string, number, number, number, number][] = [
  ["q/k/v/out forward", T, d, d, 4 * (L - 1) + 2],
  ["q/k/v/out input gradient", T, d, d, 4 * (L - 1) - 3 + 2],
  ["fc1 forward", T, d, f, L - 1],
  ["fc1 input gradient", T, f, d, L - 1],
  ["fc2 forward", T, f, d, L - 1],
  ["fc2 input gradient", T, d, f, L - 1],
  ["last layer at the loss rows (q, out, fc1, fc2; forward and input gradient)", rowsAtLoss, d, d, 4 + 2 * 2 * (f / d)],
  ["LM head forward", rowsAtLoss, d, V, 1],
  ["LM head input gradient", rowsAtLoss, V, d, 1],
];

const runs = args.runs ?? 15, warmup = args.warmup ?? 3;
let floor = 0;
const measured = products.map(([name, rows, inDim, outDim, count]) => {
  const x = randn([rows, inDim], args.dtype), w = randn([outDim, inDim], args.dtype).mul(0.02);
  const times: number[] = [];
  for (let i = 0; i < warmup + runs; i++) {
    const t0 = performance.now();
    noGrad(() => tidy(() => { frozenLinear(x, w); }));
    if (i >= warmup) times.push(performance.now() - t0);
  }
  x.dispose(); w.dispose();
  const ms = Math.min(...times);
  floor += ms * count;
  return { name, rows, in: inDim, out: outDim, count, ms, gflops: (2 * rows * inDim * outDim) / ms / 1e6 };
});
console.log(JSON.stringify({ bench: "gemm-floor", dtype: args.dtype, floor_ms: floor, products: measured }));
