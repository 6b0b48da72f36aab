// The TypeScript tensor: a thin owner of one native libtorch tensor. Every op
// returns a new Tensor registered in the current scope (see scope.ts), so
// intermediates are freed deterministically when the scope ends.
import { native, type NativeHandle } from "./native.js";
import { track, untrack } from "./scope.js";

export type DType = "float32" | "float64" | "bfloat16" | "float16" | "int64" | "int32" | "int16" | "int8" | "bool" | "uint8";
export type Device = "cpu" | `cuda${string}`;
export type Operand = Tensor | number;

export const DTYPE_BYTES: Record<DType, number> = {
  float32: 4, float64: 8, bfloat16: 2, float16: 2, int64: 8, int32: 4, int16: 2, int8: 1, bool: 1, uint8: 1,
};

/** The floating-point dtypes (the rest are integers and bool). */
export const FLOATING_DTYPES: readonly DType[] = ["float32", "float64", "bfloat16", "float16"];

function h(x: Operand): NativeHandle | number {
  return typeof x === "number" ? x : x.handle;
}

interface Meta { shape: number[]; dtype: DType; device: string }

export class Tensor {
  readonly handle: NativeHandle;
  private meta: Meta | undefined;

  /** Wraps a native handle; library code only. */
  constructor(handle: NativeHandle) {
    this.handle = handle;
    track(this);
  }

  // ------------------------------------------------------------ facts
  private info(): Meta {
    if (!this.meta) {
      const i = native.info(this.handle);
      this.meta = { shape: i.shape, dtype: i.dtype, device: i.device };
    }
    return this.meta;
  }
  get shape(): number[] { return this.info().shape.slice(); }
  get dtype(): DType { return this.info().dtype; }
  get device(): string { return this.info().device; }
  get rank(): number { return this.info().shape.length; }
  get numel(): number { return this.info().shape.reduce((a, b) => a * b, 1); }
  get requiresGrad(): boolean { return native.info(this.handle).requiresGrad; }
  size(dim: number): number {
    const s = this.info().shape;
    return s[dim < 0 ? s.length + dim : dim];
  }
  get isDisposed(): boolean { return this.handle.isDisposed(); }

  /** Frees the native tensor now. Safe to call twice. */
  dispose(): void {
    untrack(this);
    this.handle.dispose();
  }

  // ------------------------------------------------------------ readback
  toArray(): Float32Array | Float64Array | BigInt64Array | Int32Array | Int16Array | Int8Array | Uint16Array | Uint8Array {
    const buf: ArrayBuffer = native.toBuffer(this.handle);
    switch (this.dtype) {
      case "float32": return new Float32Array(buf);
      case "float64": return new Float64Array(buf);
      case "int64": return new BigInt64Array(buf);
      case "int32": return new Int32Array(buf);
      case "int16": return new Int16Array(buf);
      case "int8": return new Int8Array(buf);
      case "bfloat16": case "float16": return new Uint16Array(buf);
      default: return new Uint8Array(buf);
    }
  }
  /** Values as plain numbers (floats converted through float64). */
  toNumbers(): number[] {
    const d = this.dtype;
    if (d === "bfloat16" || d === "float16" || d === "float32") {
      const t = native.to(this.handle, "float64");
      try { return Array.from(new Float64Array(native.toBuffer(t))); } finally { t.dispose(); }
    }
    const a = this.toArray();
    return a instanceof BigInt64Array ? Array.from(a, Number) : Array.from(a as ArrayLike<number>);
  }
  /** Nested arrays shaped like the tensor. */
  toNested(): unknown {
    const flat = this.toNumbers();
    const shape = this.shape;
    let pos = 0;
    const build = (d: number): unknown => {
      if (d === shape.length) return flat[pos++];
      return Array.from({ length: shape[d] }, () => build(d + 1));
    };
    return build(0);
  }
  item(): number { return native.item(this.handle); }

