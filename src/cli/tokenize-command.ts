// `randmask tokenize`: the ids (with the special tokens tokenizer_config.json
// adds), tokens and character offsets a model's tokenizer gives for a text —
// the first thing to check when a template misbehaves.
import { existsSync, readFileSync } from "node:fs";
import { BpeTokenizer } from "../tokenizer/bpe-tokenizer.js";
import { UsageError, parseFlags, requireString } from "./args.js";

export function tokenizeCommand(argv: string[]): void {
  const flags = parseFlags(argv, { model: { type: "string" }, tokenizer: { type: "string" }, text: { type: "string" }, file: { type: "string" }, json: { type: "boolean" } });
  const dir = (flags.tokenizer as string | undefined) ?? requireString(flags, "model");
  if ((flags.text === undefined) === (flags.file === undefined)) throw new UsageError("give exactly one of --text STR or --file F");
  let text: string;
  if (flags.text !== undefined) text = String(flags.text);
  else {
    const file = String(flags.file);
    if (!existsSync(file)) throw new UsageError(`--file ${file}: no such file`);
    text = readFileSync(file, "utf8");
  }
  const tok = BpeTokenizer.fromDir(dir);
  const ids = tok.encode(text);
  const inner = tok.encodeWithOffsets(text);
  // special tokens the config adds have no span in the text
  const lead = tok.addBos && tok.bosId !== null ? 1 : 0;
  const offsets: ([number, number] | null)[] = ids.map((_, i) => (i >= lead && i < lead + inner.ids.length ? inner.offsets[i - lead] : null));
  const tokens = tok.tokens(ids);
  if (flags.json) {
    process.stdout.write(JSON.stringify({ ids, tokens, offsets, decoded: tok.decode(ids) }) + "\n");
    return;
  }
  process.stdout.write(`${ids.length} tokens\n`);
  ids.forEach((id, i) => {
    const span = offsets[i];
    process.stdout.write(`${String(id).padStart(7)}  ${JSON.stringify(tokens[i]).padEnd(16)} ${span ? `[${span[0]}, ${span[1]})  ${JSON.stringify(text.slice(span[0], span[1]))}` : "(special)"}\n`);
  });
}
