#!/usr/bin/env node
// randmask command-line entry: one subcommand per job; errors print one line.
// Exit codes: 0 success, 1 bad input or runtime error, 2 usage (bad or missing flags).
import { RANDMASK_VERSION } from "../version.js";
import { UsageError, helpText, parseCommand, splitPositionals, wantsHelp } from "./args.js";
import { COMMANDS } from "./commands.js";

function usage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length)) + 2;
  return "usage: randmask <command> [flags]\n\ncommands:\n" +
    COMMANDS.map((c) => `  ${c.name.padEnd(width)}${c.summary.split(/(?<=\.) /)[0]}`).join("\n") +
    "\n\n`randmask <command> --help` or `randmask help <command>` lists a command's flags; `randmask --version` prints the version.\n" +
    "Exit codes: 0 success, 1 bad input or runtime error, 2 usage error.\n";
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name) {
    // no command is a usage error: the usage goes to stderr, so a script that forgot its arguments fails
    process.stderr.write(`randmask: expected a command\n\n${usage()}`);
    return 2;
  }
  if (name === "--help" || name === "-h") {
    process.stdout.write(usage());
    return 0;
  }
  if (name === "--version" || name === "-V") {
    process.stdout.write(`randmask ${RANDMASK_VERSION}\n`);
    return 0;
  }
  if (name === "help") {
    if (rest.length === 0) { process.stdout.write(usage()); return 0; }
    const cmd = COMMANDS.find((c) => c.name === rest[0]);
    if (!cmd || rest.length > 1) {
      process.stderr.write(`randmask help: unknown command '${rest.join(" ")}'\n\n${usage()}`);
      return 2;
    }
    process.stdout.write(helpText(cmd));
    return 0;
  }
  const cmd = COMMANDS.find((c) => c.name === name);
  if (!cmd) {
    process.stderr.write(`randmask: unknown command '${name}'\n\n${usage()}`);
    return 2;
  }
  if (wantsHelp(rest, cmd)) {
    process.stdout.write(helpText(cmd));
    return 0;
  }
  // errors are prefixed with the command and its action word (`randmask sweep collect:`), so messages never repeat them
  let prefix = `randmask ${name}`;
  try {
    const { positionals, rest: flags } = splitPositionals(cmd, rest);
    if (cmd.positionals?.[0]?.choices) prefix += ` ${positionals[0]}`;
    return (await cmd.run(parseCommand(cmd, flags), positionals)) ?? 0;
  } catch (e) {
    const err = e as Error;
    process.stderr.write(`${prefix}: ${err.message}\n`);
    if (process.env.RANDMASK_DEBUG) process.stderr.write(`${err.stack}\n`);
    return e instanceof UsageError ? 2 : 1;
  }
}

// A reader that closes the pipe early (`randmask info … | head`) is not an error: stop quietly, as Unix tools do.
process.stdout.on("error", (e: NodeJS.ErrnoException) => {
  if (e.code === "EPIPE") process.exit(process.exitCode ?? 0);
  throw e;
});

process.exitCode = await main(process.argv.slice(2));
