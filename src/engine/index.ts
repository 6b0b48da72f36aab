// The engine: libtorch tensors, autograd and optimizers, from TypeScript.
export * from "./tensor.js";
export * from "./scope.js";
export * from "./autograd.js";
export * from "./nn.js";
export * from "./optim.js";
export { buildInfo, getNumThreads, setNumThreads, manualSeed, getRngState, setRngState, liveHandles, emptyCache, cacheStats } from "./native.js";
