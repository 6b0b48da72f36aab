// `randmask pretrain`: causal-LM pretraining of an OPT from a config, a preset
// or a checkpoint, on text files; `--resume DIR` continues a run exactly.
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { parseConfig, readConfig, toHfConfig, type OPTConfig } from "../models/config.js";
import { OPTForCausalLM } from "../models/opt.js";
import { PRESET_NAMES, presetConfig } from "../models/presets.js";
import { BpeTokenizer } from "../tokenizer/bpe-tokenizer.js";
import { checkTokenIds, type VocabSources } from "../tokenizer/vocab-check.js";
import { PackedCorpus } from "../train/packing.js";
import { CHECKPOINT_DIR, Pretrainer, RUN_FILE, appendLog, asMasters, type PretrainConfig, type RunRecord, type TrainState } from "../train/pretrain.js";
import { parseSources, readTokens, tokenizeSource, tokenizerHash, type SourceSpec, type TokenFile } from "../train/token-cache.js";
import { UsageError, defineCommand, nonNegInt, positiveInt, signalExitCode, type FlagDef, type FlagValues } from "./args.js";
import { DTYPE_FLAG, checkModelFolder, checkOutputFolder, dtypeOf } from "./shared-flags.js";

const training = "training flags";
const nonNeg = (v: number) => v >= 0;

const PRETRAIN_FLAGS = {
  config: { type: "string", arg: "FILE", description: "config.json of the model to train from random weights" },
  preset: { type: "string", choices: PRESET_NAMES, description: "a known architecture, from random weights" },
  "init-from": { type: "dir", description: "start from this Hugging Face checkpoint's weights" },
  data: { type: "string", arg: "FILE[:W],...", description: "text files: .txt (one document) or .jsonl ({\"text\"} per line); :W visits a file's blocks W times per epoch" },
  tokenizer: { type: "dir", defaultText: "the folder of --config or --init-from", description: "folder with the tokenizer files" },
  out: { type: "string", arg: "DIR", description: "run folder to create (absent or empty); a Hugging Face folder updated at each checkpoint" },
  resume: { type: "dir", description: "continue the run in this folder exactly (other flags given must match it)" },
  "cache-dir": { type: "string", arg: "DIR", defaultText: "--out/token-cache", description: "where tokenised files are kept and re-used" },
  "holdout-tokens": { type: "integer", check: nonNegInt, expected: "a non-negative integer", defaultText: "65536", description: "tokens held out at the end of each file" },
  "block-size": { type: "integer", check: (v) => Number.isSafeInteger(v) && v >= 2, expected: "an integer ≥ 2 (a block trains on each next token)", defaultText: "min(256, max positions)", group: training, description: "tokens per training sequence" },
  "batch-size": { type: "integer", check: positiveInt, expected: "a positive integer", defaultText: "16", group: training, description: "sequences per optimizer step" },
  "grad-accum": { type: "integer", check: positiveInt, expected: "a positive integer", defaultText: "1", group: training, description: "micro-batches per step (divides --batch-size)" },
  lr: { type: "number", check: (v) => v > 0, expected: "a positive number", defaultText: "1e-3", group: training, description: "peak learning rate" },
  "min-lr": { type: "number", check: nonNeg, expected: "a non-negative number", defaultText: "--lr / 10", group: training, description: "learning rate at the end of the cosine" },
  "warmup-steps": { type: "integer", check: nonNegInt, expected: "a non-negative integer", defaultText: "min(500, steps / 20)", group: training, description: "linear warmup steps" },
  "max-steps": { type: "integer", check: positiveInt, expected: "a positive integer", group: training, description: "budget in optimizer steps (or --max-tokens)" },
  "max-tokens": { type: "integer", check: positiveInt, expected: "a positive integer", group: training, description: "budget in training tokens (or --max-steps)" },
  "weight-decay": { type: "number", check: nonNeg, expected: "a non-negative number", defaultText: "0.1", group: training, description: "AdamW decay of the linear layers' weight matrices" },
  beta1: { type: "number", check: (v) => v >= 0 && v < 1, expected: "a number in [0, 1)", defaultText: "0.9", group: training, description: "AdamW β1" },
  beta2: { type: "number", check: (v) => v >= 0 && v < 1, expected: "a number in [0, 1)", defaultText: "0.95", group: training, description: "AdamW β2" },
  "max-grad-norm": { type: "number", check: nonNeg, expected: "a non-negative number (0: no clipping)", defaultText: "1", group: training, description: "gradient clipping norm; 0: off" },
  dtype: { type: "string", choices: DTYPE_FLAG.choices, defaultText: "bf16", group: training, description: "compute dtype (master weights stay fp32)" },
  seed: { type: "integer", check: nonNegInt, expected: "a non-negative integer", defaultText: "0", group: training, description: "seed of initialisation and data order" },
  "eval-every": { type: "integer", check: nonNegInt, expected: "a non-negative integer (0: no evaluation)", defaultText: "200", group: training, description: "held-out evaluation every N steps; 0: none" },
  "checkpoint-minutes": { type: "number", check: (v) => v > 0, expected: "a positive number of minutes", defaultText: "10", group: training, description: "minutes between checkpoints" },
  quiet: { type: "boolean", description: "no progress or log lines on stderr" },
} as const satisfies Record<string, FlagDef>;

