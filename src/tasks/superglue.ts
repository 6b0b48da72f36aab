// The paper's tasks with MeZO's prompt templates, read from the datasets' own
// formats (GLUE TSV, SuperGLUE JSONL, SQuAD v1.1 JSON, DROP JSON).
//
// A leading space belongs to the option, never to the end of the prompt: BPE
// attaches spaces to the following word, so "…so" + " the" splits into the
// prompt's tokens and the option's tokens exactly where the strings split.
import { join } from "node:path";
import { DataError, type Example, type TaskDefinition } from "./types.js";
import { field, isArray, isInt, isObject, labelOf, readJsonl, requireFile, str } from "./readers.js";

const YES_NO = ["Yes", "No"];
const NO_YES = ["No", "Yes"];

function jsonlTask(name: string, trainFile: string | null, valFile: string,
  render: (obj: Record<string, unknown>, where: string) => Example | Example[], objective: "options" | "lm" = "options"): TaskDefinition {
  return {
    name, kind: "classification", objective,
    load: (dir) => ({
      train: trainFile ? readJsonl(join(dir, name, trainFile), render) : null,
      validation: readJsonl(join(dir, name, valFile), render),
    }),
  };
}

export const sst2: TaskDefinition = {
  name: "sst2", kind: "classification", objective: "options",
  load(dir) {
    const read = (file: string): Example[] => {
      const path = join(dir, "sst2", file);
      const lines = requireFile(path).split(/\r?\n/);
      const header = lines[0].split("\t");
      const li = header.indexOf("label");
      const si = header.indexOf("sentence") >= 0 ? header.indexOf("sentence") : header.indexOf("content");
      if (li < 0 || si < 0) throw new DataError(`${path}:1`, `header must name "label" and "sentence" columns, got ${JSON.stringify(header)}`);
      const out: Example[] = [];
      lines.slice(1).forEach((line, i) => {
        if (line.trim() === "") return;
        const cols = line.split("\t");
        const where = `${path}:${i + 2}`;
        if (cols.length !== header.length) throw new DataError(where, `expected ${header.length} tab-separated columns, got ${cols.length}`);
        if (cols[li] !== "0" && cols[li] !== "1") throw new DataError(where, `label must be 0 or 1, got ${JSON.stringify(cols[li])}`);
        out.push({ prompt: `${cols[si].trim()} It was`, options: [" terrible", " great"], label: Number(cols[li]) });
      });
      return out;
    };
    return { train: read("glue_sst2_train.tsv"), validation: read("glue_sst2_dev.tsv") };
  },
};

export const rte = jsonlTask("rte", "train.jsonl", "val.jsonl", (o, w) => ({
  prompt: `${str(o, "premise", w)}\nDoes this mean that "${str(o, "hypothesis", w)}" is true? Yes or No?\n`,
  options: YES_NO, label: labelOf(o, w, ["entailment", "not_entailment"]),
}));

export const cb = jsonlTask("cb", "train.jsonl", "val.jsonl", (o, w) => ({
  prompt: `Suppose ${str(o, "premise", w)} Can we infer that "${str(o, "hypothesis", w)}"? Yes, No, or Maybe?\n`,
  options: ["Yes", "No", "Maybe"], label: labelOf(o, w, ["entailment", "contradiction", "neutral"]),
}));

export const boolq = jsonlTask("boolq", "fewglue_train32.jsonl", "val.jsonl", (o, w) => {
  let q = str(o, "question", w).trim();
  if (!q.endsWith("?")) q += "?";
  q = q[0].toUpperCase() + q.slice(1);
  const passage = str(o, "passage", w);
  return { prompt: `${passage} ${q}\n`, options: NO_YES, label: labelOf(o, w, [false, true]), group: passage };
});

