// Image classification tasks (the paper's Table 2: CIFAR-10, GTSRB, MNIST,
// SVHN, RESISC45) and a generic image folder: names, and the seeded
// train / validation / test protocol over a dataset's distributed splits.
import { loadImageDataset, type ImageDataset, type ImageExample } from "../data/vision/index.js";
import { trainValSplit } from "../data/vision/split.js";
import { shuffled } from "./sampling.js";

export const IMAGE_TASK_NAMES = ["cifar10", "mnist", "gtsrb", "svhn", "resisc45", "image-folder"] as const;

export function isImageTask(name: string): boolean {
  return (IMAGE_TASK_NAMES as readonly string[]).includes(name);
}

/** Loads task `name`'s dataset from `dir` (image-folder: `dir/<class>/*.png|jpg|ppm`, or its train/ and test/). */
export function loadImageTask(name: string, dir: string): ImageDataset {
  return loadImageDataset(name === "image-folder" ? "imagefolder" : name, dir);
}

export interface ImageSizes {
  /** Train examples used (seeded subsample); all that remain after validation when absent. */
  train?: number;
  /** Validation examples held out of the train split; 10% of it (at most 5,000) when absent. */
  val?: number;
  /** Test examples (seeded subsample of the test split); the whole split when absent. */
  test?: number;
}

export interface ImageSplits { train: ImageExample[]; val: ImageExample[]; test: ImageExample[] }

/**
 * The seeded protocol: validation is held out of the train split (model
 * selection never sees test), then train and test are subsampled when asked.
 * @throws Error naming the size that the split cannot supply.
 */
export function imageSplits(ds: ImageDataset, sizes: ImageSizes, seed: number): ImageSplits {
  const valSize = sizes.val ?? Math.min(5000, Math.max(1, Math.round(ds.train.length * 0.1)));
  const { train, val } = trainValSplit(ds.train, valSize, seed, `${ds.name}`);
  const cut = (xs: ImageExample[], n: number | undefined, what: string, stream: string): ImageExample[] => {
    if (n === undefined) return xs;
    if (n > xs.length) throw new Error(`${ds.name}: ${what} size ${n} is more than the ${xs.length} examples available`);
    return shuffled(xs, seed, stream).slice(0, n);
  };
  return { train: cut(train, sizes.train, "train", `${ds.name}:train`), val, test: cut(ds.test, sizes.test, "test", `${ds.name}:test`) };
}

/**
 * Decodes every image of the splits once, keeping none: images decode lazily, so without this a corrupt
 * or truncated test file would surface only after training. `onProgress(done)` every 256 images and at the end.
 * @throws DatasetFileError naming the first file that does not decode.
 */
export function checkSplitImages(splits: ImageSplits, onProgress?: (done: number) => void): void {
  const all = [...splits.train, ...splits.val, ...splits.test];
  all.forEach((x, i) => {
    x.image();
    if (onProgress && ((i + 1) % 256 === 0 || i + 1 === all.length)) onProgress(i + 1);
  });
}
