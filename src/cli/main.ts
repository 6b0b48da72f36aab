#!/usr/bin/env node
// randmask command-line entry: one subcommand per job; errors print one line.
import { UsageError } from "./args.js";
import { convertCommand } from "./convert-command.js";
import { infoCommand, logitsCommand } from "./model-commands.js";
import { countCommand, mergeCommand } from "./peft-commands.js";
import { DEMO_HELP, demoCommand } from "./demo-command.js";
import { pretrainCommand } from "./pretrain-command.js";
import { evalCommand, finetuneCommand } from "./task-commands.js";
import { tokenizeCommand } from "./tokenize-command.js";
import { reportCommand, sweepCommand } from "./sweep-commands.js";
import { hessianCommand } from "./hessian-command.js";
import { theoryCommand } from "./theory-command.js";

type Command = { run: (argv: string[]) => void | Promise<void>; help: string };

const commands: Record<string, Command> = {
  demo: { run: demoCommand, help: DEMO_HELP },
  finetune: { run: finetuneCommand, help: "finetune --model DIR --task T --data-dir DIR --method M [--lr 1e-3 --epochs 5 --batch-size 8 --seed 0 --dtype fp32] [method flags] --out DIR" },
  eval: { run: evalCommand, help: "eval --model DIR [--adapter DIR] --task T --data-dir DIR [--split test|dev|train] [--seed 0]   metrics as JSON" },
  info: { run: infoCommand, help: "info --model DIR [--dtype fp32|bf16] [--json]      architecture, parameters, memory" },
  logits: { run: logitsCommand, help: "logits --model DIR --input-ids '[[2,100]]' [--attention-mask '[[1,1]]']   JSON logits\n" +
    "  logits --model DIR --pixel-values FILE.json [--head FILE.safetensors]   vision: [batch,3,H,W] normalised pixels → logits or image_embeds" },
  count: { run: countCommand, help: "count (--model DIR | --preset opt-125m|gpt2|llama-2-7b|…) --method M [method flags] [--json]   trainable parameters" },
  tokenize: { run: tokenizeCommand, help: "tokenize --model DIR (--text STR | --file F) [--json]   ids, tokens and offsets with the special tokens the config adds" },
  hessian: { run: hessianCommand, help: "hessian --model DIR [--adapter DIR] --method M [method flags] --task T --data-dir DIR [--examples 64 --seed 0 --train-size 1000 --max-iters 100 --tol 1e-3 --json]   ‖Hessian‖₂ of the training loss" },
  theory: { run: theoryCommand, help: "theory [--n 32 --d 4096 --r 1 --sigma 0.5 --p 1,0.5,0.1 --delta 0.05 --seed 0 --steps 1000 --draws 200] [--out DIR] [--json]   Section 5's linear-regression predictions" },
  convert: { run: convertCommand, help: "convert --model DIR --out DIR [--dtype fp32|bf16|fp16] [--max-shard-size 2GB]   .bin or safetensors → HF safetensors folder" },
  sweep: { run: sweepCommand, help: "sweep run FILE --db results.sqlite [--workers N --out-dir DIR --retry-failed] | sweep status --db F | sweep results --db F [--format table|csv|json]" },
  report: { run: reportCommand, help: "report --db results.sqlite --out DIR [--small-lr 1e-4]   tables (Table 5/6) and figures (3, 4a-c, 5) as markdown, CSV, SVG, PNG" },
  pretrain: { run: pretrainCommand, help: "pretrain (--config F | --preset P | --init-from DIR) --data a.txt:2,b.jsonl --out DIR (--max-steps N | --max-tokens N) [--resume DIR]   causal-LM pretraining" },
  merge: { run: mergeCommand, help: "merge --model DIR --adapter DIR --out DIR   standalone checkpoint with the adapter merged" },
};

function usage(): string {
  return "usage: randmask <command> [flags]\n\ncommands:\n" + Object.values(commands).map((c) => `  ${c.help}`).join("\n") + "\n";
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h" || name === "help") {
    process.stdout.write(usage());
    return 0;
  }
  const cmd = commands[name];
  if (!cmd) {
    process.stderr.write(`randmask: unknown command '${name}'\n\n${usage()}`);
    return 2;
  }
  try {
    await cmd.run(rest);
    return 0;
  } catch (e) {
    const err = e as Error;
    process.stderr.write(`randmask ${name}: ${err.message}\n`);
    if (process.env.RANDMASK_DEBUG) process.stderr.write(`${err.stack}\n`);
    return e instanceof UsageError ? 2 : 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
