// The one interface every PEFT method implements. A method lives in its own
// folder (tuners/<method>-style) and is listed once in registry.ts.
import type { Tensor } from "../engine/index.js";
import type { BaseModel } from "./base-model.js";
import type { ModelShapes } from "./shapes.js";

export type MethodConfig = Record<string, unknown>;

/** A method applied to a model: it owns its trainable tensors. */
export interface PeftInstance {
  readonly method: string;
  /** The resolved configuration, as stored in adapter_config.json. */
  readonly config: MethodConfig;
  /** Leaf tensors the optimizer updates. */
  trainableParams(): Tensor[];
  /** Number of trainable values (the paper's "Params"). */
  trainableCount(): number;
  /** Tensors to save in adapter_model.safetensors, by name. */
  stateTensors(): Map<string, Tensor>;
  /** Extra facts stored with the adapter (e.g. a mask checksum). */
  stateMeta(): Record<string, unknown>;
  /** Base parameters the method reads or changes, for the base-model fingerprint. */
  baseTensorNames(): string[];
  /** Added to the training loss (AdaLoRA's orthogonality term), if any. */
  regularizationLoss?(): Tensor | null;
  /** Called after each optimizer step, before gradients are cleared (AdaLoRA's rank allocation). */
  afterOptimizerStep?(step: number): void;
  /**
   * ‖ΔW‖: the ℓ2 norm of the method's effective weight change since `initial` (a snapshot of
   * trainableParams(), same order and shapes), per module in Frobenius norm, summed in quadrature
   * (LoRA: ‖(α/r)·(BA − B₀A₀)‖; masking: ‖S − S₀‖; in-place methods: ‖W − W₀‖). Absent for methods that
   * add modules rather than a weight delta (adapter, prefix). The paper's distance from init (Fig. 4c).
   */
  weightDeltaNorm?(initial: Tensor[]): number;
  /** Folds a weight delta into the base weights (swapping in merged copies); undone by unmerge. */
  merge?(): void;
  unmerge?(): void;
  /** Detaches from the model, restoring it, and frees the method's tensors. */
  remove(): void;
}

export interface MethodDefinition {
  readonly name: string;
  readonly summary: string;
  /**
   * The raw option keys resolveConfig reads (`seed`: the method's own seed); any other key would be
   * ignored, so callers refuse it (see unreadOptions). The CLI's method flags are derived from these.
   */
  readonly options: readonly string[];
  /** Validates options and fills defaults; throws an Error naming the option. */
  resolveConfig(raw: MethodConfig, shapes: ModelShapes): MethodConfig;
  /** Trainable values for this config on a model of these shapes (no tensors made). */
  count(config: MethodConfig, shapes: ModelShapes): number;
  /** Attaches the method, freshly initialised, to the model. */
  apply(model: BaseModel, config: MethodConfig): PeftInstance;
  /** Attaches the method with saved state. */
  load(model: BaseModel, config: MethodConfig, tensors: Map<string, Tensor>, meta: Record<string, unknown>): PeftInstance;
}

export class PeftConfigError extends Error {
  /** `detail`: the message without the method's name in front. */
  constructor(readonly method: string, readonly detail: string) {
    super(`${method}: ${detail}`);
    this.name = "PeftConfigError";
  }
}

/** The keys of `raw` that `def` does not read (each would be silently ignored), in the given order. */
export function unreadOptions(def: MethodDefinition, raw: MethodConfig): string[] {
  return Object.keys(raw).filter((k) => raw[k] !== undefined && !def.options.includes(k));
}
