// A base model with one PEFT method attached, and its adapter folder:
// adapter_config.json (method, config, base-model fingerprint, randmask
// version) + adapter_model.safetensors. LoRA also reads and writes Hugging
// Face PEFT's own format, so Python users can load randmask's adapters.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Tensor, noGrad, tidy } from "../engine/index.js";
import { type BaseModel, isVisionModel } from "./base-model.js";
import { loadFile, saveFile } from "../io/safetensors.js";
import { writeJsonAtomic } from "../io/atomic.js";
import { isObject } from "../io/json-value.js";
import type { MethodConfig, MethodDefinition, PeftInstance } from "./method.js";
import { METHODS, getMethod } from "./registry.js";
import { modelShapes } from "./shapes.js";
import { SparseDeltaInstance } from "./sparse-delta.js";
import { type HfPeftExtras, hfPeftConfig, hfPeftTensors, loadHfPeft } from "./hf-peft.js";
import { RANDMASK_VERSION } from "../version.js";

export const ADAPTER_CONFIG = "adapter_config.json";
export const ADAPTER_WEIGHTS = "adapter_model.safetensors";
const FORMAT = "randmask-adapter";

export interface BaseFingerprint {
  architecture: string;
  numParameters: number;
  /** Shapes of the base tensors the method reads or changes. */
  shapes: Record<string, number[]>;
  /** sha256 of those tensors: names, shapes and values (see `fingerprint`). */
  hash: string;
  /**
   * What the values were hashed as. "bfloat16": each value rounded once to
   * bfloat16, so a checkpoint loaded in float32 or in bfloat16 (or stored in
   * either) gives one hash, while any change of a weight beyond bfloat16's
   * precision changes it. Absent in adapters written before it existed (values hashed as float32).
   */
  hash_values?: "bfloat16";
}

export class AdapterError extends Error {
  constructor(dir: string, message: string) {
    super(`${dir}: ${message}`);
    this.name = "AdapterError";
  }
}

/**
 * Identifies the base a method was made for: the shapes and a hash of the base
 * tensors it reads or changes. The hash is of the checkpoint, not of the dtype
 * it was loaded in: values are rounded once to bfloat16 (round-to-nearest-even,
 * exact for bf16 and the same from an fp32 value or its bf16 load).
 */
