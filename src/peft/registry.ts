// The PEFT methods randmask knows. Adding a method: its folder, and one line here.
import type { MethodDefinition } from "./method.js";
import { randomMask } from "./random-mask/index.js";
import { structuredMask } from "./structured-mask/index.js";
import { lora } from "./lora/index.js";
import { adalora } from "./adalora/index.js";
import { bitfit } from "./bitfit/index.js";
import { adapter } from "./adapter/index.js";
import { prefix } from "./prefix/index.js";
import { full } from "./full/index.js";

export const METHODS: readonly MethodDefinition[] = [randomMask, structuredMask, lora, adalora, bitfit, adapter, prefix, full];

export function getMethod(name: string): MethodDefinition {
  const m = METHODS.find((x) => x.name === name);
  if (!m) throw new Error(`unknown method '${name}' (known: ${METHODS.map((x) => x.name).join(", ")})`);
  return m;
}
