// Causal-LM pretraining of an OPT on packed token blocks, with held-out
// evaluation, atomic checkpoints and exact resume.
//
// Precision: the optimizer holds fp32 master weights; with dtype bfloat16 each
// step runs forward/backward on a bf16 cast of them (the cast is differentiable,
// so fp32 masters receive the gradients), the usual mixed-precision recipe.
// Weight decay (decoupled, AdamW) applies to the linear layers' weight matrices
// only; biases, layer norms and the (tied) embeddings are not decayed, as in
// Hugging Face's run_clm (biases, norms) and Megatron/OPT practice for embeddings.
// LR: linear warm-up from 0, then cosine decay to minLr at the last step.
import { existsSync, linkSync, readFileSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync, appendFileSync } from "node:fs";
import { join } from "node:path";
import { copySideFiles } from "../io/side-files.js";
import { AdamW, type AdamWParamState, clipGradNorm, getRngState, keep, noGrad, setRngState, settle, tensor, tidy, type DType, type Tensor } from "../engine/index.js";
import { toHfConfig } from "../models/config.js";
import { causalLmLoss, tokenNll } from "../models/lm-loss.js";
import { OPTForCausalLM, linearNames } from "../models/opt.js";
import { loadFile, readHeader, saveFile } from "../io/safetensors.js";
import { removeStaleTemps, writeFileAtomic } from "../io/atomic.js";
import type { TopLevelSpec } from "vega-lite";
import { lineChartSpec } from "../plot/line-chart.js";
import { renderChart } from "../plot/render.js";
import { Progress } from "./progress.js";
import { PackedCorpus, type BlockRef } from "./packing.js";

export interface PretrainConfig {
  blockSize: number;
  /** Blocks per optimizer step (split into gradAccum micro-batches). */
  batchSize: number;
  gradAccum: number;
  lr: number;
  minLr: number;
  warmupSteps: number;
  maxSteps: number;
  weightDecay: number;
  beta1: number;
  beta2: number;
  maxGradNorm: number;
  dtype: DType;
  seed: number;
  evalEvery: number;
  checkpointMinutes: number;
}

/** Everything that defines a run; a resumed run must match it exactly. */
export interface RunRecord {
  kind: "randmask-pretrain";
  model: Record<string, unknown>;
  init: string | null;
  train: PretrainConfig;
  data: { path: string; weight: number; tokens: number; key: string }[];
  holdoutTokens: number;
  holdout: { source: string; start: number; end: number; blocks: number }[];
  tokenizer: string;
}

export interface TrainState {
  step: number;
  tokensSeen: number;
  /** Next block: index into the shuffled order of epoch `epoch`. */
  epoch: number;
  index: number;
  /** libtorch's CPU generator (dropout), base64. */
  torchRng: string;
  wallSeconds: number;
  log: LogEntry[];
}

export type LogEntry =
  | { type: "train"; step: number; tokens: number; loss: number; lr: number; grad_norm: number }
  | { type: "eval"; step: number; tokens: number; loss: number; perplexity: number };

export interface PretrainHooks {
  log: (line: string) => void;
  quiet: boolean;
  /** Stop after this step as if interrupted (tests); the checkpoint is written. */
  stopAfterStep?: number;
}

export const CHECKPOINT_DIR = "checkpoint";
export const RUN_FILE = "pretrain-run.json";
/** lr at 0-based `step`: linear warm-up to `lr` over warmupSteps, then cosine to minLr at maxSteps. */
export function pretrainLr(c: PretrainConfig, step: number): number {
  if (step < c.warmupSteps) return (c.lr * (step + 1)) / c.warmupSteps;
  const progress = Math.min(1, (step - c.warmupSteps) / Math.max(1, c.maxSteps - c.warmupSteps));
  return c.minLr + (c.lr - c.minLr) * 0.5 * (1 + Math.cos(Math.PI * progress));
}

/** fp32 master parameters (leaf, requiring grad) split into decayed linear weights and the rest. */
function parameterGroups(model: OPTForCausalLM): { names: string[]; decay: string[]; noDecay: string[] } {
  const decayed = new Set(linearNames(model.config).map((n) => `${n}.weight`));
  // sorted: the same order (so the same gradient-norm rounding) for a fresh and a loaded model
  const names = [...model.stateDict().keys()].sort();
  return { names, decay: names.filter((n) => decayed.has(n)), noDecay: names.filter((n) => !decayed.has(n)) };
}

