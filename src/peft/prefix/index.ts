// Prefix-tuning (Li & Liang 2021): trainable keys and values of virtual tokens
// before every sequence, in every layer. They start as the model's own keys and
// values for real vocabulary tokens (drawn with the seed), which trains more
// stably than random init. Attention masks and positions account for them.
import { Tensor, tensor, tidy, noGrad, keep } from "../../engine/index.js";
import type { LayerKV, CausalLM, ModelConfig } from "../../models/causal-lm.js";
import { type MethodConfig, type MethodDefinition, type PeftInstance, PeftConfigError } from "../method.js";
import { intOption, seedOption } from "../options.js";
import { Xoshiro128 } from "../rng.js";

const NAME = "prefix";

class PrefixInstance implements PeftInstance {
  readonly method = NAME;
  private readonly kv: LayerKV[] = [];

  constructor(readonly config: MethodConfig, private readonly model: CausalLM, saved?: Map<string, Tensor>) {
    const c = model.config;
    const p = config.numVirtualTokens as number;
    const shape = [1, c.numKeyValueHeads, p, c.headDim];
    const init = saved ? null : this.activationsOf(config.initTokenIds as number[]);
    for (let i = 0; i < c.numHiddenLayers; i++) {
      const pick = (which: "key" | "value") => {
        if (!saved) return init![i][which];
        const t = saved.get(`prefix.${i}.${which}`);
        if (!t) throw new Error(`${NAME}: adapter file has no tensor 'prefix.${i}.${which}'`);
        if (t.shape.join() !== shape.join()) throw new Error(`${NAME}: 'prefix.${i}.${which}' has shape [${t.shape}], expected [${shape}]`);
        return t.to("float32");
      };
      const layer = { key: pick("key"), value: pick("value") };
      layer.key.setRequiresGrad(true);
      layer.value.setRequiresGrad(true);
      this.kv.push(layer);
    }
    model.hooks.prefix = {
      length: p,
      keyValues: () => {
        const dt = model.dtype;
        return this.kv.map((l) => ({ key: l.key.dtype === dt ? l.key : l.key.to(dt), value: l.value.dtype === dt ? l.value : l.value.to(dt) }));
      },
    };
  }

  /** Each layer's keys/values for the given tokens, as fp32 leaves [1, heads, p, headDim]. */
  private activationsOf(ids: number[]): LayerKV[] {
    return noGrad(() => tidy(() => {
      const { cache } = this.model.forward(tensor(ids, [1, ids.length], "int64"), { useCache: true });
      return cache!.map((l) => ({ key: keep(l.key.to("float32").contiguous()), value: keep(l.value.to("float32").contiguous()) }));
    }));
  }

  trainableParams(): Tensor[] { return this.kv.flatMap((l) => [l.key, l.value]); }
  trainableCount(): number { return this.trainableParams().reduce((n, t) => n + t.numel, 0); }
  stateTensors(): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    this.kv.forEach((l, i) => { out.set(`prefix.${i}.key`, l.key); out.set(`prefix.${i}.value`, l.value); });
    return out;
  }
  stateMeta(): Record<string, unknown> { return {}; }
  baseTensorNames(): string[] { return []; }
  remove(): void {
    delete this.model.hooks.prefix;
    for (const t of this.trainableParams()) t.dispose();
    this.kv.length = 0;
  }
}

export const prefix: MethodDefinition = {
  name: NAME,
  summary: "trainable key/value prefixes in every layer (paper: 5 virtual tokens)",
  options: ["numVirtualTokens", "seed"],
  resolveConfig(raw, shapes) {
    if (shapes.kind !== "causal-lm") {
      throw new PeftConfigError(NAME, `prefix-tuning needs a causal language model (virtual tokens initialised from vocabulary tokens, ` +
        `keys/values through the generation cache); ${shapes.architecture} has neither: use adapter, lora or a mask method`);
    }
    const config = shapes.config as ModelConfig;
    const n = intOption(NAME, raw, "numVirtualTokens", 5);
    // the virtual tokens take the first positions: a sequence needs at least a prompt token and an option token after them
    if (n > config.maxPositionEmbeddings - 2) {
      throw new PeftConfigError(NAME, `numVirtualTokens ${n} leaves too few of the model's ${config.maxPositionEmbeddings} positions ` +
        `(max_position_embeddings) for the tokens after the prefix; at most ${config.maxPositionEmbeddings - 2}`);
    }
    const seed = seedOption(NAME, raw);
    const rng = new Xoshiro128(seed, "prefix-init-tokens");
    // real vocabulary tokens, skipping the 4 special ids
    const initTokenIds = Array.from({ length: n }, () => 4 + rng.below(Math.min(config.vocabSize, 50261) - 4));
    return { numVirtualTokens: n, seed, initTokenIds };
  },
  // keys and values per layer: [kvHeads, p, headDim] each (grouped-query models store fewer heads)
  count: (config, shapes) => {
    const c = shapes.config as ModelConfig;
    return c.numHiddenLayers * 2 * (config.numVirtualTokens as number) * c.numKeyValueHeads * c.headDim;
  },
  // resolveConfig refused every model but a causal LM
  apply: (model, config) => new PrefixInstance(config, model as CausalLM),
  load: (model, config, tensors) => new PrefixInstance(config, model as CausalLM, tensors),
};
