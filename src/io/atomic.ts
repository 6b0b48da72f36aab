// Writing files so that nothing the user had is lost half-way: write to a
// temp name in the same folder, then rename over the target.
import { renameSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";

export function tempPathFor(file: string): string {
  return join(dirname(file), `.${basename(file)}.tmp-${process.pid}`);
}

/** Runs `write(tmp)` and renames tmp onto file; removes tmp on failure. */
export function replaceAtomically(file: string, write: (tmp: string) => void): void {
  const tmp = tempPathFor(file);
  try {
    write(tmp);
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  replaceAtomically(file, (tmp) => writeFileSync(tmp, data));
}

export function writeJsonAtomic(file: string, value: unknown): void {
  writeFileAtomic(file, JSON.stringify(value, null, 2) + "\n");
}
