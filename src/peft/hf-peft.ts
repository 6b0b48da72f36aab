// Hugging Face PEFT's LoRA adapter folder (adapter_config.json +
// adapter_model.safetensors), read as PEFT 0.21 reads it and written so PEFT
// loads it. Sources: peft/tuners/lora/{config,model,layer}.py,
// peft/tuners/tuners_utils.py (check_target_module_exists,
// _maybe_include_all_linear_layers), peft/utils/other.py (get_pattern_key,
// ModulesToSaveWrapper), peft/utils/save_and_load.py (get_peft_model_state_dict).
//
// Tensor keys, after the "base_model.model." prefix:
//   <module>.lora_A.weight [r, in], <module>.lora_B.weight [out, r], <module>.lora_B.bias [out] (lora_bias)
//   <module>.base_layer.bias or <name>.bias       trained base biases (bias "all" / "lora_only")
//   <module>.<param>                               a full trained copy of a modules_to_save module
// Every tensor is applied or the load fails naming the field: none is ignored.
import type { Tensor } from "../engine/index.js";
import type { CausalLM } from "../models/causal-lm.js";
import { BaseOverrides } from "./base-overrides.js";
import { lora } from "./lora/index.js";
import type { MethodConfig, PeftInstance } from "./method.js";
import { PeftConfigError } from "./method.js";
import { shapesOf } from "./shapes.js";
import { peftTargets } from "./targets.js";

export const HF_PREFIX = "base_model.model.";

/** Fields whose non-default values change the computation in ways randmask does not implement. */
const UNSUPPORTED: Record<string, (v: unknown) => boolean> = {
  use_dora: (v) => v === true,
  layer_replication: (v) => v != null,
  trainable_token_indices: (v) => v != null,
  target_parameters: (v) => v != null && !(Array.isArray(v) && v.length === 0),
  alora_invocation_tokens: (v) => v != null,
  use_qalora: (v) => v === true,
  megatron_config: (v) => v != null,
};

/** What the HF-specific fields added to the LoRA modules, kept to write the folder back. */
export interface HfPeftExtras {
  overrides: BaseOverrides;
  /** adapter-file key (without the prefix) → base parameter name, for the override tensors. */
  keys: Map<string, string>;
  bias: string;
  modulesToSave: string[] | null;
}

function fail(dir: string, field: string, message: string): never {
  throw new PeftConfigError("lora", `${dir}: ${field}: ${message}`);
}

/** Modules PEFT could target in an OPT that randmask cannot adapt. */
const NON_LINEAR_TARGETS = ["lm_head", "model.decoder.embed_tokens", "model.decoder.embed_positions"];

/**
 * Attaches a PEFT LoRA adapter. `raw` is adapter_config.json; `tensors` are the
 * file's tensors (the caller disposes them). Throws a PeftConfigError naming the
 * config field or tensor that randmask cannot apply.
 */
