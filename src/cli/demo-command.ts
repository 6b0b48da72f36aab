// `randmask demo`: the main job out of the box (see src/train/demo.ts).
import { existsSync } from "node:fs";
import { join } from "node:path";
import { DEFAULT_DEMO_DATA, DEFAULT_DEMO_MODEL, DEMO_PLAN, PROTOCOL_PLAN, QUICK_PLAN, runDemo } from "../train/demo.js";
import { defineCommand, UsageError } from "./args.js";
import { checkLanguageModel, checkOutputFolder } from "./shared-flags.js";

export const demoCommand = defineCommand({
  name: "demo",
  summary: "The main job out of the box: SST-2 on opt-mini with Random Masking, LoRA and full fine-tuning against " +
    "zero-shot; prints a table (trainable parameters, adapter bytes, dev/test accuracy, LR chosen on dev, time) and writes a run folder.",
  flags: {
    model: { type: "dir", defaultText: "the package's models/opt-mini", description: "a Hugging Face OPT folder" },
    "data-dir": { type: "dir", defaultText: "the package's data/", description: "holds sst2/glue_sst2_{train,dev}.tsv" },
    out: { type: "string", arg: "DIR", defaultText: "runs/demo-<timestamp>", description: "run folder; must be empty or absent" },
    quick: { type: "boolean", description: "smoke run: 48/24/24 examples, 1 epoch" },
    protocol: { type: "boolean", description: "the acceptance protocol instead: 5 epochs, Random Masking 0.1% only, LR grid 1e-3…1e-1" },
    "random-weights": { type: "boolean", description: "fine-tune a seeded random-weight model of --model's shape (the no-pretraining baseline)" },
    quiet: { type: "boolean", description: "no progress on stderr" },
  },
  example: "demo --out runs/demo",
  async run(v) {
    if (v.quick && v.protocol) throw new UsageError("--quick and --protocol exclude each other");
    const stamp = new Date().toISOString().replace(/:/g, "-").replace(/\..*/, "");
    const out = v.out ?? join("runs", `demo-${stamp}`);
    checkOutputFolder("out", out, "the demo's run folder", { empty: true });
    if (v.model !== undefined) checkLanguageModel("model", v.model);
    if (v.model === undefined && !existsSync(join(DEFAULT_DEMO_MODEL, "config.json"))) {
      throw new Error(`the default model ${DEFAULT_DEMO_MODEL} is missing: build it with npm run build:opt-mini, or pass --model DIR`);
    }
    const record = await runDemo({
      modelDir: v.model ?? DEFAULT_DEMO_MODEL,
      dataDir: v["data-dir"] ?? DEFAULT_DEMO_DATA,
      out,
      plan: v.quick ? QUICK_PLAN : v.protocol ? PROTOCOL_PLAN : DEMO_PLAN,
      randomWeights: v["random-weights"],
      quiet: v.quiet,
    });
    process.stdout.write(`\n${record.table}\n${record.deviations}.\n` +
      `${record.wall_time_s.toFixed(0)} s on ${record.machine.threads} thread(s) (load average ${record.machine.load_average_start[0].toFixed(1)}); ` +
      `run folder: ${record.out}\n`);
  },
});
