// README.md tells the truth about the CLI and its sweep files: every flag the
// "Command line" synopsis names is one its command parses, every command is in
// it, and the sweep file shown under "Sweeps and reports" loads and validates
// as written (paths relative to the repository, where the README says to save it).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { COMMANDS } from "../src/cli/commands.js";
import { checkSweepData, expandSweep } from "../src/sweep/spec.js";
import { repoRoot } from "./helpers.js";

const readme = readFileSync(join(repoRoot, "README.md"), "utf8");

/** The first fenced block of `lang` after `heading`. */
function blockAfter(heading: string, lang: string): string {
  const at = readme.indexOf(heading);
  assert.ok(at >= 0, `README has no ${heading}`);
  const m = new RegExp("```" + lang + "\\n([\\s\\S]*?)```").exec(readme.slice(at));
  assert.ok(m, `no ${lang} block after ${heading}`);
  return m[1];
}

test("the README's command-line synopsis names only flags each command parses, and every command", () => {
  const flagsOf = new Map<string, Set<string>>();
  let current = "";
  for (const line of blockAfter("## Command line", "sh").split("\n")) {
    const head = /^randmask (\S+)/.exec(line);
    if (head) current = head[1];
    if (!current) continue;
    const flags = flagsOf.get(current) ?? new Set<string>();
    for (const m of line.replace(/#.*$/, "").matchAll(/--([a-z][a-z0-9-]*)/g)) flags.add(m[1]);
    flagsOf.set(current, flags);
  }
  for (const c of COMMANDS) assert.ok(flagsOf.has(c.name), `README's synopsis lacks randmask ${c.name}`);
  for (const [name, flags] of flagsOf) {
    const c = COMMANDS.find((x) => x.name === name);
    assert.ok(c, `README's synopsis names an unknown command: randmask ${name}`);
    for (const f of flags) assert.ok(f in c.flags, `README's synopsis: randmask ${name} has no --${f}`);
  }
});

test("the README's example sweep file loads and validates as written, from the repository root", () => {
  const raw = JSON.parse(blockAfter("## Sweeps and reports", "json")) as unknown;
  const sweep = expandSweep(raw, join(repoRoot, "sweep.json"));
  checkSweepData(sweep);
  // 4 ratios × 4 LRs + 2 × 4 (structured) + 3 (LoRA) + 2 (full), each for 2 seeds: the count the README states
  assert.equal(sweep.runs.length, 58);
  assert.match(readme, /is 58 runs of\nopt-mini/);
});
