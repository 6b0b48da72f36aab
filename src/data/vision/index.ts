// Image classification datasets by name, each read from its distributed files.
import { existsSync, statSync } from "node:fs";
import { DatasetFileError } from "./image.js";
import type { ImageDataset } from "./types.js";
import { loadCifar10 } from "./cifar10.js";
import { loadMnist } from "./mnist.js";
import { loadGtsrb } from "./gtsrb.js";
import { loadSvhn } from "./svhn.js";
import { loadImageFolder, loadResisc45 } from "./folder.js";

export const IMAGE_DATASETS: Record<string, (dir: string) => ImageDataset> = {
  cifar10: loadCifar10,
  mnist: loadMnist,
  gtsrb: loadGtsrb,
  svhn: loadSvhn,
  resisc45: loadResisc45,
  imagefolder: (dir) => loadImageFolder(dir),
};

/**
 * Loads dataset `name` from `dir`.
 * @throws Error listing the known names for an unknown one; DatasetFileError naming the folder or file that is missing or bad.
 */
export function loadImageDataset(name: string, dir: string): ImageDataset {
  const load = IMAGE_DATASETS[name];
  if (!load) throw new Error(`unknown image dataset '${name}' (known: ${Object.keys(IMAGE_DATASETS).join(", ")})`);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new DatasetFileError(dir, `no such folder (expected the ${name} dataset's files)`);
  return load(dir);
}

export type { ImageDataset, ImageExample } from "./types.js";
export type { RawImage } from "./image.js";
export { DatasetFileError, decodeImageFile } from "./image.js";
export { trainValSplit } from "./split.js";