/** The model a step computes with: the masters themselves (fp32) or a differentiable bf16 cast. */
function computeModel(masters: OPTForCausalLM, dtype: DType): OPTForCausalLM {
  if (dtype === "float32") return masters;
  const params = new Map<string, Tensor>();
  const cast = new Map<Tensor, Tensor>();
  for (const [k, t] of masters.params) {
    if (!cast.has(t)) cast.set(t, t.to(dtype));
    params.set(k, cast.get(t)!);
  }
  const m = new OPTForCausalLM(masters.config, params);
  m.training = masters.training;
  return m;
}

export class Pretrainer {
  readonly model: OPTForCausalLM;
  private readonly optimizers: { decay: AdamW; noDecay: AdamW };
  private readonly groups: ReturnType<typeof parameterGroups>;
  private order: { epoch: number; refs: BlockRef[] } | null = null;
  state: TrainState;

  /** `model` is fp32 with parameters requiring grad; `state` null for a fresh run. */
  constructor(readonly out: string, model: OPTForCausalLM, readonly corpus: PackedCorpus, readonly run: RunRecord,
    readonly tokenizerDir: string, state: TrainState | null) {
    this.model = model;
    this.groups = parameterGroups(model);
    const c = run.train;
    const p = (names: string[]) => names.map((n) => model.params.get(n)!);
    const common = { lr: c.lr, beta1: c.beta1, beta2: c.beta2 };
    this.optimizers = {
      decay: new AdamW(p(this.groups.decay), { ...common, weightDecay: c.weightDecay }),
      noDecay: new AdamW(p(this.groups.noDecay), { ...common, weightDecay: 0 }),
    };
    this.state = state ?? { step: 0, tokensSeen: 0, epoch: 0, index: 0, torchRng: "", wallSeconds: 0, log: [] };
  }

  private nextBlocks(n: number): BlockRef[] {
    const out: BlockRef[] = [];
    while (out.length < n) {
      if (!this.order || this.order.epoch !== this.state.epoch) this.order = { epoch: this.state.epoch, refs: this.corpus.epochOrder(this.state.epoch) };
      if (this.state.index >= this.order.refs.length) { this.state.epoch++; this.state.index = 0; continue; }
      out.push(this.order.refs[this.state.index++]);
    }
    return out;
  }

  /** One optimizer step over batchSize blocks; returns the mean loss (nats/token) and pre-clip gradient norm. */
  step(): { loss: number; gradNorm: number; lr: number } {
    const c = this.run.train;
    const micro = c.batchSize / c.gradAccum;
    const refs = this.nextBlocks(c.batchSize);
    this.model.training = true;
    const loss = tidy(() => {
      const m = computeModel(this.model, c.dtype);
      let sum = 0;
      for (let k = 0; k < c.gradAccum; k++) {
        const ids = tensor(this.corpus.gather(refs.slice(k * micro, (k + 1) * micro)), [micro, c.blockSize], "int64");
        const l = causalLmLoss(m.forward(ids).logits.to("float32"), ids).div(c.gradAccum);
        sum += l.item();
        l.backward();
      }
      return sum;
    });
    const all = this.groups.names.map((n) => this.model.params.get(n)!);
    const gradNorm = c.maxGradNorm > 0 ? clipGradNorm(all, c.maxGradNorm) : NaN;
    const lr = pretrainLr(c, this.state.step);
    for (const o of [this.optimizers.decay, this.optimizers.noDecay]) { o.lr = lr; o.step(); o.zeroGrad(); }
    this.state.step++;
    this.state.tokensSeen += c.batchSize * c.blockSize;
    return { loss, gradNorm, lr };
  }

  /** Mean next-token NLL (nats/token) over every held-out block. */
  evaluate(): number {
    const c = this.run.train;
    const blocks = this.corpus.evalBlocks();
    if (blocks.length === 0) return NaN;
    const rows = c.batchSize / c.gradAccum;
    this.model.training = false;
    let sum = 0;
    let count = 0;
    noGrad(() => {
      for (let i = 0; i < blocks.length; i += rows) {
        const part = blocks.slice(i, i + rows);
        sum += tidy(() => {
          const m = computeModel(this.model, c.dtype);
          const ids = tensor(this.corpus.gather(part), [part.length, c.blockSize], "int64");
          return tokenNll(m.forward(ids).logits.to("float32"), ids).sum().item();
        });
        count += part.length * (c.blockSize - 1);
      }
    });
    return sum / count;
  }

  // ------------------------------------------------------------ checkpoints

