#!/usr/bin/env node
// Times single runs of sweep.yaml's protocol on a random-weight model of opt-mini's shape
// (made by `randmask pretrain --config scripts/opt-mini-config.json --max-steps 1`), so the
// sweep's wall time can be estimated before opt-mini exists. CPU seconds (user + sys) of a
// one-thread run are what it takes on an idle core: the estimate in README.md.
//
//   node experiments/opt-mini-repro/time-one-run.mjs [--work DIR]
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { parse, stringify } from "yaml";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "..", "..");
const cli = join(repo, "dist", "src", "cli", "main.js");
const { values: flags } = parseArgs({ options: { work: { type: "string", default: "/tmp/opt-mini-repro-timing" } } });
const work = resolve(flags.work);
mkdirSync(work, { recursive: true });
const env = { ...process.env, RANDMASK_THREADS: "1" };

// a model of opt-mini's shape: one pretraining step from random weights (tokenizer: the shared OPT one)
const model = join(work, "opt-mini-random");
if (!existsSync(join(model, "model.safetensors"))) {
  const text = join(work, "text.txt");
  writeFileSync(text, "A few words so that one pretraining step has a block to read.\n".repeat(200));
  execFileSync(process.execPath, [cli, "pretrain", "--config", join(repo, "scripts", "opt-mini-config.json"),
    "--tokenizer", join(repo, "..", "shared", "tokenizers", "opt"), "--data", text, "--max-steps", "1", "--block-size", "64",
    "--batch-size", "2", "--holdout-tokens", "64", "--dtype", "fp32", "--out", model, "--quiet"], { env, stdio: "inherit" });
}

const sweep = parse(readFileSync(join(here, "sweep.yaml"), "utf8"));
const entry = (method) => sweep.methods.find((m) => m.method === method && (method !== "random-mask" || m.hessian));
const cases = [
  ["sst2", entry("random-mask")], ["copa", entry("random-mask")], ["sst2", entry("full")], ["copa", entry("full")],
];
console.log("run                         CPU s (user+sys)   wall s");
for (const [task, m] of cases) {
  const name = `${task}-${m.method}${m.hessian ? "-hessian" : ""}`;
  const file = join(work, `${name}.yaml`);
  const one = { ...m, ...(m.trainableRatios ? { trainableRatios: [1e-3] } : {}), seeds: [0] };
  writeFileSync(file, stringify({ ...sweep, name, models: [model], tasks: [task], dataDir: resolve(here, sweep.dataDir), lrs: [1e-3], methods: [one] }));
  const db = join(work, `${name}.sqlite`);
  if (existsSync(db)) { console.log(`${name}: ${db} exists, skipped`); continue; }
  const r = spawnSync("/usr/bin/time", ["-f", "%U %S %e", process.execPath, cli, "sweep", "run", file, "--db", db, "--workers", "1"],
    { env, encoding: "utf8" });
  const [user, sys, wall] = r.stderr.trim().split("\n").at(-1).split(" ").map(Number);
  console.log(`${name.padEnd(28)}${(user + sys).toFixed(1).padStart(16)}${wall.toFixed(1).padStart(9)}`);
}
