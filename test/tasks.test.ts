// Task loaders and MeZO templates on real rows of ../shared/data/nlp, the
// data protocol, metrics, and bad data.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { getTask } from "../src/tasks/registry.js";
import { sampleSplits } from "../src/tasks/sampling.js";
import type { Example } from "../src/tasks/types.js";
import { exactMatch, normalizeAnswer, tokenF1, bestOver } from "../src/eval/squad-metrics.js";
import { encodeContinuation, encodeOptions } from "../src/eval/encode.js";
import { BpeTokenizer } from "../src/tokenizer/bpe-tokenizer.js";
import { sharedDir } from "./helpers.js";

const data = join(sharedDir, "data", "nlp");
const first = (task: string): Example => getTask(task, data).load(data).validation[0];
const tmp = () => mkdtempSync(join(tmpdir(), "randmask-tasks-"));

test("SST-2 template", () => {
  assert.deepEqual(first("sst2"), { prompt: "one long string of cliches . It was", options: [" terrible", " great"], label: 0 });
});

test("RTE template", () => {
  const e = first("rte");
  assert.equal(e.prompt, "Dana Reeve, the widow of the actor Christopher Reeve, has died of lung cancer at age 44, according to the Christopher Reeve Foundation.\nDoes this mean that \"Christopher Reeve had an accident.\" is true? Yes or No?\n");
  assert.deepEqual(e.options, ["Yes", "No"]);
  assert.equal(e.label, 1); // not_entailment
});

test("CB template", () => {
  const e = first("cb");
  assert.equal(e.prompt, "Suppose Valence the void-brain, Valence the virtuous valet. Why couldn't the figger choose his own portion of titanic anatomy to shaft? Did he think he was helping? Can we infer that \"Valence was helping\"? Yes, No, or Maybe?\n");
  assert.deepEqual(e.options, ["Yes", "No", "Maybe"]);
  assert.equal(e.label, 1); // contradiction
});

test("BoolQ template: question gets '?' and a capital", () => {
  const e = first("boolq");
  assert.ok(e.prompt.startsWith("Ethanol fuel -- All biomass goes through"));
  assert.ok(e.prompt.endsWith(" Does ethanol take more energy make that produces?\n"));
  assert.deepEqual(e.options, ["No", "Yes"]);
});

test("WSC template", () => {
  const e = first("wsc");
  assert.equal(e.prompt, "Bernard , who had not told the government official that he was less than 21 when he filed for a homestead claim, did not consider that he had done anything dishonest. Still, anyone who knew that he was 19 years old could take his claim away from him .\nIn the previous sentence, does the pronoun \"him\" refer to anyone? Yes or No?\n");
  assert.deepEqual(e.options, ["No", "Yes"]);
  assert.equal(e.label, 0);
});

test("WiC template", () => {
  const e = first("wic");
  assert.equal(e.prompt, "Does the word \"class\" have the same meaning in these two sentences? Yes, No?\nAn emerging professional class.\nApologizing for losing your temper, even though you were badly provoked, showed real class.\n");
  assert.deepEqual(e.options, ["No", "Yes"]);
  assert.equal(e.label, 0);
});

test("COPA template: period dropped, connective, first word lower-cased", () => {
  const e = first("copa");
  assert.equal(e.prompt, "The man turned on the faucet so");
  assert.deepEqual(e.options, [" the toilet filled with water.", " water flowed from the spout."]);
  assert.equal(e.prompt + e.options![1], "The man turned on the faucet so water flowed from the spout.");
  assert.equal(e.label, 1);
});

test("MultiRC: one example per answer option, 4,848 from 83 passages", () => {
  const v = getTask("multirc", data).load(data).validation;
  assert.equal(v.length, 4848);
  assert.equal(new Set(v.map((e) => e.group)).size, 83);
  assert.ok(v[0].prompt.startsWith("What causes a change in motion?"));
  assert.ok(v[0].prompt.endsWith("\nQuestion: Would the mass of a baseball affect how much force you have to use to pick it up?\nI found this answer \"No\". Is that correct? Yes or No?\n"));
  assert.equal(v[0].label, 0);
});

test("ReCoRD: one example per query, candidates are distinct entities, equivalents all correct", () => {
  const v = getTask("record", data).load(data).validation;
  assert.equal(v.length, 32);
  const e = v[0];
  assert.ok(e.prompt.startsWith("Islamabad, Pakistan (CNN) -- The 24-year-old son"));
  assert.ok(e.prompt.endsWith("\n-"));
  assert.ok(!e.prompt.includes("@highlight"));
  assert.equal(e.options!.length, 11);
  const correct = e.correct!.map((i) => e.options![i]);
  assert.deepEqual(correct.sort(), [" They will sew our lips, but we will chant, 'Long live Benazir Bhutto.'", " They will sew our lips, but we will chant, 'Long live Bhutto.'"]);
});

