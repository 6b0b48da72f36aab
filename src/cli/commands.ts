// The command table: every command declares its flags once (src/cli/args.ts);
// the parser, `--help` and `randmask help COMMAND` all come from it.
import type { CommandDef } from "./args.js";
import { convertCommand } from "./convert-command.js";
import { generateCommand } from "./generate-command.js";
import { hessianCommand } from "./hessian-command.js";
import { theoryCommand } from "./theory-command.js";
import { infoCommand, logitsCommand } from "./model-commands.js";
import { countCommand, mergeCommand } from "./peft-commands.js";
import { pretrainCommand } from "./pretrain-command.js";
import { evalCommand, finetuneCommand } from "./task-commands.js";
import { demoCommand } from "./demo-command.js";
import { tokenizeCommand } from "./tokenize-command.js";
import { reportCommand, sweepCommand } from "./sweep-commands.js";
import { workerCommand } from "./worker-command.js";

export const COMMANDS: readonly CommandDef[] = [
  demoCommand, finetuneCommand, evalCommand, generateCommand, countCommand, mergeCommand, convertCommand, pretrainCommand,
  sweepCommand, workerCommand, reportCommand, hessianCommand, theoryCommand, infoCommand, logitsCommand, tokenizeCommand,
];