/** Pretrain flags; a flag left out is undefined (defaults depend on other flags, and --resume compares only what was given). */
type Values = FlagValues<typeof PRETRAIN_FLAGS>;

// Testing hook: stop (checkpoint and exit) after this step, like a signal at a known point.
const stopAfterStep = process.env.RANDMASK_STOP_AFTER_STEP ? Number(process.env.RANDMASK_STOP_AFTER_STEP) : undefined;


/** The model to pretrain, by one function (config/preset: random init; --init-from: its weights). */
function buildModel(cfg: OPTConfig, initFrom: string | null, seed: number): OPTForCausalLM {
  return asMasters(initFrom ? OPTForCausalLM.load(initFrom, { dtype: "float32" }) : OPTForCausalLM.random(cfg, { seed, dtype: "float32" }));
}

function modelConfig(flags: Values): { cfg: OPTConfig; init: string | null; configDir: string | null } {
  const given = (["config", "preset", "init-from"] as const).filter((k) => flags[k] !== undefined);
  if (given.length === 0) throw new UsageError("one of --config FILE, --preset NAME or --init-from DIR is required");
  if (flags.config !== undefined && flags.preset !== undefined) throw new UsageError("--config and --preset exclude each other");
  if (flags["init-from"] !== undefined) checkModelFolder("init-from", flags["init-from"]);
  const init = flags["init-from"] !== undefined ? resolve(flags["init-from"]) : null;
  const initCfg = init ? readConfig(join(init, "config.json")) : null;
  let cfg: OPTConfig | null = null;
  if (flags.config !== undefined) {
    if (!existsSync(flags.config)) throw new UsageError(`--config ${flags.config}: no such file`);
    cfg = readConfig(flags.config);
  }
  if (flags.preset !== undefined) {
    const preset = presetConfig(flags.preset);
    if (preset.modelType !== "opt") throw new UsageError(`--preset ${flags.preset}: pretrain builds OPT models (opt-125m, …); this preset is a ${preset.architecture}`);
    cfg = preset as OPTConfig;
  }
  if (cfg && initCfg) {
    const a = toHfConfig(cfg), b = toHfConfig(initCfg);
    const diff = Object.keys(a).filter((k) => k !== "torch_dtype" && JSON.stringify(a[k]) !== JSON.stringify(b[k]));
    if (diff.length) throw new UsageError(`--config/--preset contradicts the checkpoint in --init-from ${init}: ${diff.map((k) => `${k} ${JSON.stringify(a[k])} vs ${JSON.stringify(b[k])}`).join(", ")}`);
  }
  const configDir = flags.config !== undefined ? dirname(resolve(flags.config)) : init;
  return { cfg: (cfg ?? initCfg)!, init, configDir };
}

