// `randmask pretrain`: causal-LM pretraining of an OPT from a config, a preset
// or a checkpoint, on text files; `--resume DIR` continues a run exactly.
import { existsSync, mkdirSync, readFileSync, readdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { parseConfig, readConfig, toHfConfig, type OPTConfig } from "../models/config.js";
import { OPTForCausalLM } from "../models/opt.js";
import { presetConfig } from "../models/presets.js";
import { BpeTokenizer } from "../tokenizer/bpe-tokenizer.js";
import { PackedCorpus } from "../train/packing.js";
import { CHECKPOINT_DIR, Pretrainer, RUN_FILE, appendLog, asMasters, type PretrainConfig, type RunRecord, type TrainState } from "../train/pretrain.js";
import { parseSources, readTokens, tokenizeSource, tokenizerHash, type SourceSpec, type TokenFile } from "../train/token-cache.js";
import { UsageError, numberFlag, parseFlags } from "./args.js";
import { dtypeFlag } from "./model-commands.js";

const FLAGS = {
  config: { type: "string" }, preset: { type: "string" }, "init-from": { type: "string" }, data: { type: "string" },
  tokenizer: { type: "string" }, out: { type: "string" }, resume: { type: "string" }, "cache-dir": { type: "string" },
  "block-size": { type: "string" }, "batch-size": { type: "string" }, "grad-accum": { type: "string" }, lr: { type: "string" },
  "min-lr": { type: "string" }, "warmup-steps": { type: "string" }, "max-steps": { type: "string" }, "max-tokens": { type: "string" },
  "weight-decay": { type: "string" }, beta1: { type: "string" }, beta2: { type: "string" }, "max-grad-norm": { type: "string" },
  dtype: { type: "string" }, seed: { type: "string" }, "eval-every": { type: "string" }, "checkpoint-minutes": { type: "string" },
  "holdout-tokens": { type: "string" }, quiet: { type: "boolean" },
} as const;

// Testing hook: stop (checkpoint and exit) after this step, like a signal at a known point.
const stopAfterStep = process.env.RANDMASK_STOP_AFTER_STEP ? Number(process.env.RANDMASK_STOP_AFTER_STEP) : undefined;

const posInt = (v: number) => Number.isInteger(v) && v > 0;
const nonNegInt = (v: number) => Number.isInteger(v) && v >= 0;
const nonNeg = (v: number) => Number.isFinite(v) && v >= 0;

/** The model to pretrain, by one function (config/preset: random init; --init-from: its weights). */
function buildModel(cfg: OPTConfig, initFrom: string | null, seed: number): OPTForCausalLM {
  return asMasters(initFrom ? OPTForCausalLM.load(initFrom, { dtype: "float32" }) : OPTForCausalLM.random(cfg, { seed, dtype: "float32" }));
}

function modelConfig(flags: Record<string, unknown>): { cfg: OPTConfig; init: string | null; configDir: string | null } {
  const given = ["config", "preset", "init-from"].filter((k) => flags[k] !== undefined);
  if (given.length === 0) throw new UsageError("one of --config FILE, --preset NAME or --init-from DIR is required");
  if (flags.config !== undefined && flags.preset !== undefined) throw new UsageError("--config and --preset exclude each other");
  const init = flags["init-from"] !== undefined ? resolve(String(flags["init-from"])) : null;
  const initCfg = init ? readConfig(join(init, "config.json")) : null;
  let cfg: OPTConfig | null = null;
  if (flags.config !== undefined) cfg = readConfig(String(flags.config));
  if (flags.preset !== undefined) {
    const preset = presetConfig(String(flags.preset));
    if (preset.modelType !== "opt") throw new UsageError(`--preset ${String(flags.preset)}: pretrain builds OPT models (opt-125m, …); this preset is a ${preset.architecture}`);
    cfg = preset as OPTConfig;
  }
  if (cfg && initCfg) {
    const a = toHfConfig(cfg), b = toHfConfig(initCfg);
    const diff = Object.keys(a).filter((k) => k !== "torch_dtype" && JSON.stringify(a[k]) !== JSON.stringify(b[k]));
    if (diff.length) throw new UsageError(`--config/--preset contradicts the checkpoint in --init-from ${init}: ${diff.map((k) => `${k} ${JSON.stringify(a[k])} vs ${JSON.stringify(b[k])}`).join(", ")}`);
  }
  const configDir = flags.config !== undefined ? dirname(resolve(String(flags.config))) : init;
  return { cfg: (cfg ?? initCfg)!, init, configDir };
}

function trainConfig(flags: Record<string, unknown>, cfg: OPTConfig): PretrainConfig {
  const blockSize = numberFlag(flags, "block-size", Math.min(256, cfg.maxPositionEmbeddings), posInt, "a positive integer");
  if (blockSize > cfg.maxPositionEmbeddings) throw new UsageError(`--block-size ${blockSize} exceeds the model's max_position_embeddings ${cfg.maxPositionEmbeddings}`);
  const batchSize = numberFlag(flags, "batch-size", 16, posInt, "a positive integer");
  const gradAccum = numberFlag(flags, "grad-accum", 1, posInt, "a positive integer");
  if (batchSize % gradAccum !== 0) throw new UsageError(`--batch-size ${batchSize} must be a multiple of --grad-accum ${gradAccum}`);
  const lr = numberFlag(flags, "lr", 1e-3, (v) => v > 0 && Number.isFinite(v), "a positive number");
  if (flags["max-steps"] !== undefined && flags["max-tokens"] !== undefined) throw new UsageError("--max-steps and --max-tokens exclude each other");
  let maxSteps: number;
  if (flags["max-tokens"] !== undefined) maxSteps = Math.ceil(numberFlag(flags, "max-tokens", 0, posInt, "a positive integer") / (batchSize * blockSize));
  else if (flags["max-steps"] !== undefined) maxSteps = numberFlag(flags, "max-steps", 0, posInt, "a positive integer");
  else throw new UsageError("a budget is required: --max-steps N or --max-tokens N");
  const dtype = flags.dtype === undefined ? "bfloat16" : dtypeFlag(flags);
  return {
    blockSize, batchSize, gradAccum, lr, maxSteps, dtype,
    minLr: numberFlag(flags, "min-lr", lr / 10, nonNeg, "a non-negative number"),
    warmupSteps: numberFlag(flags, "warmup-steps", Math.min(500, Math.ceil(maxSteps / 20)), nonNegInt, "a non-negative integer"),
    weightDecay: numberFlag(flags, "weight-decay", 0.1, nonNeg, "a non-negative number"),
    beta1: numberFlag(flags, "beta1", 0.9, (v) => v >= 0 && v < 1, "a number in [0, 1)"),
    beta2: numberFlag(flags, "beta2", 0.95, (v) => v >= 0 && v < 1, "a number in [0, 1)"),
    maxGradNorm: numberFlag(flags, "max-grad-norm", 1, nonNeg, "a non-negative number (0: no clipping)"),
    seed: numberFlag(flags, "seed", 0, nonNegInt, "a non-negative integer"),
    evalEvery: numberFlag(flags, "eval-every", 200, nonNegInt, "a non-negative integer (0: no evaluation)"),
    checkpointMinutes: numberFlag(flags, "checkpoint-minutes", 10, (v) => v > 0 && Number.isFinite(v), "a positive number of minutes"),
  };
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

function corpusOf(files: TokenFile[], sources: SourceSpec[], c: PretrainConfig, holdout: number): PackedCorpus {
  return new PackedCorpus(files.map((f, i) => ({ name: f.source, tokens: readTokens(f), weight: sources[i].weight })), c.blockSize, holdout, c.seed);
}

export async function pretrainCommand(argv: string[]): Promise<void> {
  const flags = parseFlags(argv, FLAGS);
  const quiet = Boolean(flags.quiet);
  const say = (out: string) => (line: string) => { appendLog(out, line); if (!quiet) process.stderr.write(line + "\n"); };
  if (flags.resume !== undefined) return resume(resolve(String(flags.resume)), flags, quiet, say);
  if (flags.out === undefined) throw new UsageError("--out DIR is required (or --resume DIR)");
  const out = resolve(String(flags.out));
  if (existsSync(join(out, RUN_FILE))) throw new UsageError(`--out ${out} holds a pretraining run already; continue it with --resume ${out}`);
  if (existsSync(out) && readdirSync(out).length > 0) throw new UsageError(`--out ${out} is not empty; refusing to write into another folder's files`);
  if (flags.data === undefined) throw new UsageError("--data FILE[:WEIGHT],... is required");
  const { cfg, init, configDir } = modelConfig(flags);
  const c = trainConfig(flags, cfg);
  const sources = parseSources(String(flags.data));
  for (const s of sources) if (!existsSync(s.path)) throw new UsageError(`--data ${s.path}: no such file`);
  const tokDir = resolve(String(flags.tokenizer ?? configDir ?? ""));
  if (flags.tokenizer === undefined && (!configDir || !(existsSync(join(tokDir, "vocab.json")) || existsSync(join(tokDir, "tokenizer.json"))))) {
    throw new UsageError("--tokenizer DIR is required (no tokenizer files next to the model config)");
  }
  const holdout = numberFlag(flags, "holdout-tokens", 65536, nonNegInt, "a non-negative integer");
  const cacheDir = resolve(String(flags["cache-dir"] ?? join(out, "token-cache")));
  // everything is validated (tokenising reads each file) before the first write to --out
  const { files, tokHash } = tokenize(sources, tokDir, cacheDir, quiet);
  const corpus = corpusOf(files, sources, c, holdout);
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
  try { await trainer.train({ log, quiet, stopAfterStep }); } finally { trainer.dispose(); }
}

/** Flags given with --resume must agree with the run's record; anything else is another run. */
async function resume(out: string, flags: Record<string, unknown>, quiet: boolean, say: (o: string) => (l: string) => void): Promise<void> {
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
  const given = Object.keys(FLAGS).filter((k) => flags[k] !== undefined && !["resume", "quiet", "config", "preset", "init-from", "data", "tokenizer", "cache-dir", "holdout-tokens", "out"].includes(k));
  if (given.length) {
    const fresh = trainConfig({ ...Object.fromEntries(Object.entries(flags).filter(([k]) => given.includes(k))), ...(flags["max-steps"] === undefined && flags["max-tokens"] === undefined ? { "max-steps": String(run.train.maxSteps) } : {}) }, cfg);
    for (const k of Object.keys(requested) as (keyof PretrainConfig)[]) {
      const flagName = k.replace(/[A-Z]/g, (m) => `-${m.toLowerCase()}`);
      if ((given.includes(flagName) || (k === "maxSteps" && given.includes("max-tokens"))) && fresh[k] !== run.train[k]) differs.push(`--${flagName}`);
    }
  }
  if (flags.data !== undefined) {
    const s = parseSources(String(flags.data));
    if (JSON.stringify(s.map((x) => [x.path, x.weight])) !== JSON.stringify(run.data.map((x) => [x.path, x.weight]))) differs.push("--data");
  }
  if (flags["holdout-tokens"] !== undefined && Number(flags["holdout-tokens"]) !== run.holdoutTokens) differs.push("--holdout-tokens");
  if (differs.length) throw new UsageError(`--resume ${out}: that folder holds another run (differs in ${differs.join(", ")}); nothing was changed`);
  const sources = run.data.map((d) => ({ path: d.path, weight: d.weight }));
  const { files, tokHash } = tokenize(sources, dir, run.cacheDir, quiet);
  if (tokHash !== run.tokenizer) throw new UsageError(`--resume ${out}: the tokenizer files differ from the run's`);
  files.forEach((f, i) => {
    if (f.key !== run.data[i].key) throw new UsageError(`--resume ${out}: ${f.source} changed since the run started (its tokens differ); nothing was changed`);
  });
  const corpus = corpusOf(files, sources, run.train, run.holdoutTokens);
  const state = JSON.parse(readFileSync(join(dir, "state.json"), "utf8")) as TrainState;
  const model = asMasters(OPTForCausalLM.load(dir, { dtype: "float32" }));
  const trainer = new Pretrainer(out, model, corpus, run, dir, state);
  trainer.restore(dir);
  const log = say(out);
  log(`resuming at step ${state.step} of ${run.train.maxSteps} (${state.tokensSeen} tokens seen)`);
  try { await trainer.train({ log, quiet, stopAfterStep }); } finally { trainer.dispose(); }
}
