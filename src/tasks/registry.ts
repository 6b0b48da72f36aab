// Task names → definitions.
import type { TaskDefinition } from "./types.js";
import { boolq, cb, copa, drop, multirc, record, rte, squad, sst2, wic, wsc } from "./superglue.js";
import { jsonlTask } from "./jsonl.js";

export const TASKS: readonly TaskDefinition[] = [sst2, rte, cb, boolq, wsc, wic, multirc, copa, record, squad, drop];
export const TASK_NAMES = [...TASKS.map((t) => t.name), "jsonl"];

export function getTask(name: string, dataDir: string): TaskDefinition {
  if (name === "jsonl") return jsonlTask(dataDir);
  const t = TASKS.find((x) => x.name === name);
  if (!t) throw new Error(`unknown task '${name}' (known: ${TASK_NAMES.join(", ")})`);
  return t;
}
