// SVHN, format 2 (Netzer et al. 2011): cropped 32×32 digits in MATLAB Level 5
// files train_32x32.mat and test_32x32.mat, X [32, 32, 3, N] uint8 (MATLAB's
// column-major order: row fastest, then column, channel, image) and y [N, 1]
// with digit 0 stored as 10 (mapped back to 0, as torchvision does).
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { DatasetFileError } from "./image.js";
import { readMat5 } from "./mat5.js";
import type { ImageDataset, ImageExample } from "./types.js";

/** One SVHN format-2 .mat file. @throws DatasetFileError naming the file when X or y is missing, mis-shaped or corrupt. */
export function readSvhnMat(file: string): ImageExample[] {
  const vars = readMat5(readFileSync(file), file);
  const X = vars.get("X");
  const y = vars.get("y");
  if (!X || !y) throw new DatasetFileError(file, `expected numeric variables X and y (SVHN format 2), found ${[...vars.keys()].join(", ") || "none"}`);
  const [h, w, c, n] = X.dims;
  if (X.dims.length !== 4 || c !== 3 || !(X.data instanceof Uint8Array)) throw new DatasetFileError(file, `X must be a uint8 [H, W, 3, N] array, got [${X.dims}]`);
  if (Number(y.data.length) !== n) throw new DatasetFileError(file, `y has ${y.data.length} labels for ${n} images`);
  const pixels = X.data;
  return Array.from({ length: n }, (_, i) => {
    const raw = Number(y.data[i]);
    if (!Number.isInteger(raw) || raw < 0 || raw > 10) throw new DatasetFileError(file, `corrupt: y(${i + 1}) = ${raw} (expected 1…10)`);
    return {
      label: raw === 10 ? 0 : raw,
      image: () => { // column-major [H, W, 3] slice → row-major HWC
        const data = new Uint8Array(h * w * 3);
        const base = i * h * w * 3;
        for (let ch = 0; ch < 3; ch++) for (let col = 0; col < w; col++) for (let row = 0; row < h; row++) {
          data[(row * w + col) * 3 + ch] = pixels[base + ch * h * w + col * h + row];
        }
        return { data, height: h, width: w, channels: 3 };
      },
    };
  });
}

/** Loads train_32x32.mat and test_32x32.mat from `dir` (extra_32x32.mat is not used). */
export function loadSvhn(dir: string): ImageDataset {
  const [train, test] = ["train_32x32.mat", "test_32x32.mat"].map((f) => {
    if (!existsSync(join(dir, f))) throw new DatasetFileError(dir, `no ${f} here (expected SVHN's format-2 files)`);
    return readSvhnMat(join(dir, f));
  });
  return { name: "svhn", classes: Array.from({ length: 10 }, (_, i) => String(i)), train, test };
}
