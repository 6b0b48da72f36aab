// `generate()` and `randmask generate`: greedy equals the evaluation's
// decoding, seeded sampling is reproducible, stop strings and streaming.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { liveHandles, noGrad, tidy } from "../src/engine/index.js";
import { PeftModel } from "../src/peft/peft-model.js";
import { OPTForCausalLM } from "../src/models/opt.js";
import { greedyGenerate } from "../src/models/generate.js";
import { generate } from "../src/models/text-generation.js";
import { BpeTokenizer } from "../src/tokenizer/bpe-tokenizer.js";
import { repoRoot, tinyTextModel } from "./helpers.js";

const cli = join(repoRoot, "dist", "src", "cli", "main.js");
const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: "utf8" });
const work = mkdtempSync(join(tmpdir(), "randmask-gen-"));
const dir = tinyTextModel(join(work, "model"));
const model = OPTForCausalLM.load(dir);
const tok = BpeTokenizer.fromDir(dir);
const prompts = ["The movie was", "Once upon a time, in a land far away,", "Q: 2+2?\nA:"];

test("greedy generate() equals greedyGenerate (the evaluation's decoding) on the same prompts", () => {
  const before = liveHandles().count;
  const got = generate(model, tok, prompts, { maxNewTokens: 12 });
  const ids = greedyGenerate(model, prompts.map((p) => tok.encode(p)), { maxNewTokens: 12, stopTokenIds: [tok.eosId!] });
  assert.deepEqual(got.map((g) => g.tokens), ids);
  got.forEach((g, i) => {
    assert.equal(g.text, tok.decode(ids[i]));
    assert.equal(g.prompt, prompts[i]);
    assert.equal(g.finishReason, ids[i].length < 12 ? "stop" : "length");
  });
  // one prompt per batch gives the same tokens (left padding changes nothing)
  assert.deepEqual(generate(model, tok, prompts, { maxNewTokens: 12, batchSize: 1 }).map((g) => g.tokens), ids);
  assert.equal(liveHandles().count, before, "generation leaked tensor handles");
});

test("seeded sampling is reproducible, differs across seeds, and does not depend on batching", () => {
  const opts = { maxNewTokens: 16, temperature: 1.0, seed: 1 };
  const a = generate(model, tok, prompts, opts).map((g) => g.tokens);
  assert.deepEqual(generate(model, tok, prompts, opts).map((g) => g.tokens), a);
  assert.deepEqual(generate(model, tok, prompts, { ...opts, batchSize: 1 }).map((g) => g.tokens), a);
  const b = generate(model, tok, prompts, { ...opts, seed: 2 }).map((g) => g.tokens);
  assert.notDeepEqual(b, a);
  // top-k 1 leaves only the argmax: sampling then equals greedy decoding
  const greedy = generate(model, tok, prompts, { maxNewTokens: 16 }).map((g) => g.tokens);
  assert.deepEqual(generate(model, tok, prompts, { ...opts, topK: 1 }).map((g) => g.tokens), greedy);
  assert.notDeepEqual(a, greedy);
});

test("a stop string ends the text before it; streamed pieces add up to the text", () => {
  const free = generate(model, tok, prompts, { maxNewTokens: 20 });
  const stop = free[0].text.slice(6, 9);
  assert.ok(stop.length === 3);
  const pieces = prompts.map(() => "");
  const cut = generate(model, tok, prompts, { maxNewTokens: 20, stop: [stop], onText: (i, s) => { pieces[i] += s; } });
  assert.equal(cut[0].text, free[0].text.slice(0, free[0].text.indexOf(stop)));
  assert.equal(cut[0].finishReason, "stop");
  cut.forEach((g, i) => assert.equal(pieces[i], g.text, `prompt ${i}: streamed text`));
  const streamed = prompts.map(() => "");
  generate(model, tok, prompts, { maxNewTokens: 20, temperature: 0.7, seed: 3, onText: (i, s) => { streamed[i] += s; } })
    .forEach((g, i) => assert.equal(streamed[i], g.text));
});

test("out-of-range options are refused by name", () => {
  assert.throws(() => generate(model, tok, ["x"], { maxNewTokens: 64 }), /maxNewTokens must be an integer in \[1, 63\]/);
  assert.throws(() => generate(model, tok, ["x"], { topK: 5 }), /give a temperature > 0/);
});

