// A restricted unpickler for PyTorch state dicts, the TypeScript counterpart of
// torch.load(weights_only=True) (torch/_weights_only_unpickler.py): it knows only
// the opcodes torch.save emits for a state dict (pickle protocol 2) and an
// allowlist of globals, and it executes nothing. A GLOBAL outside the allowlist
// is refused where it appears, before anything could call it; REDUCE calls only
// the four allowlisted functions, interpreted here as data (OrderedDict,
// _rebuild_tensor_v2, _rebuild_tensor, _rebuild_parameter); BUILD only sets the
// `_metadata` attribute of an OrderedDict, which is dropped.
import { CheckpointError } from "./checkpoint-error.js";
import type { DType } from "../engine/index.js";

/** torch's legacy typed storages → dtype (torch/storage.py `_dtype_to_storage_type_map`). */
export const STORAGE_DTYPES: Record<string, DType> = {
  "torch.FloatStorage": "float32", "torch.HalfStorage": "float16", "torch.BFloat16Storage": "bfloat16",
  "torch.DoubleStorage": "float64", "torch.LongStorage": "int64", "torch.IntStorage": "int32",
  "torch.ShortStorage": "int16", "torch.CharStorage": "int8", "torch.ByteStorage": "uint8", "torch.BoolStorage": "bool",
};

const CALLABLES = new Set([
  "collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor", "torch._utils._rebuild_parameter",
]);

/** A global the pickle named (only allowlisted ones are ever created). */
export class Global { constructor(readonly name: string) {} }
/** A Python list (tuples are plain frozen arrays). */
export class PList { readonly items: Value[] = []; }
/** A dict or OrderedDict; keys are str or int. */
export class PDict {
  readonly entries = new Map<string | number, Value>();
  constructor(readonly ordered: boolean) {}
}
/** A storage as the persistent id names it: `numel` elements of `dtype` under `key`, optionally a legacy view of a root storage. */
export class StorageRef {
  constructor(readonly key: string, readonly dtype: DType, readonly numel: number, readonly location: string,
    /** Element offset of this (view) storage inside the root storage `key`. */ readonly base = 0,
    /** Elements visible through this storage. */ readonly length = numel) {}
}
/** A tensor as _rebuild_tensor_v2 describes it: a strided view of a storage (offset and strides in elements). */
export class TensorRef {
  constructor(readonly storage: StorageRef, readonly offset: number, readonly shape: number[], readonly stride: number[]) {}
}
export type Value = null | boolean | number | bigint | string | readonly Value[] | PList | PDict | Global | StorageRef | TensorRef;

/** Thrown when a pickle runs past the bytes given but more of the file exists (the caller reads more and retries). */
export class NeedMoreBytes extends Error {}

const MAX_GLOBAL_LINE = 512;

/**
 * Unpickles one pickle starting at `start` of `buf`. `persistentLoad` turns a
 * BINPERSID id into a value (storages). `complete` says whether `buf` holds the
 * rest of the file: if not, running off its end throws NeedMoreBytes.
 * Returns the object and the offset just past STOP. Throws CheckpointError on
 * anything else: unknown opcode, refused global, malformed structure.
 */
