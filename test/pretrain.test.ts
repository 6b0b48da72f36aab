// `randmask pretrain`: exact resume, the token cache, packing and bad input.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { repoRoot, sharedDir } from "./helpers.js";
import { BpeTokenizer } from "../src/tokenizer/bpe-tokenizer.js";
import { CachedEncoder, readTokens, tokenizeSource, tokenizerHash } from "../src/train/token-cache.js";
import { PackedCorpus } from "../src/train/packing.js";
import { pretrainLr, type PretrainConfig } from "../src/train/pretrain.js";

const cli = join(repoRoot, "dist", "src", "cli", "main.js");
const tokDir = join(sharedDir, "tokenizers", "opt");
const run = (args: string[], env: Record<string, string> = {}) =>
  spawnSync(process.execPath, [cli, "pretrain", ...args], { encoding: "utf8", env: { ...process.env, RANDMASK_THREADS: "1", ...env } });

function fixture(): { dir: string; config: string; txt: string; jsonl: string } {
  const dir = mkdtempSync(join(tmpdir(), "rm-pretrain-"));
  const shakespeare = readFileSync(join(sharedDir, "data", "corpora", "tinyshakespeare.txt"), "utf8");
  const txt = join(dir, "a.txt");
  writeFileSync(txt, shakespeare.slice(0, 12000));
  const jsonl = join(dir, "b.jsonl");
  writeFileSync(jsonl, shakespeare.slice(12000, 24000).split("\n\n").map((t) => JSON.stringify({ text: t })).join("\n") + "\n");
  const config = join(dir, "config.json");
  writeFileSync(config, JSON.stringify({
    model_type: "opt", vocab_size: 50272, hidden_size: 16, num_hidden_layers: 2, num_attention_heads: 2, ffn_dim: 32,
    max_position_embeddings: 64, word_embed_proj_dim: 16, do_layer_norm_before: true, dropout: 0.1, attention_dropout: 0.1,
  }));
  return { dir, config, txt, jsonl };
}

const common = (f: ReturnType<typeof fixture>) => ["--config", f.config, "--tokenizer", tokDir, "--data", `${f.txt},${f.jsonl}:2`,
  "--block-size", "32", "--batch-size", "4", "--grad-accum", "2", "--lr", "3e-3", "--warmup-steps", "2", "--max-steps", "8",
  "--eval-every", "3", "--holdout-tokens", "64", "--dtype", "fp32", "--seed", "5", "--quiet"];
