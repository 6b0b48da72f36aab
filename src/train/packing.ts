// Packing tokenised sources into fixed-length blocks for causal-LM pretraining.
// Each source's token stream (documents separated by EOS) is split into a train
// part and a held-out tail; both are cut into blocks of `blockSize` tokens (a
// partial last block is dropped). An epoch visits every train block of a source
// `weight` times (a fractional part picks a seeded subset), in an order shuffled
// by our own generator from (seed, epoch), so a position (epoch, index) names
// the next block exactly and no generator state needs saving.
import { Xoshiro128 } from "../peft/rng.js";

export interface PackedSource {
  name: string;
  tokens: Uint16Array | Uint32Array;
  weight: number;
}

/** The held-out slice of one source: token range [start, end) of its stream. */
export interface HoldoutSlice { source: string; start: number; end: number; blocks: number }

export interface BlockRef { source: number; offset: number }

export class PackedCorpus {
  readonly holdout: HoldoutSlice[];
  private readonly trainBlocks: number[];

  /**
   * @param holdoutTokens per source: the last ⌊holdoutTokens/blockSize⌋ blocks (at most half
   *   the source's blocks) are held out for evaluation and never trained on.
   */
  constructor(readonly sources: PackedSource[], readonly blockSize: number, holdoutTokens: number, readonly seed: number) {
    if (!Number.isInteger(blockSize) || blockSize < 2) throw new Error(`block size must be an integer ≥ 2, got ${blockSize}`);
    this.holdout = [];
    this.trainBlocks = [];
    for (const s of sources) {
      const blocks = Math.floor(s.tokens.length / blockSize);
      if (blocks < 1) throw new Error(`${s.name}: ${s.tokens.length} tokens, fewer than one block of ${blockSize}`);
      const held = Math.min(Math.floor(holdoutTokens / blockSize), Math.floor(blocks / 2));
      const end = s.tokens.length;
      this.holdout.push({ source: s.name, start: end - held * blockSize, end, blocks: held });
      this.trainBlocks.push(Math.floor((end - held * blockSize) / blockSize));
    }
  }

  /** Train blocks per source (before weighting). */
  trainBlockCounts(): number[] { return this.trainBlocks.slice(); }

  /** The shuffled train blocks of epoch `epoch` (deterministic in seed and epoch). */
  epochOrder(epoch: number): BlockRef[] {
    const rng = new Xoshiro128(this.seed, `pretrain-epoch-${epoch}`);
    const refs: BlockRef[] = [];
    this.sources.forEach((s, i) => {
      const n = this.trainBlocks[i];
      const whole = Math.floor(s.weight);
      for (let c = 0; c < whole; c++) for (let b = 0; b < n; b++) refs.push({ source: i, offset: b * this.blockSize });
      const extra = Math.round((s.weight - whole) * n);
      if (extra > 0) for (const b of rng.shuffle(Array.from({ length: n }, (_, k) => k)).slice(0, extra)) refs.push({ source: i, offset: b * this.blockSize });
    });
    return rng.shuffle(refs);
  }

  /** Held-out blocks of every source, in order. */
  evalBlocks(): BlockRef[] {
    const out: BlockRef[] = [];
    this.holdout.forEach((h, i) => { for (let b = 0; b < h.blocks; b++) out.push({ source: i, offset: h.start + b * this.blockSize }); });
    return out;
  }

  /** Token ids of blocks, row-major [refs.length, blockSize]. */
  gather(refs: BlockRef[]): number[] {
    const out: number[] = new Array(refs.length * this.blockSize);
    refs.forEach((r, i) => {
      const t = this.sources[r.source].tokens;
      for (let k = 0; k < this.blockSize; k++) out[i * this.blockSize + k] = t[r.offset + k];
    });
    return out;
  }
}
