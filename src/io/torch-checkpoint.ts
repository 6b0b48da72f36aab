// PyTorch checkpoints (`pytorch_model.bin`) read without running any code, in
// both formats of torch.save (torch/serialization.py):
// - zip (PyTorch ≥ 1.6): `<name>/data.pkl` holds the state dict, whose tensors
//   name storages by key; each storage is the stored entry `<name>/data/<key>`.
// - legacy (< 1.6): five pickles in a row — magic number, protocol version,
//   sys info, the state dict, the list of storage keys — then each storage as
//   an int64 element count and its raw bytes.
// Everything (pickle, zip records, storage sizes, tensor views) is validated
// before any tensor is allocated. Loading then reads each storage once, straight
// from the file into native memory, and makes every tensor a view of it (tied
// weights stay one storage); only non-contiguous views are copied.
import { closeSync, fstatSync, openSync } from "node:fs";
import { type DType, DTYPE_BYTES, Tensor, fromFile, zeros } from "../engine/index.js";
import { CheckpointError } from "./checkpoint-error.js";
import { fsReason } from "./fs-reason.js";
import { entryDataRange, readExact, readZipDirectory } from "./zip.js";
import { NeedMoreBytes, PDict, PList, STORAGE_DTYPES, Global, StorageRef, TensorRef, type Value, describe, unpickle } from "./torch-pickle.js";

/** torch/serialization.py MAGIC_NUMBER and PROTOCOL_VERSION of the legacy format. */
const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL = 1001;
/** A pickle (the state dict's structure, not its data) larger than this is not a checkpoint. */
const MAX_PICKLE_BYTES = 512 * 2 ** 20;

export interface TorchTensorInfo {
  name: string;
  dtype: DType;
  shape: number[];
  /** Strides and offset in elements of the root storage. */
  stride: number[];
  offset: number;
  storageKey: string;
}

export interface TorchStorage {
  key: string;
  dtype: DType;
  numel: number;
  /** Absolute byte offset of the storage's data in the file. */
  fileOffset: number;
}

export interface TorchCheckpoint {
  file: string;
  format: "zip" | "legacy";
  /** In the state dict's order. */
  tensors: TorchTensorInfo[];
  storages: Map<string, TorchStorage>;
}

/**
 * Reads and validates a torch.save file's structure without loading tensor
 * data. Throws CheckpointError (naming the file) for a refused global, a
 * malformed zip or pickle, a storage that does not fit, an unsupported dtype
 * or a big-endian file.
 */
export function readTorchCheckpoint(file: string): TorchCheckpoint {
  let fd: number;
  try { fd = openSync(file, "r"); } catch (e) {
    throw new CheckpointError(file, fsReason(e));
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new CheckpointError(file, "is a folder, expected a PyTorch checkpoint file");
    const size = stat.size;
    if (size < 4) throw new CheckpointError(file, `truncated: ${size} bytes is no PyTorch checkpoint`);
    const isZip = readExact(fd, file, 4, 0).readUInt32LE(0) === 0x04034b50;
    return isZip ? readZipFormat(fd, file, size) : readLegacyFormat(fd, file, size);
  } catch (e) {
    // the native reader and Node's fs can throw too; the caller gets one error type naming the file
    if (e instanceof CheckpointError) throw e;
    throw new CheckpointError(file, (e as Error).message);
  } finally {
    closeSync(fd);
  }
}

