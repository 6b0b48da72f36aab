// A user's own data: DIR/train.jsonl, DIR/validation.jsonl and optionally
// DIR/test.jsonl, with rows {"prompt", "options": [...], "label": i}
// (classification) or {"prompt", "answers": [...]} (generation).
import { existsSync } from "node:fs";
import { join } from "node:path";
import { DataError, type Example, type TaskDefinition, type TaskKind } from "./types.js";
import { isArray, readJsonl, str } from "./readers.js";

function row(obj: Record<string, unknown>, where: string): Example {
  const prompt = str(obj, "prompt", where);
  if (obj.options !== undefined) {
    const options = obj.options;
    if (!isArray(options) || options.length < 2 || !options.every((o) => typeof o === "string" && o.length > 0)) {
      throw new DataError(where, 'field "options" must list at least two non-empty strings');
    }
    const label = obj.label;
    if (!Number.isInteger(label) || (label as number) < 0 || (label as number) >= options.length) {
      throw new DataError(where, `field "label" must be an integer in [0, ${options.length}), got ${JSON.stringify(label)}`);
    }
    return { prompt, options: options as string[], label: label as number, source: where };
  }
  const answers = obj.answers;
  if (!isArray(answers) || answers.length === 0 || !answers.every((a) => typeof a === "string")) {
    throw new DataError(where, 'expected either "options" + "label" (classification) or "answers" (a non-empty list of strings)');
  }
  return { prompt, answers: answers as string[], source: where };
}

function kindOf(examples: Example[], file: string): TaskKind {
  const kind = (e: Example): TaskKind => (e.options ? "classification" : "generation");
  const other = examples.find((e) => kind(e) !== kind(examples[0]));
  if (other) {
    throw new DataError(other.source ?? file, `a ${kind(other)} row, but the file's first row (${examples[0].source ?? "line 1"}) is ${kind(examples[0])}: ` +
      "a file holds classification rows (options) or generation rows (answers), not both");
  }
  return kind(examples[0]);
}

/** The generic task; its kind is read from the rows. */
export function jsonlTask(dataDir: string): TaskDefinition {
  const train = readJsonl(join(dataDir, "train.jsonl"), row);
  if (train.length === 0) throw new DataError(join(dataDir, "train.jsonl"), "holds no examples (expected one JSON object per line)");
  const kind = kindOf(train, join(dataDir, "train.jsonl"));
  return {
    name: "jsonl", kind, objective: kind === "classification" ? "options" : "lm", userSplits: true,
    load: () => {
      const validation = readJsonl(join(dataDir, "validation.jsonl"), row);
      const testFile = join(dataDir, "test.jsonl");
      const test = existsSync(testFile) ? readJsonl(testFile, row) : undefined;
      for (const [file, rows] of [["validation.jsonl", validation], ["test.jsonl", test ?? []]] as const) {
        if (rows.length && kindOf(rows, file) !== kind) throw new DataError(join(dataDir, file), `rows are ${kindOf(rows, file)}, train.jsonl's are ${kind}`);
      }
      return { train, validation, test };
    },
  };
}
