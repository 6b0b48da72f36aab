// CIFAR-10, binary version (Krizhevsky 2009; cifar-10-binary.tar.gz): files of
// 3073-byte records, a label byte then 1024 red, 1024 green, 1024 blue bytes
// (each 32×32 row-major). data_batch_1…5.bin train, test_batch.bin tests.
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { DatasetFileError } from "./image.js";
import type { ImageDataset, ImageExample } from "./types.js";

const RECORD = 1 + 3 * 32 * 32;
export const CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

/** The records of one CIFAR-10 .bin file. @throws DatasetFileError naming the file when truncated or a label is not 0…9. */
export function readCifar10Batch(file: string): ImageExample[] {
  const buf = readFileSync(file);
  if (buf.length === 0 || buf.length % RECORD !== 0) {
    throw new DatasetFileError(file, `truncated or not a CIFAR-10 binary batch: ${buf.length} bytes is not a whole number of ${RECORD}-byte records`);
  }
  const out: ImageExample[] = [];
  for (let r = 0; r < buf.length / RECORD; r++) {
    const base = r * RECORD;
    const label = buf[base];
    if (label > 9) throw new DatasetFileError(file, `corrupt: record ${r} has label ${label} (expected 0…9)`);
    out.push({
      label,
      image: () => { // planes (CHW) → HWC
        const data = new Uint8Array(3072);
        for (let i = 0; i < 1024; i++) for (let c = 0; c < 3; c++) data[i * 3 + c] = buf[base + 1 + c * 1024 + i];
        return { data, height: 32, width: 32, channels: 3 };
      },
    });
  }
  return out;
}

/**
 * Loads `dir` or `dir/cifar-10-batches-bin`: every data_batch_N.bin (in N order) as train,
 * test_batch.bin as test, class names from batches.meta.txt when present.
 * @throws DatasetFileError naming the folder when the files are missing.
 */
export function loadCifar10(dir: string): ImageDataset {
  const root = existsSync(join(dir, "cifar-10-batches-bin")) ? join(dir, "cifar-10-batches-bin") : dir;
  const batches = readdirSync(root).filter((f) => /^data_batch_\d+\.bin$/.test(f))
    .sort((a, b) => parseInt(a.slice(11), 10) - parseInt(b.slice(11), 10));
  const testFile = join(root, "test_batch.bin");
  if (!batches.length || !existsSync(testFile)) {
    throw new DatasetFileError(root, "expected CIFAR-10's binary files data_batch_1.bin … data_batch_5.bin and test_batch.bin");
  }
  const meta = join(root, "batches.meta.txt");
  const names = existsSync(meta) ? readFileSync(meta, "utf8").split("\n").map((s) => s.trim()).filter(Boolean) : CIFAR10_CLASSES;
  if (names.length !== 10) throw new DatasetFileError(meta, `expected 10 class names, one per line, found ${names.length}`);
  return { name: "cifar10", classes: names, train: batches.flatMap((f) => readCifar10Batch(join(root, f))), test: readCifar10Batch(testFile) };
}
