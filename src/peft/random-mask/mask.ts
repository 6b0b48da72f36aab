// Mask sampling for Random Masking. Algorithms (integer-only, see rng.ts):
// - bernoulli: every entry i of the flattened matrix, in order, is kept when
//   the next 32-bit draw is below round(p·2^32); indices come out sorted.
// - exact: exactly k distinct entries by Floyd's algorithm (k draws), sorted.
// Each matrix has its own stream, named by its module, so a matrix's mask does
// not depend on which other matrices are targeted.
import { createHash } from "node:crypto";
import { Xoshiro128 } from "../rng.js";

export type MaskKind = "bernoulli" | "exact";

export function bernoulliIndices(n: number, p: number, rng: Xoshiro128): number[] {
  const threshold = Math.round(p * 0x100000000);
  const out: number[] = [];
  for (let i = 0; i < n; i++) if (rng.nextU32() < threshold) out.push(i);
  return out;
}

export function exactIndices(n: number, k: number, rng: Xoshiro128): number[] {
  if (k > n) throw new Error(`cannot choose ${k} entries of ${n}`);
  const chosen = new Set<number>();
  for (let j = n - k; j < n; j++) {
    const t = rng.below(j + 1);
    chosen.add(chosen.has(t) ? j : t);
  }
  return [...chosen].sort((a, b) => a - b);
}

/** Splits a total over matrices in proportion to their sizes, exactly (largest remainder, ties by order). */
export function apportion(total: number, sizes: number[]): number[] {
  const sum = sizes.reduce((a, b) => a + b, 0);
  const quotas = sizes.map((s) => (total * s) / sum);
  const counts = quotas.map(Math.floor);
  let left = total - counts.reduce((a, b) => a + b, 0);
  const order = quotas.map((q, i) => [q - Math.floor(q), i] as const).sort((x, y) => y[0] - x[0] || x[1] - y[1]);
  for (const [, i] of order) { if (left-- <= 0) break; counts[i] += 1; }
  return counts;
}

/** A short checksum of a matrix's index list, stored with adapters to verify regenerated masks. */
export function indexChecksum(lists: Map<string, number[]>): string {
  const h = createHash("sha256");
  for (const [name, idx] of [...lists].sort(([a], [b]) => (a < b ? -1 : 1))) {
    h.update(name);
    h.update(Buffer.from(new Float64Array(idx).buffer));
  }
  return h.digest("hex").slice(0, 16);
}