test("SQuAD template and DROP's official format", () => {
  const s = getTask("squad", data).load(data).validation;
  assert.equal(s.length, 10570);
  assert.ok(s[0].prompt.startsWith("Title: "));
  assert.ok(/\nContext: .*\nQuestion: .*\nAnswer:$/s.test(s[0].prompt));
  const dir = tmp();
  mkdirSync(join(dir, "drop"));
  const doc = { nfl_1: { passage: "The Bears scored 3 touchdowns.", qa_pairs: [
    { question: " How many touchdowns? ", query_id: "q1", answer: { number: "3", date: { day: "", month: "", year: "" }, spans: [] }, validated_answers: [{ number: "", spans: ["three"], date: {} }] },
    { question: "Who scored?", query_id: "q2", answer: { number: "", date: { day: "", month: "", year: "" }, spans: ["the Bears"] } },
  ] } };
  writeFileSync(join(dir, "drop", "drop_dataset_train.json"), JSON.stringify(doc));
  writeFileSync(join(dir, "drop", "drop_dataset_dev.json"), JSON.stringify(doc));
  const d = getTask("drop", dir).load(dir);
  assert.deepEqual(d.validation[0], { prompt: "Passage: The Bears scored 3 touchdowns.\nQuestion: How many touchdowns?\nAnswer:", answers: ["3", "three"], group: "nfl_1" });
  assert.deepEqual(d.validation[1].answers, ["the Bears"]);
});

test("SQuAD metrics: normalisation, F1 and EM on known cases", () => {
  assert.equal(normalizeAnswer("The  Eiffel-Tower!"), "eiffeltower");
  assert.equal(normalizeAnswer("a cat and an apple"), "cat and apple");
  assert.equal(exactMatch("the Denver Broncos", "Denver Broncos"), 1);
  assert.equal(tokenF1("Denver Broncos", "Denver Broncos"), 1);
  assert.equal(tokenF1("the Broncos won", "Denver Broncos"), 0.5); // p = 1/2, r = 1/2
  assert.equal(tokenF1("nothing alike", "Denver Broncos"), 0);
  assert.ok(Math.abs(tokenF1("Denver", "Denver Broncos") - 2 / 3) < 1e-12);
  assert.equal(bestOver(["October 1973", "1973"], "in 1973", tokenF1), 2 / 3);
});

test("sampling is deterministic per seed, disjoint, and falls back to the validation split when train is tiny", () => {
  const rte = getTask("rte", data).load(data);
  const a = sampleSplits("rte", rte, 0), b = sampleSplits("rte", rte, 0), c = sampleSplits("rte", rte, 1);
  assert.deepEqual(a.train.map((e) => e.prompt), b.train.map((e) => e.prompt));
  assert.notDeepEqual(a.train.map((e) => e.prompt), c.train.map((e) => e.prompt));
  assert.deepEqual(a.sizes, { train: 1000, dev: 500, test: 277 });
  assert.equal(a.fallback, false);
  const trainSet = new Set(a.train);
  assert.ok(a.dev.every((e) => !trainSet.has(e)));

  const multirc = sampleSplits("multirc", getTask("multirc", data).load(data), 0);
  assert.equal(multirc.fallback, true);
  const groups = (xs: Example[]) => new Set(xs.map((e) => e.group));
  const [tr, dv, te] = [groups(multirc.train), groups(multirc.dev), groups(multirc.test)];
  for (const g of tr) assert.ok(!dv.has(g) && !te.has(g), "a passage is on two sides");
  for (const g of dv) assert.ok(!te.has(g), "a passage is on two sides");
  assert.deepEqual(multirc.sizes, { train: 1000, dev: 500, test: 1000 });
});

test("bad input: unknown task, missing file, malformed row with file:line, option with zero tokens", () => {
  assert.throws(() => getTask("mnli", data), /unknown task 'mnli' \(known: sst2, rte, /);
  const dir = tmp();
  assert.throws(() => getTask("rte", dir).load(dir), /rte\/train\.jsonl: data file not found/);
  writeFileSync(join(dir, "train.jsonl"), '{"prompt": "a", "options": ["x", "y"], "label": 0}\n{"prompt": "b", "options": ["x", "y"], "label": 5}\n');
  assert.throws(() => getTask("jsonl", dir), /train\.jsonl:2: field "label" must be an integer in \[0, 2\), got 5/);
  writeFileSync(join(dir, "train.jsonl"), '{"prompt": "a", "options": ["x", "y"], "label": 0}\n{oops\n');
  assert.throws(() => getTask("jsonl", dir), /train\.jsonl:2: not valid JSON/);
  const tok = BpeTokenizer.fromDir(join(sharedDir, "tokenizers", "opt"));
  assert.throws(() => encodeContinuation(tok, "It was great", "", 100), /example: option "" tokenises to no tokens after the prompt/);
});

test("option scoring moves the prompt's trailing whitespace into the option (lm-evaluation-harness); an option adding no token names its row", () => {
  const tok = BpeTokenizer.fromDir(join(sharedDir, "tokenizers", "opt"));
  const dir = tmp();
  const rows = [
    { prompt: "The weather was lovely. It was ", options: ["great day", "terrible day"], label: 0 },
    { prompt: "It was grea", options: ["t", " bad"], label: 0 },
  ];
  for (const f of ["train.jsonl", "validation.jsonl"]) writeFileSync(join(dir, f), rows.map((r) => JSON.stringify(r)).join("\n") + "\n");
  const train = getTask("jsonl", dir).load(dir).train!;
  const [great, terrible] = encodeOptions(tok, [train[0]], 100)[0];
  // the whole of " great day" / " terrible day" is scored, not just " day"
  for (const [row, text] of [[great, " great day"], [terrible, " terrible day"]] as const) {
    assert.equal(tok.decode(row.ids.slice(row.start)), text);
    assert.deepEqual(row.ids.slice(row.start), tok.encode("The weather was lovely. It was" + text).slice(-2));
  }
  // "It was grea" + "t" is "It was great": fewer tokens than the prompt alone, so the option adds none
  assert.throws(() => encodeOptions(tok, [train[1]], 100), /train\.jsonl:2: option "t" tokenises to no tokens after the prompt/);
});
