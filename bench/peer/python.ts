// Runs a benchmark peer script under Debian's /usr/bin/python3 + python3-torch,
// with the same thread count; returns its JSON lines, or null with a reason.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { getNumThreads } from "../../src/engine/index.js";

export const PEER_PYTHON = process.env.RANDMASK_PEER_PYTHON ?? "/usr/bin/python3";
const peerDir = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "bench", "peer");

export function peerAvailable(): string | null {
  if (!existsSync(PEER_PYTHON)) return `${PEER_PYTHON} not found`;
  try {
    execFileSync(PEER_PYTHON, ["-c", "import torch"], { stdio: "ignore" });
    return null;
  } catch {
    return `${PEER_PYTHON} has no torch (install Debian's python3-torch)`;
  }
}

export function runPeer<T>(script: string, args: Record<string, unknown>): T[] {
  const out = execFileSync(PEER_PYTHON, [join(peerDir, script), JSON.stringify({ threads: getNumThreads(), ...args })],
    { encoding: "utf8", maxBuffer: 64 << 20, stdio: ["ignore", "pipe", "inherit"] });
  return out.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l) as T);
}
