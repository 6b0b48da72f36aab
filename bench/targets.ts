// `npm run bench:targets`: issue 14's CPU speed targets, measured so that a
// shared machine's drifting speed cannot decide them. Each round runs, back to
// back and each in its own process, every Random Masking configuration
// (1e-3, 1e-4, 1e-5), the peers (Hugging Face transformers + PEFT LoRA with
// logits at every position and with logits_to_keep=3, the plain PyTorch LoRA
// peer) and the step's matrix-product floor (bench/gemm-floor.ts); a ratio is
// taken within a round and the median over rounds is reported. The floor gives
// each peer's ceiling: peer ÷ floor is the most any implementation of this exact
// step could reach against it here.
//   node dist/bench/targets.js [--rounds 3] [--json]
// OPT-125m shapes, random weights, batch 8 × 64, loss on the last 2 positions.
import { execFileSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { buildInfo, getNumThreads } from "../src/engine/index.js";
import { HF_PEER_PYTHON, peerAvailable, runPeer } from "./peer/python.js";

/** --rounds N and --json; anything else, or a bad N, is one line and exit 2 (a typo must not start a 17-minute run). */
function parseArgs(argv: string[]): { rounds: number; json: boolean } {
  const fail = (why: string): never => { process.stderr.write(`bench targets: ${why} (usage: targets.js [--rounds N] [--json])\n`); process.exit(2); };
  const out = { rounds: 3, json: false };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--json") out.json = true;
    else if (argv[i] === "--rounds") {
      const v = argv[++i];
      if (v === undefined || !/^[1-9]\d*$/.test(v)) fail(`--rounds ${v ?? ""}: expected a whole number ≥ 1`);
      out.rounds = Number(v);
    } else fail(`unknown argument ${argv[i]}`);
  }
  return out;
}
const { rounds, json } = parseArgs(process.argv.slice(2));
const here = dirname(fileURLToPath(import.meta.url));
const steps = 8, warmup = 3;
const noPeer = peerAvailable();
const noHfPeer = peerAvailable(HF_PEER_PYTHON, "torch, transformers, peft", "run scripts/hf-peer-venv.sh");

type Dtype = "float32" | "bfloat16";
const ratios = [1e-3, 1e-4, 1e-5];
const peers = ["hf-peft-lora", "hf-peft-lora-keep3", "pytorch-lora"] as const;
type Peer = typeof peers[number];

const probe = (script: string, args: Record<string, unknown>): Record<string, number> =>
  JSON.parse(execFileSync(process.execPath, [join(here, script), JSON.stringify(args)],
    { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], maxBuffer: 16 << 20 }).trim().split("\n").pop()!);
const ours = (dtype: Dtype, ratio: number) => probe("step-probe.js",
  { steps, warmup, logits: "needed", mode: "train", method: "random-mask", options: { trainableRatio: ratio }, dtype }).step_ms;
function peerMs(name: Peer, dtype: Dtype): number | null {
  if (name === "pytorch-lora") return noPeer ? null : runPeer<{ step_ms: number }>("opt_peer.py", { steps, warmup, method: "lora", dtype })[0].step_ms;
  if (noHfPeer) return null;
  return runPeer<{ step_ms: number }>("hf_peer.py", { steps, warmup, dtype, ...(name === "hf-peft-lora-keep3" ? { logits_to_keep: true } : {}) }, HF_PEER_PYTHON)[0].step_ms;
}