export const wsc = jsonlTask("wsc", "train.jsonl", "val.jsonl", (o, w) => {
  const t = field(o, "target", w, isObject, "an object with span1_text and span2_text");
  return {
    prompt: `${str(o, "text", w)}\nIn the previous sentence, does the pronoun "${str(t, "span2_text", w).toLowerCase()}" refer to ${str(t, "span1_text", w)}? Yes or No?\n`,
    options: NO_YES, label: labelOf(o, w, [false, true]),
  };
});

export const wic = jsonlTask("wic", "train.jsonl", "val.jsonl", (o, w) => ({
  prompt: `Does the word "${str(o, "word", w)}" have the same meaning in these two sentences? Yes, No?\n${str(o, "sentence1", w)}\n${str(o, "sentence2", w)}\n`,
  options: NO_YES, label: labelOf(o, w, [false, true]),
}));

/** MultiRC: one example per (question, answer option); accuracy is over answer options. */
export const multirc = jsonlTask("multirc", "fewglue_train32.jsonl", "val.jsonl", (o, w) => {
  const passage = field(o, "passage", w, isObject, "an object with text and questions");
  const text = str(passage, "text", w);
  const out: Example[] = [];
  for (const q of field(passage, "questions", w, isArray, "a list")) {
    if (!isObject(q)) throw new DataError(w, "each question must be an object");
    for (const a of field(q, "answers", w, isArray, "a list")) {
      if (!isObject(a)) throw new DataError(w, "each answer must be an object");
      out.push({
        prompt: `${text}\nQuestion: ${str(q, "question", w)}\nI found this answer "${str(a, "text", w)}". Is that correct? Yes or No?\n`,
        options: NO_YES, label: labelOf(a, w, [0, 1]), group: text,
      });
    }
  }
  return out;
});

/** COPA: "premise so/because" + each choice with its first word lower-cased (unless "I"). */
export const copa = jsonlTask("copa", "train.jsonl", "val.jsonl", (o, w) => {
  let premise = str(o, "premise", w).trimEnd();
  if (premise.endsWith(".")) premise = premise.slice(0, -1);
  const question = str(o, "question", w);
  if (question !== "cause" && question !== "effect") throw new DataError(w, `question must be "cause" or "effect", got ${JSON.stringify(question)}`);
  const lowerFirst = (s: string) => (s.startsWith("I ") ? s : s[0].toLowerCase() + s.slice(1));
  return {
    prompt: `${premise}${question === "effect" ? " so" : " because"}`,
    options: [` ${lowerFirst(str(o, "choice1", w))}`, ` ${lowerFirst(str(o, "choice2", w))}`],
    label: labelOf(o, w, [0, 1]),
  };
});

/** ReCoRD: one example per query; options are the passage's entities filling @placeholder. Trains with the LM loss. */
export const record = jsonlTask("record", "fewglue_train32.jsonl", "fewglue_dev32.jsonl", (o, w) => {
  const passage = field(o, "passage", w, isObject, "an object with text and entities");
  const text = str(passage, "text", w);
  const entities = field(passage, "entities", w, isArray, "a list of {start, end}").map((e) => {
    if (!isObject(e) || !isInt(e.start) || !isInt(e.end)) throw new DataError(w, "each entity needs integer start and end");
    return text.slice(e.start, e.end + 1); // SuperGLUE's end is inclusive
  });
  const candidates = [...new Set(entities)];
  const prompt = `${text.replaceAll("@highlight\n", "- ")}\n-`;
  return field(o, "qas", w, isArray, "a list").map((qa) => {
    if (!isObject(qa)) throw new DataError(w, "each qas entry must be an object");
    const query = str(qa, "query", w);
    const answers = new Set(field(qa, "answers", w, isArray, "a list").map((a) => (isObject(a) ? a.text : undefined)));
    const correct = candidates.map((c, i) => (answers.has(c) ? i : -1)).filter((i) => i >= 0);
    if (correct.length === 0) throw new DataError(w, "no candidate entity matches an answer");
    return { prompt, options: candidates.map((c) => ` ${query.replaceAll("@placeholder", c)}`), label: correct[0], correct, group: text };
  });
}, "lm");

