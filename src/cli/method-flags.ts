// Command-line flags for PEFT method options, shared by count and finetune.
import type { MethodConfig } from "../peft/method.js";
import { UsageError, numberFlag, type FlagSpec } from "./args.js";

/** Flag → method option, with how to read it. */
const OPTION_FLAGS: Record<string, { key: string; kind: "number" | "int" | "string" | "list" }> = {
  "trainable-ratio": { key: "trainableRatio", kind: "number" },
  density: { key: "density", kind: "number" },
  "mask-kind": { key: "maskKind", kind: "string" },
  "mask-seed": { key: "seed", kind: "int" },
  "target-modules": { key: "targetModules", kind: "list" },
  "lora-r": { key: "r", kind: "int" },
  "lora-alpha": { key: "alpha", kind: "number" },
  "lora-dropout": { key: "dropout", kind: "number" },
  "adalora-init-r": { key: "initR", kind: "int" },
  "adalora-target-r": { key: "targetR", kind: "int" },
  "adalora-tinit": { key: "tinit", kind: "int" },
  "adalora-tfinal": { key: "tfinal", kind: "int" },
  "adalora-orth-reg-weight": { key: "orthRegWeight", kind: "number" },
  bottleneck: { key: "bottleneck", kind: "int" },
  "num-virtual-tokens": { key: "numVirtualTokens", kind: "int" },
};

export const METHOD_FLAG_SPEC: FlagSpec = Object.fromEntries(Object.keys(OPTION_FLAGS).map((f) => [f, { type: "string" }]));

export function methodOptions(flags: Record<string, unknown>): MethodConfig {
  const out: MethodConfig = {};
  for (const [flag, { key, kind }] of Object.entries(OPTION_FLAGS)) {
    const v = flags[flag];
    if (v === undefined) continue;
    if (kind === "string") out[key] = v;
    else if (kind === "list") out[key] = String(v).split(",").map((s) => s.trim()).filter(Boolean);
    else if (kind === "int") out[key] = numberFlag(flags, flag, 0, Number.isSafeInteger, "an integer");
    else out[key] = numberFlag(flags, flag, 0, Number.isFinite, "a number");
  }
  if (out.maskKind !== undefined && out.maskKind !== "bernoulli" && out.maskKind !== "exact") {
    throw new UsageError(`--mask-kind ${JSON.stringify(out.maskKind)}: expected bernoulli or exact`);
  }
  return out;
}
