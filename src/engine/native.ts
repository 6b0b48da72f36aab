// Loads the compiled libtorch addon and applies process-wide defaults: torch
// starts with ONE thread here, so use every available core unless
// RANDMASK_THREADS says otherwise.
import { createRequire } from "node:module";
import { availableParallelism } from "node:os";
import { existsSync, realpathSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export type NativeHandle = { dispose(): void; isDisposed(): boolean; readonly __brand?: "TensorHandle" };

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type NativeModule = Record<string, any>;

function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) {
    const up = dirname(dir);
    if (up === dir) throw new Error("randmask: cannot find the package root");
    dir = up;
  }
  return dir;
}

function load(): NativeModule {
  const path = join(packageRoot(), "build", "Release", "randmask_native.node");
  if (!existsSync(path)) {
    throw new Error(`randmask: native addon not built (${path} missing). Run \`npm run setup\` ` +
      "(installs libtorch-dev and libopenblas0-openmp on Debian/Ubuntu, then builds).");
  }
  return createRequire(import.meta.url)(path) as NativeModule;
}

export const native: NativeModule = load();

function defaultThreads(): number {
  const env = process.env.RANDMASK_THREADS;
  if (env !== undefined && env !== "") {
    const n = Number(env);
    if (!Number.isInteger(n) || n < 1) throw new Error(`RANDMASK_THREADS=${env}: expected a positive integer`);
    return n;
  }
  return availableParallelism();
}

native.setNumThreads(defaultThreads());

export function setNumThreads(n: number): void {
  native.setNumThreads(n);
}

export function getNumThreads(): number {
  return native.getNumThreads();
}

export interface BuildInfo {
  torchVersion: string;
  cudaAvailable: boolean;
  cudaDeviceCount: number;
  /** Resolved paths of the BLAS libraries loaded into the process. */
  blasLibraries: string[];
  /** True when the OpenMP build of OpenBLAS (or MKL) serves BLAS calls. */
  fastBlas: boolean;
  threads: number;
}

export function buildInfo(): BuildInfo {
  const raw = native.buildInfo();
  const libs = (raw.blasLibraries as string).split(";").filter(Boolean).map((p) => {
    try { return realpathSync(p); } catch { return p; }
  });
  const fastBlas = libs.some((p) => p.includes("openmp") || p.includes("mkl"));
  return {
    torchVersion: raw.torchVersion, cudaAvailable: raw.cudaAvailable, cudaDeviceCount: raw.cudaDeviceCount,
    blasLibraries: libs, fastBlas, threads: getNumThreads(),
  };
}

/** Seeds libtorch's generator (weight init, dropout). Masks use our own generator. */
export function manualSeed(seed: number): void {
  native.manualSeed(seed);
}

/** The CPU generator's state (what manualSeed sets; dropout draws from it), as opaque bytes. */
export function getRngState(): Uint8Array {
  return new Uint8Array(native.getRngState());
}

/** Restores a state from getRngState, so later draws repeat exactly. */
export function setRngState(state: Uint8Array): void {
  native.setRngState(Buffer.from(state));
}

/** Live native tensor handles: count and bytes of fresh storage they own. */
export function liveHandles(): { count: number; bytes: number } {
  return native.liveHandles();
}

/** Returns the allocator's cached free blocks to the OS; the bytes freed. */
export function emptyCache(): number {
  return native.emptyCache();
}

/** The caching CPU allocator's bytes: in tensors now, at most so far, cached free, and the cache cap. */
export function cacheStats(): { liveBytes: number; peakLiveBytes: number; cachedBytes: number; capBytes: number } {
  return native.cacheStats();
}
