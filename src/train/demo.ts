// The main job out of the box: fine-tune a pretrained OPT (by default the
// shipped opt-mini) on the shipped SST-2 sample with Random Masking, LoRA and
// full fine-tuning; each method's LR is chosen on dev from a small grid, and
// only the chosen run is scored on test. One table, one run folder.
import { cpus, loadavg } from "node:os";
import { existsSync, mkdirSync, readdirSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { copySideFiles } from "../io/side-files.js";
import { writeFileAtomic, writeJsonAtomic } from "../io/atomic.js";
import { getNumThreads, type DType } from "../engine/index.js";
import { loadCausalLM, randomCausalLM, readModelConfig, toHfModelConfig } from "../models/registry.js";
import { saveFile } from "../io/safetensors.js";
import { BpeTokenizer } from "../tokenizer/bpe-tokenizer.js";
import { PeftModel } from "../peft/peft-model.js";
import type { MethodConfig } from "../peft/method.js";
import { getTask } from "../tasks/registry.js";
import { TINY_TRAIN, loadTaskData, type SampleSizes } from "../tasks/sampling.js";
import type { Example } from "../tasks/types.js";
import { evaluate, headline, type Metrics } from "../eval/evaluate.js";
import { PACKAGE_ROOT, RANDMASK_VERSION } from "../version.js";
import { finetune, type RunRecord } from "./run.js";
import { prepareOutDir } from "./run-folder.js";
import { lineChartSpec, type Series } from "../plot/line-chart.js";
import { renderChart } from "../plot/render.js";

export const DEFAULT_DEMO_MODEL = join(PACKAGE_ROOT, "models", "opt-mini");
export const DEFAULT_DEMO_DATA = join(PACKAGE_ROOT, "data");

export interface MethodPlan {
  method: string;
  /** Row name in the table. */
  label: string;
  options: MethodConfig;
  /** The LR grid; the run with the best dev accuracy wins. */
  lrs: number[];
  /** Compute dtype: bf16 where the trained tensors stay fp32 (masks, LoRA), fp32 for full fine-tuning. */
  dtype: DType;
}

export interface DemoPlan {
  sizes: SampleSizes;
  epochs: number;
  batchSize: number;
  seed: number;
  methods: MethodPlan[];
  /**
   * Where and why the plan departs from the data protocol (5 epochs, full grids), given the sample sizes the
   * data gave (`used`: fewer than `sizes` where its files hold fewer), so the footer states what was run.
   */
  deviations: (used: SampleSizes) => string;
}

/** "48 train / 24 dev / 24 test examples", and what was asked where the data held fewer. */
export function sampleText(used: SampleSizes, asked: SampleSizes): string {
  const text = `${used.train} train / ${used.dev} dev / ${used.test} test examples`;
  return fewer(used, asked) ? `${text} (the data holds fewer than the ${asked.train} / ${asked.dev} / ${asked.test} asked)` : text;
}

const fewer = (used: SampleSizes, asked: SampleSizes) => used.train < asked.train || used.dev < asked.dev || used.test < asked.test;

const METHODS = (lrs: { rm: number[]; lora: number[]; full: number[] }): MethodPlan[] => [
  // 0.1% of the whole model: opt-mini is small, and the paper finds smaller models need larger ratios
  { method: "random-mask", label: "Random Masking 0.1%", options: { trainableRatio: 1e-3 }, lrs: lrs.rm, dtype: "bfloat16" },
  { method: "lora", label: "LoRA r=8 α=16", options: { r: 8, alpha: 16 }, lrs: lrs.lora, dtype: "bfloat16" },
  { method: "full", label: "full fine-tuning", options: {}, lrs: lrs.full, dtype: "float32" },
];

/**
 * Sized to finish in ≤ 5 minutes on a 2-core CPU: the protocol's seeded
 * 1000/500 sample and batch 8, but 3 epochs instead of 5, and one LR for LoRA
 * and for full fine-tuning (full fine-tuning runs in fp32, ~2.5× the cost).
 */
const PROTOCOL_SIZES: SampleSizes = { train: 1000, dev: 500, test: 872 };

export const DEMO_PLAN: DemoPlan = {
  sizes: PROTOCOL_SIZES, epochs: 3, batchSize: 8, seed: 0,
  methods: METHODS({ rm: [3e-3, 1e-2, 3e-2], lora: [1e-3], full: [1e-4] }),
  deviations: (used) => `${fewer(used, PROTOCOL_SIZES) ? `only ${sampleText(used, PROTOCOL_SIZES)}; ` : ""}` +
    "3 epochs instead of the protocol's 5; LR grid of 3 for Random Masking, a single LR for LoRA and for full fine-tuning",
};

/**
 * Issue 11's acceptance protocol (the MeZO setup at this scale): the seeded
 * 1000/500 sample, batch 8, 5 epochs, Random Masking 0.1% only, with a
 * five-point LR grid chosen on dev. Run on opt-mini and, with
 * `randomWeights`, on a random-weight model of the same shape, it shows
 * whether pretraining is what makes Random Masking work (the paper's thesis).
 */
export const PROTOCOL_PLAN: DemoPlan = {
  sizes: PROTOCOL_SIZES, epochs: 5, batchSize: 8, seed: 0,
  methods: METHODS({ rm: [1e-3, 3e-3, 1e-2, 3e-2, 1e-1], lora: [], full: [] }).filter((m) => m.lrs.length > 0),
  deviations: (used) => `${fewer(used, PROTOCOL_SIZES) ? `only ${sampleText(used, PROTOCOL_SIZES)}; none in epochs or batch` : "none in data, epochs or batch"}` +
    "; Random Masking only (0.1% of the whole model), LR grid {1e-3, 3e-3, 1e-2, 3e-2, 1e-1}, one seed",
};

/** A smoke run (CI, first look): a few dozen examples, one epoch. */
const QUICK_SIZES: SampleSizes = { train: 48, dev: 24, test: 24 };

export const QUICK_PLAN: DemoPlan = {
  sizes: QUICK_SIZES, epochs: 1, batchSize: 8, seed: 0,
  methods: METHODS({ rm: [1e-3, 1e-2], lora: [1e-3], full: [1e-4] }),
  deviations: (used) => `--quick: ${sampleText(used, QUICK_SIZES)} and 1 epoch; numbers mean nothing`,
};

export interface GridPoint { lr: number; status: RunRecord["status"]; best_dev: Metrics | null; best_epoch: number | null; wall_time_s: number; dir: string }

export interface MethodResult {
  method: string;
  label: string;
  options: MethodConfig;
  dtype: DType;
  grid: GridPoint[];
  /** null when every LR diverged before its first epoch ended. */
  chosen_lr: number | null;
  trainable_params: number;
  adapter_bytes: number;
  dev_accuracy: number | null;
  test_accuracy: number | null;
  /** The whole grid plus the test evaluation, seconds. */
  time_s: number;
}

export interface DemoRecord {
  model: string;
  /** True when `model` is a random-weight copy of the given model's shape. */
  random_weights: boolean;
  /** The run folder. */
  out: string;
  data_dir: string;
  task: "sst2";
  /** fallback_from_validation: train, dev and test were all drawn from the validation split (the train split is missing or tiny). */
  protocol: { train: number; dev: number; test: number; fallback_from_validation: boolean; seed: number; epochs: number; batch_size: number; template: string; lr_selection: string };
  deviations: string;
  zero_shot: { dev_accuracy: number; test_accuracy: number; time_s: number };
  methods: MethodResult[];
  table: string;
  wall_time_s: number;
  /** Process CPU seconds (user + system): with the load average, what the wall time would be on an idle machine. */
  cpu_time_s: number;
  machine: { cpu: string; cores: number; threads: number; load_average_start: number[]; load_average_end: number[] };
  randmask_version: string;
}

/**
 * The grid point with the best dev accuracy (ties: the earlier, i.e. the
 * first LR of the grid); null when none finished an epoch. It reads `best_dev`
 * only, so no test number can sway the choice.
 */
export function chooseByDev<T extends { best_dev: Metrics | null }>(runs: T[]): T | null {
  let best: T | null = null;
  for (const r of runs) {
    if (r.best_dev && (best === null || headline(r.best_dev) > headline(best.best_dev!))) best = r;
  }
  return best;
}

function folderBytes(dir: string): number {
  return readdirSync(dir).reduce((n, f) => n + statSync(join(dir, f)).size, 0);
}

/** Test accuracy of a saved adapter on a fresh copy of the base (the eval command's path). */
function testAccuracy(modelDir: string, adapterDir: string, dtype: DType, test: Example[]): number {
  const model = loadCausalLM(modelDir, { dtype });
  const peft = PeftModel.load(model, adapterDir);
  try {
    return evaluate(model, BpeTokenizer.fromDir(modelDir), "classification", test).accuracy!;
  } finally {
    peft.remove();
    model.dispose();
  }
}

const lrName = (lr: number) => `lr-${lr}`;

function human(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KB", "MB", "GB"];
  let v = bytes / 1024, u = 0;
  while (v >= 1024 && u < units.length - 1) { v /= 1024; u++; }
  return `${v.toPrecision(3)} ${units[u]}`;
}

/** The results as a Markdown table (printed, written to results.md, pasted into the model card). */
export function resultsTable(r: Pick<DemoRecord, "zero_shot" | "methods">): string {
  const acc = (a: number | null) => (a === null ? "–" : a.toFixed(3));
  const rows = [
    ["method", "trainable params", "adapter bytes", "dev acc", "test acc", "LR (chosen on dev)", "time"],
    ["---", "---:", "---:", "---:", "---:", "---:", "---:"],
    ["zero-shot", "0", "0", acc(r.zero_shot.dev_accuracy), acc(r.zero_shot.test_accuracy), "–", `${r.zero_shot.time_s.toFixed(0)} s`],
    ...r.methods.map((m) => [m.label, m.trainable_params.toLocaleString("en-US"), `${m.adapter_bytes.toLocaleString("en-US")} (${human(m.adapter_bytes)})`,
      acc(m.dev_accuracy), acc(m.test_accuracy), m.chosen_lr === null ? "all diverged" : `${m.chosen_lr} of {${m.grid.map((g) => g.lr).join(", ")}}`,
      `${m.time_s.toFixed(0)} s`]),
  ];
  return rows.map((r) => `| ${r.join(" | ")} |`).join("\n") + "\n";
}

/**
 * The rows of a results table (as resultsTable writes it) by method: dev and test accuracy, null where "–".
 * In a model card the table between `<!-- demo-results:start -->` and `<!-- demo-results:end -->` (the card
 * has other tables with a test column); otherwise the first table with a "test acc" column (demo's output).
 */
export function parseResultsTable(md: string): Map<string, { dev: number | null; test: number | null }> {
  const rows = new Map<string, { dev: number | null; test: number | null }>();
  const marked = /<!-- demo-results:start -->([\s\S]*?)<!-- demo-results:end -->/.exec(md);
  const all = (marked ? marked[1] : md).split("\n");
  const start = all.findIndex((l) => l.startsWith("| ") && l.includes("| test acc |"));
  const lines: string[] = [];
  for (let i = Math.max(start, 0); start >= 0 && i < all.length && all[i].startsWith("| "); i++) lines.push(all[i]);
  if (lines.length < 3) throw new Error("no demo results table (a header with 'test acc', a rule, rows)");
  const header = lines[0].split("|").slice(1, -1).map((c) => c.trim());
  const [di, ti] = [header.indexOf("dev acc"), header.indexOf("test acc")];
  for (const line of lines.slice(2)) {
    const cells = line.split("|").slice(1, -1).map((c) => c.trim());
    const num = (c: string) => {
      if (c === "–") return null;
      const v = Number(c);
      if (!(v >= 0 && v <= 1)) throw new Error(`results table row '${cells[0]}': accuracy ${JSON.stringify(c)} is not in [0, 1]`);
      return v;
    };
    rows.set(cells[0], { dev: num(cells[di]), test: num(cells[ti]) });
  }
  return rows;
}

export interface DemoOptions {
  modelDir: string;
  dataDir: string;
  out: string;
  plan: DemoPlan;
  quiet?: boolean;
  /**
   * Fine-tune a random-weight model of --model's shape instead (seeded by the
   * plan's seed; written to `<out>/random-weights-model/`): the baseline that
   * shows what pretraining contributes.
   */
  randomWeights?: boolean;
  /** Stage lines (default: stderr). */
  log?: (line: string) => void;
}

export async function runDemo(o: DemoOptions): Promise<DemoRecord> {
  const started = Date.now();
  const cpuStart = process.cpuUsage();
  const loadStart = loadavg();
  const log = o.log ?? ((line: string) => { if (!o.quiet) process.stderr.write(`${line}\n`); });
  const pretrainedDir = resolve(o.modelDir);
  if (!existsSync(join(pretrainedDir, "config.json"))) {
    throw new Error(`--model ${o.modelDir}: no config.json there (expected a Hugging Face OPT folder; the default, models/opt-mini, ships with randmask)`);
  }
  const task = getTask("sst2", o.dataDir);
  const { plan } = o;
  const sampled = loadTaskData(task, o.dataDir, plan.seed, plan.sizes); // reads and checks the data before anything is written
  BpeTokenizer.fromDir(pretrainedDir); // and the tokenizer files
  const out = resolve(o.out);
  prepareOutDir(out);
  const modelDir = o.randomWeights ? writeRandomWeightsCopy(pretrainedDir, join(out, "random-weights-model"), plan.seed) : pretrainedDir;
  log(`demo: ${modelDir}${o.randomWeights ? ` (random weights, shape of ${pretrainedDir})` : ""} on SST-2 (${sampled.sizes.train} train / ${sampled.sizes.dev} dev / ${sampled.sizes.test} test), ${plan.epochs} epoch(s), batch ${plan.batchSize} → ${out}`);

  const zsStart = Date.now();
  const zero = (() => {
    const model = loadCausalLM(modelDir, { dtype: "bfloat16" });
    const tok = BpeTokenizer.fromDir(modelDir);
    try {
      return { dev: evaluate(model, tok, task.kind, sampled.dev).accuracy!, test: evaluate(model, tok, task.kind, sampled.test).accuracy! };
    } finally { model.dispose(); }
  })();
  const zeroShot = { dev_accuracy: zero.dev, test_accuracy: zero.test, time_s: (Date.now() - zsStart) / 1000 };
  log(`zero-shot: dev ${zero.dev.toFixed(3)}, test ${zero.test.toFixed(3)}`);

  const methods: MethodResult[] = [];
  const records = new Map<string, RunRecord>();
  for (const m of plan.methods) {
    const mStart = Date.now();
    const grid: GridPoint[] = [];
    let trainable = 0;
    for (const [i, lr] of m.lrs.entries()) {
      log(`${m.label}: lr ${lr} (${i + 1}/${m.lrs.length})`);
      const dir = join(out, m.method, lrName(lr));
      const rec = await finetune({
        modelDir, task: "sst2", dataDir: o.dataDir, method: m.method, methodOptions: { ...m.options, seed: plan.seed }, dtype: m.dtype, out: dir,
        sizes: plan.sizes, quiet: o.quiet, evaluateTest: false,
        train: {
          lr, epochs: plan.epochs, batchSize: plan.batchSize, gradAccum: 1, maxGradNorm: 1, schedule: "constant", warmupRatio: 0,
          weightDecay: 0, divergenceFactor: 5, seed: plan.seed, evalBatchRows: 32,
        },
      });
      records.set(dir, rec);
      trainable = rec.trainable_params;
      grid.push({ lr, status: rec.status, best_dev: rec.best_dev, best_epoch: rec.best_epoch, wall_time_s: rec.wall_time_s, dir });
    }
    const chosen = chooseByDev(grid);
    const test = chosen ? testAccuracy(modelDir, join(chosen.dir, "adapter"), m.dtype, sampled.test) : null;
    const row: MethodResult = {
      method: m.method, label: m.label, options: m.options, dtype: m.dtype, grid, chosen_lr: chosen?.lr ?? null, trainable_params: trainable,
      adapter_bytes: chosen ? folderBytes(join(chosen.dir, "adapter")) : 0, dev_accuracy: chosen?.best_dev?.accuracy ?? null,
      test_accuracy: test, time_s: (Date.now() - mStart) / 1000,
    };
    methods.push(row);
    log(`${m.label}: lr ${row.chosen_lr} chosen on dev (${row.dev_accuracy?.toFixed(3)}), test ${test?.toFixed(3) ?? "–"}`);
  }

  const cpu = process.cpuUsage(cpuStart);
  const record: DemoRecord = {
    model: modelDir, random_weights: o.randomWeights === true, out, data_dir: resolve(o.dataDir), task: "sst2",
    protocol: { ...sampled.sizes, fallback_from_validation: sampled.fallback, seed: plan.seed, epochs: plan.epochs, batch_size: plan.batchSize, template: "<sentence> It was {terrible|great} (MeZO)",
      lr_selection: "best dev accuracy over the grid (ties: first LR); test is evaluated only for the chosen run" },
    deviations: `${sampled.fallback ? `train, dev and test all drawn from the validation split (the train split is missing or under ${TINY_TRAIN} examples); ` : ""}` +
      plan.deviations(sampled.sizes),
    zero_shot: zeroShot, methods, table: "",
    wall_time_s: (Date.now() - started) / 1000, cpu_time_s: (cpu.user + cpu.system) / 1e6,
    machine: { cpu: cpus()[0]?.model ?? "unknown", cores: cpus().length, threads: getNumThreads(), load_average_start: loadStart, load_average_end: loadavg() },
    randmask_version: RANDMASK_VERSION,
  };
  record.table = resultsTable(record);
  writeJsonAtomic(join(out, "metrics.json"), record);
  writeFileAtomic(join(out, "results.md"), record.table);
  await writePlots(out, record, records);
  return record;
}

/** A random-weight model with `dir`'s config and tokenizer files, saved to `dest`; returns `dest`. */
function writeRandomWeightsCopy(dir: string, dest: string, seed: number): string {
  const config = readModelConfig(join(dir, "config.json"));
  const model = randomCausalLM(config, { seed, dtype: "float32" });
  mkdirSync(dest, { recursive: true });
  try {
    saveFile(join(dest, "model.safetensors"), model.stateDict(), { format: "pt" });
  } finally { model.dispose(); }
  writeJsonAtomic(join(dest, "config.json"), { ...toHfModelConfig(config), torch_dtype: "float32" });
  copySideFiles(dir, dest);
  return dest;
}

async function writePlots(out: string, r: DemoRecord, records: Map<string, RunRecord>): Promise<void> {
  const chosen = r.methods.flatMap((m) => {
    const g = m.grid.find((p) => p.lr === m.chosen_lr);
    return g ? [{ m, run: records.get(g.dir)! }] : [];
  });
  const epochs = r.protocol.epochs;
  const dev: Series[] = [
    { name: "zero-shot", points: [[0, r.zero_shot.dev_accuracy], [epochs, r.zero_shot.dev_accuracy]] },
    ...chosen.map(({ m, run }) => ({ name: `${m.label} (lr ${m.chosen_lr})`,
      points: [[0, r.zero_shot.dev_accuracy] as [number, number], ...run.dev_per_epoch.map((e) => [e.epoch, e.dev.accuracy!] as [number, number])] })),
  ];
  await renderChart(lineChartSpec(dev, { title: "SST-2 dev accuracy by epoch (chosen LR)", xTitle: "epoch", yTitle: "dev accuracy", points: true }), join(out, "dev-accuracy"));
  await renderChart(lineChartSpec(chosen.map(({ m, run }) => ({ name: m.label, points: run.train_loss.map((l) => [l.step, l.loss] as [number, number]) })),
    { title: "SST-2 train loss (chosen LR)", xTitle: "optimizer step", yTitle: "loss (nats/token)" }), join(out, "train-loss"));
  await renderChart(lineChartSpec(r.methods.map((m) => ({ name: m.label,
    points: m.grid.filter((g) => g.best_dev).map((g) => [g.lr, g.best_dev!.accuracy!] as [number, number]) })),
  { title: "SST-2 best dev accuracy by LR", xTitle: "learning rate", yTitle: "best dev accuracy", xLog: true, points: true }), join(out, "lr-grid"));
}