  /**
   * Writes `out/checkpoint/` atomically (a temp folder, then renames; the previous
   * checkpoint stays until the new one is complete), then points the top-level
   * Hugging Face files of `out` at it, and rewrites the log and plot.
   */
  saveCheckpoint(): void {
    const ckpt = join(this.out, CHECKPOINT_DIR);
    const tmp = join(this.out, `.${CHECKPOINT_DIR}.tmp-${process.pid}`);
    rmSync(tmp, { recursive: true, force: true });
    // a run killed while checkpointing left its temp folder (weights and optimizer state: 3× the model) and links
    removeStaleTemps(ckpt);
    mkdirSync(tmp, { recursive: true });
    this.state.torchRng = Buffer.from(getRngState()).toString("base64");
    writeFileSync(join(tmp, "config.json"), JSON.stringify({ ...toHfConfig(this.model.config), torch_dtype: "float32" }, null, 2) + "\n");
    saveFile(join(tmp, "model.safetensors"), this.model.stateDict(), { format: "pt" });
    copySideFiles(this.tokenizerDir, tmp);
    if (!existsSync(join(tmp, "tokenizer_config.json"))) {
      writeFileSync(join(tmp, "tokenizer_config.json"), JSON.stringify({ tokenizer_class: "GPT2Tokenizer", bos_token: "</s>", eos_token: "</s>", unk_token: "</s>", pad_token: "<pad>", add_bos_token: true, model_max_length: this.model.config.maxPositionEmbeddings }, null, 2) + "\n");
    }
    const moments = new Map<string, Tensor>();
    const steps: Record<string, number> = {};
    for (const [group, opt] of Object.entries(this.optimizers)) {
      const names = group === "decay" ? this.groups.decay : this.groups.noDecay;
      opt.getState().forEach((s, i) => {
        if (!s) return;
        moments.set(`exp_avg.${names[i]}`, s.expAvg);
        moments.set(`exp_avg_sq.${names[i]}`, s.expAvgSq);
        steps[names[i]] = s.step;
      });
    }
    try { saveFile(join(tmp, "optimizer.safetensors"), moments, { steps: JSON.stringify(steps) }); } finally { for (const t of moments.values()) t.dispose(); }
    writeFileSync(join(tmp, "state.json"), JSON.stringify(this.state) + "\n");
    writeFileSync(join(tmp, RUN_FILE), JSON.stringify(this.run, null, 2) + "\n");
    const old = join(this.out, `.${CHECKPOINT_DIR}.old`);
    rmSync(old, { recursive: true, force: true });
    if (existsSync(ckpt)) renameSync(ckpt, old);
    renameSync(tmp, ckpt);
    rmSync(old, { recursive: true, force: true });
    // The top-level folder is the latest checkpoint as an ordinary HF model folder.
    for (const f of readdirSync(ckpt)) {
      if (f === "optimizer.safetensors" || f === "state.json") continue;
      const t = join(this.out, `.${f}.tmp-${process.pid}`);
      rmSync(t, { force: true });
      removeStaleTemps(join(this.out, f));
      linkSync(join(ckpt, f), t);
      renameSync(t, join(this.out, f));
    }
    writeFileAtomic(join(this.out, "log.jsonl"), this.state.log.map((e) => JSON.stringify(e)).join("\n") + "\n");
  }

  /** Checkpoint (above), then the loss curves as out/loss.svg and loss.png. */
  async checkpointAndPlot(): Promise<void> {
    this.saveCheckpoint();
    await renderChart(pretrainLossSpec(this.state.log), join(this.out, "loss"));
  }

  /** Restores optimizer moments, data position and generator state from `out/checkpoint/`. */
  restore(ckpt: string): void {
    const moments = loadFile(join(ckpt, "optimizer.safetensors"));
    const steps = JSON.parse(readHeader(join(ckpt, "optimizer.safetensors")).metadata.steps ?? "{}") as Record<string, number>;
    try {
      for (const [group, opt] of Object.entries(this.optimizers)) {
        const names = group === "decay" ? this.groups.decay : this.groups.noDecay;
        opt.setState(names.map((n): AdamWParamState | null => {
          const m = moments.get(`exp_avg.${n}`);
          const v = moments.get(`exp_avg_sq.${n}`);
          return m && v ? { step: steps[n] ?? 0, expAvg: m, expAvgSq: v } : null;
        }));
      }
    } finally { for (const t of moments.values()) t.dispose(); }
    if (this.state.torchRng) setRngState(Buffer.from(this.state.torchRng, "base64"));
  }

