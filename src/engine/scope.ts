// Deterministic freeing of native tensors. `tidy(fn)` frees every tensor made
// inside fn except those it returns (like tf.tidy); `keep(t)` exempts one.
// The native finalizer only catches what a program forgot.
import type { Tensor } from "./tensor.js";

const scopes: Set<Tensor>[] = [];
const owner = new WeakMap<Tensor, Set<Tensor>>();

export function track(t: Tensor): void {
  const scope = scopes[scopes.length - 1];
  if (scope) {
    scope.add(t);
    owner.set(t, scope);
  }
}

export function untrack(t: Tensor): void {
  owner.get(t)?.delete(t);
  owner.delete(t);
}

/** Exempts a tensor from the scope that made it; the caller now owns it. */
export function keep<T extends Tensor>(t: T): T {
  untrack(t);
  return t;
}

function collect(value: unknown, into: Set<Tensor>, seen = new Set<unknown>()): void {
  if (value === null || typeof value !== "object" || seen.has(value)) return;
  seen.add(value);
  if ((value as { handle?: unknown }).handle !== undefined && typeof (value as Tensor).dispose === "function") {
    into.add(value as Tensor);
    return;
  }
  if (Array.isArray(value)) for (const v of value) collect(v, into, seen);
  else if (value instanceof Map) for (const v of value.values()) collect(v, into, seen);
  else if (Object.getPrototypeOf(value) === Object.prototype) for (const v of Object.values(value)) collect(v, into, seen);
}

/** Runs fn (synchronously) and frees the tensors it made, except those in its result. */
export function tidy<R>(fn: () => R): R {
  const scope = new Set<Tensor>();
  scopes.push(scope);
  let result: R;
  try {
    result = fn();
  } catch (e) {
    scopes.pop();
    for (const t of scope) { owner.delete(t); t.dispose(); }
    throw e;
  }
  scopes.pop();
  const survivors = new Set<Tensor>();
  collect(result, survivors);
  const parent = scopes[scopes.length - 1];
  for (const t of scope) {
    owner.delete(t);
    if (!survivors.has(t)) t.dispose();
    else if (parent) { parent.add(t); owner.set(t, parent); }
  }
  return result;
}

/** Disposes every tensor found in a value (arrays, maps, plain objects). */
export function disposeAll(value: unknown): void {
  const found = new Set<Tensor>();
  collect(value, found);
  for (const t of found) t.dispose();
}

/**
 * Lets Node run pending N-API finalizers. Node defers them to the event loop,
 * so a long synchronous loop piles up the small native shells of disposed
 * handles between freed tensor blocks and the heap fragments; loops that run
 * for thousands of steps should `await settle()` once per step.
 */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
