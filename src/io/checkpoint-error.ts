// The one error type of the PyTorch checkpoint reader: every fault in a .bin
// file (zip structure, pickle, storages) surfaces as this, naming the file.
export class CheckpointError extends Error {
  constructor(readonly file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = "CheckpointError";
  }
}
