// A seeded generator of our own, so masks are identical on every platform and
// engine version: xoshiro128** (Blackman & Vigna) over 32-bit integer ops,
// seeded by splitmix32 from (seed, stream name). Only integer arithmetic
// (Math.imul, shifts) is used, so there is no floating-point rounding to differ.

function splitmix32(state: number): [number, number] {
  state = (state + 0x9e3779b9) | 0;
  let z = state;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return [state, (z ^ (z >>> 16)) >>> 0];
}

/** FNV-1a of a string's UTF-16 code units. */
export function fnv1a32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

export class Xoshiro128 {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  /** A stream determined by the seed (an integer in [0, 2^53)) and a stream name (e.g. a module name). */
  constructor(seed: number, stream = "") {
    if (!Number.isSafeInteger(seed) || seed < 0) throw new Error(`seed must be a non-negative integer, got ${seed}`);
    let s = (seed % 0x100000000) ^ fnv1a32(stream);
    let hi = Math.floor(seed / 0x100000000);
    const words: number[] = [];
    for (let i = 0; i < 4; i++) {
      let w: number;
      [s, w] = splitmix32(s ^ hi);
      hi = 0;
      words.push(w);
    }
    [this.a, this.b, this.c, this.d] = words;
    if ((this.a | this.b | this.c | this.d) === 0) this.a = 1;
  }

  /** Next uniform 32-bit unsigned integer. */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return result;
  }

  /** Uniform integer in [0, n) for n ≤ 2^32, without modulo bias (Lemire's method). */
  below(n: number): number {
    if (n <= 0 || n > 0x100000000) throw new Error(`below(${n}): n must be in [1, 2^32]`);
    if (n === 0x100000000) return this.nextU32();
    const threshold = (0x100000000 - n) % n;
    for (;;) {
      const x = this.nextU32();
      // 64-bit product x·n split into high/low words without floating error
      const lo = (x & 0xffff) * n;
      const hi = (x >>> 16) * n + Math.floor(lo / 0x10000);
      const low32 = ((hi % 0x10000) * 0x10000 + (lo % 0x10000)) >>> 0;
      if (low32 >= threshold) return Math.floor(hi / 0x10000);
    }
  }

  /** Shuffles `a` in place and returns it: Fisher–Yates from the last element down, swapping a[i] with a[below(i + 1)]. */
  shuffle<T>(a: T[]): T[] {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.below(i + 1);
      [a[i], a[j]] = [a[j], a[i]];
    }
    return a;
  }

  /** Uniform float in [0, 1) with 32 bits (for init, not for masks). */
  nextFloat(): number {
    return this.nextU32() / 0x100000000;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
