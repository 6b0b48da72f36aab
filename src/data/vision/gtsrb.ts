// GTSRB (Stallkamp et al. 2012) as distributed: training images in one folder
// per class (00000 … 00042, .ppm files, each folder with its GT-NNNNN.csv),
// test images in one folder labelled by GT-final_test.csv (from the separate
// GTSRB_Final_Test_GT.zip). CSVs are ';'-separated with a header naming
// Filename and ClassId. Whole images are used (no ROI crop), as torchvision does.
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { DatasetFileError, decodeImageFile } from "./image.js";
import type { ImageDataset, ImageExample } from "./types.js";

export const GTSRB_CLASSES = 43;

/** Rows of a GTSRB annotation CSV as (Filename, ClassId). @throws DatasetFileError naming the CSV on a bad header or class id. */
export function readGtsrbCsv(file: string): { filename: string; classId: number }[] {
  const lines = readFileSync(file, "utf8").split(/\r?\n/).filter((l) => l.trim() !== "");
  const header = (lines[0] ?? "").split(";");
  const fi = header.indexOf("Filename");
  const ci = header.indexOf("ClassId");
  if (fi < 0 || ci < 0) throw new DatasetFileError(file, `expected a ';'-separated header with Filename and ClassId, got '${lines[0] ?? ""}'`);
  return lines.slice(1).map((line, i) => {
    const cells = line.split(";");
    const classId = Number(cells[ci]);
    if (!Number.isInteger(classId) || classId < 0 || classId >= GTSRB_CLASSES || !cells[fi]) {
      throw new DatasetFileError(file, `line ${i + 2}: expected a file name and a ClassId in 0…${GTSRB_CLASSES - 1}, got '${line}'`);
    }
    return { filename: cells[fi], classId };
  });
}

const firstExisting = (paths: string[]): string | undefined => paths.find((p) => existsSync(p));

/**
 * Loads GTSRB from `dir` (the folder holding GTSRB/, or GTSRB/ itself):
 * train from Final_Training/Images/NNNNN/GT-NNNNN.csv, test from
 * Final_Test/Images with GT-final_test.csv (beside the images or in `dir`).
 * @throws DatasetFileError naming what is missing.
 */
export function loadGtsrb(dir: string): ImageDataset {
  const bases = [join(dir, "GTSRB"), dir];
  const trainDir = firstExisting(bases.flatMap((b) => [join(b, "Final_Training", "Images"), join(b, "Training")]));
  const testDir = firstExisting(bases.map((b) => join(b, "Final_Test", "Images")));
  if (!trainDir || !testDir) throw new DatasetFileError(dir, "expected GTSRB/Final_Training/Images/<class>/ and GTSRB/Final_Test/Images/");
  const testCsv = firstExisting([join(testDir, "GT-final_test.csv"), join(dir, "GT-final_test.csv"), join(dir, "GTSRB", "GT-final_test.csv")]);
  if (!testCsv) throw new DatasetFileError(testDir, "no GT-final_test.csv (the test labels, GTSRB_Final_Test_GT.zip) here or in the dataset folder");
  const train: ImageExample[] = [];
  for (const cls of readdirSync(trainDir).filter((d) => /^\d{5}$/.test(d) && statSync(join(trainDir, d)).isDirectory()).sort()) {
    const folder = join(trainDir, cls);
    const csv = join(folder, `GT-${cls}.csv`);
    if (!existsSync(csv)) throw new DatasetFileError(folder, `no annotation file GT-${cls}.csv`);
    for (const row of readGtsrbCsv(csv)) train.push(fileExample(join(folder, row.filename), row.classId, csv));
  }
  if (!train.length) throw new DatasetFileError(trainDir, "no class folders 00000 … 00042 with images");
  const test = readGtsrbCsv(testCsv).map((row) => fileExample(join(testDir, row.filename), row.classId, testCsv));
  return { name: "gtsrb", classes: Array.from({ length: GTSRB_CLASSES }, (_, i) => String(i)), train, test };
}

function fileExample(file: string, label: number, csv: string): ImageExample {
  if (!existsSync(file)) throw new DatasetFileError(csv, `lists ${file}, which does not exist`);
  return { label, image: () => decodeImageFile(file) };
}