  // ------------------------------------------------------------ moves and views
  to(dtype?: DType, device?: string): Tensor { return new Tensor(native.to(this.handle, dtype, device)); }
  contiguous(): Tensor { return new Tensor(native.contiguous(this.handle)); }
  clone(): Tensor { return new Tensor(native.clone(this.handle)); }
  detach(): Tensor { return new Tensor(native.detach(this.handle)); }
  reshape(shape: number[]): Tensor { return new Tensor(native.reshape(this.handle, shape)); }
  transpose(a: number, b: number): Tensor { return new Tensor(native.transpose(this.handle, a, b)); }
  permute(dims: number[]): Tensor { return new Tensor(native.permute(this.handle, dims)); }
  expand(shape: number[]): Tensor { return new Tensor(native.expand(this.handle, shape)); }
  unsqueeze(dim: number): Tensor { return new Tensor(native.unsqueeze(this.handle, dim)); }
  squeeze(dim: number): Tensor { return new Tensor(native.squeeze(this.handle, dim)); }
  /** Elements [start, start+length) along dim (a view). */
  narrow(dim: number, start: number, length: number): Tensor {
    return new Tensor(native.narrow(this.handle, dim, start, length));
  }
  /** A view of this tensor's storage with the given sizes, strides and element offset (torch.as_strided). */
  asStrided(shape: number[], stride: number[], offset: number): Tensor {
    return new Tensor(native.asStrided(this.handle, shape, stride, offset));
  }
  select(dim: number, index: number): Tensor { return new Tensor(native.select(this.handle, dim, index)); }
  tril(diagonal = 0): Tensor { return new Tensor(native.tril(this.handle, diagonal)); }
  triu(diagonal = 0): Tensor { return new Tensor(native.triu(this.handle, diagonal)); }

  // ------------------------------------------------------------ elementwise
  add(o: Operand, alpha = 1): Tensor { return new Tensor(native.add(this.handle, h(o), alpha)); }
  sub(o: Operand): Tensor { return new Tensor(native.sub(this.handle, h(o))); }
  mul(o: Operand): Tensor { return new Tensor(native.mul(this.handle, h(o))); }
  div(o: Operand): Tensor { return new Tensor(native.div(this.handle, h(o))); }
  pow(o: Operand): Tensor { return new Tensor(native.pow(this.handle, h(o))); }
  maximum(o: Operand): Tensor { return new Tensor(native.maximum(this.handle, h(o))); }
  minimum(o: Operand): Tensor { return new Tensor(native.minimum(this.handle, h(o))); }
  neg(): Tensor { return new Tensor(native.neg(this.handle)); }
  exp(): Tensor { return new Tensor(native.exp(this.handle)); }
  log(): Tensor { return new Tensor(native.log(this.handle)); }
  sqrt(): Tensor { return new Tensor(native.sqrt(this.handle)); }
  rsqrt(): Tensor { return new Tensor(native.rsqrt(this.handle)); }
  abs(): Tensor { return new Tensor(native.abs(this.handle)); }
  tanh(): Tensor { return new Tensor(native.tanh(this.handle)); }
  sigmoid(): Tensor { return new Tensor(native.sigmoid(this.handle)); }
  relu(): Tensor { return new Tensor(native.relu(this.handle)); }
  /** GELU; `tanh` selects the tanh approximation (gelu_new). */
  gelu(tanh = false): Tensor { return new Tensor(native.gelu(this.handle, tanh)); }
  clamp(min?: number, max?: number): Tensor { return new Tensor(native.clamp(this.handle, min, max)); }
  isfinite(): Tensor { return new Tensor(native.isfinite(this.handle)); }

  eq(o: Operand): Tensor { return new Tensor(native.eq(this.handle, h(o))); }
  ne(o: Operand): Tensor { return new Tensor(native.ne(this.handle, h(o))); }
  lt(o: Operand): Tensor { return new Tensor(native.lt(this.handle, h(o))); }
  le(o: Operand): Tensor { return new Tensor(native.le(this.handle, h(o))); }
  gt(o: Operand): Tensor { return new Tensor(native.gt(this.handle, h(o))); }
  ge(o: Operand): Tensor { return new Tensor(native.ge(this.handle, h(o))); }
  logicalNot(): Tensor { return new Tensor(native.logicalNot(this.handle)); }
  logicalAnd(o: Tensor): Tensor { return new Tensor(native.logicalAnd(this.handle, o.handle)); }
  /** Fills `value` where `mask` is true. */
  maskedFill(mask: Tensor, value: number): Tensor { return new Tensor(native.maskedFill(this.handle, mask.handle, value)); }

  // ------------------------------------------------------------ reductions
  sum(dims?: number | number[], keepDim = false): Tensor { return new Tensor(native.sum(this.handle, dims ?? null, keepDim)); }
  mean(dims?: number | number[], keepDim = false): Tensor { return new Tensor(native.mean(this.handle, dims ?? null, keepDim)); }
  amax(dims: number | number[], keepDim = false): Tensor { return new Tensor(native.amax(this.handle, dims, keepDim)); }
  argmax(dim: number, keepDim = false): Tensor { return new Tensor(native.argmax(this.handle, dim, keepDim)); }
  logsumexp(dims: number | number[], keepDim = false): Tensor { return new Tensor(native.logsumexp(this.handle, dims, keepDim)); }
  /** Frobenius / L2 norm of all elements. */
  norm(): Tensor { return new Tensor(native.norm(this.handle)); }
  cumsum(dim: number): Tensor { return new Tensor(native.cumsum(this.handle, dim)); }
  softmax(dim: number): Tensor { return new Tensor(native.softmax(this.handle, dim)); }
  logSoftmax(dim: number): Tensor { return new Tensor(native.logSoftmax(this.handle, dim)); }

