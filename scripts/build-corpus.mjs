#!/usr/bin/env node
// Assembles randmask's English pretraining corpus (issue 11) from ../shared/data:
// corpora/ (Tiny Shakespeare, Project Gutenberg books, IMDb reviews, Wikipedia;
// see its SOURCES.md) plus the text of the tasks' TRAIN splits (never validation
// or test). Writes one .jsonl per source ({"text": ...} per document, exact
// duplicate documents dropped across all sources) and corpus-manifest.json.
// With --tokenize it also tokenises each file into `randmask pretrain`'s token
// cache (--cache-dir), so pretraining starts at once, and records token counts.
//
//   npm run corpus -- [--data-root ../shared/data] [--out ../randmask-corpus] [--tokenize --cache-dir DIR]
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const { values: flags } = parseArgs({
  options: {
    "data-root": { type: "string", default: resolve(repo, "../shared/data") },
    out: { type: "string", default: resolve(repo, "../randmask-corpus") },
    tokenize: { type: "boolean", default: false },
    "cache-dir": { type: "string" },
    tokenizer: { type: "string" },
  },
});
const root = resolve(flags["data-root"]);
const out = resolve(flags.out);
const corpora = join(root, "corpora");
const nlp = join(root, "nlp");
if (!existsSync(join(corpora, "SOURCES.md"))) throw new Error(`${corpora}: expected the corpora folder with SOURCES.md (--data-root)`);

const jsonl = (f) => readFileSync(f, "utf8").split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l));
const blocks = (f) => readFileSync(f, "utf8").split(/\n\n+/).map((d) => d.trim()).filter(Boolean);
const txtFiles = (d) => readdirSync(d).filter((f) => f.endsWith(".txt")).sort().map((f) => join(d, f));

// SST-2's dev sentences: the demo task's test set; none may enter the corpus.
const sst2Dev = new Set(readFileSync(join(nlp, "sst2/glue_sst2_dev.tsv"), "utf8").split("\n").slice(1).filter(Boolean).map((l) => l.split("\t")[1].trim()));
const multircVal = new Set(jsonl(join(nlp, "multirc/val.jsonl")).map((r) => r.passage.text.trim()));

const IMDB = "Large Movie Review Dataset v1.0 (Maas et al., ACL 2011), aclImdb train/ only; distributed for research, cite the paper (no licence stated)";
const SOURCES = [
  { name: "tinyshakespeare", licence: "Shakespeare's plays, public domain (Karpathy's char-rnn tinyshakespeare)", docs: () => [readFileSync(join(corpora, "tinyshakespeare.txt"), "utf8")] },
  { name: "gutenberg", licence: "Project Gutenberg eBooks, public domain in the USA (see corpora/SOURCES.md)", docs: () => txtFiles(join(corpora, "gutenberg")).map((f) => readFileSync(f, "utf8").trim()) },
  { name: "reviews", licence: IMDB, docs: () => txtFiles(join(corpora, "reviews")).flatMap(blocks) },
  { name: "wiki", licence: "Wikipedia text, CC BY-SA 3.0 (and GFDL); attribution list corpora/wiki/enwiki_2015_sample_articles.tsv", docs: () => txtFiles(join(corpora, "wiki")).flatMap(blocks) },
  { name: "sst2-train", licence: "GLUE SST-2 train split (Socher et al., 2013; Rotten Tomatoes snippets), research use as distributed by GLUE", docs: () => readFileSync(join(nlp, "sst2/glue_sst2_train.tsv"), "utf8").split("\n").slice(1).filter(Boolean).map((l) => l.split("\t")[1].trim()) },
  { name: "superglue-train", licence: "SuperGLUE train splits (RTE, CB, WiC, WSC, COPA) as distributed by SuperGLUE / FewGLUE; each dataset's own terms", docs: () => [
    ...jsonl(join(nlp, "rte/train.jsonl")).map((r) => `${r.premise}\n${r.hypothesis}`),
    ...jsonl(join(nlp, "cb/train.jsonl")).map((r) => `${r.premise}\n${r.hypothesis}`),
    ...jsonl(join(nlp, "wic/train.jsonl")).flatMap((r) => [r.sentence1, r.sentence2]),
    ...jsonl(join(nlp, "wsc/train.jsonl")).map((r) => r.text),
    ...jsonl(join(nlp, "copa/train.jsonl")).map((r) => `${r.premise}\n${r.choice1}\n${r.choice2}`),
  ] },
  { name: "multirc-train-unlabeled", licence: "MultiRC (Khashabi et al., 2018) train passages, FewGLUE's unlabeled set; research use", docs: () => jsonl(join(nlp, "multirc/train_unlabeled_fewglue.jsonl")).map((r) => r.passage.text.trim()).filter((t) => !multircVal.has(t)) },
];

