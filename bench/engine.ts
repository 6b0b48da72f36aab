// `npm run bench:engine`: matmul throughput through randmask vs plain PyTorch
// in the same run, and the SDDMM gradient vs a dense-gradient-then-gather
// baseline. `-- --json` prints one JSON object per line.
import { randn, tensor, tidy, noGrad, sddmm, keep, buildInfo } from "../src/engine/index.js";
import { parseFlags, timeIt } from "./timing.js";
import { peerAvailable, runPeer } from "./peer/python.js";

const { json, quick } = parseFlags(process.argv.slice(2));
const minSeconds = quick ? 0.2 : 0.6;
const shapes: [number, number, number][] = [[512, 768, 768], [512, 768, 3072], [512, 3072, 768]];
const dtypes = ["float32", "bfloat16"] as const;

interface Row { bench: string; shape: string; dtype: string; randmask: number; peer: number | null; unit: string; ratio: number | null }
const rows: Row[] = [];
const emit = (r: Row) => { rows.push(r); if (json) console.log(JSON.stringify(r)); };

const info = buildInfo();
if (!json) {
  console.log(`# randmask engine benchmark — libtorch ${info.torchVersion}, ${info.threads} threads, BLAS ${info.blasLibraries.join(", ")}${info.fastBlas ? "" : " (WARNING: not the OpenMP OpenBLAS)"}`);
}

const noPeer = peerAvailable();
const peer = noPeer ? [] : runPeer<{ shape: number[]; dtype: string; ms: number }>("engine_peer.py", { shapes, dtypes, min_seconds: minSeconds });

for (const [m, k, n] of shapes) {
  for (const dtype of dtypes) {
    const [a, b] = tidy(() => [keep(randn([m, k]).to(dtype)), keep(randn([k, n]).to(dtype))]);
    const t = await timeIt(() => noGrad(() => tidy(() => { a.matmul(b); })), { minSeconds });
    a.dispose(); b.dispose();
    const flop = 2 * m * k * n;
    const ours = flop / (t.medianMs * 1e6);
    const p = peer.find((r) => r.shape.join() === [m, k, n].join() && r.dtype === dtype);
    const theirs = p ? flop / (p.ms * 1e6) : null;
    emit({ bench: "matmul", shape: `${m}x${k}·${k}x${n}`, dtype, randmask: ours, peer: theirs, unit: "GFLOP/s", ratio: theirs ? ours / theirs : null });
  }
}

// SDDMM: dValues for a 768×768 weight, 512 tokens, vs dense dW = dYᵀX then gather.
const tokens = 512, dim = 768;
for (const density of [1e-2, 1e-3, 1e-4]) {
  const nnz = Math.round(dim * dim * density);
  const idx = Array.from({ length: nnz }, (_, i) => Math.floor((i * dim * dim) / nnz));
  const [dY, X, rows_, cols, flat] = tidy(() => [
    keep(randn([tokens, dim])), keep(randn([tokens, dim])),
    keep(tensor(idx.map((i) => Math.floor(i / dim)), [nnz], "int64")),
    keep(tensor(idx.map((i) => i % dim), [nnz], "int64")),
    keep(tensor(idx, [nnz], "int64")),
  ]);
  const sparse = await timeIt(() => noGrad(() => tidy(() => { sddmm(dY, X, rows_, cols); })), { minSeconds });
  const dense = await timeIt(() => noGrad(() => tidy(() => {
    dY.transpose(0, 1).matmul(X).reshape([-1]).indexSelect(0, flat);
  })), { minSeconds });
  [dY, X, rows_, cols, flat].forEach((t) => t.dispose());
  emit({ bench: "sddmm", shape: `${dim}x${dim} T=${tokens} density=${density}`, dtype: "float32",
    randmask: sparse.medianMs, peer: dense.medianMs, unit: "ms (peer: dense dW then gather)", ratio: dense.medianMs / sparse.medianMs });
}

if (!json) {
  if (noPeer) console.log(`\nPyTorch peer skipped: ${noPeer}`);
  console.log("\n| bench | shape | dtype | randmask | peer | unit | ratio (>1: randmask faster) |\n|---|---|---|---|---|---|---|");
  const f = (v: number | null) => (v === null ? "—" : v.toFixed(v < 10 ? 3 : 1));
  for (const r of rows) console.log(`| ${r.bench} | ${r.shape} | ${r.dtype} | ${f(r.randmask)} | ${f(r.peer)} | ${r.unit} | ${f(r.ratio)} |`);
}
