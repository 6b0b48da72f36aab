// The CLI explains itself: every command's --help lists exactly the flags its
// parser accepts (both come from one definition), with defaults and an example
// that parses; --version; exit codes; method flags shared by every command
// that builds a mask.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { UsageError, parseCommand, splitPositionals, wantsHelp, type FlagDef } from "../src/cli/args.js";
import { COMMANDS } from "../src/cli/commands.js";
import { METHOD_FLAGS } from "../src/cli/method-flags.js";
import { repoRoot, sharedDir } from "./helpers.js";

const cli = join(repoRoot, "dist", "src", "cli", "main.js");
const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: "utf8" });

/** Splits a shell line with single-quoted words (enough for the examples). */
function shellWords(line: string): string[] {
  return [...line.matchAll(/'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2]);
}

/** A value the flag's type accepts. */
function sample(d: FlagDef): string[] {
  if (d.type === "boolean") return [];
  if (d.choices) return [d.choices[0]];
  if (d.type === "dir") return [tmpdir()];
  if (d.type === "number" || d.type === "integer") return [String(d.default ?? 1)];
  return ["q_proj"];
}

test("every command has --help listing exactly its flags, with their defaults, and one example", () => {
  const all = run("--help");
  assert.equal(all.status, 0);
  for (const c of COMMANDS) {
    assert.match(all.stdout, new RegExp(`^  ${c.name} `, "m"), `${c.name} missing from randmask --help`);
    const r = run(c.name, "--help");
    assert.equal(r.status, 0, r.stderr);
    assert.equal(run("help", c.name).stdout, r.stdout, `${c.name}: help COMMAND differs from COMMAND --help`);
    const listed = [...r.stdout.matchAll(/^ {2}--([a-z0-9-]+)/gm)].map((m) => m[1]).sort();
    assert.deepEqual(listed, [...Object.keys(c.flags), "help"].sort(), `${c.name}: --help lists other flags than the parser takes`);
    for (const [name, d] of Object.entries(c.flags)) {
      const line = r.stdout.split("\n").findIndex((l) => l.startsWith(`  --${name} `) || l === `  --${name}`);
      const text = r.stdout.split("\n").slice(line, line + 2).join(" ");
      if (d.required) assert.match(text, /\(required\)/, `${c.name} --${name}`);
      else if (d.defaultText !== undefined) assert.ok(text.includes(`(default: ${d.defaultText})`), `${c.name} --${name}: ${text}`);
      else if (d.default !== undefined && d.type !== "boolean") assert.ok(text.includes(`(default: ${d.default})`), `${c.name} --${name}: ${text}`);
      // the parser accepts the flag (any fault is about its value or another flag, never an unknown option)
      try { parseCommand(c, [`--${name}`, ...sample(d)]); } catch (e) {
        assert.ok(e instanceof UsageError && !/Unknown option/.test(e.message), `${c.name} --${name}: ${(e as Error).message}`);
      }
    }
    const example = r.stdout.split("example:\n  randmask ")[1]?.trim();
    assert.ok(example?.startsWith(`${c.name} `), `${c.name}: no example`);
    const args = shellWords(example).slice(1);
    assert.equal(wantsHelp(args, c), false);
    try { parseCommand(c, splitPositionals(c, args).rest); } catch (e) {
      // the example's folders need not exist here; every flag and value must parse
      assert.match((e as Error).message, /folder does not exist/, `${c.name} example: ${(e as Error).message}`);
    }
  }
});

test("--help works anywhere on the line, even after other flags; unknown commands are usage errors", () => {
  const r = run("finetune", "--model", "/nowhere", "--lr", "oops", "--help");
  assert.equal(r.status, 0);
  assert.match(r.stdout, /^usage: randmask finetune /);
  // a value that looks like -h is a value, not a help request
  const c = COMMANDS.find((x) => x.name === "generate")!;
  assert.equal(wantsHelp(["--prompt", "-h"], c), false);
  assert.equal(run("help", "frobnicate").status, 2);
  assert.equal(run("frobnicate").status, 2);
  const unknownFlag = run("count", "--preset", "opt-125m", "--method", "lora", "--lora-rank", "4");
  assert.equal(unknownFlag.status, 2);
  assert.match(unknownFlag.stderr, /Unknown option '--lora-rank'.*randmask count --help/);
});

test("sweep's ACTION and FILE may stand before, between or after the flags; a flag's value is never taken for one", () => {
  const c = COMMANDS.find((x) => x.name === "sweep")!;
  // `sweep run --db r.sqlite sweep.json` was refused: "This command does not take positional arguments"
  for (const argv of [["run", "s.json", "--db", "r.sqlite"], ["run", "--db", "r.sqlite", "s.json"], ["--db", "r.sqlite", "run", "s.json"],
    ["--retry-failed", "run", "--workers", "2", "s.json", "--db=r.sqlite"]]) {
    const { positionals, rest } = splitPositionals(c, argv);
    assert.deepEqual(positionals, ["run", "s.json"], argv.join(" "));
    assert.equal(parseCommand(c, rest).db, "r.sqlite");
  }
  // a value that names an action stays the flag's value
  assert.deepEqual(splitPositionals(c, ["status", "--db", "run"]).positionals, ["status"]);
  assert.deepEqual(splitPositionals(c, ["--format", "csv", "results", "--db", "r.sqlite"]).positionals, ["results"]);
  // a word beyond ACTION FILE is named, not "takes no positional arguments"
  assert.throws(() => parseCommand(c, splitPositionals(c, ["run", "a.json", "b.json"]).rest),
    (e) => e instanceof UsageError && e.message === 'unexpected argument "b.json": randmask sweep takes ACTION [FILE] and flags');
  assert.throws(() => splitPositionals(c, ["--db", "r.sqlite"]), /expected ACTION \(run, status, results, submit, collect\)/);
  assert.throws(() => splitPositionals(c, ["bogus"]), /ACTION "bogus": expected one of run/);
});

test("a list flag given once per item is refused saying how to give several; another value flag given twice is refused plainly", () => {
  const of = (name: string) => COMMANDS.find((x) => x.name === name)!;
  assert.throws(() => parseCommand(of("pretrain"), ["--data", "a.txt", "--data", "b.txt:2"]), (e) => e instanceof UsageError &&
    e.message === '--data given 2 times ("a.txt", "b.txt:2"); it takes one value (several: one comma-separated list, --data a.txt,b.txt:2)');
  assert.throws(() => parseCommand(of("theory"), ["--p", "0.1", "--p=0.2"]), /--p given 2 times \("0\.1", "0\.2"\); it takes one value \(several: one comma-separated list, --p 0\.1,0\.2\)$/);
  assert.throws(() => parseCommand(of("theory"), ["--seed", "1", "--seed", "2"]), /--seed given 2 times \("1", "2"\); it takes one value$/);
});

test("--version prints the package version", () => {
  const r = run("--version");
  assert.equal(r.status, 0);
  assert.equal(r.stdout, `randmask ${JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")).version}\n`);
});

test("a reader that closes the pipe early is no error: exit 0, nothing on stderr", () => {
  const cli = join(repoRoot, "dist", "src", "cli", "main.js");
  const r = spawnSync("bash", ["-c", `set -o pipefail; "${process.execPath}" "${cli}" help finetune | true`], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, "");
});

test("every command that builds a mask takes the same method flags", () => {
  const builders = COMMANDS.filter((c) => "method" in c.flags);
  assert.ok(builders.some((c) => c.name === "count") && builders.some((c) => c.name === "finetune"));
  for (const c of builders) for (const f of Object.keys(METHOD_FLAGS)) assert.ok(f in c.flags, `${c.name} lacks --${f}`);
});

test("count --seed gives finetune's mask: the same count as --mask-seed, and another seed another count", () => {
  const fixture = join(sharedDir, "fixtures", "opt-tiny-prenorm");
  const count = (...a: string[]) => {
    const r = run("count", "--model", fixture, "--method", "random-mask", "--trainable-ratio", "0.01", "--json", ...a);
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout).trainable as number;
  };
  const seed3 = count("--seed", "3");
  assert.equal(count("--mask-seed", "3"), seed3);
  assert.equal(count("--seed", "0", "--mask-seed", "3"), seed3, "--mask-seed overrides --seed");
  assert.notEqual(count("--seed", "4"), seed3);
  assert.equal(count(), count("--seed", "0"));
});
