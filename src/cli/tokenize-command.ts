// `randmask tokenize`: the ids (with the special tokens tokenizer_config.json
// adds), tokens and character offsets a model's tokenizer gives for a text —
// the first thing to check when a template misbehaves.
import { readTextFile } from "../io/text-file.js";
import { BpeTokenizer } from "../tokenizer/bpe-tokenizer.js";
import { UsageError, defineCommand } from "./args.js";
import { checkLanguageModel } from "./shared-flags.js";

export const tokenizeCommand = defineCommand({
  name: "tokenize",
  summary: "Print the ids (with the special tokens tokenizer_config.json adds), tokens and character offsets a model's tokenizer gives for a text.",
  usage: "randmask tokenize (--model DIR | --tokenizer DIR) (--text STR | --file F) [--json]",
  flags: {
    model: { type: "dir", description: "Hugging Face model folder holding the tokenizer files" },
    tokenizer: { type: "dir", defaultText: "--model", description: "folder with the tokenizer files" },
    text: { type: "string", description: "the text to tokenise" },
    file: { type: "file", arg: "F", description: "a file whose whole content is the text" },
    json: { type: "boolean", description: "one JSON line: ids, tokens, offsets, decoded" },
  },
  example: "tokenize --model ~/opt-125m --text 'It was great.'",
  run(v) {
    if (v.tokenizer === undefined && v.model !== undefined) checkLanguageModel("model", v.model);
    tokenize(v.tokenizer ?? v.model, v.text, v.file, v.json);
  },
});

function tokenize(dir: string | undefined, textFlag: string | undefined, file: string | undefined, json: boolean): void {
  if (dir === undefined) throw new UsageError("give --model DIR or --tokenizer DIR");
  if ((textFlag === undefined) === (file === undefined)) throw new UsageError("give exactly one of --text STR or --file F");
  let text: string;
  if (textFlag !== undefined) text = textFlag;
  else text = readTextFile(file!);
  const tok = BpeTokenizer.fromDir(dir);
  const ids = tok.encode(text);
  const inner = tok.encodeWithOffsets(text);
  // special tokens the config adds have no span in the text
  const lead = tok.addBos && tok.bosId !== null ? 1 : 0;
  const offsets: ([number, number] | null)[] = ids.map((_, i) => (i >= lead && i < lead + inner.ids.length ? inner.offsets[i - lead] : null));
  const tokens = tok.tokens(ids);
  if (json) {
    process.stdout.write(JSON.stringify({ ids, tokens, offsets, decoded: tok.decode(ids) }) + "\n");
    return;
  }
  process.stdout.write(`${ids.length} tokens\n`);
  ids.forEach((id, i) => {
    const span = offsets[i];
    process.stdout.write(`${String(id).padStart(7)}  ${JSON.stringify(tokens[i]).padEnd(16)} ${span ? `[${span[0]}, ${span[1]})  ${JSON.stringify(text.slice(span[0], span[1]))}` : "(special)"}\n`);
  });
}
