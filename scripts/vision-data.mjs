// Writes the shared raw image subsets (../shared/data/vision: uint8 HWC arrays
// + JSON labels, see its README) in the datasets' official formats, so the
// pipeline and tests read them through randmask's own loaders:
// CIFAR-10 binary batches, MNIST IDX files, GTSRB per-class .ppm folders + CSVs.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const labelsOf = (file) => { const v = JSON.parse(readFileSync(file, "utf8")); return Array.isArray(v) ? v : v.labels; };

/** CIFAR-10 binary: records of a label byte + R, G, B planes (1024 bytes each). */
export function writeCifar10(sharedVision, out) {
  mkdirSync(out, { recursive: true });
  const one = (stem, name) => {
    const px = readFileSync(join(sharedVision, "cifar10", `${stem}_1000x32x32x3_u8.bin`));
    const labels = labelsOf(join(sharedVision, "cifar10", `${stem}_labels.json`));
    const buf = Buffer.alloc(labels.length * 3073);
    labels.forEach((l, r) => {
      buf[r * 3073] = l;
      for (let i = 0; i < 1024; i++) for (let c = 0; c < 3; c++) buf[r * 3073 + 1 + c * 1024 + i] = px[r * 3072 + i * 3 + c];
    });
    writeFileSync(join(out, name), buf);
  };
  one("convnetjs_cifar10_batch0", "data_batch_1.bin");
  one("convnetjs_cifar10_batch50", "test_batch.bin");
  return out;
}

/** MNIST IDX (uncompressed): train-images-idx3-ubyte etc. */
export function writeMnist(sharedVision, out) {
  mkdirSync(out, { recursive: true });
  const one = (stem, prefix) => {
    const px = readFileSync(join(sharedVision, "mnist", `${stem}_3000x28x28_u8.bin`));
    const labels = labelsOf(join(sharedVision, "mnist", `${stem}_labels.json`));
    const n = labels.length;
    const img = Buffer.alloc(16 + n * 784);
    img.writeUInt32BE(0x803, 0); img.writeUInt32BE(n, 4); img.writeUInt32BE(28, 8); img.writeUInt32BE(28, 12);
    px.copy(img, 16, 0, n * 784);
    const lab = Buffer.alloc(8 + n);
    lab.writeUInt32BE(0x801, 0); lab.writeUInt32BE(n, 4);
    labels.forEach((l, i) => { lab[8 + i] = l; });
    writeFileSync(join(out, `${prefix}-images-idx3-ubyte`), img);
    writeFileSync(join(out, `${prefix}-labels-idx1-ubyte`), lab);
  };
  one("convnetjs_mnist_batch0", "train");
  one("convnetjs_mnist_batch20", "t10k");
  return out;
}

/** GTSRB: Final_Training/Images/NNNNN/*.ppm with GT-NNNNN.csv, Final_Test/Images/*.ppm with GT-final_test.csv. */
export function writeGtsrb(sharedVision, out) {
  const root = join(out, "GTSRB");
  const ppm = (px, r) => Buffer.concat([Buffer.from("P6\n32 32\n255\n"), px.subarray(r * 3072, (r + 1) * 3072)]);
  const header = "Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId";
  const trainPx = readFileSync(join(sharedVision, "gtsrb", "gtsrb_train1000_32x32x3_u8_rgb.bin"));
  const trainLabels = labelsOf(join(sharedVision, "gtsrb", "gtsrb_train1000_labels.json"));
  const rows = new Map();
  trainLabels.forEach((l, r) => {
    const cls = String(l).padStart(5, "0");
    const folder = join(root, "Final_Training", "Images", cls);
    mkdirSync(folder, { recursive: true });
    const name = `${String(r).padStart(5, "0")}.ppm`;
    writeFileSync(join(folder, name), ppm(trainPx, r));
    rows.set(cls, [...(rows.get(cls) ?? []), `${name};32;32;0;0;31;31;${l}`]);
  });
  for (const [cls, lines] of rows) writeFileSync(join(root, "Final_Training", "Images", cls, `GT-${cls}.csv`), [header, ...lines].join("\n") + "\n");
  const testPx = readFileSync(join(sharedVision, "gtsrb", "gtsrb_test1000_32x32x3_u8_rgb.bin"));
  const testLabels = labelsOf(join(sharedVision, "gtsrb", "gtsrb_test1000_labels.json"));
  const testDir = join(root, "Final_Test", "Images");
  mkdirSync(testDir, { recursive: true });
  const lines = testLabels.map((l, r) => {
    const name = `${String(r).padStart(5, "0")}.ppm`;
    writeFileSync(join(testDir, name), ppm(testPx, r));
    return `${name};32;32;0;0;31;31;${l}`;
  });
  writeFileSync(join(testDir, "GT-final_test.csv"), [header, ...lines].join("\n") + "\n");
  return out;
}