export function loadHfPeft(model: CausalLM, dir: string, raw: Record<string, unknown>, tensors: Map<string, Tensor>):
  { instance: PeftInstance; extras: HfPeftExtras } {
  if (raw.peft_type !== "LORA") fail(dir, "peft_type", `${JSON.stringify(raw.peft_type)} is not supported (LORA is)`);
  for (const [field, set] of Object.entries(UNSUPPORTED)) {
    if (set(raw[field])) fail(dir, field, `${JSON.stringify(raw[field])} is not supported by randmask`);
  }
  // fan_in_fan_out marks Conv1D targets (GPT-2), whose A/B PEFT stores like nn.Linear's; randmask holds those weights [out, in] too
  if (raw.fan_in_fan_out === true && !model.family.isConv1D) {
    fail(dir, "fan_in_fan_out", `true, but this ${model.config.architecture} has no Conv1D layers (the adapter was made for another architecture)`);
  }
  const bias = (raw.bias ?? "none") as string;
  if (!["none", "all", "lora_only"].includes(bias)) fail(dir, "bias", `expected "none", "all" or "lora_only", got ${JSON.stringify(raw.bias)}`);
  const modulesToSave = (raw.modules_to_save ?? null) as string[] | null;
  if (modulesToSave !== null && !(Array.isArray(modulesToSave) && modulesToSave.every((m) => typeof m === "string"))) {
    fail(dir, "modules_to_save", `expected a list of module names, got ${JSON.stringify(raw.modules_to_save)}`);
  }
  const tm = raw.target_modules;
  if (!(typeof tm === "string" || (Array.isArray(tm) && tm.every((t) => typeof t === "string")))) {
    fail(dir, "target_modules", `expected a regular expression string or a list of names, got ${JSON.stringify(tm)}`);
  }
  for (const field of ["layers_to_transform", "layers_pattern"]) {
    // LoraConfig.__post_init__ refuses these with a regex target too
    if (typeof tm === "string" && raw[field] != null) fail(dir, field, "cannot be used when target_modules is a string (a regular expression)");
  }
  const shapes = shapesOf(model.config);
  // the config's faults (a pattern matching nothing, or no regular expression) name the adapter folder
  const named = <T>(f: () => T): T => {
    try { return f(); } catch (e) {
      throw e instanceof PeftConfigError ? new PeftConfigError(e.method, `${dir}: ${e.detail}`) : e;
    }
  };
  const targets = named(() => peftTargets("lora", {
    target_modules: tm, layers_to_transform: raw.layers_to_transform as number | number[] | null,
    layers_pattern: raw.layers_pattern as string | string[] | null, exclude_modules: raw.exclude_modules as string | string[] | null,
    modules_to_save: modulesToSave,
  }, [...shapes.linears.keys()], NON_LINEAR_TARGETS));
  const config = named(() => lora.resolveConfig({
    targetModules: targets, r: raw.r, alpha: raw.lora_alpha, dropout: raw.lora_dropout ?? 0,
    useRslora: raw.use_rslora ?? false, rankPattern: raw.rank_pattern ?? {}, alphaPattern: raw.alpha_pattern ?? {},
    loraBias: raw.lora_bias ?? false,
  }, shapes)); // the matched names, so a re-export names exactly these modules (layers_to_transform and exclude_modules included)

  const loraTensors = new Map<string, Tensor>();
  const overrides = new Map<string, Tensor>();
  const keys = new Map<string, string>();
  const targetSet = new Set(targets);
  const savedModule = (name: string) => (modulesToSave ?? []).find((m) => name === m || name.endsWith(`.${m}`));
  for (const [fullKey, t] of tensors) {
    if (!fullKey.startsWith(HF_PREFIX)) fail(dir, "tensors", `'${fullKey}' is not a PEFT LoRA key (expected '${HF_PREFIX}…')`);
    const key = fullKey.slice(HF_PREFIX.length);
    const lm = /^(.*)\.(lora_A\.weight|lora_B\.weight|lora_B\.bias)$/.exec(key);
    if (lm) {
      if (!shapes.linears.has(lm[1])) {
        fail(dir, "tensors", `the file has '${fullKey}', but this ${model.config.architecture} has no module '${lm[1]}' (the adapter was made for another model)`);
      }
      if (!targetSet.has(lm[1])) fail(dir, "target_modules", `the file has '${fullKey}' but ${JSON.stringify(tm)} does not target '${lm[1]}'`);
      if (lm[2] === "lora_B.bias" && !config.loraBias) fail(dir, "lora_bias", `the file has '${fullKey}' but lora_bias is not true`);
      loraTensors.set(key, t);
      continue;
    }
    const param = key.replace(/\.base_layer\.bias$/, ".bias");
    const owner = param.replace(/\.(weight|bias)$/, "");
    const isBias = param.endsWith(".bias") && model.params.has(param);
    if (savedModule(owner)) {
      if (!model.params.has(param)) fail(dir, "modules_to_save", `'${fullKey}' names no parameter of this model`);
    } else if (isBias) {
      if (bias === "none") fail(dir, "bias", `the file has the trained bias '${fullKey}' but bias is "none"`);
      if (bias === "lora_only" && !targetSet.has(owner)) fail(dir, "bias", `"lora_only" but the file has '${fullKey}' of a module LoRA does not target`);
    } else {
      fail(dir, "tensors", `'${fullKey}' is neither a LoRA tensor of a target, a bias (bias ${JSON.stringify(bias)}) nor a modules_to_save parameter`);
    }
    const want = model.params.get(param)!;
    if (want.shape.join() !== t.shape.join()) fail(dir, "tensors", `'${fullKey}' has shape [${t.shape}], this model's '${param}' is [${want.shape}]`);
    overrides.set(param, t);
    keys.set(key, param);
  }
  for (const m of modulesToSave ?? []) {
    if (![...keys.values()].some((p) => savedModule(p.replace(/\.(weight|bias)$/, "")) === m)) {
      fail(dir, "modules_to_save", `lists '${m}' but the file holds no tensor of it`);
    }
  }
  // trained base tensors first, so LoRA wraps the linears that hold them
  const applied = new BaseOverrides(model, overrides);
  try {
    return { instance: lora.load(model, config, loraTensors, {}), extras: { overrides: applied, keys, bias, modulesToSave } };
  } catch (e) {
    applied.restore();
    throw e;
  }
}

/** randmask's `targetModules` as PEFT's target_modules: suffix patterns as they are, otherwise the explicit module list. */
export function peftTargetModules(config: MethodConfig): string[] {
  const patterns = config.targetModules as string[];
  return patterns.some((p) => p.startsWith("re:")) ? (config.targets as string[]) : patterns;
}

/** adapter_config.json for a LoRA instance, as PEFT 0.21 writes it. */
export function hfPeftConfig(config: MethodConfig, extras: HfPeftExtras | null, fanInFanOut = false): Record<string, unknown> {
  return {
    peft_type: "LORA", task_type: "CAUSAL_LM", r: config.r, lora_alpha: config.alpha, lora_dropout: config.dropout,
    target_modules: peftTargetModules(config), bias: extras?.bias ?? "none", fan_in_fan_out: fanInFanOut, inference_mode: true,
    init_lora_weights: true, base_model_name_or_path: null, revision: null, modules_to_save: extras?.modulesToSave ?? null,
    layers_to_transform: null, layers_pattern: null, rank_pattern: config.rankPattern ?? {}, alpha_pattern: config.alphaPattern ?? {},
    use_rslora: config.useRslora ?? false, use_dora: false, lora_bias: config.loraBias ?? false,
  };
}

/** The adapter file's tensors, keyed as PEFT saves them. */
export function hfPeftTensors(instance: PeftInstance, extras: HfPeftExtras | null): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (const [k, v] of instance.stateTensors()) out.set(`${HF_PREFIX}${k}`, v);
  for (const [key, param] of extras?.keys ?? []) out.set(`${HF_PREFIX}${key}`, extras!.overrides.tensor(param));
  return out;
}
