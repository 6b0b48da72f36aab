// `randmask generate`: text from a model (and adapter), greedy or sampled.
import { existsSync, statSync } from "node:fs";
import { extname } from "node:path";
import { readTextFile } from "../io/text-file.js";
import { loadCausalLM } from "../models/registry.js";
import { generate, positionsText, type Generation } from "../models/text-generation.js";
import { tokenPositions } from "../models/causal-lm.js";
import { PeftModel } from "../peft/peft-model.js";
import { BpeTokenizer } from "../tokenizer/bpe-tokenizer.js";
import { Progress } from "../train/progress.js";
import { UsageError, defineCommand, nonNegInt, positiveInt } from "./args.js";
import { DEVICE_FLAG, DTYPE_FLAG, MODEL_FLAG, checkLanguageModel, dtypeOf, useDevice } from "./shared-flags.js";

const sampling = "sampling flags";

/** Prompts from a .txt (one per non-empty line) or .jsonl file ({"prompt": "..."} per line). */
export function readPrompts(file: string): string[] {
  if (!existsSync(file) || !statSync(file).isFile()) throw new UsageError(`--file ${file}: file does not exist`);
  const ext = extname(file).toLowerCase();
  if (ext !== ".txt" && ext !== ".jsonl") throw new UsageError(`--file ${file}: expected a .txt (one prompt per line) or .jsonl ({"prompt": …} per line) file`);
  const lines = readTextFile(file).split("\n").map((l) => l.replace(/\r$/, ""));
  const prompts: string[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === "") return;
    if (ext === ".txt") { prompts.push(line); return; }
    let row: unknown;
    try { row = JSON.parse(line); } catch { throw new Error(`${file}:${i + 1}: not valid JSON`); }
    const prompt = (row as { prompt?: unknown } | null)?.prompt;
    if (typeof prompt !== "string") throw new Error(`${file}:${i + 1}: expected an object with a string field "prompt"`);
    prompts.push(prompt);
  });
  if (prompts.length === 0) throw new Error(`${file}: no prompts (empty file)`);
  return prompts;
}

/** `\n`, `\t` and `\\` in --stop values, so a newline can be given in any shell. */
function unescape(s: string): string {
  return s.replace(/\\(n|t|\\)/g, (_, c: string) => (c === "n" ? "\n" : c === "t" ? "\t" : "\\"));
}

export const generateCommand = defineCommand({
  name: "generate",
  summary: "Continue text with a model (and an adapter): greedy by default (exactly the evaluation's decoding), seeded " +
    "sampling with --temperature > 0. Streams to a terminal; --json writes one JSON line per prompt " +
    "(index, prompt, text, tokens, finish_reason).",
  usage: "randmask generate --model DIR [--adapter DIR] (--prompt STR | --file prompts.txt|.jsonl) [flags]",
  flags: {
    model: MODEL_FLAG,
    adapter: { type: "dir", description: "adapter folder to apply (finetune's --out/adapter)" },
    tokenizer: { type: "dir", defaultText: "--model", description: "folder with the tokenizer files" },
    dtype: DTYPE_FLAG,
    device: DEVICE_FLAG,
    prompt: { type: "string", description: "one prompt" },
    file: { type: "file", description: "prompts: .txt (one per line) or .jsonl ({\"prompt\": …} per line)" },
    "max-new-tokens": { type: "integer", default: 50, check: positiveInt, expected: "a positive integer", description: "tokens generated at most per prompt" },
    stop: { type: "string", multiple: true, description: "end a prompt's text where this string appears (\\n understood)" },
    "batch-size": { type: "integer", default: 8, check: positiveInt, expected: "a positive integer", description: "prompts decoded together (left-padded)" },
    json: { type: "boolean", description: "one JSON line per prompt" },
    temperature: { type: "number", default: 0, check: (v) => v >= 0, expected: "a number ≥ 0", group: sampling, description: "0: greedy; > 0: sample from softmax(logits / temperature)" },
    "top-k": { type: "integer", default: 0, check: nonNegInt, expected: "an integer ≥ 0", group: sampling, description: "sample among the k most likely tokens; 0: all" },
    "top-p": { type: "number", default: 1, check: (v) => v > 0 && v <= 1, expected: "in (0, 1]", group: sampling, description: "sample among the most likely tokens holding this probability mass" },
    seed: { type: "integer", default: 0, check: nonNegInt, expected: "a non-negative integer", group: sampling, description: "sampling seed (same seed, same text)" },
  },
  example: "generate --model ~/opt-125m --adapter runs/sst2-rm/adapter --prompt 'The movie was' --temperature 0.8 --top-p 0.9 --seed 1",
  run(v) {
    if ((v.prompt === undefined) === (v.file === undefined)) throw new UsageError("give --prompt STR or --file FILE (one of them)");
    if (v.temperature === 0 && (v["top-k"] !== 0 || v["top-p"] !== 1)) {
      throw new UsageError("--top-k/--top-p apply to sampling only: give --temperature > 0 (0 decodes greedily)");
    }
    if (v.stop.includes("")) throw new UsageError("--stop \"\": expected a non-empty string (an empty one would match everywhere)");
    checkLanguageModel("model", v.model);
    useDevice(v.device);
    const prompts = v.prompt !== undefined ? [v.prompt] : readPrompts(v.file!);
    const tok = BpeTokenizer.fromDir(v.tokenizer ?? v.model);
    const model = loadCausalLM(v.model, { dtype: dtypeOf(v.dtype) });
    try {
      const peft = v.adapter ? PeftModel.load(model, v.adapter) : null;
      // a prefix-tuning adapter's virtual tokens take positions too
      const max = tokenPositions(model);
      if (v["max-new-tokens"] >= max) throw new UsageError(`--max-new-tokens ${v["max-new-tokens"]}: ${positionsText(model)}; at most ${max - 1}`);
      // a terminal sees tokens as they come; pipes and files get whole records
      const stream = !v.json && Boolean(process.stdout.isTTY) && prompts.length === 1;
      const progress = prompts.length > 1 ? new Progress("generate", prompts.length, "prompts") : null;
      if (stream) process.stdout.write(prompts[0]);
      const print = (i: number, g: Generation) => {
        if (v.json) {
          process.stdout.write(JSON.stringify({ index: i, prompt: g.prompt, text: g.text, tokens: g.tokens, finish_reason: g.finishReason,
            prompt_tokens: g.promptTokens, ...(g.truncated ? { truncated_prompt_tokens: g.truncated } : {}) }) + "\n");
        } else {
          process.stdout.write(stream ? "\n" : `${i > 0 ? "\n" : ""}${g.prompt}${g.text}\n`);
        }
        if (g.truncated) process.stderr.write(`randmask generate: prompt ${i}: dropped its ${g.truncated} oldest tokens to fit the model's ${max} positions\n`);
        progress?.update(i + 1);
      };
      generate(model, tok, prompts, {
        maxNewTokens: v["max-new-tokens"], temperature: v.temperature, topK: v["top-k"], topP: v["top-p"], seed: v.seed,
        stop: v.stop.map(unescape), batchSize: v["batch-size"],
        onText: stream ? (_, piece) => process.stdout.write(piece) : undefined,
        onDone: print,
      });
      peft?.remove();
    } finally {
      model.dispose();
    }
  },
});
