// The layer loop every family runs: each layer in its own scope (inference
// holds one layer's activations at a time), optional activation checkpointing,
// and per-layer dropout seeds so a recomputed layer repeats its masks.
import { type Tensor, checkpoint, isGradEnabled, manualSeed, rand, tidy } from "../engine/index.js";
import type { LayerKV } from "./causal-lm.js";

export interface StackOptions {
  layers: number;
  /** Dropout is active (training with p > 0): layers get their own seeds. */
  random: boolean;
  checkpointing: boolean;
  useCache: boolean;
}

/** h → layer(n−1)(…layer(0)(h)); `layer` pushes its keys/values into `kv` when given. Disposes `h`. */
export function runDecoderStack(h: Tensor, o: StackOptions,
  layer: (i: number, h: Tensor, kv: LayerKV[] | undefined) => Tensor): { h: Tensor; cache: LayerKV[] } {
  const cache: LayerKV[] = [];
  const checkpointed = o.checkpointing && isGradEnabled() && !o.useCache;
  const seedBase = o.random ? Math.floor(rand([1]).item() * 2 ** 30) : 0;
  for (let i = 0; i < o.layers; i++) {
    const input = h;
    const out = tidy(() => {
      if (o.random) manualSeed(seedBase + i);
      if (checkpointed) {
        const run = (x: Tensor) => {
          if (o.random) manualSeed(seedBase + i);
          return layer(i, x, undefined);
        };
        return { h: checkpoint(run, input.requiresGrad ? input : input.detach().setRequiresGrad(true)), kv: undefined };
      }
      const kv: LayerKV[] = [];
      return { h: layer(i, input, o.useCache ? kv : undefined), kv: kv[0] as LayerKV | undefined };
    });
    input.dispose();
    h = out.h;
    if (out.kv) cache.push(out.kv);
  }
  return { h, cache };
}