  /**
   * Trains to maxSteps: evaluation every evalEvery steps (and at the end), a checkpoint
   * every checkpointMinutes, on SIGINT/SIGTERM, and at the end. Returns "completed", or what stopped it
   * (the signal's name, or "stopAfterStep").
   */
  async train(h: PretrainHooks): Promise<string> {
    const c = this.run.train;
    let stop: string | null = null;
    const onSignal = (sig: string) => { stop = sig; };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
    const start = Date.now();
    const wallBefore = this.state.wallSeconds;
    let lastCkpt = Date.now();
    const first = this.state.step;
    const progress = new Progress("pretrain", c.maxSteps - first, "steps", process.stderr, h.quiet);
    const evalNow = () => {
      const loss = this.evaluate();
      this.state.log.push({ type: "eval", step: this.state.step, tokens: this.state.tokensSeen, loss, perplexity: Math.exp(loss) });
      h.log(`eval step ${this.state.step}: held-out loss ${loss.toFixed(4)}, perplexity ${Math.exp(loss).toFixed(2)}`);
    };
    try {
      if (first === 0 && c.evalEvery > 0) evalNow();
      while (this.state.step < c.maxSteps) {
        const { loss, gradNorm, lr } = this.step();
        this.state.log.push({ type: "train", step: this.state.step, tokens: this.state.tokensSeen, loss, lr, grad_norm: gradNorm });
        if (!Number.isFinite(loss)) throw this.diverged(loss);
        const secs = (Date.now() - start) / 1000;
        const tps = ((this.state.step - first) * c.batchSize * c.blockSize) / Math.max(secs, 1e-9);
        progress.update(this.state.step - first, `loss ${loss.toFixed(3)} lr ${lr.toExponential(2)} ${Math.round(tps)} tok/s`);
        if (c.evalEvery > 0 && this.state.step % c.evalEvery === 0 && this.state.step < c.maxSteps) evalNow();
        this.state.wallSeconds = wallBefore + (Date.now() - start) / 1000;
        await settle();
        if (h.stopAfterStep === this.state.step) stop = "stopAfterStep";
        if (stop) break;
        if (Date.now() - lastCkpt >= c.checkpointMinutes * 60_000) { await this.checkpointAndPlot(); lastCkpt = Date.now(); }
      }
      if (!stop && c.evalEvery > 0) evalNow();
      this.state.wallSeconds = wallBefore + (Date.now() - start) / 1000;
      await this.checkpointAndPlot();
      if (stop) h.log(`stopped (${stop}) at step ${this.state.step}; checkpoint written, resume with --resume ${this.out}`);
      return stop ?? "completed";
    } finally {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    }
  }

  /** The error a NaN/Inf loss ends the run with, also in train.log: what it leaves behind (a checkpoint, or none yet). */
  private diverged(loss: number): Error {
    const state = join(this.out, CHECKPOINT_DIR, "state.json");
    const kept = existsSync(state)
      ? `the last checkpoint (step ${(JSON.parse(readFileSync(state, "utf8")) as TrainState).step}) is kept`
      : `no checkpoint was written yet (the first comes after --checkpoint-minutes): remove ${this.out} to start again`;
    const line = `step ${this.state.step}: loss is ${loss}; stopping (diverged: a lower --lr may help); ${kept}`;
    appendLog(this.out, line);
    return new Error(line);
  }

  dispose(): void { this.model.dispose(); }
}

/**
 * Train loss (averaged into ≤ 500 points) and held-out loss, nats/token,
 * against tokens seen: the curves of log.jsonl as a Vega-Lite chart.
 */
export function pretrainLossSpec(log: LogEntry[]): TopLevelSpec {
  const train = log.filter((e) => e.type === "train");
  const every = Math.max(1, Math.floor(train.length / 500));
  const smooth: [number, number][] = [];
  for (let i = 0; i < train.length; i += every) {
    const part = train.slice(i, i + every);
    smooth.push([part[part.length - 1].tokens / 1e6, part.reduce((a, e) => a + e.loss, 0) / part.length]);
  }
  const evals = log.filter((e) => e.type === "eval").map((e) => [e.tokens / 1e6, e.loss] as [number, number]);
  return lineChartSpec([{ name: "train", points: smooth }, { name: "held-out", points: evals }],
    { title: "pretraining loss", xTitle: "tokens seen (millions)", yTitle: "loss (nats/token)" });
}

/** Appends one line to out/train.log (human-readable progress record). */
export function appendLog(out: string, line: string): void {
  appendFileSync(join(out, "train.log"), `${new Date().toISOString()} ${line}\n`);
}

/** fp32 leaf parameters requiring grad (the optimizer's masters); lm_head stays tied. */
export function asMasters(model: OPTForCausalLM): OPTForCausalLM {
  noGrad(() => {
    for (const [k, t] of model.stateDict()) {
      if (t.dtype !== "float32") { const f = keep(t.to("float32")); model.setParam(k, f); t.dispose(); }
      model.params.get(k)!.setRequiresGrad(true);
    }
  });
  return model;
}
