#!/usr/bin/env node
// Builds data/sst2/, the SST-2 sample the demo ships with (the library never
// reads ../shared): 2000 sentences drawn (seeded, our own generator) from GLUE
// SST-2's train split, from which the data protocol takes 1000 train + 500 dev,
// and GLUE's whole 872-sentence dev split, which serves as the test split.
// Usage: node scripts/make-sst2-sample.mjs [SHARED_NLP_DIR]   (after the TypeScript build)
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Xoshiro128 } from "../dist/src/peft/rng.js";

const src = process.argv[2] ?? join(import.meta.dirname, "..", "..", "shared", "data", "nlp", "sst2");
const out = join(import.meta.dirname, "..", "data", "sst2");
const SAMPLE = 2000;

const read = (f) => readFileSync(join(src, f), "utf8").split("\n").filter((l) => l.trim() !== "");
const [header, ...train] = read("glue_sst2_train.tsv");
const dev = read("glue_sst2_dev.tsv");
const rng = new Xoshiro128(0, "sst2-sample");
const idx = train.map((_, i) => i);
for (let i = idx.length - 1; i > 0; i--) { const j = rng.below(i + 1); [idx[i], idx[j]] = [idx[j], idx[i]]; }
const picked = idx.slice(0, SAMPLE).sort((a, b) => a - b).map((i) => train[i]);
mkdirSync(out, { recursive: true });
writeFileSync(join(out, "glue_sst2_train.tsv"), [header, ...picked].join("\n") + "\n");
writeFileSync(join(out, "glue_sst2_dev.tsv"), dev.join("\n") + "\n");
console.log(`data/sst2: ${picked.length} train-split sentences (of ${train.length}), ${dev.length - 1} dev-split sentences`);
