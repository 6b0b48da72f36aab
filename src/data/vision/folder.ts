// Image folders: root/<class>/*.{png,jpg,jpeg,ppm} (classes in sorted order, as
// torchvision's ImageFolder), optionally split as root/train/<class> and
// root/test/<class>. RESISC45 (Cheng et al. 2017) ships as such a folder of
// JPEGs (NWPU-RESISC45/<class>/) with no split of its own.
import { existsSync, readdirSync, statSync } from "node:fs";
import { extname, join } from "node:path";
import { DatasetFileError, IMAGE_EXTENSIONS, decodeImageFile } from "./image.js";
import { stratifiedHoldOut } from "./split.js";
import type { ImageDataset, ImageExample } from "./types.js";

/** Fraction of each class held out as test where a folder has no test split (TorchGeo's RESISC45 split also tests on 20%). */
export const HOLD_OUT_FRACTION = 0.2;
/** Fixed, so the held-out test set does not move with the training seed. */
const HOLD_OUT_SEED = 0;

const isDir = (p: string) => existsSync(p) && statSync(p).isDirectory();

/** Class folders of `root` and their images; `classes` fixes the ids (a test folder must use the train folder's). */
function readClassFolders(root: string, classes?: string[]): { classes: string[]; examples: ImageExample[] } {
  const found = readdirSync(root).filter((d) => !d.startsWith(".") && isDir(join(root, d))).sort();
  const names = classes ?? found;
  if (!names.length) throw new DatasetFileError(root, "no class folders (expected root/<class>/*.png|jpg|jpeg|ppm)");
  const unknown = found.filter((d) => !names.includes(d));
  if (unknown.length) throw new DatasetFileError(root, `class folder(s) ${unknown.join(", ")} are not among the train classes`);
  const examples: ImageExample[] = [];
  names.forEach((name, label) => {
    if (!found.includes(name)) return;
    const folder = join(root, name);
    for (const f of readdirSync(folder).sort()) {
      if (!(IMAGE_EXTENSIONS as readonly string[]).includes(extname(f).toLowerCase())) continue;
      const file = join(folder, f);
      examples.push({ label, image: () => decodeImageFile(file) });
    }
  });
  if (!examples.length) throw new DatasetFileError(root, `no images with extensions ${IMAGE_EXTENSIONS.join(", ")} in its class folders`);
  return { classes: names, examples };
}

/**
 * A generic image folder. With root/train (and root/test) those are the splits;
 * otherwise a seeded 20% of each class is held out as test, and `note` says so.
 */
export function loadImageFolder(root: string, name = "imagefolder"): ImageDataset {
  if (!isDir(root)) throw new DatasetFileError(root, "not a folder");
  if (isDir(join(root, "train"))) {
    const train = readClassFolders(join(root, "train"));
    if (!isDir(join(root, "test"))) throw new DatasetFileError(root, "has train/ but no test/ folder");
    const test = readClassFolders(join(root, "test"), train.classes);
    return { name, classes: train.classes, train: train.examples, test: test.examples };
  }
  const all = readClassFolders(root);
  const { train, test } = stratifiedHoldOut(all.examples, all.classes.length, HOLD_OUT_FRACTION, HOLD_OUT_SEED, `${name}:test`);
  return { name, classes: all.classes, train, test,
    note: `no test split in the distribution: a seeded ${HOLD_OUT_FRACTION * 100}% of each class (seed ${HOLD_OUT_SEED}) is the test set` };
}

/** RESISC45: `dir` or `dir/NWPU-RESISC45` holding the 45 class folders of 256×256 JPEGs. */
export function loadResisc45(dir: string): ImageDataset {
  return loadImageFolder(isDir(join(dir, "NWPU-RESISC45")) ? join(dir, "NWPU-RESISC45") : dir, "resisc45");
}
