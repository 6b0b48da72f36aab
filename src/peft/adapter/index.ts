// Adapter (Houlsby et al. 2019): a bottleneck Linear(d, m) → ReLU → Linear(m, d)
// with a residual, after the attention block and after the feed-forward block
// of every layer. The up-projection starts at zero, so the model starts unchanged.
import { Tensor, linear, zeros } from "../../engine/index.js";
import type { BaseModel } from "../base-model.js";
import type { MethodConfig, MethodDefinition, PeftInstance } from "../method.js";
import { kaimingUniform } from "../init.js";
import { intOption, seedOption } from "../options.js";

const NAME = "adapter";
const SITES = ["attention", "feed_forward"] as const;

interface Bottleneck { downW: Tensor; downB: Tensor; upW: Tensor; upB: Tensor }

function run(a: Bottleneck, h: Tensor): Tensor {
  const dt = h.dtype;
  const c = (t: Tensor) => (t.dtype === dt ? t : t.to(dt));
  return h.add(linear(linear(h, c(a.downW), c(a.downB)).relu(), c(a.upW), c(a.upB)));
}

class AdapterInstance implements PeftInstance {
  readonly method = NAME;
  private readonly adapters = new Map<string, Bottleneck>();

  constructor(readonly config: MethodConfig, private readonly model: BaseModel, saved?: Map<string, Tensor>) {
    const d = model.config.hiddenSize;
    const m = config.bottleneck as number;
    for (let i = 0; i < model.config.numHiddenLayers; i++) {
      for (const site of SITES) {
        const key = `adapters.${i}.${site}`;
        const get = (name: string, fresh: () => Tensor, shape: number[]) => {
          if (!saved) return fresh();
          const t = saved.get(`${key}.${name}`);
          if (!t) throw new Error(`${NAME}: adapter file has no tensor '${key}.${name}'`);
          if (t.shape.join() !== shape.join()) throw new Error(`${NAME}: '${key}.${name}' has shape [${t.shape}], expected [${shape}]`);
          return t.to("float32");
        };
        const a: Bottleneck = {
          downW: get("down.weight", () => kaimingUniform([m, d], config.seed as number, `${key}.down`), [m, d]),
          downB: get("down.bias", () => zeros([m]), [m]),
          upW: get("up.weight", () => zeros([d, m]), [d, m]),
          upB: get("up.bias", () => zeros([d]), [d]),
        };
        Object.values(a).forEach((t) => t.setRequiresGrad(true));
        this.adapters.set(key, a);
      }
    }
    model.hooks.afterAttention = (i, h) => run(this.adapters.get(`adapters.${i}.attention`)!, h);
    model.hooks.afterFeedForward = (i, h) => run(this.adapters.get(`adapters.${i}.feed_forward`)!, h);
  }

  trainableParams(): Tensor[] { return [...this.adapters.values()].flatMap((a) => [a.downW, a.downB, a.upW, a.upB]); }
  trainableCount(): number { return this.trainableParams().reduce((n, t) => n + t.numel, 0); }
  stateTensors(): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    for (const [k, a] of this.adapters) {
      out.set(`${k}.down.weight`, a.downW); out.set(`${k}.down.bias`, a.downB);
      out.set(`${k}.up.weight`, a.upW); out.set(`${k}.up.bias`, a.upB);
    }
    return out;
  }
  stateMeta(): Record<string, unknown> { return {}; }
  baseTensorNames(): string[] { return []; }
  remove(): void {
    delete this.model.hooks.afterAttention;
    delete this.model.hooks.afterFeedForward;
    for (const t of this.trainableParams()) t.dispose();
    this.adapters.clear();
  }
}

export const adapter: MethodDefinition = {
  name: NAME,
  summary: "Houlsby bottleneck adapters after attention and feed-forward (paper: bottleneck 8)",
  options: ["bottleneck", "seed"],
  resolveConfig: (raw) => ({ bottleneck: intOption(NAME, raw, "bottleneck", 8), seed: seedOption(NAME, raw) }),
  count: (config, shapes) => {
    const d = shapes.config.hiddenSize;
    const m = config.bottleneck as number;
    return shapes.config.numHiddenLayers * SITES.length * (2 * d * m + m + d);
  },
  apply: (model, config) => new AdapterInstance(config, model),
  load: (model, config, tensors) => new AdapterInstance(config, model, tensors),
};
