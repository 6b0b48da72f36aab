// Peak memory of loading a PyTorch .bin checkpoint against its file size.
//   node dist/bench/bin-load-memory.js write FILE   OPT-125m shapes, random weights, keys as facebook/opt-125m has them (decoder.*)
//   node dist/bench/bin-load-memory.js load FILE    loads it and prints RSS before, peak, and the file size (JSON)
// Run each `load` in a fresh process: peak RSS (getrusage maxrss) only grows.
import { statSync } from "node:fs";
import { OPTForCausalLM } from "../src/models/opt.js";
import { presetConfig } from "../src/models/presets.js";
import { loadTorchFile } from "../src/io/torch-checkpoint.js";
import { writeTorchZip } from "../test/torch-writer.js";

const [mode, file] = process.argv.slice(2);
const mib = (bytes: number) => Math.round(bytes / 2 ** 20);
if (mode === "write" && file) {
  const m = OPTForCausalLM.random(presetConfig("opt-125m"), { seed: 0 });
  const sd = new Map([...m.stateDict()].map(([k, t]) => [k.replace(/^model\./, ""), t]));
  writeTorchZip(file, sd, "pytorch_model");
  process.stdout.write(`wrote ${file}: ${mib(statSync(file).size)} MiB, ${sd.size} tensors\n`);
} else if (mode === "load" && file) {
  const before = process.memoryUsage().rss;
  const t0 = Date.now();
  const tensors = loadTorchFile(file);
  const seconds = (Date.now() - t0) / 1000;
  const peak = process.resourceUsage().maxRSS * 1024;
  const size = statSync(file).size;
  process.stdout.write(JSON.stringify({ file, fileMiB: mib(size), tensors: tensors.size, rssBeforeMiB: mib(before), peakRssMiB: mib(peak),
    peakMinusBeforeMiB: mib(peak - before), ratioToFile: +((peak - before) / size).toFixed(3), seconds }) + "\n");
} else {
  process.stderr.write("usage: bin-load-memory.js write FILE | load FILE\n");
  process.exitCode = 2;
}
