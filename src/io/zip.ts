// A minimal, strict reader of the zip archives torch.save writes (PyTorch ≥ 1.6):
// the central directory (zip64 included) is parsed from a file descriptor, and
// each stored (uncompressed) entry is located by its byte range, so tensor data
// can be read straight into native memory. Nothing is decompressed and the file
// is never read whole. Layout: PKWARE APPNOTE.TXT §4.3 (records) and §4.5.3 (zip64).
// npm's zip readers are asynchronous (yauzl) or read the whole file (adm-zip);
// checkpoint loading here is synchronous and must not copy the file.
import { readSync } from "node:fs";
import { CheckpointError } from "./checkpoint-error.js";

const EOCD = 0x06054b50;
const EOCD64_LOCATOR = 0x07064b50;
const EOCD64 = 0x06064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
/** A central directory larger than this is not a checkpoint's (a state dict has thousands of entries, not millions). */
const MAX_DIRECTORY_BYTES = 64 * 2 ** 20;

export interface ZipEntry {
  name: string;
  /** 0 = stored; anything else is compressed. */
  method: number;
  flags: number;
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
}

export interface ZipDirectory {
  entries: Map<string, ZipEntry>;
  /** Where the central directory starts: every entry's data lies before it. */
  directoryOffset: number;
}

/** Reads exactly `length` bytes at `position`, or throws naming the file. */
export function readExact(fd: number, file: string, length: number, position: number): Buffer {
  const buf = Buffer.alloc(length);
  let got = 0;
  while (got < length) {
    const n = readSync(fd, buf, got, length - got, position + got);
    if (n === 0) throw new CheckpointError(file, `truncated: expected ${length} bytes at offset ${position}, the file ends after ${got}`);
    got += n;
  }
  return buf;
}

function u64(buf: Buffer, at: number, file: string, what: string): number {
  const v = buf.readBigUInt64LE(at);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new CheckpointError(file, `zip ${what} ${v} is out of range`);
  return Number(v);
}

