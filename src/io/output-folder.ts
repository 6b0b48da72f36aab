// Whether a path can become a command's output folder, checked before anything is read or
// written, so a bad --out is one clear error instead of a raw ENOTDIR / EEXIST half-way.
import { accessSync, constants, existsSync, lstatSync, readdirSync, readlinkSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fsReason } from "./fs-reason.js";

export interface OutputFolderFault {
  /**
   * "file": the path, or the nearest existing path above it, is a file or a broken link; "not-empty": it is a
   * folder holding files; "not-writable": that nearest existing folder cannot be written (permissions, read-only).
   */
  kind: "file" | "not-empty" | "not-writable";
  /** "is a file", "<path above> is a file", "is a broken symbolic link (to T)", "exists and is not empty" or "<path> is not writable (…)". */
  text: string;
  /** The file in the way, or the folder that is not empty. */
  path: string;
}

/**
 * Why `dir` cannot be written as an output folder, or null when it can (absent, or a folder; with
 * `empty`, an empty one). Reads the file system only.
 */
export function outputFolderFault(dir: string, o: { empty?: boolean } = {}): OutputFolderFault | null {
  const full = resolve(dir);
  for (let p = full; ; p = dirname(p)) {
    if (!existsSync(p)) {
      // existsSync follows links: a link whose target is gone would pass here and fail at mkdir.
      if (isLink(p)) {
        return { kind: "file", text: `${p === full ? "is" : `${p} is`} a broken symbolic link (to ${readlinkSync(p)})`, path: p };
      }
      if (p === dirname(p)) return null;
      continue;
    }
    if (!statSync(p).isDirectory()) return { kind: "file", text: p === full ? "is a file" : `${p} is a file`, path: p };
    if (o.empty && p === full && readdirSync(p).length > 0) return { kind: "not-empty", text: "exists and is not empty", path: p };
    try { accessSync(p, constants.W_OK); } catch (e) {
      return { kind: "not-writable", text: `${p === full ? "is" : `${p} is`} not writable (${fsReason(e)})`, path: p };
    }
    return null;
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
