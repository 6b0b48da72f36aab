// Writing files so that nothing the user had is lost half-way: write to a
// temp name in the same folder, then rename over the target.
import { existsSync, mkdirSync, readdirSync, realpathSync, renameSync, rmSync, rmdirSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fsReason } from "./fs-reason.js";
import { alive } from "./process-alive.js";

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

/**
 * Writes a whole folder or nothing: `write(tmp)` fills a temp folder beside `out` (made with the folders above it),
 * which is then renamed onto `out` (an existing `out` must be empty; a link to one stays a link, to the new folder).
 * Temp folders for `out` left by an interrupted earlier run (Ctrl-C ends a synchronous write where it stands) are
 * removed first. A file-system failure is one Error naming `out` and the reason in words; the temp folder is
 * removed on any failure.
 */
export function writeFolderAtomically(out: string, write: (tmp: string) => void): void {
  const dir = existsSync(out) ? realpathSync(out) : out;
  removeStaleTemps(dir);
  const tmp = tempPathFor(dir);
  try {
    makeFolders(dirname(dir));
    mkdirSync(tmp);
  } catch (e) {
    // mkdir's ENOENT under an existing folder: a file system that takes no new folders (/proc)
    const why = (e as NodeJS.ErrnoException).code === "ENOENT" ? "the file system there takes no new folders" : fsReason(e);
    throw new Error(`cannot create ${out}: ${why}; nothing was written`);
  }
  try {
    write(tmp);
    if (existsSync(dir)) rmdirSync(dir);
    renameSync(tmp, dir);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    if ((e as NodeJS.ErrnoException).code) throw new Error(`cannot write ${out}: ${fsReason(e)}; nothing was written there`);
    throw e;
  }
}

/**
 * mkdir -p, one level at a time: Node's recursive mkdir loops forever where mkdir answers ENOENT under an existing
 * folder (e.g. in /proc).
 */
function makeFolders(dir: string): void {
  if (existsSync(dir)) return;
  makeFolders(dirname(dir));
  mkdirSync(dir);
}

/** Removes `.NAME.tmp-PID` folders (or files) beside `dir` whose process is gone: a killed writer's leftovers. */
export function removeStaleTemps(dir: string): void {
  const parent = dirname(dir);
  const prefix = `.${basename(dir)}.tmp-`;
  if (!existsSync(parent)) return;
  for (const name of readdirSync(parent)) {
    const pid = name.startsWith(prefix) ? Number(name.slice(prefix.length)) : NaN;
    if (Number.isSafeInteger(pid) && pid > 0 && !alive(pid)) rmSync(join(parent, name), { recursive: true, force: true });
  }
}