/** `args` with each flag of `extra` (flag, value pairs) given there instead: a flag may be given once. */
function withFlags(args: string[], ...extra: string[]): string[] {
  const given = new Set(extra.filter((_, i) => i % 2 === 0));
  return [...args.filter((x, i) => !given.has(x) && !given.has(args[i - 1])), ...extra];
}
const log = (out: string) => readFileSync(join(out, "log.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));

test("a run stopped and resumed follows the uninterrupted one bitwise (fp32, dropout on)", () => {
  const f = fixture();
  const a = join(f.dir, "a");
  const r1 = run(withFlags(common(f), "--out", a));
  assert.equal(r1.status, 0, r1.stderr);
  const b = join(f.dir, "b");
  const r2 = run(withFlags(common(f), "--out", b), { RANDMASK_STOP_AFTER_STEP: "3" });
  assert.equal(r2.status, 130, r2.stderr); // stopped early, as by a signal: not 0, so a script does not use the model as finished
  assert.equal(JSON.parse(readFileSync(join(b, "checkpoint", "state.json"), "utf8")).step, 3);
  const r3 = run(["--resume", b, "--quiet"]);
  assert.equal(r3.status, 0, r3.stderr);
  const la = log(a), lb = log(b);
  assert.equal(la.filter((e) => e.type === "train").length, 8);
  assert.deepEqual(lb, la);
  // the output folder is an ordinary model folder other commands load
  for (const file of ["config.json", "model.safetensors", "vocab.json", "merges.txt", "tokenizer_config.json", "loss.svg", "loss.png"]) assert.ok(existsSync(join(b, file)), file);
  const info = spawnSync(process.execPath, [cli, "info", "--model", b, "--json"], { encoding: "utf8" });
  assert.equal(info.status, 0, info.stderr);
  assert.equal(JSON.parse(info.stdout).layers, 2);
  assert.equal(readFileSync(join(a, "model.safetensors")).equals(readFileSync(join(b, "model.safetensors"))), true);
});

test("a checkpoint removes the temp folder and links a run killed while checkpointing left (a live process's stay)", () => {
  const f = fixture();
  const b = join(f.dir, "b");
  assert.equal(run(withFlags(common(f), "--max-steps", "2", "--out", b), { RANDMASK_STOP_AFTER_STEP: "1" }).status, 130);
  const dead = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" }).stdout;
  const stale = [join(b, `.checkpoint.tmp-${dead}`), join(b, `.model.safetensors.tmp-${dead}`)];
  mkdirSync(stale[0]);
  writeFileSync(join(stale[0], "model.safetensors"), "half-written weights");
  writeFileSync(stale[1], "a link to an older checkpoint's weights");
  const live = join(b, `.checkpoint.tmp-${process.pid}`); // another process's write in progress
  mkdirSync(live);
  const r = run(["--resume", b, "--quiet"]);
  assert.equal(r.status, 0, r.stderr);
  for (const p of stale) assert.ok(!existsSync(p), `${p} removed`); // they stayed before, for good
  assert.ok(existsSync(live));
});

test("bad input: one clear error each, nothing written or overwritten", () => {
  const f = fixture();
  const empty = join(f.dir, "empty.txt");
  writeFileSync(empty, "");
  let r = run(withFlags(common(f), "--data", empty, "--out", join(f.dir, "o1")));
  assert.equal(r.status, 1);
  assert.match(r.stderr, /empty\.txt: empty corpus file/);
  assert.equal(existsSync(join(f.dir, "o1")), false);
  const binary = join(f.dir, "bin.txt");
  writeFileSync(binary, Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 0, 0, 13, 1, 2, 3]));
  r = run(withFlags(common(f), "--data", binary, "--out", join(f.dir, "o2")));
  assert.match(r.stderr, /bin\.txt: binary file/);
  r = run(withFlags(common(f), "--block-size", "65", "--out", join(f.dir, "o3")));
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--block-size 65 exceeds the model's max_position_embeddings 64/);
  // a finished run, then misuse of it
  const a = join(f.dir, "a");
  assert.equal(run(withFlags(common(f), "--max-steps", "2", "--out", a)).status, 0);
  const before = readFileSync(join(a, "checkpoint", "state.json"));
  const other = join(f.dir, "other.json");
  writeFileSync(other, readFileSync(f.config, "utf8").replace('"hidden_size":16', '"hidden_size":32').replace('"word_embed_proj_dim":16', '"word_embed_proj_dim":32'));
  r = run(withFlags(common(f), "--config", other, "--init-from", a, "--out", join(f.dir, "o4")));
  assert.equal(r.status, 2);
  assert.match(r.stderr, /contradicts the checkpoint in --init-from .*hidden_size 32 vs 16/);
  // continuing from a checkpoint folder: its config and tokenizer by default
  const cont = join(f.dir, "cont");
  r = run([...withFlags(common(f), "--max-steps", "1").filter((x, i, all) => x !== "--config" && all[i - 1] !== "--config" && x !== "--tokenizer" && all[i - 1] !== "--tokenizer"), "--init-from", a, "--out", cont]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(log(cont).filter((e) => e.type === "train").length, 1);
  r = run(["--resume", a, "--lr", "1e-2", "--max-steps", "2"]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /holds another run \(differs in --lr\)/);
  r = run(["--resume", a, "--data", f.txt]);
  assert.match(r.stderr, /differs in --data/);
  r = run(withFlags(common(f), "--out", a));
  assert.match(r.stderr, /holds a pretraining run already/);
  r = run(withFlags(common(f), "--out", f.dir));
  assert.match(r.stderr, /is not empty/);
  assert.deepEqual(readFileSync(join(a, "checkpoint", "state.json")), before);
});

test("a stopped run exits 128 + the signal; a finished run resumed is left untouched; --resume checks --out, --cache-dir, --tokenizer", async () => {
  const f = fixture();
  // a real SIGTERM mid-run: checkpoint written, exit 143 (it exited 0 before, and a script went on to use the half-trained model)
  const b = join(f.dir, "b");
  const child = spawn(process.execPath, [cli, "pretrain", ...withFlags(common(f).filter((x) => x !== "--quiet"), "--max-steps", "100000", "--out", b)],
    { env: { ...process.env, RANDMASK_THREADS: "1" }, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  let sent = false;
  child.stderr!.on("data", (d: Buffer) => {
    stderr += d.toString();
    if (!sent && /pretrain \d+\/100000/.test(stderr)) sent = child.kill("SIGTERM");
  });
  const code = await new Promise<number | null>((done) => child.once("close", (c: number | null) => done(c)));
  assert.equal(code, 143, stderr);
  assert.match(stderr, /stopped \(SIGTERM\) at step \d+; checkpoint written, resume with --resume/);
  // a finished run: resuming it again changes nothing (it evaluated and checkpointed again before: a second final eval in log.jsonl)
  const a = join(f.dir, "a");
  assert.equal(run(withFlags(common(f), "--max-steps", "2", "--out", a)).status, 0);
  const files = ["log.jsonl", "model.safetensors", join("checkpoint", "state.json"), join("checkpoint", "optimizer.safetensors")];
  const before = files.map((x) => readFileSync(join(a, x)));
  let r = run(["--resume", a]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /the run is complete \(step 2 of 2\); nothing to do/);
  files.forEach((x, i) => assert.deepEqual(readFileSync(join(a, x)), before[i], x));
  // flags a resumed run would ignore are checked against the run
  r = run(["--resume", a, "--out", join(f.dir, "elsewhere")]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--out .*elsewhere: a resumed run continues in its own folder \(--resume .*\); drop --out/);
  assert.ok(!existsSync(join(f.dir, "elsewhere")));
  r = run(["--resume", a, "--cache-dir", join(f.dir, "other-cache")]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /differs in --cache-dir/);
  r = run(["--resume", a, "--tokenizer", join(sharedDir, "fixtures", "llama-tokenizer-tiny")]);
  assert.match(r.stderr, /differs in --tokenizer/);
  assert.equal(run(["--resume", a, "--tokenizer", tokDir, "--out", a, "--quiet"]).status, 0);
  // --data's format and --block-size are usage errors (exit 2) before anything is read
  for (const [args, re] of [
    [["--data", `${f.txt}:0`], /--data .*a\.txt:0: the weight after ':' must be a positive number/],
    [["--data", f.dir], /--data .*: expected a \.txt or \.jsonl file/],
    [["--block-size", "1"], /--block-size "1": expected an integer ≥ 2/],
    [["--config", join(f.dir, "missing.json")], /--config .*missing\.json: no such file/],
  ] as [string[], RegExp][]) {
    const o = join(f.dir, "o");
    r = run(withFlags(common(f), ...args, "--out", o));
    assert.equal(r.status, 2, args.join(" "));
    assert.match(r.stderr, re);
    assert.ok(!existsSync(o));
  }
});

test("a run that diverges before its first checkpoint says so (it claimed 'the last checkpoint is kept'), in train.log too", () => {
  const f = fixture();
  const out = join(f.dir, "nan");
  const r = run(withFlags(common(f), "--lr", "1e12", "--out", out));
  assert.equal(r.status, 1);
  const said = /step \d+: loss is NaN; stopping \(diverged: a lower --lr may help\); no checkpoint was written yet \(the first comes after --checkpoint-minutes\): remove .*nan to start again/;
  assert.match(r.stderr, said);
  assert.match(readFileSync(join(out, "train.log"), "utf8"), said);
});

test("the token cache is re-used when unchanged and rebuilt when the text changes; documents end with EOS", () => {
  const f = fixture();
  const tok = BpeTokenizer.fromDir(tokDir);
  const cache = join(f.dir, "cache");
  const t1 = tokenizeSource(f.jsonl, tok, tokenizerHash(tokDir), cache, true);
  const mtime = statSync(t1.file).mtimeMs;
  const t2 = tokenizeSource(f.jsonl, tok, tokenizerHash(tokDir), cache, true);
  assert.equal(t2.file, t1.file);
  assert.equal(statSync(t2.file).mtimeMs, mtime);
  const ids = readTokens(t1);
  const docs = readFileSync(f.jsonl, "utf8").trim().split("\n").map((l) => JSON.parse(l).text as string).filter(Boolean);
  assert.deepEqual([...ids], docs.flatMap((d) => [...tok.encode(d, { addBos: false }), 2]));
  writeFileSync(f.jsonl, readFileSync(f.jsonl, "utf8") + JSON.stringify({ text: "One more." }) + "\n");
  const t3 = tokenizeSource(f.jsonl, tok, tokenizerHash(tokDir), cache, true);
  assert.notEqual(t3.key, t1.key);
  assert.deepEqual([...readTokens(t3)].slice(-4), [...tok.encode("One more.", { addBos: false }), 2]);
  assert.equal(readdirSync(cache).length, 4);
  assert.deepEqual(tokenizeSource(f.jsonl, tok, "another-tokenizer", cache, true).key === t3.key, false);
});

test("the memoising encoder gives the tokenizer's own ids", () => {
  const tok = BpeTokenizer.fromDir(tokDir);
  const text = "It's 1999 — they'll say: \"naïve café\"!\n\n  Spaces   and\ttabs 3.14159 don't   matter?  日本語 ok </s> end\n";
  assert.deepEqual(new CachedEncoder(tok).encode(text), tok.encode(text, { addBos: false }));
  assert.deepEqual(new CachedEncoder(tok).encode(text.replace(" </s>", "")), tok.encode(text.replace(" </s>", ""), { addBos: false }));
});

test("packing: held-out blocks are disjoint from train blocks; weights repeat blocks; seeded order", () => {
  const a = Uint16Array.from({ length: 1000 }, (_, i) => i);
  const b = Uint16Array.from({ length: 330 }, (_, i) => 5000 + i);
  const c = new PackedCorpus([{ name: "a", tokens: a, weight: 1 }, { name: "b", tokens: b, weight: 2.5 }], 32, 100, 7);
  assert.deepEqual(c.holdout, [{ source: "a", start: 1000 - 96, end: 1000, blocks: 3 }, { source: "b", start: 330 - 96, end: 330, blocks: 3 }]);
  assert.deepEqual(c.trainBlockCounts(), [28, 7]);
  const order = c.epochOrder(0);
  assert.equal(order.length, 28 + 7 * 2 + Math.round(0.5 * 7));
  const trainTokens = new Set(c.gather(order));
  for (const t of c.gather(c.evalBlocks())) assert.equal(trainTokens.has(t), false);
  assert.deepEqual(c.epochOrder(0), order);
  assert.notDeepEqual(c.epochOrder(1), order);
  assert.notDeepEqual(new PackedCorpus(c.sources, 32, 100, 8).epochOrder(0), order);
});

test("learning rate: linear warm-up, then cosine to the minimum", () => {
  const c = { lr: 1e-3, minLr: 1e-4, warmupSteps: 10, maxSteps: 110 } as PretrainConfig;
  assert.equal(pretrainLr(c, 0), 1e-4);
  assert.equal(pretrainLr(c, 9), 1e-3);
  assert.ok(Math.abs(pretrainLr(c, 60) - 5.5e-4) < 1e-12);
  assert.ok(Math.abs(pretrainLr(c, 110) - 1e-4) < 1e-12);
});
