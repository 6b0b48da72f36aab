#!/usr/bin/env node
// Ships a `randmask pretrain` output folder as models/opt-mini/: bf16
// safetensors (≤ 40 MB), config and tokenizer files, the corpus manifest, the
// held-out loss curve, and README.md (the model card) with the run's numbers
// and the demo's SST-2 table. Everything is written to a temp folder first and
// renamed over --out at the end, so a failure leaves the old folder intact.
//
//   node scripts/ship-opt-mini.mjs --run DIR [--out models/opt-mini] [--manifest FILE]
//        [--demo-metrics FILE | --run-demo] [--acceptance [--random-metrics FILE [--pretrained-metrics FILE]]]
//        [--hardware TEXT] [--history TEXT]
//
// --run-demo runs `randmask demo` on the new folder and pastes its table;
// --demo-metrics takes the metrics.json of a demo already run on these weights.
// --acceptance runs `randmask demo --protocol` on the new folder and with
// --random-weights (issue 11's test: pretrained vs random weights, same shape).
// --random-metrics takes the metrics.json of `demo --protocol --random-weights` already run on --run's shape;
// --pretrained-metrics (with it) that of `demo --protocol` already run on these weights (e.g. to rewrite the card).
// --history adds a paragraph on how the run went (e.g. a budget changed on resume).
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const dist = join(repo, "dist", "src");
const { OPTForCausalLM } = await import(join(dist, "models", "opt.js"));
const { saveFile } = await import(join(dist, "io", "safetensors.js"));
const { pretrainLossSpec } = await import(join(dist, "train", "pretrain.js"));
const { renderChart } = await import(join(dist, "plot", "render.js"));

const { values: flags } = parseArgs({
  options: {
    run: { type: "string" },
    out: { type: "string", default: join(repo, "models", "opt-mini") },
    manifest: { type: "string" },
    "demo-metrics": { type: "string" },
    "run-demo": { type: "boolean", default: false },
    acceptance: { type: "boolean", default: false },
    "random-metrics": { type: "string" },
    "pretrained-metrics": { type: "string" },
    history: { type: "string" },
    hardware: { type: "string", default: `${cpus()[0]?.model ?? "unknown CPU"}, ${cpus().length} cores` },
  },
});
const fail = (msg) => { process.stderr.write(`ship-opt-mini: ${msg}; nothing was written\n`); process.exit(1); };
if (!flags.run) fail("--run DIR (a `randmask pretrain` output folder) is required");
if (flags["demo-metrics"] && flags["run-demo"]) fail("--demo-metrics and --run-demo exclude each other");
const run = resolve(flags.run);
const out = resolve(flags.out);
const MAX_BYTES = 40 * 1024 * 1024;