function trainConfig(flags: Partial<Values>, cfg: OPTConfig): PretrainConfig {
  const blockSize = flags["block-size"] ?? Math.min(256, cfg.maxPositionEmbeddings);
  if (blockSize > cfg.maxPositionEmbeddings) throw new UsageError(`--block-size ${blockSize} exceeds the model's max_position_embeddings ${cfg.maxPositionEmbeddings}`);
  const batchSize = flags["batch-size"] ?? 16;
  const gradAccum = flags["grad-accum"] ?? 1;
  if (batchSize % gradAccum !== 0) throw new UsageError(`--batch-size ${batchSize} must be a multiple of --grad-accum ${gradAccum}`);
  const lr = flags.lr ?? 1e-3;
  if (flags["max-steps"] !== undefined && flags["max-tokens"] !== undefined) throw new UsageError("--max-steps and --max-tokens exclude each other");
  let maxSteps: number;
  if (flags["max-tokens"] !== undefined) maxSteps = Math.ceil(flags["max-tokens"] / (batchSize * blockSize));
  else if (flags["max-steps"] !== undefined) maxSteps = flags["max-steps"];
  else throw new UsageError("a budget is required: --max-steps N or --max-tokens N");
  return {
    blockSize, batchSize, gradAccum, lr, maxSteps, dtype: dtypeOf(flags.dtype ?? "bf16"),
    minLr: flags["min-lr"] ?? lr / 10,
    warmupSteps: flags["warmup-steps"] ?? Math.min(500, Math.ceil(maxSteps / 20)),
    weightDecay: flags["weight-decay"] ?? 0.1,
    beta1: flags.beta1 ?? 0.9,
    beta2: flags.beta2 ?? 0.95,
    maxGradNorm: flags["max-grad-norm"] ?? 1,
    seed: flags.seed ?? 0,
    evalEvery: flags["eval-every"] ?? 200,
    checkpointMinutes: flags["checkpoint-minutes"] ?? 10,
  };
}

/** --data's files and weights; a malformed entry is a usage error (exit 2) naming it. */
function sourcesOf(spec: string): SourceSpec[] {
  try { return parseSources(spec); } catch (e) { throw new UsageError((e as Error).message); }
}

