// What a task is: examples rendered from a dataset's own format into prompts
// with options (classification) or answers (generation).

export interface Example {
  /** Text before the option / answer. */
  prompt: string;
  /** Classification: the candidate continuations, in label order. */
  options?: string[];
  /** Classification: index of the correct option. */
  label?: number;
  /** ReCoRD: every option that counts as correct (equivalent entity mentions). */
  correct?: number[];
  /** Generation: gold answers (the first is the training target). */
  answers?: string[];
  /** Examples sharing a group (passage, article) stay on one side of a split. */
  group?: string;
  /** Where the row came from (file:line), for errors. */
  source?: string;
}

export type TaskKind = "classification" | "generation";
/** How a classification task trains: cross-entropy over options, or LM loss on the correct option. */
export type TrainObjective = "options" | "lm";

export interface TaskSplits {
  train: Example[] | null;
  validation: Example[];
  /** Only for user datasets that ship a test split. */
  test?: Example[];
}

export interface TaskDefinition {
  name: string;
  kind: TaskKind;
  objective: TrainObjective;
  /** Reads the dataset's original files from dataDir. */
  load(dataDir: string): TaskSplits;
  /** The user's own splits (generic JSONL): never replaced by the validation-split fallback. */
  userSplits?: boolean;
}

export class DataError extends Error {
  constructor(where: string, message: string) {
    super(`${where}: ${message}`);
    this.name = "DataError";
  }
}
