// A base model with one PEFT method attached, and its adapter folder:
// adapter_config.json (method, config, base-model fingerprint, randmask
// version) + adapter_model.safetensors. LoRA also reads and writes Hugging
// Face PEFT's own format, so Python users can load randmask's adapters.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Tensor, noGrad, tidy } from "../engine/index.js";
import type { CausalLM } from "../models/causal-lm.js";
import { loadFile, saveFile } from "../io/safetensors.js";
import { writeJsonAtomic } from "../io/atomic.js";
import type { MethodConfig, MethodDefinition, PeftInstance } from "./method.js";
import { getMethod } from "./registry.js";
import { shapesOf } from "./shapes.js";
import { SparseDeltaInstance } from "./sparse-delta.js";
import { RANDMASK_VERSION } from "../version.js";

export const ADAPTER_CONFIG = "adapter_config.json";
export const ADAPTER_WEIGHTS = "adapter_model.safetensors";
const FORMAT = "randmask-adapter";

export interface BaseFingerprint {
  architecture: string;
  numParameters: number;
  /** Shapes of the base tensors the method reads or changes. */
  shapes: Record<string, number[]>;
  /** sha256 of those tensors (names, shapes and values as float32). */
  hash: string;
}

export class AdapterError extends Error {
  constructor(dir: string, message: string) {
    super(`${dir}: ${message}`);
    this.name = "AdapterError";
  }
}

export function fingerprint(model: CausalLM, names: string[]): BaseFingerprint {
  const h = createHash("sha256");
  const shapes: Record<string, number[]> = {};
  for (const name of [...names].sort()) {
    const t = model.params.get(name);
    if (!t) continue;
    shapes[name] = t.shape;
    h.update(`${name}:${t.shape.join("x")};`);
    const f32 = noGrad(() => tidy(() => t.to("float32").toArray() as Float32Array));
    h.update(new Uint8Array(f32.buffer, f32.byteOffset, f32.byteLength));
  }
  return { architecture: "CausalLM", numParameters: model.numParameters(), shapes, hash: h.digest("hex") };
}

export class PeftModel {
  private constructor(readonly model: CausalLM, readonly definition: MethodDefinition,
    readonly instance: PeftInstance, readonly base: BaseFingerprint) {}

  /** Attaches a freshly initialised method. `rawConfig` uses the method's option names. */
  static create(model: CausalLM, method: string, rawConfig: MethodConfig = {}): PeftModel {
    const def = getMethod(method);
    const config = def.resolveConfig(rawConfig, shapesOf(model.config));
    const probe = def.apply(model, config);
    // the fingerprint is of the base as it was before training (in-place methods change it)
    const base = fingerprint(model, probe.baseTensorNames());
    return new PeftModel(model, def, probe, base);
  }

  /** Attaches a saved adapter (randmask's format, or a Hugging Face PEFT LoRA folder). */
  static load(model: CausalLM, dir: string): PeftModel {
    const cfgFile = join(dir, ADAPTER_CONFIG);
    if (!existsSync(cfgFile)) throw new AdapterError(dir, `no ${ADAPTER_CONFIG} (not an adapter folder)`);
    let raw: Record<string, unknown>;
    try { raw = JSON.parse(readFileSync(cfgFile, "utf8")); } catch (e) {
      throw new AdapterError(cfgFile, `not valid JSON (${(e as Error).message})`);
    }
    const tensors = loadFile(join(dir, ADAPTER_WEIGHTS));
    try {
      if (raw.peft_type !== undefined) return PeftModel.fromHfPeft(model, dir, raw, tensors);
      if (raw.format !== FORMAT) throw new AdapterError(cfgFile, `format ${JSON.stringify(raw.format)} is not '${FORMAT}' or a Hugging Face PEFT config`);
      const def = getMethod(raw.method as string);
      const config = raw.config as MethodConfig;
      const expected = raw.base_model as BaseFingerprint;
      const actual = fingerprint(model, Object.keys(expected.shapes));
      for (const [name, shape] of Object.entries(expected.shapes)) {
        const got = actual.shapes[name];
        if (!got) throw new AdapterError(dir, `adapter was made for a base with tensor '${name}', which this model lacks`);
        if (got.join() !== shape.join()) throw new AdapterError(dir, `adapter was made for '${name}' of shape [${shape}], this model's is [${got}]`);
      }
      if (actual.numParameters !== expected.numParameters) {
        throw new AdapterError(dir, `adapter was made for a base of ${expected.numParameters} parameters, this model has ${actual.numParameters}`);
      }
      if (actual.hash !== expected.hash) {
        throw new AdapterError(dir, "adapter was made for a different base model: the targeted base weights' hash differs " +
          `(${expected.hash.slice(0, 12)}… vs ${actual.hash.slice(0, 12)}…)`);
      }
      const instance = def.load(model, config, tensors, (raw.meta ?? {}) as Record<string, unknown>);
      return new PeftModel(model, def, instance, expected);
    } finally {
      for (const t of tensors.values()) t.dispose();
    }
  }