export function fingerprint(model: BaseModel, names: string[], values: "bfloat16" | "float32" = "bfloat16"): BaseFingerprint {
  const h = createHash("sha256");
  const shapes: Record<string, number[]> = {};
  for (const name of [...names].sort()) {
    const t = model.params.get(name);
    if (!t) continue;
    shapes[name] = t.shape;
    h.update(`${name}:${t.shape.join("x")};`);
    const bytes = noGrad(() => tidy(() => values === "bfloat16"
      // bf16 has no JS array type: its bits are the high half of the float32 it widens to
      ? new Uint16Array((t.to("bfloat16").to("float32").toArray() as Float32Array).buffer).filter((_, i) => i % 2 === 1)
      : (t.to("float32").toArray() as Float32Array)));
    h.update(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  }
  const fp: BaseFingerprint = { architecture: modelShapes(model).architecture, numParameters: model.numParameters(), shapes, hash: h.digest("hex") };
  if (values === "bfloat16") fp.hash_values = "bfloat16";
  return fp;
}

/**
 * The fields randmask's adapter_config.json must hold before anything is loaded: format, a known method,
 * config, and the base fingerprint (shapes, numParameters, hash). Throws AdapterError naming the file and field.
 */
function checkRandmaskConfig(cfgFile: string, raw: Record<string, unknown>): void {
  if (raw.format !== FORMAT) throw new AdapterError(cfgFile, `format ${JSON.stringify(raw.format)} is not '${FORMAT}' or a Hugging Face PEFT config`);
  const names = METHODS.map((m) => m.name);
  if (typeof raw.method !== "string" || !names.includes(raw.method)) {
    throw new AdapterError(cfgFile, `method ${JSON.stringify(raw.method)}: expected one of ${names.join(", ")}`);
  }
  const base = raw.base_model;
  const fault = !isObject(raw.config) ? "config: expected an object"
    : !isObject(base) ? "base_model: expected an object"
    : !isObject(base.shapes) || !Object.values(base.shapes).every((s) => Array.isArray(s) && s.every(Number.isSafeInteger)) ? "base_model.shapes: expected an object of shapes"
    : !Number.isSafeInteger(base.numParameters) ? "base_model.numParameters: expected an integer"
    : typeof base.hash !== "string" ? "base_model.hash: expected a string" : null;
  if (fault) throw new AdapterError(cfgFile, `${fault} (the file is damaged, or not written by randmask)`);
}

export class PeftModel<M extends BaseModel = BaseModel> {
  private constructor(readonly model: M, readonly definition: MethodDefinition,
    readonly instance: PeftInstance, readonly base: BaseFingerprint, private readonly hfExtras: HfPeftExtras | null = null) {}

  /** Attaches a freshly initialised method. `rawConfig` uses the method's option names. */
  static create<M extends BaseModel>(model: M, method: string, rawConfig: MethodConfig = {}): PeftModel<M> {
    const def = getMethod(method);
    const config = def.resolveConfig(rawConfig, modelShapes(model));
    const probe = def.apply(model, config);
    // the fingerprint is of the base as it was before training (in-place methods change it)
    const base = fingerprint(model, probe.baseTensorNames());
    return new PeftModel(model, def, probe, base);
  }

  /** Attaches a saved adapter (randmask's format, or a Hugging Face PEFT LoRA folder). */
  static load<M extends BaseModel>(model: M, dir: string): PeftModel<M> {
    const cfgFile = join(dir, ADAPTER_CONFIG);
    if (!existsSync(cfgFile)) throw new AdapterError(dir, `no ${ADAPTER_CONFIG} (not an adapter folder)`);
    let raw: Record<string, unknown>;
    try { raw = JSON.parse(readFileSync(cfgFile, "utf8")); } catch (e) {
      throw new AdapterError(cfgFile, `not valid JSON (${(e as Error).message})`);
    }
    if (!isObject(raw)) throw new AdapterError(cfgFile, "not a JSON object");
    if (raw.peft_type === undefined) checkRandmaskConfig(cfgFile, raw);
    const tensors = loadFile(join(dir, ADAPTER_WEIGHTS));
    try {
      if (raw.peft_type !== undefined) return PeftModel.fromHfPeft(model, dir, raw, tensors);
      const def = getMethod(raw.method as string);
      const config = raw.config as MethodConfig;
      const expected = raw.base_model as BaseFingerprint;
      const actual = fingerprint(model, Object.keys(expected.shapes), expected.hash_values ?? "float32");
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
      let instance: PeftInstance;
      try { instance = def.load(model, config, tensors, (raw.meta ?? {}) as Record<string, unknown>); } catch (e) {
        // the base matched, so the method's config and the weights file disagree
        throw new AdapterError(dir, `${ADAPTER_CONFIG} and ${ADAPTER_WEIGHTS} do not belong together: ${(e as Error).message}`);
      }
      return new PeftModel(model, def, instance, expected);
    } finally {
      for (const t of tensors.values()) t.dispose();
    }
  }

  private static fromHfPeft<M extends BaseModel>(model: M, dir: string, raw: Record<string, unknown>, tensors: Map<string, Tensor>): PeftModel<M> {
    if (isVisionModel(model)) throw new AdapterError(dir, "Hugging Face PEFT adapters are read for language models only; this is a vision model");
    const { instance, extras } = loadHfPeft(model, dir, raw, tensors);
    const base = fingerprint(model, instance.baseTensorNames());
    return new PeftModel(model, getMethod("lora"), instance, base, extras);
  }

  trainableParams(): Tensor[] { return this.instance.trainableParams(); }
  trainableCount(): number { return this.instance.trainableCount(); }
  /** The paper's ratio: trainable ÷ all base parameters. */
  trainableRatio(): number { return this.trainableCount() / this.base.numParameters; }

  /** Writes the adapter folder (files are written to temp names, then renamed). */
  save(dir: string, opts: { storeIndices?: boolean; format?: "randmask" | "peft" } = {}): void {
    // refuse before creating anything
    if (opts.format === "peft" && this.definition.name !== "lora") {
      throw new Error(`only LoRA adapters have a Hugging Face PEFT format (this is ${this.definition.name})`);
    }
    if (opts.format === "peft" && isVisionModel(this.model)) throw new Error("the Hugging Face PEFT format is written for language models only; save a vision model's adapter in randmask's format");
    if (opts.format !== "peft" && this.hfExtras?.overrides.size) {
      throw new Error("this adapter carries trained base tensors (PEFT's bias / modules_to_save), which only the Hugging Face PEFT format holds: save with format \"peft\"");
    }
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
    const model = this.model as BaseModel;
    if (isVisionModel(model)) throw new Error("unreachable: save() refuses the PEFT format for vision models");
    saveFile(join(dir, ADAPTER_WEIGHTS), hfPeftTensors(this.instance, this.hfExtras), { format: "pt" });
    writeJsonAtomic(join(dir, ADAPTER_CONFIG), hfPeftConfig(this.instance.config, this.hfExtras,
      (this.instance.config.targets as string[]).every((t) => model.family.isConv1D?.(t) ?? false)));
  }

  /**
   * The base model's state dict with this method's weight delta folded in. It
   * holds lm_head.weight when the adapter untied the head (a PEFT
   * modules_to_save copy of it); the checkpoint's config must then say
   * tie_word_embeddings: false.
   */
  withMerged<R>(fn: (stateDict: Map<string, Tensor>) => R): R {
    const stateDict = () => {
      const sd = this.model.stateDict();
      const head = this.model.params.get("lm_head.weight");
      if (head && !sd.has("lm_head.weight") && head !== this.model.params.get("model.decoder.embed_tokens.weight")) sd.set("lm_head.weight", head);
      return sd;
    };
    if (this.inPlace()) return fn(stateDict());
    this.checkMergeable();
    this.instance.merge!();
    try { return fn(stateDict()); } finally { this.instance.unmerge!(); }
  }

  /** Throws unless withMerged can fold this method into the base weights (adapter and prefix add modules instead). */
  checkMergeable(): void {
    if (!this.inPlace() && (!this.instance.merge || !this.instance.unmerge)) {
      throw new Error(`${this.definition.name} adds modules rather than a weight delta, so it cannot be merged into the base weights`);
    }
  }

  private inPlace(): boolean { return this.definition.name === "full" || this.definition.name === "bitfit"; }

  remove(): void {
    this.instance.remove();
    this.hfExtras?.overrides.restore();
  }
}
