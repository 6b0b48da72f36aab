// Images as uint8 HWC arrays, and decoding the files image datasets ship:
// PNG (pngjs), JPEG (jpeg-js, strict mode so a truncated file is an error, not
// grey rows), and binary PPM/PGM (P6/P5, GTSRB's format: a header and raw bytes,
// read here as no maintained npm package reads it synchronously).
import { readFileSync } from "node:fs";
import { extname } from "node:path";
import jpeg from "jpeg-js";
import pngjs from "pngjs";

/** An image as stored: `data[(y·width + x)·channels + c]`, uint8, channels 1 (grey) or 3 (RGB). */
export interface RawImage {
  data: Uint8Array;
  height: number;
  width: number;
  channels: 1 | 3;
}

/** A file that is not the image (or dataset file) it claims to be: the message names the file. */
export class DatasetFileError extends Error {
  constructor(readonly file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = "DatasetFileError";
  }
}

export const IMAGE_EXTENSIONS = [".png", ".jpg", ".jpeg", ".ppm", ".pgm"] as const;

/**
 * Decodes a PNG, JPEG or binary PPM/PGM file (chosen by extension) to uint8 HWC:
 * RGB for colour files (a PNG's alpha is dropped, as PIL's convert("RGB") does), grey for PGM.
 * @throws DatasetFileError naming the file when it is unreadable, truncated or corrupt.
 */
export function decodeImageFile(file: string): RawImage {
  let buf: Buffer;
  try { buf = readFileSync(file); } catch (e) {
    throw new DatasetFileError(file, `cannot read (${(e as Error).message})`);
  }
  const ext = extname(file).toLowerCase();
  if (ext === ".png") return decodePng(buf, file);
  if (ext === ".jpg" || ext === ".jpeg") return decodeJpeg(buf, file);
  if (ext === ".ppm" || ext === ".pgm") return decodePnm(buf, file);
  throw new DatasetFileError(file, `unsupported image type '${ext}' (expected ${IMAGE_EXTENSIONS.join(", ")})`);
}

function decodePng(buf: Buffer, file: string): RawImage {
  let png: { width: number; height: number; data: Buffer };
  try { png = pngjs.PNG.sync.read(buf); } catch (e) {
    throw new DatasetFileError(file, `corrupt or truncated PNG (${(e as Error).message})`);
  }
  const { width, height, data } = png; // RGBA, 8 bits per channel
  const rgb = new Uint8Array(width * height * 3);
  for (let i = 0, j = 0; i < rgb.length; i += 3, j += 4) {
    rgb[i] = data[j]; rgb[i + 1] = data[j + 1]; rgb[i + 2] = data[j + 2];
  }
  return { data: rgb, height, width, channels: 3 };
}

function decodeJpeg(buf: Buffer, file: string): RawImage {
  try {
    const img = jpeg.decode(buf, { useTArray: true, formatAsRGBA: false, tolerantDecoding: false });
    return { data: img.data, height: img.height, width: img.width, channels: 3 };
  } catch (e) {
    throw new DatasetFileError(file, `corrupt or truncated JPEG (${(e as Error).message})`);
  }
}

/** Binary PPM (P6, RGB) or PGM (P5, grey) with maxval ≤ 255; '#' comments in the header. */
export function decodePnm(buf: Uint8Array, file: string): RawImage {
  let pos = 0;
  const token = (): string => {
    for (;;) {
      while (pos < buf.length && /\s/.test(String.fromCharCode(buf[pos]))) pos++;
      if (buf[pos] !== 0x23) break; // '#': a comment to the end of the line
      while (pos < buf.length && buf[pos] !== 0x0a) pos++;
    }
    const start = pos;
    while (pos < buf.length && !/\s/.test(String.fromCharCode(buf[pos]))) pos++;
    return String.fromCharCode(...buf.subarray(start, pos));
  };
  const magic = token();
  if (magic !== "P6" && magic !== "P5") throw new DatasetFileError(file, `not a binary PPM/PGM (magic '${magic.slice(0, 2)}', expected P6 or P5)`);
  const [width, height, maxval] = [token(), token(), token()].map(Number);
  if (![width, height, maxval].every((v) => Number.isInteger(v) && v > 0) || maxval > 255) {
    throw new DatasetFileError(file, "bad PPM header (expected positive width, height and maxval ≤ 255)");
  }
  pos++; // the single whitespace byte before the raster
  const channels = magic === "P6" ? 3 : 1;
  const size = width * height * channels;
  if (buf.length - pos < size) throw new DatasetFileError(file, `truncated PPM: ${width}×${height}×${channels} needs ${size} bytes of pixels, file has ${Math.max(0, buf.length - pos)}`);
  const data = Uint8Array.from(buf.subarray(pos, pos + size));
  if (maxval !== 255) for (let i = 0; i < size; i++) data[i] = Math.round((data[i] * 255) / maxval);
  return { data, height, width, channels };
}
