// `randmask demo`: the main job out of the box (see src/train/demo.ts).
import { existsSync } from "node:fs";
import { join } from "node:path";
import { DEFAULT_DEMO_DATA, DEFAULT_DEMO_MODEL, DEMO_PLAN, QUICK_PLAN, runDemo } from "../train/demo.js";
import { parseFlags, type FlagSpec } from "./args.js";

/** Every flag once: type, default and what it does (for parsing and for --help). */
export const DEMO_FLAGS = {
  model: { type: "string", default: "the package's models/opt-mini", help: "a Hugging Face OPT folder" },
  "data-dir": { type: "string", default: "the package's data/", help: "holds sst2/glue_sst2_{train,dev}.tsv" },
  out: { type: "string", default: "runs/demo-<timestamp>", help: "run folder; must be empty or absent" },
  quick: { type: "boolean", default: false, help: "smoke run: 48/24/24 examples, 1 epoch" },
  quiet: { type: "boolean", default: false, help: "no progress on stderr" },
} as const;

export const DEMO_HELP = "demo [--model DIR] [--data-dir DIR] [--out DIR] [--quick]   SST-2 with Random Masking, LoRA and full fine-tuning; prints a table";

export async function demoCommand(argv: string[]): Promise<void> {
  const spec: FlagSpec = Object.fromEntries(Object.entries(DEMO_FLAGS).map(([k, v]) => [k, { type: v.type }]));
  const flags = parseFlags(argv, spec);
  if (flags.model === undefined && !existsSync(join(DEFAULT_DEMO_MODEL, "config.json"))) {
    throw new Error(`the default model ${DEFAULT_DEMO_MODEL} is missing: build it with npm run build:opt-mini, or pass --model DIR`);
  }
  const stamp = new Date().toISOString().replace(/:/g, "-").replace(/\..*/, "");
  const record = await runDemo({
    modelDir: (flags.model as string | undefined) ?? DEFAULT_DEMO_MODEL,
    dataDir: (flags["data-dir"] as string | undefined) ?? DEFAULT_DEMO_DATA,
    out: (flags.out as string | undefined) ?? join("runs", `demo-${stamp}`),
    plan: flags.quick ? QUICK_PLAN : DEMO_PLAN,
    quiet: Boolean(flags.quiet),
  });
  process.stdout.write(`\n${record.table}\n${record.deviations}.\n` +
    `${record.wall_time_s.toFixed(0)} s on ${record.machine.threads} thread(s) (load average ${record.machine.load_average_start[0].toFixed(1)}); ` +
    `run folder: ${record.out}\n`);
}
