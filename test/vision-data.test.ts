// Image dataset loaders: each reads small files written here in the dataset's official
// format (from ../shared/data/vision's raw subsets) and returns the right pixels and
// labels; corrupt or truncated files give one error naming the file.
import { test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import jpeg from "jpeg-js";
import pngjs from "pngjs";
import { loadImageDataset, trainValSplit, decodeImageFile, type ImageExample, type RawImage } from "../src/data/vision/index.js";
import { repoRoot, sharedDir } from "./helpers.js";

const vision = join(sharedDir, "data", "vision");
const tmp = mkdtempSync(join(tmpdir(), "vision-data-"));
const dir = (name: string) => { const d = join(tmp, name); mkdirSync(d, { recursive: true }); return d; };

/** n images of h×w×c from a shared raw subset, and their labels. */
function subset(file: string, labelsFile: string, n: number, hwc: number[]): { images: Uint8Array[]; labels: number[] } {
  const raw = readFileSync(join(vision, file));
  const parsed = JSON.parse(readFileSync(join(vision, labelsFile), "utf8"));
  const labels = (Array.isArray(parsed) ? parsed : parsed.labels) as number[];
  const size = hwc[0] * hwc[1] * hwc[2];
  return { images: Array.from({ length: n }, (_, i) => new Uint8Array(raw.subarray(i * size, (i + 1) * size))), labels: labels.slice(0, n) };
}

function assertSame(got: ImageExample[], images: Uint8Array[], labels: number[], hwc: number[]): void {
  assert.equal(got.length, images.length);
  got.forEach((e, i) => {
    const img = e.image();
    assert.deepEqual([img.height, img.width, img.channels], hwc, `image ${i} shape`);
    assert.equal(e.label, labels[i], `label ${i}`);
    assert.ok(Buffer.from(img.data).equals(Buffer.from(images[i])), `pixels of image ${i}`);
  });
}

/** Asserts `fn` throws one line naming `file`. */
function throwsNaming(fn: () => unknown, file: string, what: RegExp): void {
  assert.throws(fn, (e: Error) => {
    assert.ok(e.message.includes(file), `error names ${file}: ${e.message}`);
    assert.match(e.message, what);
    assert.ok(!e.message.includes("\n"), "one line");
    return true;
  });
}

test("CIFAR-10 binary batches: label byte + R, G, B planes → HWC pixels and labels", () => {
  const { images, labels } = subset("cifar10/convnetjs_cifar10_batch0_1000x32x32x3_u8.bin", "cifar10/convnetjs_cifar10_batch0_labels.json", 12, [32, 32, 3]);
  const record = (i: number) => {
    const r = new Uint8Array(3073);
    r[0] = labels[i];
    for (let p = 0; p < 1024; p++) for (let c = 0; c < 3; c++) r[1 + c * 1024 + p] = images[i][p * 3 + c];
    return r;
  };
  const batch = (ids: number[]) => Buffer.concat(ids.map(record));
  const root = dir("cifar/cifar-10-batches-bin");
  writeFileSync(join(root, "data_batch_2.bin"), batch([5, 6, 7]));
  writeFileSync(join(root, "data_batch_1.bin"), batch([0, 1, 2, 3, 4]));
  writeFileSync(join(root, "test_batch.bin"), batch([8, 9, 10, 11]));
  writeFileSync(join(root, "batches.meta.txt"), "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n");
  const ds = loadImageDataset("cifar10", join(tmp, "cifar"));
  assert.equal(ds.classes[9], "truck");
  assertSame(ds.train, images.slice(0, 8), labels.slice(0, 8), [32, 32, 3]); // batches in numeric order
  assertSame(ds.test, images.slice(8), labels.slice(8), [32, 32, 3]);
  const bad = join(dir("cifar-bad"), "test_batch.bin");
  writeFileSync(bad, batch([0]).subarray(0, 3000));
  throwsNaming(() => loadImageDataset("cifar10", join(tmp, "cifar-bad")), "cifar-bad", /expected CIFAR-10's binary files/);
  writeFileSync(join(tmp, "cifar-bad", "data_batch_1.bin"), batch([0, 1]));
  throwsNaming(() => loadImageDataset("cifar10", join(tmp, "cifar-bad")), bad, /truncated or not a CIFAR-10 binary batch: 3000 bytes/);
  const wrongLabel = batch([0]);
  wrongLabel[0] = 12;
  writeFileSync(bad, wrongLabel);
  throwsNaming(() => loadImageDataset("cifar10", join(tmp, "cifar-bad")), bad, /record 0 has label 12/);
});

test("MNIST IDX files, gzipped or not: images and labels", () => {
  const { images, labels } = subset("mnist/convnetjs_mnist_batch0_3000x28x28_u8.bin", "mnist/convnetjs_mnist_batch0_labels.json", 10, [28, 28, 1]);
  const idx = (rank: number, dims: number[], data: Uint8Array) => {
    const head = Buffer.alloc(4 + 4 * rank);
    head[2] = 0x08; head[3] = rank;
    dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
    return Buffer.concat([head, data]);
  };
  const root = dir("mnist");
  const imgs = (a: number, b: number) => idx(3, [b - a, 28, 28], Buffer.concat(images.slice(a, b)));
  writeFileSync(join(root, "train-images-idx3-ubyte.gz"), gzipSync(imgs(0, 6)));
  writeFileSync(join(root, "train-labels-idx1-ubyte.gz"), gzipSync(idx(1, [6], Uint8Array.from(labels.slice(0, 6)))));
  writeFileSync(join(root, "t10k-images-idx3-ubyte"), imgs(6, 10));
  writeFileSync(join(root, "t10k-labels-idx1-ubyte"), idx(1, [4], Uint8Array.from(labels.slice(6))));
  const ds = loadImageDataset("mnist", root);
  assertSame(ds.train, images.slice(0, 6), labels.slice(0, 6), [28, 28, 1]);
  assertSame(ds.test, images.slice(6), labels.slice(6), [28, 28, 1]);
  const t10k = join(root, "t10k-images-idx3-ubyte");
  writeFileSync(t10k, imgs(6, 10).subarray(0, 1000));
  throwsNaming(() => loadImageDataset("mnist", root), t10k, /truncated: dimensions \[4,28,28\] need 3136 bytes of data, file has 984/);
  const gz = join(root, "train-images-idx3-ubyte.gz");
  writeFileSync(gz, gzipSync(imgs(0, 6)).subarray(0, 200));
  throwsNaming(() => loadImageDataset("mnist", root), gz, /corrupt or truncated gzip/);
  writeFileSync(gz, gzipSync(idx(1, [6], Uint8Array.from(labels.slice(0, 6)))));
  throwsNaming(() => loadImageDataset("mnist", root), gz, /not an IDX file of unsigned bytes with 3 dimension/);
});

test("GTSRB: per-class .ppm folders with GT-NNNNN.csv, test folder with GT-final_test.csv", () => {
  const { images, labels } = subset("gtsrb/gtsrb_train1000_32x32x3_u8_rgb.bin", "gtsrb/gtsrb_train1000_labels.json", 9, [32, 32, 3]);
  const ppm = (img: Uint8Array, comment = false) => Buffer.concat([Buffer.from(`P6\n${comment ? "# made by a test\n" : ""}32 32\n255\n`), img]);
  const root = join(tmp, "gtsrb", "GTSRB");
  const header = "Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId";
  const trainIds = [0, 1, 2, 3, 4, 5];
  const byClass = new Map<number, number[]>();
  for (const i of trainIds) byClass.set(labels[i], [...(byClass.get(labels[i]) ?? []), i]);
  for (const [cls, ids] of byClass) {
    const name = String(cls).padStart(5, "0");
    const folder = join(root, "Final_Training", "Images", name);
    mkdirSync(folder, { recursive: true });
    const rows = ids.map((i, k) => { writeFileSync(join(folder, `00000_0000${k}.ppm`), ppm(images[i], k === 0)); return `00000_0000${k}.ppm;32;32;5;5;27;27;${cls}`; });
    writeFileSync(join(folder, `GT-${name}.csv`), [header, ...rows].join("\r\n") + "\r\n");
  }
  const testFolder = join(root, "Final_Test", "Images");
  mkdirSync(testFolder, { recursive: true });
  const testRows = [6, 7, 8].map((i, k) => { writeFileSync(join(testFolder, `0000${k}.ppm`), ppm(images[i])); return `0000${k}.ppm;32;32;5;5;27;27;${labels[i]}`; });
  writeFileSync(join(tmp, "gtsrb", "GT-final_test.csv"), [header, ...testRows].join("\n"));
  const ds = loadImageDataset("gtsrb", join(tmp, "gtsrb"));
  assert.equal(ds.classes.length, 43);
  const order = [...byClass.keys()].sort((a, b) => a - b).flatMap((c) => byClass.get(c)!); // class folders in order
  assertSame(ds.train, order.map((i) => images[i]), order.map((i) => labels[i]), [32, 32, 3]);
  assertSame(ds.test, [6, 7, 8].map((i) => images[i]), [6, 7, 8].map((i) => labels[i]), [32, 32, 3]);
  const broken = join(testFolder, "00001.ppm");
  writeFileSync(broken, ppm(images[7]).subarray(0, 2000));
  throwsNaming(() => ds.test[1].image(), broken, /truncated PPM: 32×32×3 needs 3072 bytes of pixels, file has 1987/);
  writeFileSync(join(tmp, "gtsrb", "GT-final_test.csv"), [header, "00000.ppm;32;32;5;5;27;27;57"].join("\n"));
  throwsNaming(() => loadImageDataset("gtsrb", join(tmp, "gtsrb")), "GT-final_test.csv", /line 2: expected a file name and a ClassId in 0…42/);
});

test("SVHN format 2 (.mat, MATLAB v5, written by SciPy): column-major X, label 10 → 0, compressed or not", () => {
  const root = dir("svhn");
  const fixtures = join(repoRoot, "test", "fixtures", "svhn");
  copyFileSync(join(fixtures, "uncompressed_32x32.mat"), join(root, "train_32x32.mat"));
  copyFileSync(join(fixtures, "compressed_32x32.mat"), join(root, "test_32x32.mat"));
  const ds = loadImageDataset("svhn", root);
  const expected = (k: number) => {
    const data = new Uint8Array(32 * 32 * 3);
    for (let i = 0; i < 32; i++) for (let j = 0; j < 32; j++) for (let c = 0; c < 3; c++) data[(i * 32 + j) * 3 + c] = (i * 7 + j * 3 + c * 50 + k * 11) % 256;
    return data;
  };
  for (const split of [ds.train, ds.test]) assertSame(split, [0, 1, 2].map(expected), [0, 1, 5], [32, 32, 3]);
  const bytes = readFileSync(join(fixtures, "uncompressed_32x32.mat"));
  const cut = join(root, "train_32x32.mat");
  writeFileSync(cut, bytes.subarray(0, 5000));
  throwsNaming(() => loadImageDataset("svhn", root), cut, /truncated MAT-file: a data element at byte 128 needs/);
  const packed = readFileSync(join(fixtures, "compressed_32x32.mat"));
  const corrupt = Buffer.from(packed);
  for (let i = 200; i < 260; i++) corrupt[i] ^= 0x5a;
  writeFileSync(cut, corrupt);
  throwsNaming(() => loadImageDataset("svhn", root), cut, /corrupt or truncated compressed variable|corrupt MAT-file/);
  writeFileSync(cut, Buffer.from("MATLAB 7.3 MAT-file, Platform: GLNXA64".padEnd(128, " ")));
  throwsNaming(() => loadImageDataset("svhn", root), cut, /v7\.3 \(HDF5\) MAT-files are not supported/);
});

test("image folders: PNG and PPM exactly, RESISC45's JPEG class folders within JPEG error, seeded 20% test hold-out", () => {
  const { images, labels } = subset("cifar10/convnetjs_cifar10_batch0_1000x32x32x3_u8.bin", "cifar10/convnetjs_cifar10_batch0_labels.json", 30, [32, 32, 3]);
  const png = (img: Uint8Array) => {
    const p = new pngjs.PNG({ width: 32, height: 32 });
    for (let i = 0; i < 1024; i++) { p.data[i * 4] = img[i * 3]; p.data[i * 4 + 1] = img[i * 3 + 1]; p.data[i * 4 + 2] = img[i * 3 + 2]; p.data[i * 4 + 3] = 255; }
    return pngjs.PNG.sync.write(p);
  };
  const root = dir("folder");
  for (const split of ["train", "test"]) for (const cls of ["cat", "ship"]) mkdirSync(join(root, split, cls), { recursive: true });
  writeFileSync(join(root, "train", "cat", "a.png"), png(images[0]));
  writeFileSync(join(root, "train", "ship", "b.ppm"), Buffer.concat([Buffer.from("P6 32 32 255\n"), images[1]]));
  writeFileSync(join(root, "train", "ship", "notes.txt"), "not an image");
  writeFileSync(join(root, "test", "ship", "c.png"), png(images[2]));
  const ds = loadImageDataset("imagefolder", root);
  assert.deepEqual(ds.classes, ["cat", "ship"]);
  assertSame(ds.train, [images[0], images[1]], [0, 1], [32, 32, 3]);
  assertSame(ds.test, [images[2]], [1], [32, 32, 3]);
  const truncated = join(root, "test", "ship", "c.png");
  writeFileSync(truncated, png(images[2]).subarray(0, 300));
  throwsNaming(() => ds.test[0].image(), truncated, /corrupt or truncated PNG/);

  // RESISC45: NWPU-RESISC45/<class>/<class>_NNN.jpg, no split of its own
  const resisc = join(dir("resisc"), "NWPU-RESISC45");
  const names = ["airplane", "beach", "forest"];
  images.forEach((img, i) => {
    const cls = names[labels[i] % 3];
    mkdirSync(join(resisc, cls), { recursive: true });
    const rgba = Buffer.alloc(32 * 32 * 4, 255);
    for (let p = 0; p < 1024; p++) for (let c = 0; c < 3; c++) rgba[p * 4 + c] = img[p * 3 + c];
    writeFileSync(join(resisc, cls, `${cls}_${String(i).padStart(3, "0")}.jpg`), jpeg.encode({ data: rgba, width: 32, height: 32 }, 100).data);
  });
  const rs = loadImageDataset("resisc45", join(tmp, "resisc"));
  assert.deepEqual(rs.classes, names);
  assert.equal(rs.train.length + rs.test.length, 30);
  assert.match(rs.note!, /seeded 20% of each class/);
  const perClass = names.map((_, c) => images.filter((_, i) => labels[i] % 3 === c).length);
  names.forEach((_, c) => assert.equal(rs.test.filter((e) => e.label === c).length, Math.max(1, Math.round(perClass[c] * 0.2)), "stratified"));
  // JPEG is lossy: quality 100 stays within a few grey levels of the source pixels
  const first = decodeImageFile(join(resisc, names[labels[0] % 3], `${names[labels[0] % 3]}_000.jpg`));
  const err = Math.max(...first.data.map((v, k) => Math.abs(v - images[0][k])));
  assert.ok(err <= 12, `JPEG round trip max error ${err}`);
  assert.deepEqual(loadImageDataset("resisc45", join(tmp, "resisc")).test.map((e) => e.image().data[0]), rs.test.map((e) => e.image().data[0]), "same split every time");
  const badJpeg = join(resisc, "beach", "broken.jpg");
  writeFileSync(badJpeg, readFileSync(join(resisc, names[labels[0] % 3], `${names[labels[0] % 3]}_000.jpg`)).subarray(0, 400));
  throwsNaming(() => decodeImageFile(badJpeg), badJpeg, /corrupt or truncated JPEG/);
});

test("an unknown dataset or a missing folder is one clear error", () => {
  assert.throws(() => loadImageDataset("imagenet", tmp), /unknown image dataset 'imagenet' \(known: cifar10, mnist, gtsrb, svhn, resisc45, imagefolder\)/);
  throwsNaming(() => loadImageDataset("svhn", join(tmp, "nowhere")), join(tmp, "nowhere"), /no such folder \(expected the svhn dataset's files\)/);
  throwsNaming(() => loadImageDataset("svhn", dir("svhn-empty")), "svhn-empty", /no train_32x32\.mat here/);
});

test("trainValSplit holds out a seeded, disjoint validation set", () => {
  const examples: ImageExample[] = Array.from({ length: 50 }, (_, i) => ({ label: i % 5, image: (): RawImage => ({ data: Uint8Array.of(i), height: 1, width: 1, channels: 1 }) }));
  const a = trainValSplit(examples, 10, 3);
  const b = trainValSplit(examples, 10, 3);
  const c = trainValSplit(examples, 10, 4);
  const ids = (xs: ImageExample[]) => xs.map((e) => e.image().data[0]);
  assert.deepEqual(ids(a.val), ids(b.val));
  assert.notDeepEqual(ids(a.val), ids(c.val));
  assert.equal(new Set([...ids(a.val), ...ids(a.train)]).size, 50);
  assert.equal(a.val.length, 10);
  assert.throws(() => trainValSplit(examples, 50, 0), /validation size 50 must be an integer in \[0, 50\)/);
});
