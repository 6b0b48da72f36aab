// Seeded splits of image sets with randmask's own generator (src/peft/rng.ts),
// so a seed gives the same split on every platform.
import { shuffled } from "../../tasks/sampling.js";
import type { ImageExample } from "./types.js";

/**
 * Holds out `valSize` examples of the train split for validation (model selection),
 * in a seeded order; the rest trains.
 * @throws Error when valSize is not an integer in [0, train.length).
 */
export function trainValSplit(train: ImageExample[], valSize: number, seed: number, stream = "vision"): { train: ImageExample[]; val: ImageExample[] } {
  if (!Number.isInteger(valSize) || valSize < 0 || valSize >= train.length) {
    throw new Error(`validation size ${valSize} must be an integer in [0, ${train.length}) (the train split's size)`);
  }
  const order = shuffled(train, seed, `${stream}:val`);
  return { val: order.slice(0, valSize), train: order.slice(valSize) };
}

/**
 * For a distribution without a test split: a seeded `fraction` of each class
 * becomes test (stratified, at least one per class with two or more images).
 */
export function stratifiedHoldOut(all: ImageExample[], classes: number, fraction: number, seed: number, stream: string): { train: ImageExample[]; test: ImageExample[] } {
  const train: ImageExample[] = [];
  const test: ImageExample[] = [];
  for (let c = 0; c < classes; c++) {
    const members = shuffled(all.filter((e) => e.label === c), seed, `${stream}:class${c}`);
    const k = members.length < 2 ? 0 : Math.max(1, Math.round(members.length * fraction));
    test.push(...members.slice(0, k));
    train.push(...members.slice(k));
  }
  return { train, test };
}
