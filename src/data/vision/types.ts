// An image classification dataset as its loaders return it: labelled images
// decoded on demand (RESISC45 alone would be 6 GB of pixels held at once).
import type { RawImage } from "./image.js";

export interface ImageExample {
  /** Class id in [0, classes.length). */
  label: number;
  /** The pixels, uint8 HWC; file-backed examples decode here, so a corrupt file fails here, naming the file. */
  image(): RawImage;
}

export interface ImageDataset {
  name: string;
  /** Class names by id. */
  classes: string[];
  train: ImageExample[];
  test: ImageExample[];
  /** How the test split was obtained when the distribution has none (folders without train/ and test/). */
  note?: string;
}