test("randmask generate: --json lines equal the library's generations, for a prompt and for a file", () => {
  const lib = generate(model, tok, prompts, { maxNewTokens: 10, temperature: 0.9, topP: 0.95, seed: 5 });
  const file = join(work, "prompts.jsonl");
  writeFileSync(file, prompts.map((prompt) => JSON.stringify({ prompt })).join("\n") + "\n");
  const r = run("generate", "--model", dir, "--file", file, "--max-new-tokens", "10", "--temperature", "0.9", "--top-p", "0.95",
    "--seed", "5", "--batch-size", "2", "--json");
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
  assert.deepEqual(lines.map((l) => [l.index, l.prompt, l.text, l.tokens]), lib.map((g, i) => [i, g.prompt, g.text, g.tokens]));
  const txt = join(work, "prompts.txt");
  writeFileSync(txt, prompts.map((p) => p.replace("\n", " ")).join("\n"));
  const plain = run("generate", "--model", dir, "--prompt", prompts[0], "--max-new-tokens", "10");
  assert.equal(plain.status, 0, plain.stderr);
  assert.equal(plain.stdout, `${prompts[0]}${generate(model, tok, [prompts[0]], { maxNewTokens: 10 })[0].text}\n`);
  const fromTxt = run("generate", "--model", dir, "--file", txt, "--max-new-tokens", "4", "--json");
  assert.equal(fromTxt.stdout.trim().split("\n").length, 3);
});

test("randmask generate --adapter decodes with the adapter applied", () => tidy(() => {
  const peft = PeftModel.create(model, "lora", { r: 4, seed: 1 });
  noGrad(() => peft.trainableParams().forEach((p) => p.copy_(p.add(0.3))));
  const adapter = join(work, "adapter");
  peft.save(adapter);
  const withAdapter = generate(model, tok, prompts, { maxNewTokens: 8 });
  peft.remove();
  const base = generate(model, tok, prompts, { maxNewTokens: 8 });
  assert.notDeepEqual(withAdapter.map((g) => g.tokens), base.map((g) => g.tokens));
  const file = join(work, "adapter-prompts.jsonl");
  writeFileSync(file, prompts.map((prompt) => JSON.stringify({ prompt })).join("\n"));
  const r = run("generate", "--model", dir, "--adapter", adapter, "--file", file, "--max-new-tokens", "8", "--json");
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(r.stdout.trim().split("\n").map((l) => JSON.parse(l).tokens), withAdapter.map((g) => g.tokens));
}));

test("randmask generate streams on a terminal", { skip: spawnSync("script", ["--version"]).status !== 0 }, () => {
  const text = generate(model, tok, [prompts[0]], { maxNewTokens: 8 })[0].text;
  const cmd = `${JSON.stringify(process.execPath)} ${JSON.stringify(cli)} generate --model ${JSON.stringify(dir)} --prompt 'The movie was' --max-new-tokens 8`;
  const r = spawnSync("script", ["-qec", cmd, "/dev/null"], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.equal(r.stdout.replace(/\r\n/g, "\n"), `${prompts[0]}${text}\n`);
});

test("randmask generate: flag faults are usage errors before the model is read", () => {
  const cases: [string[], RegExp][] = [
    [["--model", join(work, "nope"), "--prompt", "x"], /--model \S*nope: folder does not exist/],
    [["--model", dir], /give --prompt STR or --file FILE/],
    [["--model", dir, "--prompt", "x", "--file", join(dir, "config.json")], /give --prompt STR or --file FILE/], // --file must exist: checked first
    [["--model", dir, "--prompt", "x", "--top-k", "5"], /--top-k\/--top-p apply to sampling only/],
    [["--model", dir, "--prompt", "x", "--top-p", "1.5", "--temperature", "1"], /--top-p "1.5": expected in \(0, 1\]/],
    [["--model", dir, "--file", join(work, "missing.txt")], /--file \S*missing.txt: file does not exist/],
    [["--model", dir, "--prompt", "x", "--max-new-tokens", "64"], /--max-new-tokens 64: the model has 64 positions; at most 63/],
  ];
  for (const [args, re] of cases) {
    const r = run("generate", ...args);
    assert.equal(r.status, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, re);
  }
});
