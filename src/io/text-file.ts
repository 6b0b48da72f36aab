// A text file a user wrote (prompts, a text to tokenise): UTF-8, with the byte-order mark some
// editors put first removed (it would otherwise start the first line), and bytes that are not
// UTF-8 refused where they are rather than read as U+FFFD.
import { readFileSync } from "node:fs";
import { fsReason } from "./fs-reason.js";

/** The file's text. Throws an Error naming the file (and the line of the first byte that is not UTF-8). */
export function readTextFile(file: string): string {
  let bytes: Buffer;
  try { bytes = readFileSync(file); } catch (e) {
    throw new Error(`${file}: ${fsReason(e)}`);
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    // the first line whose bytes do not decode
    let start = 0;
    for (let line = 1; ; line++) {
      const end = bytes.indexOf(0x0a, start);
      const slice = bytes.subarray(start, end < 0 ? bytes.length : end);
      if (Buffer.from(slice.toString("utf8"), "utf8").compare(slice) !== 0) {
        throw new Error(`${file}:${line}: not UTF-8 text (save the file as UTF-8)`);
      }
      if (end < 0) throw new Error(`${file}: not UTF-8 text (save the file as UTF-8)`);
      start = end + 1;
    }
  }
}
