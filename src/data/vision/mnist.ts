// MNIST in LeCun's IDX format (train-images-idx3-ubyte, train-labels-idx1-ubyte,
// t10k-…), gzipped or not: a magic of two zero bytes, a type byte (0x08: uint8)
// and a rank byte, then each dimension as a big-endian uint32, then the data.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { DatasetFileError } from "./image.js";
import type { ImageDataset, ImageExample } from "./types.js";

/**
 * An IDX file of unsigned bytes: its dimensions and data (gzip detected by its magic bytes).
 * @throws DatasetFileError naming the file when it is truncated, corrupt or not uint8 IDX of rank `rank`.
 */
export function readIdx(file: string, rank: number): { dims: number[]; data: Uint8Array } {
  let buf: Uint8Array = readFileSync(file);
  if (buf[0] === 0x1f && buf[1] === 0x8b) {
    try { buf = gunzipSync(buf); } catch (e) {
      throw new DatasetFileError(file, `corrupt or truncated gzip (${(e as Error).message})`);
    }
  }
  if (buf.length < 4 || buf[0] !== 0 || buf[1] !== 0 || buf[2] !== 0x08 || buf[3] !== rank) {
    throw new DatasetFileError(file, `not an IDX file of unsigned bytes with ${rank} dimension(s) (magic ${[...buf.subarray(0, 4)].map((b) => b.toString(16).padStart(2, "0")).join("")}, expected 000008${rank.toString(16).padStart(2, "0")})`);
  }
  const header = 4 + 4 * rank;
  if (buf.length < header) throw new DatasetFileError(file, "truncated IDX header");
  const view = new DataView(buf.buffer, buf.byteOffset, header);
  const dims = Array.from({ length: rank }, (_, i) => view.getUint32(4 + 4 * i, false));
  const size = dims.reduce((a, b) => a * b, 1);
  if (buf.length - header !== size) {
    throw new DatasetFileError(file, `${buf.length - header < size ? "truncated" : "corrupt"}: dimensions [${dims}] need ${size} bytes of data, file has ${buf.length - header}`);
  }
  return { dims, data: buf.subarray(header) };
}

function findIdx(dir: string, stem: string): string {
  for (const name of [`${stem}-ubyte`, `${stem}-ubyte.gz`, `${stem.replace(/-(idx\d)$/, ".$1")}-ubyte`, `${stem.replace(/-(idx\d)$/, ".$1")}-ubyte.gz`]) {
    if (existsSync(join(dir, name))) return join(dir, name);
  }
  throw new DatasetFileError(dir, `no ${stem}-ubyte (or .gz) here (expected MNIST's IDX files)`);
}

function split(dir: string, prefix: "train" | "t10k"): ImageExample[] {
  const imagesFile = findIdx(dir, `${prefix}-images-idx3`);
  const labelsFile = findIdx(dir, `${prefix}-labels-idx1`);
  const images = readIdx(imagesFile, 3);
  const labels = readIdx(labelsFile, 1);
  const [n, h, w] = images.dims;
  if (labels.dims[0] !== n) throw new DatasetFileError(labelsFile, `${labels.dims[0]} labels for ${n} images in ${imagesFile}`);
  const bad = labels.data.findIndex((l) => l > 9);
  if (bad >= 0) throw new DatasetFileError(labelsFile, `corrupt: label ${labels.data[bad]} at index ${bad} (expected 0…9)`);
  return Array.from({ length: n }, (_, i) => ({
    label: labels.data[i],
    image: () => ({ data: images.data.subarray(i * h * w, (i + 1) * h * w), height: h, width: w, channels: 1 as const }),
  }));
}

/** Loads MNIST's four IDX files from `dir` (names with -idx or .idx, gzipped or not). */
export function loadMnist(dir: string): ImageDataset {
  return { name: "mnist", classes: Array.from({ length: 10 }, (_, i) => String(i)), train: split(dir, "train"), test: split(dir, "t10k") };
}