function tokenize(sources: SourceSpec[], tokDir: string, cacheDir: string, quiet: boolean): { files: TokenFile[]; tokHash: string } {
  const tokenizer = BpeTokenizer.fromDir(tokDir);
  const tokHash = tokenizerHash(tokDir);
  const t0 = Date.now();
  const files = sources.map((s) => tokenizeSource(s.path, tokenizer, tokHash, cacheDir, quiet));
  if (!quiet) {
    const mb = files.reduce((a, f) => a + f.bytes, 0) / 1e6;
    process.stderr.write(`tokens ready: ${files.reduce((a, f) => a + f.tokens, 0)} from ${mb.toFixed(1)} MB in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
  }
  return { files, tokHash };
}

/**
 * The packed corpus, after checking that every token id exists in the model's embedding (`vocab.size`):
 * a tokenizer that does not belong to the config would otherwise fail deep in libtorch, or train on wrapped rows.
 */
function corpusOf(files: TokenFile[], sources: SourceSpec[], c: PretrainConfig, holdout: number,
  vocab: { size: number } & VocabSources): PackedCorpus {
  const docs = files.map((f, i) => ({ name: f.source, tokens: readTokens(f), weight: sources[i].weight }));
  const bad = new Set<number>();
  for (const d of docs) for (const id of d.tokens) if (id >= vocab.size) bad.add(id);
  checkTokenIds([[...bad]], vocab.size, vocab);
  return new PackedCorpus(docs, c.blockSize, holdout, c.seed);
}

/**
 * Trains to the end or to a signal; the exit code: 0, or 128 + the signal's number for a run stopped
 * early (checkpointed), so a script that goes on to use the model stops there instead.
 */
async function trainToEnd(trainer: Pretrainer, log: (line: string) => void, quiet: boolean): Promise<number> {
  let stopped: string;
  try { stopped = await trainer.train({ log, quiet, stopAfterStep }); } finally { trainer.dispose(); }
  return stopped === "completed" ? 0 : signalExitCode(stopped);
}

export const pretrainCommand = defineCommand({
  name: "pretrain",
  summary: "Pretrain an OPT as a causal LM on text files, from random weights or a checkpoint; checkpoints atomically " +
    "and --resume continues a run exactly.",
  usage: "randmask pretrain (--config FILE | --preset NAME | --init-from DIR) --data FILE[:W],... --out DIR (--max-steps N | --max-tokens N) [flags]\n" +
    "       randmask pretrain --resume DIR",
  flags: PRETRAIN_FLAGS,
  example: "pretrain --preset opt-125m --tokenizer ~/opt-125m --data books.txt:2,wiki.jsonl --max-tokens 100000000 --out runs/pretrain",
  run: pretrain,
});

async function pretrain(flags: Values): Promise<number> {
  const quiet = flags.quiet;
  const say = (out: string) => (line: string) => { appendLog(out, line); if (!quiet) process.stderr.write(line + "\n"); };
  if (flags.resume !== undefined) return resume(resolve(flags.resume), flags, quiet, say);
  if (flags.out === undefined) throw new UsageError("--out DIR is required (or --resume DIR)");
  checkOutputFolder("out", flags.out, "the pretraining run");
  const out = resolve(flags.out);
  if (existsSync(join(out, RUN_FILE))) throw new UsageError(`--out ${out} holds a pretraining run already; continue it with --resume ${out}`);
  checkOutputFolder("out", flags.out, "the pretraining run", { empty: true });
  if (flags["cache-dir"] !== undefined) checkOutputFolder("cache-dir", flags["cache-dir"], "the tokenised files");
  if (flags.data === undefined) throw new UsageError("--data FILE[:WEIGHT],... is required");
  const { cfg, init, configDir } = modelConfig(flags);
  const c = trainConfig(flags, cfg);
  const sources = sourcesOf(flags.data);
  for (const s of sources) if (!existsSync(s.path)) throw new UsageError(`--data ${s.path}: no such file`);
  const tokDir = resolve(flags.tokenizer ?? configDir ?? "");
  if (flags.tokenizer === undefined && (!configDir || !(existsSync(join(tokDir, "vocab.json")) || existsSync(join(tokDir, "tokenizer.json"))))) {
    throw new UsageError("--tokenizer DIR is required (no tokenizer files next to the model config)");
  }
  const holdout = flags["holdout-tokens"] ?? 65536;
  const cacheDir = resolve(flags["cache-dir"] ?? join(out, "token-cache"));
  // everything is validated (tokenising reads each file) before the first write to --out
  const configSource = flags.config ?? (init ? join(init, "config.json") : `preset ${flags.preset}`);
  const cacheIsNew = !existsSync(cacheDir);
  const outIsNew = !existsSync(out);
  let files: TokenFile[], tokHash: string, corpus: PackedCorpus;
  try {
    ({ files, tokHash } = tokenize(sources, tokDir, cacheDir, quiet));
    corpus = corpusOf(files, sources, c, holdout, { size: cfg.vocabSize, tokenizer: `the tokenizer in ${tokDir}`, config: configSource });
  } catch (e) {
    // a cache made just now for a failed start goes too, so that the same --out can simply be used again
    if (cacheIsNew) rmSync(cacheDir, { recursive: true, force: true });
    if (outIsNew && existsSync(out) && readdirSync(out).length === 0) rmSync(out, { recursive: true });
    throw e;
  }
  mkdirSync(out, { recursive: true });
  const run: RunRecord & { cacheDir: string } = {
    kind: "randmask-pretrain", model: toHfConfig(cfg), init, train: c,
    data: files.map((f, i) => ({ path: f.source, weight: sources[i].weight, tokens: f.tokens, key: f.key })),
    holdoutTokens: holdout, holdout: corpus.holdout, tokenizer: tokHash, cacheDir,
  };
  const model = buildModel(cfg, init, c.seed);
  const trainer = new Pretrainer(out, model, corpus, run, tokDir, null);
  const log = say(out);
  log(`pretraining ${model.numParameters()} parameters, ${c.maxSteps} steps of ${c.batchSize}×${c.blockSize} tokens, ${corpus.trainBlockCounts().reduce((a, b) => a + b, 0)} train blocks, ${corpus.evalBlocks().length} held-out blocks`);
  return trainToEnd(trainer, log, quiet);
}

/** Flags given with --resume must agree with the run's record; anything else is another run. */
async function resume(out: string, flags: Values, quiet: boolean, say: (o: string) => (l: string) => void): Promise<number> {
  const ckpt = join(out, CHECKPOINT_DIR);
  const old = join(out, `.${CHECKPOINT_DIR}.old`);
  const dir = existsSync(join(ckpt, "state.json")) ? ckpt : existsSync(join(old, "state.json")) ? old : null;
  if (!dir) throw new UsageError(`--resume ${out}: no pretraining checkpoint there (expected ${ckpt}/state.json)`);
  const run = JSON.parse(readFileSync(join(dir, RUN_FILE), "utf8")) as RunRecord & { cacheDir: string };
  if (run.kind !== "randmask-pretrain") throw new UsageError(`--resume ${out}: ${RUN_FILE} is not a randmask pretraining run`);
  const cfg = parseConfig(run.model, join(dir, RUN_FILE));
  const differs: string[] = [];
  if (flags.config !== undefined || flags.preset !== undefined || flags["init-from"] !== undefined) {
    const want = toHfConfig(modelConfig(flags).cfg);
    for (const k of Object.keys(want)) if (k !== "torch_dtype" && JSON.stringify(want[k]) !== JSON.stringify(run.model[k])) differs.push(`model ${k}`);
  }
  const requested = { ...run.train };
  const given = (Object.keys(PRETRAIN_FLAGS) as (keyof Values)[]).filter((k) => flags[k] !== undefined &&
    !["resume", "quiet", "config", "preset", "init-from", "data", "tokenizer", "cache-dir", "holdout-tokens", "out"].includes(k));
  if (given.length) {
    const fresh = trainConfig({ ...Object.fromEntries(given.map((k) => [k, flags[k]])),
      ...(flags["max-steps"] === undefined && flags["max-tokens"] === undefined ? { "max-steps": run.train.maxSteps } : {}) }, cfg);
    for (const k of Object.keys(requested) as (keyof PretrainConfig)[]) {
      const flagName = k.replace(/[A-Z]/g, (m) => `-${m.toLowerCase()}`);
      if ((given.includes(flagName as keyof Values) || (k === "maxSteps" && given.includes("max-tokens"))) && fresh[k] !== run.train[k]) differs.push(`--${flagName}`);
    }
  }
  if (flags.data !== undefined) {
    const s = sourcesOf(flags.data);
    if (JSON.stringify(s.map((x) => [x.path, x.weight])) !== JSON.stringify(run.data.map((x) => [x.path, x.weight]))) differs.push("--data");
  }
  if (flags["holdout-tokens"] !== undefined && flags["holdout-tokens"] !== run.holdoutTokens) differs.push("--holdout-tokens");
  // a resumed run writes into --resume's folder, with its own cache and tokenizer: another one given would be ignored
  if (flags.out !== undefined && resolve(flags.out) !== out) throw new UsageError(`--out ${flags.out}: a resumed run continues in its own folder (--resume ${out}); drop --out`);
  if (flags["cache-dir"] !== undefined && resolve(flags["cache-dir"]) !== resolve(run.cacheDir)) differs.push("--cache-dir");
  if (flags.tokenizer !== undefined && tokenizerHash(resolve(flags.tokenizer)) !== run.tokenizer) differs.push("--tokenizer");
  if (differs.length) throw new UsageError(`--resume ${out}: that folder holds another run (differs in ${differs.join(", ")}); nothing was changed`);
  const state = JSON.parse(readFileSync(join(dir, "state.json"), "utf8")) as TrainState;
  if (state.step >= run.train.maxSteps) {
    // resuming a finished run again would evaluate and checkpoint it again (a second final eval in log.jsonl)
    if (!quiet) process.stderr.write(`--resume ${out}: the run is complete (step ${state.step} of ${run.train.maxSteps}); nothing to do\n`);
    return 0;
  }
  const sources = run.data.map((d) => ({ path: d.path, weight: d.weight }));
  const { files, tokHash } = tokenize(sources, dir, run.cacheDir, quiet);
  if (tokHash !== run.tokenizer) throw new UsageError(`--resume ${out}: the tokenizer files differ from the run's`);
  files.forEach((f, i) => {
    if (f.key !== run.data[i].key) throw new UsageError(`--resume ${out}: ${f.source} changed since the run started (its tokens differ); nothing was changed`);
  });
  const corpus = corpusOf(files, sources, run.train, run.holdoutTokens, { size: cfg.vocabSize, tokenizer: `the tokenizer in ${dir}`, config: join(dir, RUN_FILE) });
  const model = asMasters(OPTForCausalLM.load(dir, { dtype: "float32" }));
  const trainer = new Pretrainer(out, model, corpus, run, dir, state);
  trainer.restore(dir);
  const log = say(out);
  log(`resuming at step ${state.step} of ${run.train.maxSteps} (${state.tokensSeen} tokens seen)`);
  return trainToEnd(trainer, log, quiet);
}