// ---- read and check everything before writing anything
for (const f of ["config.json", "model.safetensors", "vocab.json", "merges.txt", "pretrain-run.json", "log.jsonl", "checkpoint/state.json"]) {
  if (!existsSync(join(run, f))) fail(`--run ${run}: no ${f} (expected a \`randmask pretrain\` output folder)`);
}
const readJson = (f) => { try { return JSON.parse(readFileSync(f, "utf8")); } catch (e) { fail(`${f}: not valid JSON (${e.message})`); } };
const runRecord = readJson(join(run, "pretrain-run.json"));
if (runRecord.kind !== "randmask-pretrain") fail(`${join(run, "pretrain-run.json")}: not a randmask pretrain record`);
const state = readJson(join(run, "checkpoint", "state.json"));
const runConfig = readJson(join(run, "config.json")); // read once: the shape check and the shipped config
const log = readFileSync(join(run, "log.jsonl"), "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));
const evals = log.filter((e) => e.type === "eval");
const trains = log.filter((e) => e.type === "train");
if (evals.length === 0 || trains.length === 0) fail(`${join(run, "log.jsonl")}: no train or held-out entries yet`);
const manifestFile = resolve(flags.manifest ?? join(dirname(runRecord.data[0].path), "corpus-manifest.json"));
if (!existsSync(manifestFile)) fail(`${manifestFile}: no corpus manifest (give --manifest FILE)`);
const manifest = readJson(manifestFile);
// The random-weight baseline does not depend on the pretrained values, only on the shape: it may be
// run beforehand (`demo --protocol --random-weights --model RUN`) and given here.
let randomProtocol = null;
if (flags["random-metrics"]) {
  if (!flags.acceptance) fail("--random-metrics is read only with --acceptance");
  randomProtocol = readJson(resolve(flags["random-metrics"]));
  const shape = (c) => ["model_type", "hidden_size", "num_hidden_layers", "ffn_dim", "num_attention_heads", "vocab_size", "max_position_embeddings"].map((k) => c[k]).join(",");
  const randomCfg = join(randomProtocol.out ?? "", "random-weights-model", "config.json");
  if (randomProtocol.random_weights !== true || !randomProtocol.protocol || !Array.isArray(randomProtocol.methods)) {
    fail(`--random-metrics ${flags["random-metrics"]}: not the metrics.json of \`randmask demo --protocol --random-weights\``);
  }
  if (!existsSync(randomCfg) || shape(readJson(randomCfg)) !== shape(runConfig)) fail(`--random-metrics ${flags["random-metrics"]}: its random-weight model (${randomCfg}) is not of --run's shape`);
}
let pretrainedProtocol = null;
if (flags["pretrained-metrics"]) {
  if (!randomProtocol) fail("--pretrained-metrics needs --random-metrics (both protocol runs given, none rerun)");
  pretrainedProtocol = readJson(resolve(flags["pretrained-metrics"]));
  if (pretrainedProtocol.random_weights !== false || JSON.stringify(pretrainedProtocol.protocol) !== JSON.stringify(randomProtocol.protocol)) {
    fail(`--pretrained-metrics ${flags["pretrained-metrics"]}: not a \`randmask demo --protocol\` run on pretrained weights with --random-metrics' protocol`);
  }
}
let demo = null;
if (flags["demo-metrics"]) {
  demo = readJson(resolve(flags["demo-metrics"]));
  if (typeof demo.table !== "string" || !Array.isArray(demo.methods)) fail(`--demo-metrics ${flags["demo-metrics"]}: not a randmask demo metrics.json`);
}

// ---- write into a temp folder next to --out
const tmp = `${out}.tmp-${process.pid}`;
rmSync(tmp, { recursive: true, force: true });
mkdirSync(tmp, { recursive: true });
try {
  const model = OPTForCausalLM.load(run, { dtype: "bfloat16" });
  const params = model.numParameters();
  saveFile(join(tmp, "model.safetensors"), model.stateDict(), { format: "pt" });
  model.dispose();
  const bytes = statSync(join(tmp, "model.safetensors")).size;
  if (bytes > MAX_BYTES) throw new Error(`bf16 weights are ${(bytes / 2 ** 20).toFixed(1)} MB, over the 40 MB limit`);
  const config = { ...runConfig, torch_dtype: "bfloat16" };
  writeFileSync(join(tmp, "config.json"), JSON.stringify(config, null, 2) + "\n");
  for (const f of ["vocab.json", "merges.txt"]) copyFileSync(join(run, f), join(tmp, f));
  const tokCfg = existsSync(join(run, "tokenizer_config.json")) ? readJson(join(run, "tokenizer_config.json"))
    : { tokenizer_class: "GPT2Tokenizer", bos_token: "</s>", eos_token: "</s>", unk_token: "</s>", pad_token: "<pad>", add_bos_token: true };
  writeFileSync(join(tmp, "tokenizer_config.json"), JSON.stringify({ ...tokCfg, model_max_length: config.max_position_embeddings }, null, 2) + "\n");
  copyFileSync(manifestFile, join(tmp, "corpus-manifest.json"));
  await renderChart(pretrainLossSpec(log), join(tmp, "loss")); // loss.svg and loss.png

  if (flags["run-demo"]) {
    const demoOut = join(repo, "runs", `demo-opt-mini-${Date.now()}`);
    const r = spawnSync(process.execPath, [join(dist, "cli", "main.js"), "demo", "--model", tmp, "--out", demoOut], { stdio: ["ignore", "inherit", "inherit"] });
    if (r.status !== 0) throw new Error(`randmask demo failed (exit ${r.status})`);
    demo = readJson(join(demoOut, "metrics.json"));
  }
  let acceptance = null;
  if (flags.acceptance) {
    const runProtocol = (extra) => {
      const dir = join(repo, "runs", `protocol-opt-mini${extra.length ? "-random" : ""}-${Date.now()}`);
      const r = spawnSync(process.execPath, [join(dist, "cli", "main.js"), "demo", "--protocol", ...extra, "--model", tmp, "--out", dir], { stdio: ["ignore", "inherit", "inherit"] });
      if (r.status !== 0) throw new Error(`randmask demo --protocol ${extra.join(" ")} failed (exit ${r.status})`);
      return readJson(join(dir, "metrics.json"));
    };
    const pretrained = pretrainedProtocol ?? runProtocol([]);
    if (randomProtocol && JSON.stringify(randomProtocol.protocol) !== JSON.stringify(pretrained.protocol)) {
      throw new Error(`--random-metrics ${flags["random-metrics"]}: its protocol differs from this demo --protocol run's`);
    }
    acceptance = { pretrained, random: randomProtocol ?? runProtocol(["--random-weights"]) };
    writeFileSync(join(tmp, "acceptance-metrics.json"), JSON.stringify(acceptance, null, 2) + "\n");
  }
  if (demo) writeFileSync(join(tmp, "demo-metrics.json"), JSON.stringify({ ...demo, model: "models/opt-mini" }, null, 2) + "\n");
  writeFileSync(join(tmp, "README.md"), modelCard({ config, params, bytes, demo, acceptance }));

  // ---- replace --out
  mkdirSync(dirname(out), { recursive: true });
  const old = `${out}.old-${process.pid}`;
  if (existsSync(out)) renameSync(out, old);
  renameSync(tmp, out);
  rmSync(old, { recursive: true, force: true });
} catch (e) {
  rmSync(tmp, { recursive: true, force: true });
  fail(e.message);
}
process.stdout.write(`wrote ${out}\n`);

/** Issue 11's acceptance: Random Masking on opt-mini ≥ 0.70 test accuracy and ≥ 8 points over the random-weight model. */
function acceptanceSection(a) {
  if (!a) return "Not run yet: `node scripts/ship-opt-mini.mjs --run DIR --acceptance` fills this section.";
  const rm = (rec) => rec.methods.find((m) => m.method === "random-mask");
  const [p, r] = [rm(a.pretrained), rm(a.random)];
  const row = (name, rec, m) => `| ${name} | ${m.trainable_params.toLocaleString("en-US")} | ${rec.zero_shot.test_accuracy.toFixed(3)} | ${m.dev_accuracy?.toFixed(3) ?? "–"} | ${m.test_accuracy?.toFixed(3) ?? "–"} | ${m.chosen_lr ?? "all diverged"} |`;
  const gap = (p.test_accuracy ?? 0) - (r.test_accuracy ?? 0);
  const met = (p.test_accuracy ?? 0) >= 0.70 && gap >= 0.08;
  return `Protocol: ${a.pretrained.protocol.train} train / ${a.pretrained.protocol.dev} dev (seeded from GLUE's train split), GLUE's ${a.pretrained.protocol.test}-sentence dev split as test,
MeZO's template, ${a.pretrained.protocol.epochs} epochs, batch ${a.pretrained.protocol.batch_size}, Random Masking at ${p.options.trainableRatio * 100}% of the whole model,
LR chosen on dev from {${p.grid.map((g) => g.lr).join(", ")}} (\`randmask demo --protocol\`, and \`--random-weights\` for a seeded random-weight model of the same shape).

| model | trainable | zero-shot test | dev acc | test acc | LR (chosen on dev) |
|---|---:|---:|---:|---:|---:|
${row("opt-mini (pretrained)", a.pretrained, p)}
${row("random weights, same shape", a.random, r)}

Pretrained minus random: ${(gap * 100).toFixed(1)} points of test accuracy. Target (≥ 0.70 and ≥ 8 points): **${met ? "met" : "not met"}**
(≥ 0.70: ${(p.test_accuracy ?? 0) >= 0.70 ? "met" : `not met, ${p.test_accuracy?.toFixed(3)}`}; ≥ 8 points: ${gap >= 0.08 ? "met" : "not met"}).${met ? "" : `
What limits it is the pretraining this CPU allowed: ${evals.at(-1).tokens.toLocaleString("en-US")} tokens, held-out loss ${evals.at(-1).loss.toFixed(2)} nats/token,
still falling when the budget ended (see the loss curve); the protocol, its LR grid and the test split were not tuned.`}
Full record: [acceptance-metrics.json](acceptance-metrics.json).`;
}

function modelCard({ config, params, bytes, demo, acceptance }) {
  const t = runRecord.train;
  const last = trains[trains.length - 1];
  const lastEval = evals[evals.length - 1];
  const bestEval = evals.reduce((a, b) => (b.loss < a.loss ? b : a));
  const hours = state.wallSeconds / 3600;
  const finished = last.step >= t.maxSteps;
  const fmt = (n) => n.toLocaleString("en-US");
  const sources = manifest.sources.map((s) => `| ${s.name} | ${fmt(s.documents)} | ${(s.bytes / 1e6).toFixed(1)} MB | ${s.tokens ? fmt(s.tokens) : "–"} | ${s.licence} |`);
  const weights = Object.fromEntries(runRecord.data.map((d) => [basename(d.path), d.weight]));
  return `# opt-mini

randmask's own small pretrained OPT: the default model of \`randmask demo\` / \`npm run demo\`. It has the
OPT architecture and OPT's byte-level BPE tokenizer (vocab 50272), so MeZO's prompt templates tokenise as
for the published OPT models, and every randmask command (and Hugging Face \`OPTForCausalLM\`) loads it.
It was pretrained from scratch with \`randmask pretrain\` on CPU${finished ? "" : ` — **not finished: this snapshot is step ${fmt(last.step)} of ${fmt(t.maxSteps)}**`}.

## Shape

| | |
|---|---|
| layers × hidden × heads | ${config.num_hidden_layers} × ${config.hidden_size} × ${config.num_attention_heads} (FFN ${config.ffn_dim}, ${config.activation_function}, pre-LayerNorm) |
| positions | ${config.max_position_embeddings} |
| vocabulary | ${fmt(config.vocab_size)} (OPT's tokenizer; input and output embeddings tied) |
| parameters | ${fmt(params)} |
| weights | \`model.safetensors\`, bfloat16, ${(bytes / 2 ** 20).toFixed(1)} MiB |

## Pretraining

| | |
|---|---|
| steps | ${fmt(last.step)} of ${fmt(t.maxSteps)} (batch ${t.batchSize} × ${t.blockSize} tokens${t.gradAccum > 1 ? `, ${t.gradAccum} micro-batches` : ""}) |
| tokens seen | ${fmt(state.tokensSeen)} |
| held-out loss | ${lastEval.loss.toFixed(3)} nats/token (perplexity ${lastEval.perplexity.toFixed(1)}) at step ${fmt(lastEval.step)}; best ${bestEval.loss.toFixed(3)} at step ${fmt(bestEval.step)} |
| optimizer | AdamW (β₂ ${t.beta2}, weight decay ${t.weightDecay}), LR ${t.lr} warm-up ${fmt(t.warmupSteps)} steps then cosine to ${t.minLr}, clip ${t.maxGradNorm}, ${t.dtype}, seed ${t.seed} |
| wall time | ${hours.toFixed(1)} h of training |
| hardware | ${flags.hardware} |

![held-out and train loss](loss.svg)

The held-out slice is the last ${fmt(runRecord.holdoutTokens)} tokens of every corpus file (exact ranges in
the run's \`pretrain-run.json\`); it is never trained on.

## Corpus

Assembled by \`scripts/build-corpus.mjs\` from \`../shared/data\`; ${manifest.note}. Every source with its
bytes and tokens: [corpus-manifest.json](corpus-manifest.json). Weight = passes over the file per epoch.

| source | documents | bytes | tokens | licence as stated |
|---|---:|---:|---:|---|
${sources.join("\n")}

Weights: ${Object.entries(weights).map(([f, w]) => `${f} ×${w}`).join(", ")}.
SST-2's train-split sentences (unlabeled) are in the corpus, so the demo's train and dev sentences were
seen as plain text; its test split (GLUE dev) never was.

## Rebuild

\`\`\`sh
npm run build:opt-mini     # corpus, then pretraining (resumable: run it again after an interruption), then this folder
\`\`\`

It runs \`scripts/build-opt-mini.sh\` (\`OPT_MINI_WORK\` sets its work folder, default \`runs/opt-mini\`): the
corpus (\`scripts/build-corpus.mjs\`, tokenised once into a cache), \`randmask pretrain\` with
\`scripts/opt-mini-config.json\` and the settings above (\`--resume\` when a checkpoint exists), then
\`node scripts/ship-opt-mini.mjs --run runs/opt-mini/model --run-demo --acceptance\`, which writes this folder.
How long: ${fmt(state.tokensSeen)} tokens took ${hours.toFixed(1)} h of training on the hardware above (shared with other jobs)${finished ? "" : `;
at that rate the whole run (${fmt(t.maxSteps)} steps) takes ~${(hours * t.maxSteps / Math.max(last.step, 1)).toFixed(0)} h`}.

${flags.history ? `Run history: ${flags.history}\n\n` : ""}## Pretrained vs random weights (issue 11's acceptance)

${acceptanceSection(acceptance)}

## SST-2 (\`randmask demo\`)

${demo ? `Seeded ${demo.protocol.train} train / ${demo.protocol.dev} dev from GLUE's train split, GLUE's ${demo.protocol.test}-sentence dev split as test,
MeZO's template, batch ${demo.protocol.batch_size}, ${demo.protocol.epochs} epochs; LR chosen on dev, test scored only for the chosen LR.
Deviations from the protocol: ${demo.deviations}. Demo wall time ${demo.wall_time_s.toFixed(0)} s on ${demo.machine.threads} thread(s)
(load average ${demo.machine.load_average_start[0].toFixed(1)} at the start; ${demo.machine.cpu}).

<!-- demo-results:start -->
${demo.table}<!-- demo-results:end -->

Full record: [demo-metrics.json](demo-metrics.json).` : "Not run yet: `node scripts/ship-opt-mini.mjs --run DIR --run-demo` fills this section."}
`;
}