const median = (v: number[]) => { const s = [...v].sort((a, b) => a - b); return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
const fmt = (v: number[]) => v.map((x) => x.toFixed(0)).join(" / ");

interface Round { floor: number; ours: Record<number, number>; peers: Partial<Record<Peer, number>> }
const results: Record<Dtype, Round[]> = { float32: [], bfloat16: [] };
const started = Date.now();
for (let r = 0; r < rounds; r++) {
  for (const dtype of ["float32", "bfloat16"] as Dtype[]) {
    const round: Round = { floor: probe("gemm-floor.js", { dtype }).floor_ms, ours: {}, peers: {} };
    for (const p of peers) { const ms = peerMs(p, dtype); if (ms !== null) round.peers[p] = ms; }
    for (const ratio of ratios) round.ours[ratio] = ours(dtype, ratio);
    results[dtype].push(round);
    const done = r * 2 + (dtype === "float32" ? 1 : 2), total = rounds * 2, elapsed = (Date.now() - started) / 1000;
    process.stderr.write(`round ${r + 1}/${rounds} ${dtype}: floor ${round.floor.toFixed(0)} ms, ours ${fmt(Object.values(round.ours))} ms, ` +
      `peers ${Object.entries(round.peers).map(([k, v]) => `${k} ${v.toFixed(0)}`).join(", ")} ms — ` +
      `${elapsed.toFixed(0)} s, about ${((elapsed / done) * (total - done)).toFixed(0)} s left\n`);
  }
}

// Issue 14 §3: fp32 Random Masking (1e-3 and sparser) ≥ 2.0× HF PEFT LoRA; bf16 ≥ 2× the PyTorch peer in bf16.
const targets: { what: string; dtype: Dtype; peer: Peer; goal: number | null }[] = [
  { what: "fp32, Random Masking ≥ 2.0× HF PEFT LoRA (logits at every position, as users run it)", dtype: "float32", peer: "hf-peft-lora", goal: 2 },
  { what: "fp32, against HF PEFT LoRA with logits_to_keep=3 (for reference)", dtype: "float32", peer: "hf-peft-lora-keep3", goal: null },
  { what: "bf16, Random Masking ≥ 2× the PyTorch LoRA peer in bf16", dtype: "bfloat16", peer: "pytorch-lora", goal: 2 },
  { what: "bf16, against HF PEFT LoRA in bf16 (for reference)", dtype: "bfloat16", peer: "hf-peft-lora", goal: null },
];
const summary = targets.map((t) => {
  const rs = results[t.dtype].filter((r) => r.peers[t.peer] !== undefined);
  if (!rs.length) return { ...t, skipped: true as const };
  const perRatio = ratios.map((ratio) => ({ ratio, speedup: median(rs.map((r) => r.peers[t.peer]! / r.ours[ratio])), ms: median(rs.map((r) => r.ours[ratio])) }));
  const worst = Math.min(...perRatio.map((x) => x.speedup));
  return { ...t, skipped: false as const, peer_ms: median(rs.map((r) => r.peers[t.peer]!)), floor_ms: median(rs.map((r) => r.floor)),
    ceiling: median(rs.map((r) => r.peers[t.peer]! / r.floor)), perRatio, worst, met: t.goal === null ? null : worst >= t.goal };
});

if (json) {
  console.log(JSON.stringify({ bench: "cpu-targets", rounds, threads: getNumThreads(), torch: buildInfo().torchVersion, results, summary }));
} else {
  const info = buildInfo();
  console.log(`# CPU speed targets — ${new Date().toISOString().slice(0, 10)}, libtorch ${info.torchVersion}, ${getNumThreads()} threads, ` +
    `BLAS ${info.blasLibraries.join(", ")}; ${rounds} interleaved rounds, each process the median of ${steps} steps after ${warmup} warm-ups` +
    `${noPeer ? `; PyTorch peer skipped: ${noPeer}` : ""}${noHfPeer ? `; Hugging Face peer skipped: ${noHfPeer}` : ""}\n`);
  console.log("| dtype | round | floor ms | RM 1e-3 ms | RM 1e-4 ms | RM 1e-5 ms | " + peers.join(" ms | ") + " ms |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|");
  for (const dtype of ["float32", "bfloat16"] as Dtype[]) {
    results[dtype].forEach((r, i) => console.log(`| ${dtype} | ${i + 1} | ${r.floor.toFixed(0)} | ${ratios.map((x) => r.ours[x].toFixed(0)).join(" | ")} | ` +
      `${peers.map((p) => r.peers[p]?.toFixed(0) ?? "—").join(" | ")} |`));
  }
  console.log("\n## Targets (ratios within a round, median over rounds)\n");
  for (const s of summary) {
    if (s.skipped) { console.log(`- ${s.what}: peer not run`); continue; }
    const per = s.perRatio.map((x) => `${x.ratio}: ${x.speedup.toFixed(2)}×`).join(", ");
    console.log(`- ${s.what}: ${per}; worst ${s.worst.toFixed(2)}×` + (s.met === null ? "" : ` → ${s.met ? "met" : "not met"}`) +
      `. Ceiling here: peer ${s.peer_ms.toFixed(0)} ms ÷ matrix-product floor ${s.floor_ms.toFixed(0)} ms = ${s.ceiling.toFixed(2)}×.`);
  }
}
