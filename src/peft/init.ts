// Reproducible initialisation from our own generator (rng.ts).
import { Tensor, tensor } from "../engine/index.js";
import { Xoshiro128 } from "./rng.js";

/** U(-bound, bound) of the given shape, fp32, from (seed, stream). */
export function uniformTensor(shape: number[], bound: number, seed: number, stream: string): Tensor {
  const rng = new Xoshiro128(seed, stream);
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = (rng.nextFloat() * 2 - 1) * bound;
  return tensor(data, shape, "float32");
}

/** nn.Linear's default weight init (kaiming_uniform with a=√5): U(±1/√fan_in). */
export function kaimingUniform(shape: [number, number], seed: number, stream: string): Tensor {
  return uniformTensor(shape, 1 / Math.sqrt(shape[1]), seed, stream);
}
