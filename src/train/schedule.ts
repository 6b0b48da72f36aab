// Learning-rate schedules (Hugging Face's definitions): constant (the
// paper's), linear decay and cosine, each with optional linear warmup.
export type ScheduleName = "constant" | "linear" | "cosine";
export const SCHEDULES: ScheduleName[] = ["constant", "linear", "cosine"];

export function lrAt(schedule: ScheduleName, baseLr: number, step: number, totalSteps: number, warmupSteps: number): number {
  if (step < warmupSteps) return (baseLr * (step + 1)) / warmupSteps;
  if (schedule === "constant") return baseLr;
  const progress = (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps);
  if (schedule === "linear") return baseLr * Math.max(0, 1 - progress);
  return baseLr * 0.5 * (1 + Math.cos(Math.PI * Math.min(1, progress)));
}
