// Runs a benchmark peer script with the same thread count and returns its JSON
// lines. The plain PyTorch peer runs under Debian's /usr/bin/python3 +
// python3-torch (the same libtorch as the addon's Debian build); the Hugging
// Face peer under a virtual environment holding PyTorch 2.x, transformers and
// PEFT (scripts/hf-peer-venv.sh).
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { getNumThreads } from "../../src/engine/index.js";

export const PEER_PYTHON = process.env.RANDMASK_PEER_PYTHON ?? "/usr/bin/python3";
const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const peerDir = join(repoRoot, "bench", "peer");
export const HF_PEER_PYTHON = process.env.RANDMASK_HF_PYTHON ?? join(repoRoot, ".venv-torch2", "bin", "python");

/** null when `python` can import `modules`, else why not. */
export function peerAvailable(python = PEER_PYTHON, modules = "torch", hint = "install Debian's python3-torch"): string | null {
  if (!existsSync(python)) return `${python} not found (${hint})`;
  try {
    execFileSync(python, ["-c", `import ${modules}`], { stdio: "ignore" });
    return null;
  } catch {
    return `${python} cannot import ${modules} (${hint})`;
  }
}

export function runPeer<T>(script: string, args: Record<string, unknown>, python = PEER_PYTHON): T[] {
  const out = execFileSync(python, [join(peerDir, script), JSON.stringify({ threads: getNumThreads(), ...args })],
    { encoding: "utf8", maxBuffer: 64 << 20, stdio: ["ignore", "pipe", "inherit"] });
  return out.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l) as T);
}