export function unpickle(buf: Uint8Array, start: number, file: string, persistentLoad: (pid: Value) => Value,
  complete: boolean): { value: Value; end: number } {
  const fail = (msg: string, at = pos): never => { throw new CheckpointError(file, `pickle at byte ${at}: ${msg}`); };
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let pos = start;
  const need = (n: number) => {
    if (pos + n > buf.length) {
      if (!complete) throw new NeedMoreBytes();
      fail(`truncated: needs ${n} more byte(s) but the data ends at ${buf.length}`);
    }
  };
  const u8 = () => { need(1); return buf[pos++]; };
  const u32 = () => { need(4); const v = view.getUint32(pos, true); pos += 4; return v; };
  let stack: Value[] = [];
  const metastack: Value[][] = [];
  const memo = new Map<number, Value>();
  const pop = (): Value => (stack.length ? stack.pop()! : fail("stack underflow"));
  const top = (): Value => (stack.length ? stack[stack.length - 1] : fail("stack underflow"));
  const popMark = (): Value[] => {
    const items = stack;
    if (!metastack.length) fail("no MARK to pop to");
    stack = metastack.pop()!;
    return items;
  };
  const setItem = (d: Value, k: Value, v: Value) => {
    if (!(d instanceof PDict)) fail("SETITEM(S) on something that is not a dict");
    if (typeof k !== "string" && typeof k !== "number") fail(`dict key of type ${describe(k)} (a state dict's keys are strings)`);
    (d as PDict).entries.set(k as string | number, v);
  };
  const append = (l: Value, items: Value[]) => {
    if (!(l instanceof PList)) fail("APPEND(S) on something that is not a list");
    (l as PList).items.push(...items);
  };
  for (;;) {
    const opAt = pos;
    const op = u8();
    switch (op) {
      case 0x80: u8(); break; // PROTO
      case 0x2e: { // STOP
        if (stack.length !== 1 || metastack.length) fail(`STOP with ${stack.length} value(s) on the stack and ${metastack.length} open MARK(s)`);
        return { value: stack[0], end: pos };
      }
      case 0x28: metastack.push(stack); stack = []; break; // MARK
      case 0x7d: stack.push(new PDict(false)); break; // EMPTY_DICT
      case 0x5d: stack.push(new PList()); break; // EMPTY_LIST
      case 0x29: stack.push(Object.freeze([])); break; // EMPTY_TUPLE
      case 0x74: { const items = Object.freeze(popMark()); stack.push(items); break; } // TUPLE (popMark swaps `stack`)
      case 0x85: { const a = pop(); stack.push(Object.freeze([a])); break; } // TUPLE1
      case 0x86: { const b = pop(), a = pop(); stack.push(Object.freeze([a, b])); break; } // TUPLE2
      case 0x87: { const c = pop(), b = pop(), a = pop(); stack.push(Object.freeze([a, b, c])); break; } // TUPLE3
      case 0x61: { const v = pop(); append(top(), [v]); break; } // APPEND
      case 0x65: { const items = popMark(); append(top(), items); break; } // APPENDS
      case 0x73: { const v = pop(), k = pop(); setItem(top(), k, v); break; } // SETITEM
      case 0x75: { // SETITEMS
        const items = popMark();
        if (items.length % 2) fail("SETITEMS with an odd number of values");
        const d = top();
        for (let i = 0; i < items.length; i += 2) setItem(d, items[i], items[i + 1]);
        break;
      }
      case 0x71: memo.set(u8(), top()); break; // BINPUT
      case 0x72: memo.set(u32(), top()); break; // LONG_BINPUT
      case 0x68: case 0x6a: { // BINGET, LONG_BINGET
        const i = op === 0x68 ? u8() : u32();
        if (!memo.has(i)) fail(`memo entry ${i} was never stored`, opAt);
        stack.push(memo.get(i)!);
        break;
      }
      case 0x4a: need(4); stack.push(view.getInt32(pos, true)); pos += 4; break; // BININT
      case 0x4b: stack.push(u8()); break; // BININT1
      case 0x4d: need(2); stack.push(view.getUint16(pos, true)); pos += 2; break; // BININT2
      case 0x8a: { // LONG1: little-endian two's complement
        const n = u8();
        need(n);
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(buf[pos + i]);
        if (n > 0 && buf[pos + n - 1] & 0x80) v -= 1n << BigInt(8 * n);
        pos += n;
        stack.push(v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
        break;
      }
      case 0x47: need(8); stack.push(view.getFloat64(pos, false)); pos += 8; break; // BINFLOAT (big-endian)
      case 0x58: { // BINUNICODE
        const n = u32();
        need(n);
        stack.push(Buffer.from(buf.buffer, buf.byteOffset + pos, n).toString("utf8"));
        pos += n;
        break;
      }
      case 0x55: { // SHORT_BINSTRING (a Python 2 str): decoded as UTF-8, as torch.load's default encoding does
        const n = u8();
        need(n);
        stack.push(Buffer.from(buf.buffer, buf.byteOffset + pos, n).toString("utf8"));
        pos += n;
        break;
      }
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x63: { // GLOBAL module\nname\n
        const line = () => {
          const from = pos;
          while (pos < buf.length && buf[pos] !== 0x0a && pos - from < MAX_GLOBAL_LINE) pos++;
          need(1);
          if (buf[pos] !== 0x0a) fail("GLOBAL name is too long", opAt);
          return Buffer.from(buf.buffer, buf.byteOffset + from, pos++ - from).toString("latin1");
        };
        const name = `${line()}.${line()}`;
        if (!CALLABLES.has(name) && !(name in STORAGE_DTYPES)) {
          const hint = /^torch\.\w+Storage$/.test(name)
            ? `its dtype is not supported (supported storages: ${Object.keys(STORAGE_DTYPES).join(", ")})`
            : "a state dict never needs it";
          throw new CheckpointError(file, `refused pickle global '${name}' at byte ${opAt}: ${hint}; nothing in the file was run`);
        }
        stack.push(new Global(name));
        break;
      }
      case 0x52: { // REDUCE
        const args = pop(), func = pop();
        if (!(func instanceof Global) || !CALLABLES.has(func.name)) fail(`REDUCE calls ${describe(func)}, which is not callable here`, opAt);
        if (!Array.isArray(args)) fail(`REDUCE with arguments of type ${describe(args)}`, opAt);
        stack.push(call((func as Global).name, args as Value[], (m) => fail(m, opAt)));
        break;
      }
      case 0x62: { // BUILD: only OrderedDict's attribute dict (torch stores `_metadata` there)
        const state = pop(), inst = top();
        if (!(inst instanceof PDict && inst.ordered) || !(state === null || state instanceof PDict)) {
          fail(`BUILD on ${describe(inst)} (only an OrderedDict's attributes can be set)`, opAt);
        }
        break;
      }
      case 0x51: stack.push(persistentLoad(pop())); break; // BINPERSID
      default: fail(`opcode 0x${op.toString(16).padStart(2, "0")} is not one a state dict uses`, opAt);
    }
  }
}

/** A value's Python type, for error messages. */
export function describe(v: Value): string {
  if (v === null) return "None";
  if (v instanceof Global) return `'${v.name}'`;
  if (Array.isArray(v)) return "tuple";
  if (v instanceof PDict) return v.ordered ? "OrderedDict" : "dict";
  if (v instanceof PList) return "list";
  if (v instanceof StorageRef) return "storage";
  if (v instanceof TensorRef) return "tensor";
  return typeof v === "string" ? "str" : typeof v === "boolean" ? "bool" : "int";
}

const isNat = (v: Value): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
const isNatTuple = (v: Value): v is number[] => Array.isArray(v) && v.every(isNat);

/** The allowlisted callables, as data. */
function call(name: string, args: Value[], fail: (msg: string) => never): Value {
  switch (name) {
    case "collections.OrderedDict":
      if (args.length) fail("OrderedDict with arguments (torch.save passes none)");
      return new PDict(true);
    case "torch._utils._rebuild_parameter": // (data, requires_grad, backward_hooks)
      if (args.length !== 3 || !(args[0] instanceof TensorRef)) fail("_rebuild_parameter expects (tensor, requires_grad, backward_hooks)");
      return args[0];
    case "torch._utils._rebuild_tensor": // legacy: (storage, storage_offset, size, stride)
    case "torch._utils._rebuild_tensor_v2": { // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
      const v2 = name.endsWith("v2");
      if (v2 ? args.length < 6 || args.length > 7 : args.length !== 4) fail(`${name} with ${args.length} arguments`);
      const [storage, offset, size, stride] = args;
      if (!(storage instanceof StorageRef)) fail(`${name}: first argument is ${describe(storage)}, not a storage`);
      if (!isNat(offset) || !isNatTuple(size) || !isNatTuple(stride) || size.length !== stride.length) {
        fail(`${name}: storage offset, size and stride must be non-negative integers, size and stride of equal length`);
      }
      return new TensorRef(storage as StorageRef, offset as number, [...size as number[]], [...stride as number[]]);
    }
  }
  return fail(`'${name}' is not callable`);
}