  // ------------------------------------------------------------ linear algebra
  matmul(o: Tensor): Tensor { return new Tensor(native.matmul(this.handle, o.handle)); }
  bmm(o: Tensor): Tensor { return new Tensor(native.bmm(this.handle, o.handle)); }
  /**
   * Eigen-decomposition of a symmetric (Hermitian) matrix [..., n, n], like
   * torch.linalg.eigh (lower triangle read): eigenvalues ascending [..., n] and
   * orthonormal eigenvectors as columns [..., n, n].
   */
  eigh(): [Tensor, Tensor] {
    const [l, v] = native.linalgEigh(this.handle);
    return [new Tensor(l), new Tensor(v)];
  }

  // ------------------------------------------------------------ indexing
  indexSelect(dim: number, index: Tensor): Tensor { return new Tensor(native.indexSelect(this.handle, dim, index.handle)); }
  gather(dim: number, index: Tensor): Tensor { return new Tensor(native.gather(this.handle, dim, index.handle)); }
  scatterAdd(dim: number, index: Tensor, src: Tensor): Tensor {
    return new Tensor(native.scatterAdd(this.handle, dim, index.handle, src.handle));
  }
  indexAdd(dim: number, index: Tensor, src: Tensor): Tensor {
    return new Tensor(native.indexAdd(this.handle, dim, index.handle, src.handle));
  }
  /** Out-of-place `t[indices] = values` (or `+=` with accumulate). */
  indexPut(indices: Tensor[], values: Tensor, accumulate = false): Tensor {
    return new Tensor(native.indexPut(this.handle, indices.map((t) => t.handle), values.handle, accumulate));
  }
  sort(dim = -1, descending = false): [Tensor, Tensor] {
    const [v, i] = native.sort(this.handle, dim, descending);
    return [new Tensor(v), new Tensor(i)];
  }
  topk(k: number, dim = -1): [Tensor, Tensor] {
    const [v, i] = native.topk(this.handle, k, dim);
    return [new Tensor(v), new Tensor(i)];
  }

  // ------------------------------------------------------------ in place, outside autograd
  copy_(src: Tensor): this { native.copy_(this.handle, src.handle); return this; }
  zero_(): this { native.zero_(this.handle); return this; }
  mul_(s: number): this { native.mul_(this.handle, s); return this; }
  /** this += alpha · other */
  addScaled_(other: Tensor, alpha: number): this { native.addScaled_(this.handle, other.handle, alpha); return this; }
  indexAdd_(dim: number, index: Tensor, src: Tensor): this {
    native.indexAdd_(this.handle, dim, index.handle, src.handle);
    return this;
  }

  // ------------------------------------------------------------ autograd
  setRequiresGrad(on = true): this { native.setRequiresGrad(this.handle, on); return this; }
  /** The accumulated gradient, or null. A new handle sharing the gradient's storage. */
  get grad(): Tensor | null {
    const g = native.grad(this.handle);
    return g === null ? null : new Tensor(g);
  }
  clearGrad(): void { native.clearGrad(this.handle); }
  backward(gradient?: Tensor, retainGraph = false): void {
    native.backward(this.handle, gradient ? gradient.handle : null, retainGraph);
  }

  allclose(o: Tensor, rtol = 1e-5, atol = 1e-8): boolean { return native.allclose(this.handle, o.handle, rtol, atol); }
  /** Same shape and bitwise-equal values. */
  equal(o: Tensor): boolean { return native.equal(this.handle, o.handle); }

  toString(): string { return `Tensor(${this.shape.join("×")}, ${this.dtype}, ${this.device})`; }
}

// ------------------------------------------------------------ creation

let defaultDevice: Device = "cpu";

/**
 * Where creation functions (tensor, fromFile, full, zeros, arange, randn, …) put new
 * tensors when no device is given, like torch.set_default_device: "cpu", "cuda" or
 * "cuda:N". Set it once, before a model is loaded, and every weight, PEFT parameter,
 * input and temporary lands there. Throws (naming the device) for a malformed name,
 * a libtorch without CUDA, or an index past the device count.
 */
export function setDefaultDevice(device: string): void {
  defaultDevice = checkDevice(device);
}

/** The device set by setDefaultDevice ("cpu" until then). */
export function getDefaultDevice(): Device { return defaultDevice; }

