// Whether a path can become a command's output folder, checked before anything is read or
// written, so a bad --out is one clear error instead of a raw ENOTDIR / EEXIST half-way.
import { accessSync, constants, existsSync, lstatSync, readdirSync, readlinkSync, realpathSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";

export interface OutputFolderFault {
  /**
   * "file": the path, or the nearest existing path above it, is a file or a broken link; "not-empty": it is a
   * folder holding files; "not-writable": this user may not create files in it (or in the folder above it that
   * would hold it).
   */
  kind: "file" | "not-empty" | "not-writable";
  /** The file in the way, the folder that is not empty, or the folder this user cannot write. */
  path: string;
  /** What is wrong with `path`: "is a file", "is a broken symbolic link (to T)", "exists and is not empty" or "is not writable by this user". */
  what: string;
  /** The same said of the folder asked about: `what`, or "<path> <what>" when `path` lies above it. */
  text: string;
}

/**
 * Why `dir` cannot be written as an output folder, or null when it can (absent, or a folder; with
 * `empty`, an empty one; and the folder to create it in, or it itself, writable by this user). With
 * `beside` (writeFolderAtomically: made beside `dir` and renamed onto it), an existing `dir` needs the folder
 * holding it (its link's target's) writable instead. Reads the file system only.
 */
export function outputFolderFault(dir: string, o: { empty?: boolean; beside?: boolean } = {}): OutputFolderFault | null {
  const full = resolve(dir);
  const fault = (kind: OutputFolderFault["kind"], path: string, what: string): OutputFolderFault =>
    ({ kind, path, what, text: path === full ? what : `${path} ${what}` });
  for (let p = full; ; p = dirname(p)) {
    if (!existsSync(p)) {
      // existsSync follows links: a link whose target is gone would pass here and fail at mkdir.
      if (isLink(p)) return fault("file", p, `is a broken symbolic link (to ${readlinkSync(p)})`);
      if (p === dirname(p)) return null;
      continue;
    }
    if (!statSync(p).isDirectory()) return fault("file", p, "is a file");
    if (o.empty && p === full && readdirSync(p).length > 0) return fault("not-empty", p, "exists and is not empty");
    // files are made in `dir`, and `dir` (with the folders between) in `p`: both need write and search permission
    const written = o.beside && p === full ? dirname(realpathSync(p)) : p;
    if (isWritable(written)) return null;
    return fault("not-writable", written, `is not writable by this user${written === p ? "" : ` (the output is made beside ${p} and renamed onto it)`}`);
  }
}

function isWritable(dir: string): boolean {
  try {
    accessSync(dir, constants.W_OK | constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Whether `p` itself is a symbolic link (false when it, or a folder above it, is missing or a file). */
function isLink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}