export const squad: TaskDefinition = {
  name: "squad", kind: "generation", objective: "lm",
  load(dir) {
    const path = join(dir, "squad", "squad_v1.1_dev.rebuilt.json");
    let doc: unknown;
    try { doc = JSON.parse(requireFile(path)); } catch (e) {
      if (e instanceof DataError) throw e;
      throw new DataError(path, `not valid JSON (${(e as Error).message})`);
    }
    if (!isObject(doc) || !isArray(doc.data)) throw new DataError(path, 'expected SQuAD v1.1 JSON: {"data": [articles]}');
    const out: Example[] = [];
    doc.data.forEach((article, ai) => {
      const w = `${path}: data[${ai}]`;
      if (!isObject(article)) throw new DataError(w, "article must be an object");
      const title = str(article, "title", w);
      for (const p of field(article, "paragraphs", w, isArray, "a list")) {
        if (!isObject(p)) throw new DataError(w, "paragraph must be an object");
        const context = str(p, "context", w);
        for (const qa of field(p, "qas", w, isArray, "a list")) {
          if (!isObject(qa)) throw new DataError(w, "qa must be an object");
          const answers = field(qa, "answers", w, isArray, "a list").map((a) => (isObject(a) ? str(a, "text", w) : ""));
          if (answers.length === 0) throw new DataError(w, `question ${JSON.stringify(qa.id)} has no answers`);
          out.push({ prompt: `Title: ${title}\nContext: ${context}\nQuestion: ${str(qa, "question", w).trim()}\nAnswer:`, answers, group: title });
        }
      }
    });
    return { train: null, validation: out };
  },
};

/** DROP's official JSON: {passage_id: {passage, qa_pairs: [{question, answer, validated_answers}]}}. */
export const drop: TaskDefinition = {
  name: "drop", kind: "generation", objective: "lm",
  load(dir) {
    const read = (file: string): Example[] => {
      const path = join(dir, "drop", file);
      let doc: unknown;
      try { doc = JSON.parse(requireFile(path)); } catch (e) {
        if (e instanceof DataError) throw e;
        throw new DataError(path, `not valid JSON (${(e as Error).message})`);
      }
      if (!isObject(doc)) throw new DataError(path, "expected an object of passages");
      const out: Example[] = [];
      for (const [pid, entry] of Object.entries(doc)) {
        const w = `${path}: ${pid}`;
        if (!isObject(entry)) throw new DataError(w, "passage entry must be an object");
        const passage = str(entry, "passage", w);
        for (const qa of field(entry, "qa_pairs", w, isArray, "a list")) {
          if (!isObject(qa)) throw new DataError(w, "qa pair must be an object");
          const answers = [qa.answer, ...(isArray(qa.validated_answers) ? qa.validated_answers : [])]
            .map((a) => dropAnswerText(a, w)).filter((a) => a !== "");
          if (answers.length === 0) throw new DataError(w, `question ${JSON.stringify(qa.query_id)} has no answer`);
          out.push({ prompt: `Passage: ${passage}\nQuestion: ${str(qa, "question", w).trim()}\nAnswer:`, answers: [...new Set(answers)], group: pid });
        }
      }
      return out;
    };
    return { train: read("drop_dataset_train.json"), validation: read("drop_dataset_dev.json") };
  },
};

/** A DROP answer as text: the number, else the spans joined, else the date's parts. */
function dropAnswerText(a: unknown, where: string): string {
  if (!isObject(a)) throw new DataError(where, "answer must be an object with number, spans, date");
  if (typeof a.number === "string" && a.number !== "") return a.number;
  if (isArray(a.spans) && a.spans.length) return a.spans.join(" ");
  if (isObject(a.date)) return ["day", "month", "year"].map((k) => (a.date as Record<string, unknown>)[k]).filter((v) => v).join(" ");
  return "";
}

