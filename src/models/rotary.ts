// Rotary position embeddings (Su et al. 2021, RoFormer) with Hugging Face's
// rope types (transformers' modeling_rope_utils.py): "default", "linear"
// (inv_freq / factor), "dynamic" (NTK: the base grows once a sequence passes
// max_position_embeddings), "llama3" (Llama 3.1's per-wavelength smoothing).
// Inverse frequencies and the cos/sin tables are computed here in float64 and
// rounded to float32 where Hugging Face computes in float32.
import { type DType, Tensor, cat, embedding, keep, noGrad, tensor, tidy } from "../engine/index.js";

export interface RopeConfig {
  type: "default" | "linear" | "dynamic" | "llama3";
  theta: number;
  factor: number;
  /** llama3 */
  lowFreqFactor: number;
  highFreqFactor: number;
  /** llama3: the pre-training context; dynamic uses max_position_embeddings. */
  originalMaxPositionEmbeddings: number;
}

const f32 = Math.fround;

/** 1 / θ^(2i/d) for i < d/2, then the rope type's scaling; Float64Array of float32 values. */
export function inverseFrequencies(rope: RopeConfig, dim: number, maxPositions: number, seqLen?: number): Float64Array {
  let base = rope.theta;
  if (rope.type === "dynamic") {
    const len = Math.max(seqLen ?? maxPositions, maxPositions);
    base = base * ((rope.factor * len) / maxPositions - (rope.factor - 1)) ** (dim / (dim - 2));
  }
  const inv = new Float64Array(dim / 2);
  for (let i = 0; i < dim / 2; i++) inv[i] = f32(1 / f32(base ** f32((2 * i) / dim)));
  if (rope.type === "linear") for (let i = 0; i < inv.length; i++) inv[i] = f32(inv[i] / rope.factor);
  if (rope.type === "llama3") {
    const { factor, lowFreqFactor: lo, highFreqFactor: hi, originalMaxPositionEmbeddings: old } = rope;
    const lowWavelen = old / lo;
    const highWavelen = old / hi;
    for (let i = 0; i < inv.length; i++) {
      const wavelen = (2 * Math.PI) / inv[i];
      if (wavelen > lowWavelen) inv[i] = f32(inv[i] / factor);            // low frequencies: interpolated
      else if (wavelen >= highWavelen) {                                 // medium: smoothed between the two
        const smooth = (old / wavelen - lo) / (hi - lo);
        inv[i] = f32((1 - smooth) * (inv[i] / factor) + smooth * inv[i]);
      }                                                                  // high frequencies: unchanged
    }
  }
  return inv;
}

/** cos/sin tables by position, grown on demand; owned by one model. */
export class Rotary {
  private invFreq: Float64Array;
  private table: { len: number; cos: Tensor; sin: Tensor } | null = null;
  /** dynamic rope: the longest sequence seen since the frequencies last changed (HF's max_seq_len_cached). */
  private cachedSeqLen: number;

  constructor(private readonly rope: RopeConfig, private readonly dim: number, private readonly maxPositions: number) {
    this.invFreq = inverseFrequencies(rope, dim, maxPositions);
    this.cachedSeqLen = maxPositions;
  }

  /** cos and sin [batch, 1, seq, dim] for positionIds [batch, seq] (int64), in `dtype`. */
  cosSin(positionIds: Tensor, dtype: DType): { cos: Tensor; sin: Tensor } {
    const needed = noGrad(() => tidy(() => positionIds.amax([0, 1]).item())) + 1;
    if (this.rope.type === "dynamic") this.updateDynamic(needed);
    if (!this.table || this.table.len < needed) this.build(Math.max(needed, Math.min(this.maxPositions, 4096)));
    const pick = (t: Tensor) => { const e = embedding(t, positionIds).unsqueeze(1); return e.dtype === dtype ? e : e.to(dtype); };
    return { cos: pick(this.table!.cos), sin: pick(this.table!.sin) };
  }

  /** Hugging Face's dynamic_rope_update: grow past the context, reset when back inside it. */
  private updateDynamic(seqLen: number): void {
    if (seqLen > this.cachedSeqLen) {
      this.invFreq = inverseFrequencies(this.rope, this.dim, this.maxPositions, seqLen);
      this.cachedSeqLen = seqLen;
      this.dropTable();
    } else if (seqLen < this.maxPositions && this.cachedSeqLen > this.maxPositions) {
      this.invFreq = inverseFrequencies(this.rope, this.dim, this.maxPositions);
      this.cachedSeqLen = this.maxPositions;
      this.dropTable();
    }
  }

  private build(len: number): void {
    this.dropTable();
    const half = this.dim / 2;
    const cos = new Float32Array(len * this.dim);
    const sin = new Float32Array(len * this.dim);
    for (let p = 0; p < len; p++) {
      for (let i = 0; i < half; i++) {
        const angle = f32(p * this.invFreq[i]);
        const c = Math.cos(angle), s = Math.sin(angle);
        // emb = cat(freqs, freqs): both halves share a frequency
        cos[p * this.dim + i] = c; cos[p * this.dim + half + i] = c;
        sin[p * this.dim + i] = s; sin[p * this.dim + half + i] = s;
      }
    }
    this.table = { len, cos: keep(tensor(cos, [len, this.dim])), sin: keep(tensor(sin, [len, this.dim])) };
  }

  private dropTable(): void {
    if (this.table) { this.table.cos.dispose(); this.table.sin.dispose(); this.table = null; }
  }

  dispose(): void { this.dropTable(); }
}

/** x·cos + rotate_half(x)·sin, rotate_half(x) = cat(−x₂, x₁); x [b, heads, t, dim]. */
export function applyRotary(x: Tensor, cos: Tensor, sin: Tensor): Tensor {
  const half = x.size(-1) / 2;
  const rotated = cat([x.narrow(-1, half, half).neg(), x.narrow(-1, 0, half)], -1);
  return x.mul(cos).add(rotated.mul(sin));
}
