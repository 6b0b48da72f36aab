// The data protocol (MeZO's): seeded 1000 train + 500 dev from the train
// split and 1000 test from the validation split. Where the train split is
// missing or tiny, train/dev/test are drawn disjointly from the validation
// split, keeping each group (passage, article) whole on one side.
import { Xoshiro128 } from "../peft/rng.js";
import type { Example, TaskDefinition, TaskSplits } from "./types.js";

export interface SampleSizes { train: number; dev: number; test: number }
export const DEFAULT_SIZES: SampleSizes = { train: 1000, dev: 500, test: 1000 };
/** Below this many train passages (or examples, where rows have no passage) the split counts as tiny. */
export const TINY_TRAIN = 100;

function groupCount(xs: Example[]): number {
  return new Set(xs.map((e, i) => e.group ?? `#${i}`)).size;
}

export interface SampledData {
  train: Example[];
  dev: Example[];
  test: Example[];
  /** True when train/dev came from the validation split. */
  fallback: boolean;
  sizes: { train: number; dev: number; test: number };
}

/** A copy of `items` in a seeded Fisher–Yates order (randmask's own generator, stream `stream`). */
export function shuffled<T>(items: T[], seed: number, stream: string): T[] {
  return new Xoshiro128(seed, stream).shuffle(items.slice());
}

/**
 * Whole groups, in seeded order, until each side reaches its size; a side is
 * then cut to its size (the rest of its last group goes unused, never to
 * another side).
 */
function splitByGroup(pool: Example[], seed: number, stream: string, sides: number[]): Example[][] {
  const groups = new Map<string, Example[]>();
  pool.forEach((e, i) => {
    const g = e.group ?? `#${i}`;
    if (!groups.has(g)) groups.set(g, []);
    groups.get(g)!.push(e);
  });
  const out = sides.map(() => [] as Example[]);
  let side = 0;
  for (const key of shuffled([...groups.keys()], seed, stream)) {
    while (side < sides.length && out[side].length >= sides[side]) side++;
    if (side >= sides.length) break;
    out[side].push(...groups.get(key)!);
  }
  return out.map((xs, i) => xs.slice(0, sides[i]));
}

/**
 * `userSplits` (the generic JSONL task): the user's train file is always the
 * train pool, never replaced by the fallback; with a test file, validation
 * becomes dev.
 */
export function sampleSplits(task: string, data: TaskSplits, seed: number, sizes: SampleSizes = DEFAULT_SIZES, userSplits = false): SampledData {
  const stream = `data:${task}`;
  if (data.train && data.test) {
    const [trainSet] = splitByGroup(data.train, seed, `${stream}:train`, [sizes.train]);
    const [devSet] = splitByGroup(data.validation, seed, `${stream}:dev`, [sizes.dev]);
    const [testSet] = splitByGroup(data.test, seed, `${stream}:test`, [sizes.test]);
    return { train: trainSet, dev: devSet, test: testSet, fallback: false, sizes: { train: trainSet.length, dev: devSet.length, test: testSet.length } };
  }
  if (data.train && (userSplits || groupCount(data.train) >= TINY_TRAIN)) {
    const n = data.train.length;
    // small train splits (CB, COPA, WSC) give a quarter to dev, as MeZO's 100-example dev for COPA
    const dev = Math.min(sizes.dev, Math.round(n / 4));
    const [devSet, trainSet] = splitByGroup(data.train, seed, `${stream}:train`, [dev, Math.min(sizes.train, n - dev)]);
    const [test] = splitByGroup(data.validation, seed, `${stream}:test`, [sizes.test]);
    return { train: trainSet, dev: devSet, test, fallback: false, sizes: { train: trainSet.length, dev: devSet.length, test: test.length } };
  }
  // fallback: everything from the validation split, test first
  const pool = data.validation;
  const test = Math.min(sizes.test, Math.ceil(pool.length / 2));
  const dev = Math.min(sizes.dev, Math.ceil(pool.length / 4));
  const [testSet, devSet, trainSet] = splitByGroup(pool, seed, `${stream}:fallback`, [test, dev, sizes.train]);
  return { train: trainSet, dev: devSet, test: testSet, fallback: true, sizes: { train: trainSet.length, dev: devSet.length, test: testSet.length } };
}

/** Loads a task's files and samples its splits by the protocol. Throws when a split asked for comes out empty (header-only files). */
export function loadTaskData(task: TaskDefinition, dataDir: string, seed: number, sizes: SampleSizes = DEFAULT_SIZES): SampledData {
  const sampled = sampleSplits(task.name, task.load(dataDir), seed, sizes, task.userSplits ?? false);
  const empty = (["train", "dev", "test"] as const).filter((k) => sizes[k] > 0 && sampled.sizes[k] === 0);
  if (empty.length) throw new Error(`task ${task.name} in ${dataDir}: no examples for ${empty.join(", ")} (its data files hold none)`);
  return sampled;
}