function readZipFormat(fd: number, file: string, size: number): TorchCheckpoint {
  const zip = readZipDirectory(fd, file, size);
  const pkls = [...zip.entries.keys()].filter((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (pkls.length !== 1) throw new CheckpointError(file, `expected one '<name>/data.pkl' in the zip, found ${pkls.length}`);
  const prefix = pkls[0].slice(0, -"data.pkl".length);
  const byteorder = zip.entries.get(`${prefix}byteorder`);
  if (byteorder) {
    const r = entryDataRange(fd, file, zip, byteorder);
    const order = r.size <= 16 ? readExact(fd, file, r.size, r.offset).toString("latin1") : "?";
    if (order !== "little") throw new CheckpointError(file, `byte order '${order}': only little-endian checkpoints are read`);
  }
  const pkl = entryDataRange(fd, file, zip, zip.entries.get(pkls[0])!);
  if (pkl.size > MAX_PICKLE_BYTES) throw new CheckpointError(file, `data.pkl of ${pkl.size} bytes exceeds the ${MAX_PICKLE_BYTES}-byte limit`);
  const storages = new Map<string, { dtype: DType; numel: number }>();
  const persistentLoad = (pid: Value): Value => {
    const [, type, key, location, numel] = storageId(file, pid, 5);
    const prev = storages.get(key);
    if (prev && (prev.dtype !== type || prev.numel !== numel)) throw new CheckpointError(file, `storage '${key}' is described twice, differently`);
    storages.set(key, { dtype: type, numel });
    return new StorageRef(key, type, numel, location);
  };
  const { value } = unpickle(readExact(fd, file, pkl.size, pkl.offset), 0, file, persistentLoad, true);
  const tensors = stateDictTensors(file, value);
  const located = new Map<string, TorchStorage>();
  for (const [key, s] of storages) {
    const entry = zip.entries.get(`${prefix}data/${key}`);
    if (!entry) throw new CheckpointError(file, `storage '${key}' has no zip entry '${prefix}data/${key}'`);
    const r = entryDataRange(fd, file, zip, entry);
    const want = s.numel * DTYPE_BYTES[s.dtype];
    if (r.size !== want) throw new CheckpointError(file, `storage '${key}' holds ${r.size} bytes but ${s.numel} × ${s.dtype} needs ${want}`);
    located.set(key, { key, dtype: s.dtype, numel: s.numel, fileOffset: r.offset });
  }
  return { file, format: "zip", tensors, storages: located };
}

function readLegacyFormat(fd: number, file: string, size: number): TorchCheckpoint {
  // The pickles come first; read a growing prefix until they all parse.
  for (let chunk = Math.min(size, 2 ** 20); ; chunk = Math.min(size, chunk * 4)) {
    if (chunk > MAX_PICKLE_BYTES) throw new CheckpointError(file, `legacy pickles exceed the ${MAX_PICKLE_BYTES}-byte limit`);
    try {
      return parseLegacy(fd, file, size, readExact(fd, file, chunk, 0), chunk === size);
    } catch (e) {
      if (!(e instanceof NeedMoreBytes)) throw e;
    }
  }
}

function parseLegacy(fd: number, file: string, size: number, buf: Buffer, complete: boolean): TorchCheckpoint {
  const noStorages = () => { throw new CheckpointError(file, "a storage reference outside the state dict"); };
  const notTorch = "not a PyTorch checkpoint: neither a zip archive nor the legacy format's magic number";
  let magic: { value: Value; end: number };
  try { magic = unpickle(buf, 0, file, noStorages, complete); } catch (e) {
    // the magic number's pickle is 15 bytes: one that does not end within the first chunk is none
    if (e instanceof NeedMoreBytes) throw new CheckpointError(file, notTorch);
    throw e instanceof CheckpointError ? new CheckpointError(file, `${notTorch} (${e.message.slice(file.length + 2)})`) : e;
  }
  if (magic.value !== LEGACY_MAGIC) throw new CheckpointError(file, notTorch);
  const protocol = unpickle(buf, magic.end, file, noStorages, complete);
  if (protocol.value !== LEGACY_PROTOCOL) throw new CheckpointError(file, `legacy protocol version ${String(protocol.value)}, expected ${LEGACY_PROTOCOL}`);
  const sysInfo = unpickle(buf, protocol.end, file, noStorages, complete);
  if (!(sysInfo.value instanceof PDict) || sysInfo.value.entries.get("little_endian") !== true) {
    throw new CheckpointError(file, "sys info does not say little_endian: only little-endian checkpoints are read");
  }
  const roots = new Map<string, { dtype: DType; numel: number }>();
  const persistentLoad = (pid: Value): Value => {
    const [, type, key, location, numel, view] = storageId(file, pid, 6);
    const prev = roots.get(key);
    if (prev && (prev.dtype !== type || prev.numel !== numel)) throw new CheckpointError(file, `storage '${key}' is described twice, differently`);
    roots.set(key, { dtype: type, numel });
    if (view === null) return new StorageRef(key, type, numel, location);
    // (view_key, offset, view_size): a slice of the root storage, in elements
    const [, offset, length] = view as Value[];
    if (!Array.isArray(view) || view.length !== 3 || typeof offset !== "number" || typeof length !== "number" ||
      !Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > numel) {
      throw new CheckpointError(file, `storage '${key}': malformed view ${JSON.stringify(view)} of a ${numel}-element storage`);
    }
    return new StorageRef(key, type, numel, location, offset, length);
  };
  const main = unpickle(buf, sysInfo.end, file, persistentLoad, complete);
  const keys = unpickle(buf, main.end, file, noStorages, complete);
  const tensors = stateDictTensors(file, main.value);
  if (!(keys.value instanceof PList) || !keys.value.items.every((k) => typeof k === "string")) {
    throw new CheckpointError(file, "the storage key list after the state dict is not a list of strings");
  }
  const order = keys.value.items as string[];
  if (new Set(order).size !== order.length || order.length !== roots.size || !order.every((k) => roots.has(k))) {
    throw new CheckpointError(file, `storage key list [${order.slice(0, 5)}${order.length > 5 ? ", …" : ""}] does not match the ${roots.size} storage(s) the state dict uses`);
  }
  const storages = new Map<string, TorchStorage>();
  let pos = keys.end;
  for (const key of order) {
    const { dtype, numel } = roots.get(key)!;
    if (pos + 8 > size) throw new CheckpointError(file, `truncated: storage '${key}' starts at ${pos}, past the end (${size} bytes)`);
    const count = readExact(fd, file, 8, pos).readBigInt64LE(0);
    if (count !== BigInt(numel)) throw new CheckpointError(file, `storage '${key}' records ${count} elements, the state dict says ${numel}`);
    const bytes = numel * DTYPE_BYTES[dtype];
    if (pos + 8 + bytes > size) throw new CheckpointError(file, `truncated: storage '${key}' needs bytes [${pos + 8}, ${pos + 8 + bytes}) of a ${size}-byte file`);
    storages.set(key, { key, dtype, numel, fileOffset: pos + 8 });
    pos += 8 + bytes;
  }
  if (pos !== size) throw new CheckpointError(file, `${size - pos} bytes after the last storage belong to none`);
  return { file, format: "legacy", tensors, storages };
}

/** Validates a persistent id ('storage', StorageType, key, location, numel[, view_metadata]). */
function storageId(file: string, pid: Value, length: number): [string, DType, string, string, number, Value] {
  const bad = (msg: string) => new CheckpointError(file, `persistent id: ${msg}`);
  if (!Array.isArray(pid) || pid.length !== length) throw bad(`expected a ${length}-tuple ('storage', type, key, location, numel${length === 6 ? ", view" : ""})`);
  const [tag, type, key, location, numel, view] = pid as Value[];
  if (tag !== "storage") throw bad(`only storages can be loaded, not ${JSON.stringify(String(tag))}`);
  if (!(type instanceof Global) || !(type.name in STORAGE_DTYPES)) throw bad("storage type is not a supported torch storage class");
  if (typeof key !== "string" || typeof location !== "string") throw bad("storage key and location must be strings");
  if (typeof numel !== "number" || !Number.isSafeInteger(numel) || numel < 0) throw bad(`storage '${key}' has element count ${String(numel)}`);
  return ["storage", STORAGE_DTYPES[type.name], key, location, numel, view ?? null];
}

/** The state dict's tensors, each view checked against its storage. */
function stateDictTensors(file: string, value: Value): TorchTensorInfo[] {
  if (!(value instanceof PDict)) throw new CheckpointError(file, "the pickle holds no state dict (expected a dict of tensors at the top)");
  const out: TorchTensorInfo[] = [];
  for (const [name, t] of value.entries) {
    const bad = (msg: string) => new CheckpointError(file, `tensor '${name}': ${msg}`);
    if (typeof name !== "string") throw new CheckpointError(file, `state dict key ${name} is not a string`);
    if (!(t instanceof TensorRef)) {
      throw bad(`is ${t instanceof PDict ? "a dict (a training checkpoint rather than a state dict?)" : `of type ${describe(t)}`}, not a tensor`);
    }
    let numel = 1;
    let last = t.offset;
    for (let d = 0; d < t.shape.length; d++) {
      numel *= t.shape[d];
      last += Math.max(0, t.shape[d] - 1) * t.stride[d];
      if (!Number.isSafeInteger(numel) || !Number.isSafeInteger(last)) throw bad(`shape [${t.shape}] is too large`);
    }
    const s = t.storage;
    if (numel > 0 && last >= s.length) {
      throw bad(`view (offset ${t.offset}, shape [${t.shape}], stride [${t.stride}]) reaches element ${last} of a ${s.length}-element storage`);
    }
    // more elements than storage means overlapping (expanded) views, which would materialise larger than the file
    if (numel > s.length) throw bad(`has ${numel} elements but its storage only ${s.length} (an expanded view; save it contiguous)`);
    out.push({ name, dtype: s.dtype, shape: t.shape, stride: t.stride, offset: s.base + t.offset, storageKey: s.key });
  }
  return out;
}

function isContiguous(shape: number[], stride: number[]): boolean {
  let expected = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    if (shape[d] !== 1 && stride[d] !== expected) return false;
    expected *= shape[d];
  }
  return true;
}

function materialise(storage: Tensor, t: TorchTensorInfo): Tensor {
  const numel = t.shape.reduce((a, b) => a * b, 1);
  if (numel === 0) return zeros(t.shape, t.dtype);
  if (isContiguous(t.shape, t.stride)) {
    const flat = storage.narrow(0, t.offset, numel);
    try { return flat.reshape(t.shape); } finally { flat.dispose(); }
  }
  const view = storage.asStrided(t.shape, t.stride, t.offset);
  try { return view.contiguous(); } finally { view.dispose(); }
}

/**
 * Loads the tensors of a torch.save file (those `filter` accepts), each storage
 * read once from disk into native memory. Tensors that share a storage are
 * views of it; non-contiguous ones are copied contiguous. Peak memory: the
 * storages kept plus one tensor. Throws CheckpointError naming the file.
 */
export function loadTorchFile(file: string, filter: (name: string) => boolean = () => true): Map<string, Tensor> {
  const ckpt = readTorchCheckpoint(file);
  const wanted = ckpt.tensors.filter((t) => filter(t.name));
  const byStorage = new Map<string, TorchTensorInfo[]>();
  for (const t of wanted) byStorage.set(t.storageKey, [...(byStorage.get(t.storageKey) ?? []), t]);
  const loaded = new Map<string, Tensor>();
  try {
    const inFileOrder = [...byStorage.keys()].sort((a, b) => ckpt.storages.get(a)!.fileOffset - ckpt.storages.get(b)!.fileOffset);
    for (const key of inFileOrder) {
      const s = ckpt.storages.get(key)!;
      const storage = fromFile(file, s.fileOffset, [s.numel], s.dtype);
      try {
        for (const t of byStorage.get(key)!) loaded.set(t.name, materialise(storage, t));
      } finally {
        storage.dispose();
      }
    }
  } catch (e) {
    for (const t of loaded.values()) t.dispose();
    throw e instanceof CheckpointError ? e : new CheckpointError(file, (e as Error).message);
  }
  return new Map(wanted.map((t) => [t.name, loaded.get(t.name)!]));
}
