// Child-process probe for memory tests: peak RSS must be measured in a fresh
// process, since maxRSS only ever grows. Prints one JSON line.
import { tensor, zeros, randn, tidy, grad, sparseDeltaLinear, linear, AdamW, liveHandles, manualSeed, settle } from "../src/engine/index.js";

const peakKiB = () => process.resourceUsage().maxRSS;
const mode = process.argv[2];
manualSeed(0);

if (mode === "sparse-vs-dense-4096") {
  const n = 4096;
  const w = randn([n, n]);
  const x = randn([64, n]).setRequiresGrad(true);
  const nnz = Math.round(n * n * 1e-4);
  const idx: number[] = [];
  for (let k = 0; k < nnz; k++) idx.push(Math.floor((k * n * n) / nnz));
  const indices = tensor(idx, [nnz], "int64");
  const values = zeros([nnz]).setRequiresGrad(true);
  // warm up threads and allocator on a small problem
  tidy(() => { const s = randn([64, 256]).setRequiresGrad(true); grad([linear(s, randn([256, 256])).sum()], [s]); });
  const before = peakKiB();
  tidy(() => { grad([sparseDeltaLinear(x, w, null, indices, values).sum()], [x, values]); });
  const sparse = peakKiB() - before;
  // control: the dense trainable weight's gradient, which the kernel avoids
  const wTrain = w.detach().setRequiresGrad(true);
  const beforeDense = peakKiB();
  tidy(() => { grad([linear(x, wTrain).sum()], [x, wTrain]); });
  const dense = peakKiB() - beforeDense;
  console.log(JSON.stringify({ sparseKiB: sparse, denseKiB: dense }));
} else if (mode === "training-loop") {
  const w = randn([256, 256]);
  const idx = Array.from({ length: 650 }, (_, k) => k * 100);
  const indices = tensor(idx, [idx.length], "int64");
  const values = zeros([idx.length]).setRequiresGrad(true);
  const opt = new AdamW([values], { lr: 1e-2 });
  const target = randn([32, 256]);
  const samples: { it: number; rss: number; handles: number }[] = [];
  for (let it = 1; it <= 1000; it++) {
    tidy(() => {
      const x = randn([32, 256]);
      const loss = sparseDeltaLinear(x, w, null, indices, values).sub(target).pow(2).mean();
      loss.backward();
      opt.step();
      opt.zeroGrad();
    });
    await settle();
    if (it % 100 === 0) {
      if (global.gc) global.gc();
      samples.push({ it, rss: process.memoryUsage().rss, handles: liveHandles().count });
    }
  }
  console.log(JSON.stringify({ samples, stateBytes: opt.stateBytes() }));
}
