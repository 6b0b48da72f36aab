// `randmask hessian`: the Hessian's ℓ2 norm for a method at initialisation or a trained adapter.
import { loadCausalLM } from "../models/registry.js";
import { BpeTokenizer } from "../tokenizer/bpe-tokenizer.js";
import { PeftModel } from "../peft/peft-model.js";
import { getTask } from "../tasks/registry.js";
import { loadTaskData } from "../tasks/sampling.js";
import { hessianNorm } from "../analysis/hessian.js";
import { UsageError, numberFlag, parseFlags, requireString } from "./args.js";
import { METHOD_FLAG_SPEC, methodOptions } from "./method-flags.js";
import { dtypeFlag } from "./model-commands.js";
import { sizes } from "./task-commands.js";

const positiveInt = (v: number) => Number.isSafeInteger(v) && v > 0;

export function hessianCommand(argv: string[]): void {
  const flags = parseFlags(argv, {
    ...METHOD_FLAG_SPEC, model: { type: "string" }, tokenizer: { type: "string" }, adapter: { type: "string" }, method: { type: "string" },
    task: { type: "string" }, "data-dir": { type: "string" }, dtype: { type: "string" }, seed: { type: "string" },
    examples: { type: "string" }, "batch-size": { type: "string" }, "max-iters": { type: "string" }, tol: { type: "string" },
    json: { type: "boolean" }, quiet: { type: "boolean" },
    "train-size": { type: "string" }, "dev-size": { type: "string" }, "test-size": { type: "string" },
  });
  const modelDir = requireString(flags, "model");
  const dataDir = requireString(flags, "data-dir");
  const adapter = flags.adapter as string | undefined;
  if (!adapter && !flags.method) throw new UsageError("give --method M (a fresh method at initialisation) or --adapter DIR (a trained one)");
  const seed = numberFlag(flags, "seed", 0, (v) => Number.isSafeInteger(v) && v >= 0, "a non-negative integer");
  const opts = {
    examples: numberFlag(flags, "examples", 64, positiveInt, "a positive integer"),
    batchSize: numberFlag(flags, "batch-size", 8, positiveInt, "a positive integer"),
    maxIters: numberFlag(flags, "max-iters", 100, positiveInt, "a positive integer"),
    tol: numberFlag(flags, "tol", 1e-3, (v) => v > 0 && Number.isFinite(v), "a positive number"),
    seed,
  };
  const options = methodOptions(flags);
  if (adapter && Object.keys(options).length > 0) {
    throw new UsageError(`--adapter ${adapter}: method flags (${Object.keys(METHOD_FLAG_SPEC).filter((f) => flags[f] !== undefined).map((f) => `--${f}`).join(", ")}) ` +
      "apply to a fresh method; the adapter's own configuration is used");
  }
  if (options.seed === undefined) options.seed = seed; // as in finetune: the mask follows --seed unless --mask-seed says otherwise
  const task = getTask(requireString(flags, "task"), dataDir);
  // the same training sample as `finetune` with these sizes and seed; the examples are drawn from it
  const sampled = loadTaskData(task, dataDir, seed, sizes(flags));
  const tok = BpeTokenizer.fromDir((flags.tokenizer as string | undefined) ?? modelDir);
  const model = loadCausalLM(modelDir, { dtype: dtypeFlag(flags) });
  try {
    const peft = adapter ? PeftModel.load(model, adapter) : PeftModel.create(model, String(flags.method), options);
    if (adapter && flags.method !== undefined && flags.method !== peft.definition.name) {
      throw new UsageError(`--method ${flags.method}: the adapter in ${adapter} is ${peft.definition.name}`);
    }
    const started = Date.now();
    const est = hessianNorm(peft, tok, task, sampled.train, {
      ...opts,
      onIteration: (k, l) => { if (!flags.quiet) process.stderr.write(`hessian: iteration ${k}: λ ≈ ${l.toPrecision(6)}\n`); },
    });
    const row = {
      task: task.name, method: peft.definition.name, adapter: adapter ?? null, at: adapter ? "adapter" : "initialisation",
      trainable: est.trainable, examples: est.examples, seed, eigenvalue: est.eigenvalue, norm: est.norm, iterations: est.iterations,
      converged: est.converged, relative_change: est.relativeChange, tol: opts.tol, max_iters: opts.maxIters,
      wall_time_s: (Date.now() - started) / 1000,
    };
    process.stdout.write(flags.json ? JSON.stringify(row) + "\n" :
      `‖H‖₂ ≈ ${est.norm.toPrecision(6)} (eigenvalue ${est.eigenvalue.toPrecision(6)}) for ${row.method} at ${row.at} on ${row.examples} ` +
      `${task.name} examples: ${est.iterations} iterations, ${est.converged ? "converged" : "NOT converged"} ` +
      `(relative change ${est.relativeChange.toExponential(2)}, tol ${opts.tol})\n`);
    peft.remove();
  } finally {
    model.dispose();
  }
}