  private static fromHfPeft(model: CausalLM, dir: string, raw: Record<string, unknown>, tensors: Map<string, Tensor>): PeftModel {
    if (raw.peft_type !== "LORA") throw new AdapterError(dir, `Hugging Face PEFT type ${JSON.stringify(raw.peft_type)} is not supported (LORA is)`);
    if (raw.use_dora) throw new AdapterError(dir, "DoRA LoRA adapters are not supported");
    const prefix = "base_model.model.";
    const renamed = new Map<string, Tensor>();
    for (const [k, v] of tensors) {
      if (!k.startsWith(prefix)) throw new AdapterError(dir, `tensor '${k}' is not a PEFT LoRA key (expected '${prefix}…')`);
      renamed.set(k.slice(prefix.length), v);
    }
    const def = getMethod("lora");
    const config = def.resolveConfig({ r: raw.r, alpha: raw.lora_alpha, dropout: raw.lora_dropout ?? 0, targetModules: raw.target_modules },
      shapesOf(model.config));
    // fan_in_fan_out marks Conv1D targets (GPT-2), whose A/B are stored like nn.Linear's; randmask holds those weights [out, in] too
    const conv = (config.targets as string[]).map((t) => model.family.isConv1D?.(t) ?? false);
    if (raw.fan_in_fan_out === true && !conv.every(Boolean)) {
      throw new AdapterError(dir, "fan_in_fan_out is true but the targeted modules are not Conv1D layers of this model (the adapter was made for another architecture)");
    }
    const instance = def.load(model, config, renamed, {});
    return new PeftModel(model, def, instance, fingerprint(model, instance.baseTensorNames()));
  }

  trainableParams(): Tensor[] { return this.instance.trainableParams(); }
  trainableCount(): number { return this.instance.trainableCount(); }
  /** The paper's ratio: trainable ÷ all base parameters. */
  trainableRatio(): number { return this.trainableCount() / this.base.numParameters; }

  /** Writes the adapter folder (files are written to temp names, then renamed). */
  save(dir: string, opts: { storeIndices?: boolean; format?: "randmask" | "peft" } = {}): void {
    mkdirSync(dir, { recursive: true });
    if (opts.format === "peft") return this.saveHfPeft(dir);
    const tensors = new Map(this.instance.stateTensors());
    if (opts.storeIndices && this.instance instanceof SparseDeltaInstance) {
      for (const [k, v] of this.instance.indexTensors()) tensors.set(k, v);
    }
    saveFile(join(dir, ADAPTER_WEIGHTS), tensors, { format: "pt", method: this.definition.name });
    writeJsonAtomic(join(dir, ADAPTER_CONFIG), {
      format: FORMAT, randmask_version: RANDMASK_VERSION, method: this.definition.name, config: this.instance.config,
      meta: this.instance.stateMeta(), trainable: this.trainableCount(), base_model: this.base,
    });
  }

  private saveHfPeft(dir: string): void {
    if (this.definition.name !== "lora") throw new Error(`only LoRA adapters have a Hugging Face PEFT format (this is ${this.definition.name})`);
    const c = this.instance.config;
    const tensors = new Map<string, Tensor>();
    for (const [k, v] of this.instance.stateTensors()) tensors.set(`base_model.model.${k}`, v);
    saveFile(join(dir, ADAPTER_WEIGHTS), tensors, { format: "pt" });
    writeJsonAtomic(join(dir, ADAPTER_CONFIG), {
      peft_type: "LORA", task_type: "CAUSAL_LM", r: c.r, lora_alpha: c.alpha, lora_dropout: c.dropout,
      target_modules: c.targetModules, bias: "none",
      fan_in_fan_out: (c.targets as string[]).every((t) => this.model.family.isConv1D?.(t) ?? false), inference_mode: true, init_lora_weights: true,
      base_model_name_or_path: null, revision: null, modules_to_save: null, layers_to_transform: null, layers_pattern: null,
      rank_pattern: {}, alpha_pattern: {}, use_rslora: false, use_dora: false,
    });
  }

  /** The base model's state dict with this method's weight delta folded in. */
  withMerged<R>(fn: (stateDict: Map<string, Tensor>) => R): R {
    const inPlace = this.definition.name === "full" || this.definition.name === "bitfit";
    if (inPlace) return fn(this.model.stateDict());
    if (!this.instance.merge || !this.instance.unmerge) {
      throw new Error(`${this.definition.name} adds modules rather than a weight delta, so it cannot be merged into the base weights`);
    }
    this.instance.merge();
    try { return fn(this.model.stateDict()); } finally { this.instance.unmerge(); }
  }

  remove(): void { this.instance.remove(); }
}