/** Parses and bounds-checks the central directory of the zip file open as `fd` (`fileSize` bytes). */
export function readZipDirectory(fd: number, file: string, fileSize: number): ZipDirectory {
  const bad = (msg: string) => new CheckpointError(file, `zip: ${msg}`);
  // The end-of-central-directory record is the last 22 bytes plus a comment of at most 65535.
  const tailLen = Math.min(fileSize, 22 + 0xffff);
  const tail = readExact(fd, file, tailLen, fileSize - tailLen);
  let eocd = -1;
  for (let i = tailLen - 22; i >= 0; i--) {
    if (tail.readUInt32LE(i) === EOCD && i + 22 + tail.readUInt16LE(i + 20) <= tailLen) { eocd = i; break; }
  }
  if (eocd < 0) throw bad("no end-of-central-directory record (not a zip file, or truncated)");
  const eocdPos = fileSize - tailLen + eocd;
  if (tail.readUInt16LE(eocd + 4) !== 0 || tail.readUInt16LE(eocd + 6) !== 0) throw bad("multi-disk archives are not supported");
  let count = tail.readUInt16LE(eocd + 10);
  let dirSize = tail.readUInt32LE(eocd + 12);
  let dirOffset = tail.readUInt32LE(eocd + 16);
  let dirEnd = eocdPos;
  if (count === 0xffff || dirSize === 0xffffffff || dirOffset === 0xffffffff) {
    if (eocdPos < 20) throw bad("zip64 locator missing before the end record");
    const loc = readExact(fd, file, 20, eocdPos - 20);
    if (loc.readUInt32LE(0) !== EOCD64_LOCATOR) throw bad("zip64 locator missing before the end record");
    const recPos = u64(loc, 8, file, "zip64 record offset");
    if (recPos + 56 > eocdPos - 20) throw bad(`zip64 end record at ${recPos} lies outside the file`);
    const rec = readExact(fd, file, 56, recPos);
    if (rec.readUInt32LE(0) !== EOCD64) throw bad(`no zip64 end record at offset ${recPos}`);
    count = u64(rec, 32, file, "entry count");
    dirSize = u64(rec, 40, file, "directory size");
    dirOffset = u64(rec, 48, file, "directory offset");
    dirEnd = recPos;
  }
  if (dirSize > MAX_DIRECTORY_BYTES) throw bad(`central directory of ${dirSize} bytes exceeds the ${MAX_DIRECTORY_BYTES}-byte limit`);
  if (dirOffset + dirSize > dirEnd) throw bad(`central directory [${dirOffset}, ${dirOffset + dirSize}) runs past its end record at ${dirEnd}`);
  if (count * 46 > dirSize) throw bad(`${count} entries cannot fit in a ${dirSize}-byte central directory`);
  const dir = readExact(fd, file, dirSize, dirOffset);
  const entries = new Map<string, ZipEntry>();
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (p + 46 > dirSize || dir.readUInt32LE(p) !== CENTRAL) throw bad(`central directory entry ${i} at offset ${dirOffset + p} is malformed`);
    const nameLen = dir.readUInt16LE(p + 28), extraLen = dir.readUInt16LE(p + 30), commentLen = dir.readUInt16LE(p + 32);
    const end = p + 46 + nameLen + extraLen + commentLen;
    if (end > dirSize) throw bad(`central directory entry ${i} runs past the directory`);
    const name = dir.toString("utf8", p + 46, p + 46 + nameLen);
    const entry: ZipEntry = {
      name, flags: dir.readUInt16LE(p + 8), method: dir.readUInt16LE(p + 10),
      compressedSize: dir.readUInt32LE(p + 20), size: dir.readUInt32LE(p + 24), localHeaderOffset: dir.readUInt32LE(p + 42),
    };
    // zip64 extra field: the 64-bit values of those fields that read 0xffffffff, in this order
    const needs = [entry.size === 0xffffffff, entry.compressedSize === 0xffffffff, entry.localHeaderOffset === 0xffffffff];
    if (needs.some(Boolean)) {
      let q = p + 46 + nameLen;
      const extraEnd = q + extraLen;
      let found = false;
      while (q + 4 <= extraEnd) {
        const id = dir.readUInt16LE(q), len = dir.readUInt16LE(q + 2);
        if (q + 4 + len > extraEnd) break;
        if (id === 0x0001) {
          let r = q + 4;
          const take = (what: string) => {
            if (r + 8 > q + 4 + len) throw bad(`entry '${name}': zip64 extra field too short for its ${what}`);
            const v = u64(dir, r, file, what); r += 8; return v;
          };
          if (needs[0]) entry.size = take("size");
          if (needs[1]) entry.compressedSize = take("compressed size");
          if (needs[2]) entry.localHeaderOffset = take("header offset");
          found = true;
          break;
        }
        q += 4 + len;
      }
      if (!found) throw bad(`entry '${name}': sizes need a zip64 extra field, which is missing`);
    }
    if (entries.has(name)) throw bad(`entry '${name}' appears twice`);
    if (entry.localHeaderOffset + 30 > dirOffset) throw bad(`entry '${name}': header at ${entry.localHeaderOffset} lies outside the data area`);
    entries.set(name, entry);
    p = end;
  }
  return { entries, directoryOffset: dirOffset };
}

/** Where a stored entry's bytes are: checks its local header and that the range lies in the data area. */
export function entryDataRange(fd: number, file: string, zip: ZipDirectory, entry: ZipEntry): { offset: number; size: number } {
  const bad = (msg: string) => new CheckpointError(file, `zip entry '${entry.name}': ${msg}`);
  if (entry.flags & 1) throw bad("is encrypted");
  if (entry.method !== 0) throw bad(`is compressed (method ${entry.method}); torch.save stores entries uncompressed`);
  if (entry.compressedSize !== entry.size) throw bad(`stored entry has compressed size ${entry.compressedSize} ≠ size ${entry.size}`);
  const local = readExact(fd, file, 30, entry.localHeaderOffset);
  if (local.readUInt32LE(0) !== LOCAL) throw bad(`no local header at offset ${entry.localHeaderOffset}`);
  const nameLen = local.readUInt16LE(26), extraLen = local.readUInt16LE(28);
  const offset = entry.localHeaderOffset + 30 + nameLen + extraLen;
  if (offset + entry.size > zip.directoryOffset) {
    throw bad(`data [${offset}, ${offset + entry.size}) runs into the central directory at ${zip.directoryOffset}`);
  }
  const localName = readExact(fd, file, nameLen, entry.localHeaderOffset + 30).toString("utf8");
  if (localName !== entry.name) throw bad(`local header names '${localName}'`);
  return { offset, size: entry.size };
}
