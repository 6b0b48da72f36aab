// `randmask hessian`: the Hessian's ℓ2 norm for a method at initialisation or a trained adapter.
import { join } from "node:path";
import { loadCausalLM, readModelConfig } from "../models/registry.js";
import { shapesOf } from "../peft/shapes.js";
import { BpeTokenizer } from "../tokenizer/bpe-tokenizer.js";
import { PeftModel } from "../peft/peft-model.js";
import { TASK_NAMES, getTask } from "../tasks/registry.js";
import { loadTaskData } from "../tasks/sampling.js";
import { hessianNorm } from "../analysis/hessian.js";
import { UsageError, defineCommand, positiveInt } from "./args.js";
import { METHOD_FLAGS, methodOptions, resolveMethodFlags } from "./method-flags.js";
import { DATA_FLAGS, checkLanguageModel, checkModelFolder, dtypeOf, sampleSizes, useDevice } from "./shared-flags.js";

// Text tasks only (the Hessian is of the language-model loss), and no --eval-batch: nothing here is evaluated.
const { "eval-batch": _evalBatch, ...TEXT_DATA_FLAGS } = DATA_FLAGS;

export const hessianCommand = defineCommand({
  name: "hessian",
  summary: "Estimate the ℓ2 norm of the loss Hessian over the trainable parameters (power iteration on Hessian-vector products), " +
    "for a method at initialisation (--method) or a trained adapter (--adapter), on the task's training sample.",
  usage: "randmask hessian --model DIR --task T --data-dir DIR (--method M [method flags] | --adapter DIR) [flags]",
  flags: {
    ...TEXT_DATA_FLAGS,
    task: { ...DATA_FLAGS.task, choices: TASK_NAMES, description: "text task (jsonl: your own train/validation/test.jsonl)" },
    "train-size": { ...DATA_FLAGS["train-size"], defaultText: "1000" },
    "dev-size": { ...DATA_FLAGS["dev-size"], defaultText: "500" },
    "test-size": { ...DATA_FLAGS["test-size"], defaultText: "1000" },
    ...METHOD_FLAGS,
    method: { ...METHOD_FLAGS.method, required: false, description: "PEFT method, at initialisation (or --adapter)" },
    seed: { ...METHOD_FLAGS.seed, description: "seed of the data sample, the examples drawn and (unless --mask-seed) the mask" },
    adapter: { type: "dir", description: "a trained adapter instead of a fresh method" },
    examples: { type: "integer", default: 64, check: positiveInt, expected: "a positive integer", description: "training examples the loss is averaged over" },
    "batch-size": { type: "integer", default: 8, check: positiveInt, expected: "a positive integer", description: "examples per Hessian-vector product pass" },
    "max-iters": { type: "integer", default: 100, check: positiveInt, expected: "a positive integer", description: "power-iteration steps at most" },
    tol: { type: "number", default: 1e-3, check: (v) => v > 0, expected: "a positive number", description: "stop when the eigenvalue's relative change is below this" },
    json: { type: "boolean", description: "one JSON line" },
    quiet: { type: "boolean", description: "no per-iteration lines on stderr" },
  },
  example: "hessian --model ~/opt-125m --task sst2 --data-dir ~/data/nlp --method random-mask --trainable-ratio 1e-5",
  run(v) {
    const modelDir = v.model;
    const dataDir = v["data-dir"];
    const adapter = v.adapter;
    checkModelFolder("model", modelDir);
    checkLanguageModel("model", modelDir);
    if (!adapter && !v.method) throw new UsageError("give --method M (a fresh method at initialisation) or --adapter DIR (a trained one)");
    const seed = v.seed;
    const opts = { examples: v.examples, batchSize: v["batch-size"], maxIters: v["max-iters"], tol: v.tol, seed };
    const given = (Object.keys(METHOD_FLAGS) as (keyof typeof METHOD_FLAGS)[]).filter((f) => f !== "method" && f !== "seed" && v[f] !== undefined);
    if (adapter && given.length > 0) {
      throw new UsageError(`--adapter ${adapter}: method flags (${given.map((f) => `--${f}`).join(", ")}) apply to a fresh method; the adapter's own configuration is used`);
    }
    // as in finetune: the mask follows --seed unless --mask-seed says otherwise
    const options = methodOptions({ ...v, method: v.method ?? "" });
    if (!adapter) resolveMethodFlags({ ...v, method: v.method! }, shapesOf(readModelConfig(join(modelDir, "config.json"))));
    useDevice(v.device);
    const task = getTask(v.task, dataDir);
    // the same training sample as `finetune` with these sizes and seed; the examples are drawn from it
    const sampled = loadTaskData(task, dataDir, seed, sampleSizes(v));
    const tok = BpeTokenizer.fromDir(v.tokenizer ?? modelDir);
    const model = loadCausalLM(modelDir, { dtype: dtypeOf(v.dtype) });
    try {
      const peft = adapter ? PeftModel.load(model, adapter) : PeftModel.create(model, v.method!, options);
      if (adapter && v.method !== undefined && v.method !== peft.definition.name) {
        throw new UsageError(`--method ${v.method}: the adapter in ${adapter} is ${peft.definition.name}`);
      }
      const started = Date.now();
      const est = hessianNorm(peft, tok, task, sampled.train, {
        ...opts,
        sources: { tokenizer: `the tokenizer in ${v.tokenizer ?? modelDir}`, config: join(modelDir, "config.json") },
        onIteration: (k, l) => { if (!v.quiet) process.stderr.write(`hessian: iteration ${k}: λ ≈ ${l.toPrecision(6)}\n`); },
      });
      const row = {
        task: task.name, method: peft.definition.name, adapter: adapter ?? null, at: adapter ? "adapter" : "initialisation",
        trainable: est.trainable, examples: est.examples, seed, eigenvalue: est.eigenvalue, norm: est.norm, iterations: est.iterations,
        converged: est.converged, relative_change: est.relativeChange, tol: opts.tol, max_iters: opts.maxIters,
        wall_time_s: (Date.now() - started) / 1000,
      };
      process.stdout.write(v.json ? JSON.stringify(row) + "\n" :
        `‖H‖₂ ≈ ${est.norm.toPrecision(6)} (eigenvalue ${est.eigenvalue.toPrecision(6)}) for ${row.method} at ${row.at} on ${row.examples} ` +
        `${task.name} examples: ${est.iterations} iterations, ${est.converged ? "converged" : "NOT converged"} ` +
        `(relative change ${est.relativeChange.toExponential(2)}, tol ${opts.tol})\n`);
      peft.remove();
    } finally {
      model.dispose();
    }
  },
});
