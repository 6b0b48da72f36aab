// `node dist/bench/sweep-workers.js [DIR]`: does a sweep of small runs finish
// sooner as 2 processes × 1 thread or 1 process × 2 threads? Six Random Masking
// runs of a random 4-layer OPT (hidden 256, the real tokenizer) on a parity task,
// each way, on a fresh database; prints the sweep wall times. Reads ../shared.
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { OPTForCausalLM } from "../src/models/opt.js";
import { parseConfig, toHfConfig } from "../src/models/config.js";
import { saveFile } from "../src/io/safetensors.js";
import { writeJsonAtomic } from "../src/io/atomic.js";
import { parityTask, repoRoot, sharedDir } from "../test/helpers.js";

const dir = process.argv[2] ?? mkdtempSync(join(tmpdir(), "randmask-sweep-bench-"));
const model = join(dir, "model");
const cfg = parseConfig({ model_type: "opt", vocab_size: 50272, hidden_size: 256, num_hidden_layers: 4, ffn_dim: 1024,
  num_attention_heads: 4, max_position_embeddings: 128, dropout: 0 });
const m = OPTForCausalLM.random(cfg, { seed: 0, std: 0.05 });
mkdirSync(model, { recursive: true });
saveFile(join(model, "model.safetensors"), m.stateDict());
writeJsonAtomic(join(model, "config.json"), toHfConfig(cfg));
for (const f of ["vocab.json", "merges.txt"]) copyFileSync(join(sharedDir, "tokenizers", "opt", f), join(model, f));
m.dispose();
parityTask(join(dir, "data"));
writeFileSync(join(dir, "sweep.json"), JSON.stringify({ models: ["model"], tasks: ["jsonl"], dataDir: "data", sizes: { train: 64, dev: 32, test: 32 },
  lrs: [1e-2, 1e-3, 1e-4], seeds: [0, 1], epochs: [1], methods: [{ method: "random-mask", trainableRatios: [1e-4] }] }));
const cli = join(repoRoot, "dist", "src", "cli", "main.js");
for (const [workers, threads] of [[2, 1], [1, 2]]) {
  const db = join(dir, `w${workers}-${Date.now()}.sqlite`);
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [cli, "sweep", "run", join(dir, "sweep.json"), "--db", db, "--workers", String(workers)],
    { env: { ...process.env, RANDMASK_THREADS: String(workers * threads) }, encoding: "utf8" });
  if (r.status !== 0) throw new Error(r.stderr);
  console.log(`${workers} worker(s) × ${threads} thread(s): 6 runs in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}