mkdirSync(out, { recursive: true });
const seen = new Set();
const manifest = { created: new Date().toISOString(), dataRoot: root, note: "documents are exact-deduplicated across sources (first occurrence kept, in the order listed); no validation/test split is used", sources: [] };
for (const s of SOURCES) {
  const docs = s.docs().map((d) => d.replace(/\r\n/g, "\n")).filter((d) => d.trim());
  let dropped = 0;
  const lines = [];
  for (const d of docs) {
    const h = createHash("sha1").update(d).digest("hex");
    if (seen.has(h)) { dropped++; continue; }
    seen.add(h);
    if (sst2Dev.has(d.trim())) throw new Error(`${s.name}: an SST-2 dev sentence would enter the corpus: ${JSON.stringify(d.slice(0, 80))}`);
    lines.push(JSON.stringify({ text: d }));
  }
  const file = join(out, `${s.name}.jsonl`);
  const body = lines.join("\n") + "\n";
  writeFileSync(`${file}.tmp`, body);
  renameSync(`${file}.tmp`, file);
  manifest.sources.push({ name: s.name, file, licence: s.licence, bytes: Buffer.byteLength(body), documents: lines.length, duplicatesDropped: dropped });
  process.stderr.write(`${s.name}: ${lines.length} documents (${dropped} duplicates dropped), ${(Buffer.byteLength(body) / 1e6).toFixed(1)} MB\n`);
}

// Contamination check: no SST-2 dev sentence (≥ 6 words) occurs inside the SST-2 train or task text written.
const small = manifest.sources.filter((s) => !["reviews", "wiki", "gutenberg"].includes(s.name)).map((s) => readFileSync(s.file, "utf8")).join("\n");
const leaks = [...sst2Dev].filter((d) => d.split(" ").length >= 6 && small.includes(JSON.stringify(d).slice(1, -1)));
manifest.sst2DevCheck = { devSentences: sst2Dev.size, exactDocumentMatches: 0, substringMatchesInTaskText: leaks.length, examples: leaks.slice(0, 5),
  bigSources: "reviews/wiki/gutenberg: 8-gram overlap check documented in data/corpora/SOURCES.md (0 of 776 dev sentences near-verbatim)" };
if (leaks.length) process.stderr.write(`warning: ${leaks.length} SST-2 dev sentences occur inside task train text (listed in the manifest)\n`);
manifest.recommendedWeights = { "sst2-train": 4, reviews: 1, note: "pretrain --data FILE:WEIGHT; SST-2 train sentences are short, weight 4 gives them a few percent of the tokens (the demo's domain)" };

if (flags.tokenize) {
  const { BpeTokenizer } = await import(join(repo, "dist/src/tokenizer/bpe-tokenizer.js"));
  const { tokenizeSource, tokenizerHash } = await import(join(repo, "dist/src/train/token-cache.js"));
  const tokDir = resolve(flags.tokenizer ?? resolve(repo, "../shared/tokenizers/opt"));
  const cacheDir = resolve(flags["cache-dir"] ?? join(out, "token-cache"));
  const tok = BpeTokenizer.fromDir(tokDir);
  const hash = tokenizerHash(tokDir);
  const t0 = Date.now();
  for (const s of manifest.sources) {
    const t = tokenizeSource(s.file, tok, hash, cacheDir);
    s.tokens = t.tokens;
    s.tokenFile = t.file;
  }
  manifest.tokenizer = { dir: tokDir, hash, cacheDir, seconds: (Date.now() - t0) / 1000 };
  manifest.heldOut = "randmask pretrain holds out the last ⌊--holdout-tokens/--block-size⌋ blocks of each file (at most half of it); the exact token ranges are in the run's pretrain-run.json";
}
writeFileSync(join(out, "corpus-manifest.json"), JSON.stringify(manifest, null, 2) + "\n");
process.stderr.write(`wrote ${manifest.sources.length} files and corpus-manifest.json to ${out}\n`);