/** Validates a device name against this libtorch and machine; returns it. */
export function checkDevice(device: string): Device {
  const m = /^(cpu|cuda)(?::(\d+))?$/.exec(device);
  if (!m || (m[1] === "cpu" && m[2] !== undefined)) throw new Error(`device ${JSON.stringify(device)}: expected cpu, cuda or cuda:N`);
  if (m[1] === "cpu") return "cpu";
  const info = native.buildInfo() as { cudaAvailable: boolean; cudaDeviceCount: number; torchVersion: string };
  if (!info.cudaAvailable) {
    throw new Error(`device ${device}: CUDA is not available (libtorch ${info.torchVersion} without CUDA, or no GPU or driver); ` +
      "build the addon against a CUDA libtorch (LIBTORCH or a pip torch with CUDA, see scripts/setup.sh) or use cpu");
  }
  const index = m[2] === undefined ? 0 : Number(m[2]);
  if (index >= info.cudaDeviceCount) throw new Error(`device ${device}: only ${info.cudaDeviceCount} CUDA device(s)`);
  return device as Device;
}

/** Moves a freshly made CPU tensor to the default device (disposing the CPU copy). */
function onDefault(t: Tensor): Tensor {
  if (defaultDevice === "cpu") return t;
  try { return t.to(undefined, defaultDevice); } finally { t.dispose(); }
}

type Numeric = ArrayLike<number> | BigInt64Array;

function toTyped(data: Numeric, dtype: DType): ArrayBufferView {
  switch (dtype) {
    case "float32": return data instanceof Float32Array ? data : Float32Array.from(data as ArrayLike<number>);
    case "float64": return data instanceof Float64Array ? data : Float64Array.from(data as ArrayLike<number>);
    case "int64": return data instanceof BigInt64Array ? data : BigInt64Array.from(data as ArrayLike<number>, (x) => BigInt(x));
    case "int32": return data instanceof Int32Array ? data : Int32Array.from(data as ArrayLike<number>);
    case "int16": return data instanceof Int16Array ? data : Int16Array.from(data as ArrayLike<number>);
    case "int8": return data instanceof Int8Array ? data : Int8Array.from(data as ArrayLike<number>);
    case "bool": case "uint8": return data instanceof Uint8Array ? data : Uint8Array.from(data as ArrayLike<number>);
    case "bfloat16": case "float16":
      if (data instanceof Uint16Array) return data; // raw bits
      return toTyped(data, "float32");
  }
}

/** A tensor (on the default device) from flat data and a shape. For bfloat16/float16, pass a Uint16Array of raw bits or numbers. */
export function tensor(data: Numeric, shape: number[], dtype: DType = "float32"): Tensor {
  const typed = toTyped(data, dtype);
  if (typed instanceof Float32Array && (dtype === "bfloat16" || dtype === "float16")) {
    const f = new Tensor(native.fromBuffer(typed, shape, "float32"));
    try { return f.to(dtype, defaultDevice); } finally { f.dispose(); }
  }
  return onDefault(new Tensor(native.fromBuffer(typed, shape, dtype)));
}

/** Reads `shape` elements of `dtype` from `path` at a byte offset, straight into tensor memory (then to the default device). */
export function fromFile(path: string, byteOffset: number, shape: number[], dtype: DType): Tensor {
  return onDefault(new Tensor(native.fromFile(path, byteOffset, shape, dtype)));
}

export function full(shape: number[], value: number, dtype: DType = "float32", device?: string): Tensor {
  return new Tensor(native.full(shape, value, dtype, device ?? defaultDevice));
}
export function zeros(shape: number[], dtype: DType = "float32", device?: string): Tensor { return full(shape, 0, dtype, device); }
export function ones(shape: number[], dtype: DType = "float32", device?: string): Tensor { return full(shape, 1, dtype, device); }
export function arange(start: number, end: number, step = 1, dtype: DType = "int64", device?: string): Tensor {
  return new Tensor(native.arange(start, end, step, dtype, device ?? defaultDevice));
}
/** Standard normal values from libtorch's generator (see manualSeed). */
export function randn(shape: number[], dtype: DType = "float32", device?: string): Tensor {
  return new Tensor(native.randn(shape, dtype, device ?? defaultDevice));
}
export function rand(shape: number[], dtype: DType = "float32", device?: string): Tensor {
  return new Tensor(native.rand(shape, dtype, device ?? defaultDevice));
}

export function cat(tensors: Tensor[], dim = 0): Tensor { return new Tensor(native.cat(tensors.map((t) => t.handle), dim)); }
export function stack(tensors: Tensor[], dim = 0): Tensor { return new Tensor(native.stack(tensors.map((t) => t.handle), dim)); }
export function where(cond: Tensor, a: Operand, b: Operand): Tensor { return new Tensor(native.where(cond.handle, h(a), h(b))); }

/** The n×n identity matrix. */
export function eye(n: number, dtype: DType = "float32"): Tensor {
  const o = ones([n, n], dtype);
  const lower = o.tril();
  o.dispose();
  try { return lower.triu(); } finally { lower.dispose(); }
}
