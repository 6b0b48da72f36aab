// Image preprocessing as a checkpoint's preprocessor_config.json states it,
// following Hugging Face's (slow, PIL-based) ViTImageProcessor and
// CLIPImageProcessor: convert to RGB → resize (PIL's resampling, exactly:
// two separable passes with 22-bit fixed-point coefficients, uint8 in between)
// → centre crop → rescale (×1/255) → normalise ((x − mean)/std, float32).
// Hugging Face's "fast" torchvision processors resample slightly differently
// (within a grey level or so).
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError } from "../config.js";
import type { RawImage } from "../../data/vision/image.js";
import type { VisionConfig } from "./config.js";

/** PIL's resampling filters by their Image.Resampling codes. */
export const RESAMPLE = { nearest: 0, lanczos: 1, bilinear: 2, bicubic: 3, box: 4, hamming: 5 } as const;

export interface PreprocessorConfig {
  doResize: boolean;
  /** Exact output size, or the length the shorter side is scaled to (aspect kept, the longer side truncated as HF does). */
  size: { height: number; width: number } | { shortestEdge: number };
  /** A PIL resampling code (RESAMPLE). */
  resample: number;
  doCenterCrop: boolean;
  cropSize: { height: number; width: number };
  doRescale: boolean;
  rescaleFactor: number;
  doNormalize: boolean;
  imageMean: [number, number, number];
  imageStd: [number, number, number];
}

const IMAGENET_STANDARD: [number, number, number] = [0.5, 0.5, 0.5];
const OPENAI_CLIP_MEAN: [number, number, number] = [0.48145466, 0.4578275, 0.40821073];
const OPENAI_CLIP_STD: [number, number, number] = [0.26862954, 0.26130258, 0.27577711];

/**
 * Parses a preprocessor_config.json object, with the defaults of the image
 * processor it names (or, when it names none, of the model's family):
 * ViTImageProcessor (resize to size×size bilinear, mean = std = 0.5) or
 * CLIPImageProcessor (shortest edge bicubic, centre crop, OpenAI CLIP mean/std).
 * An integer `size` means a square for ViT and a shortest edge for CLIP, as in HF.
 * @throws ConfigError naming `file` for a field of the wrong kind.
 */
export function parsePreprocessorConfig(raw: Record<string, unknown>, model: VisionConfig, file = "preprocessor_config.json"): PreprocessorConfig {
  const named = String(raw.image_processor_type ?? raw.feature_extractor_type ?? "");
  const clip = named ? /^CLIP/.test(named) : model.modelType === "clip_vision_model";
  const bool = (key: string, dflt: boolean): boolean => {
    const v = raw[key] ?? dflt;
    if (typeof v !== "boolean") throw new ConfigError(file, `"${key}" must be true or false, got ${JSON.stringify(v)}`);
    return v;
  };
  const posInt = (v: unknown, key: string): number => {
    if (!Number.isInteger(v) || (v as number) <= 0) throw new ConfigError(file, `"${key}" must be a positive integer, got ${JSON.stringify(v)}`);
    return v as number;
  };
  const hw = (v: unknown, key: string, squareDefault: number): { height: number; width: number } | { shortestEdge: number } => {
    if (v === undefined) return clip && key === "size" ? { shortestEdge: squareDefault } : { height: squareDefault, width: squareDefault };
    if (typeof v === "number") return clip && key === "size" ? { shortestEdge: posInt(v, key) } : { height: posInt(v, key), width: posInt(v, key) };
    const o = v as Record<string, unknown>;
    if (o && typeof o === "object" && "shortest_edge" in o) return { shortestEdge: posInt(o.shortest_edge, `${key}.shortest_edge`) };
    if (o && typeof o === "object" && "height" in o && "width" in o) return { height: posInt(o.height, `${key}.height`), width: posInt(o.width, `${key}.width`) };
    throw new ConfigError(file, `"${key}" must be an integer, {"height", "width"} or {"shortest_edge"}, got ${JSON.stringify(v)}`);
  };
  const triple = (key: string, dflt: [number, number, number]): [number, number, number] => {
    let v = raw[key] ?? dflt;
    if (typeof v === "number") v = [v, v, v];
    if (!Array.isArray(v) || v.length !== 3 || !v.every((x) => typeof x === "number" && Number.isFinite(x))) {
      throw new ConfigError(file, `"${key}" must be three numbers (one per RGB channel), got ${JSON.stringify(v)}`);
    }
    return v as [number, number, number];
  };
  const resample = raw.resample ?? (clip ? RESAMPLE.bicubic : RESAMPLE.bilinear);
  if (!Number.isInteger(resample) || (resample as number) < 0 || (resample as number) > 5) {
    throw new ConfigError(file, `"resample" must be a PIL resampling code 0…5, got ${JSON.stringify(resample)}`);
  }
  const crop = hw(raw.crop_size, "crop_size", model.imageSize);
  if ("shortestEdge" in crop) throw new ConfigError(file, `"crop_size" must give height and width`);
  const std = triple("image_std", clip ? OPENAI_CLIP_STD : IMAGENET_STANDARD);
  if (std.some((s) => s === 0)) throw new ConfigError(file, `"image_std" must not contain 0`);
  const factor = raw.rescale_factor ?? 1 / 255;
  if (typeof factor !== "number" || !(factor > 0)) throw new ConfigError(file, `"rescale_factor" must be a positive number, got ${JSON.stringify(factor)}`);
  return {
    doResize: bool("do_resize", true),
    size: hw(raw.size, "size", model.imageSize),
    resample: resample as number,
    doCenterCrop: bool("do_center_crop", clip),
    cropSize: crop,
    doRescale: bool("do_rescale", true),
    rescaleFactor: factor,
    doNormalize: bool("do_normalize", true),
    imageMean: triple("image_mean", clip ? OPENAI_CLIP_MEAN : IMAGENET_STANDARD),
    imageStd: std,
  };
}

/** A model folder's preprocessor_config.json, or its family's defaults when the folder has none. */
export function readPreprocessorConfig(dir: string, model: VisionConfig): PreprocessorConfig {
  const file = join(dir, "preprocessor_config.json");
  if (!existsSync(file)) return parsePreprocessorConfig({}, model, file);
  let raw: unknown;
  try { raw = JSON.parse(readFileSync(file, "utf8")); } catch (e) {
    throw new ConfigError(file, `cannot read as JSON (${(e as Error).message})`);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new ConfigError(file, "expected a JSON object");
  return parsePreprocessorConfig(raw as Record<string, unknown>, model, file);
}

/**
 * One image → normalised pixel values `data` [3, height, width] (CHW, float32),
 * ready to stack into a model's [batch, 3, H, W] input. Grey images are replicated to RGB.
 */
export function preprocessImage(img: RawImage, p: PreprocessorConfig): { data: Float32Array; height: number; width: number } {
  let x = toRgb(img);
  if (p.doResize) {
    const [h, w] = "shortestEdge" in p.size ? shortestEdgeSize(x.height, x.width, p.size.shortestEdge) : [p.size.height, p.size.width];
    x = resize(x, h, w, p.resample);
  }
  if (p.doCenterCrop) x = centerCrop(x, p.cropSize.height, p.cropSize.width);
  const { height, width, data } = x;
  const out = new Float32Array(3 * height * width);
  const f = Math.fround;
  for (let c = 0; c < 3; c++) {
    const mean = f(p.imageMean[c]);
    const std = f(p.imageStd[c]);
    for (let i = 0; i < height * width; i++) {
      let v = data[i * 3 + c];
      if (p.doRescale) v = f(v * p.rescaleFactor);         // float64 product, stored as float32 (HF's rescale)
      if (p.doNormalize) v = f(f(v - mean) / std);         // float32 arithmetic (HF's normalize)
      out[c * height * width + i] = v;
    }
  }
  return { data: out, height, width };
}

function toRgb(img: RawImage): RawImage {
  if (img.channels === 3) return img;
  const data = new Uint8Array(img.height * img.width * 3);
  for (let i = 0; i < img.height * img.width; i++) data[i * 3] = data[i * 3 + 1] = data[i * 3 + 2] = img.data[i];
  return { data, height: img.height, width: img.width, channels: 3 };
}

/** HF's get_resize_output_image_size(default_to_square=False): the shorter side becomes `edge`, the longer int(edge·long/short). */
export function shortestEdgeSize(height: number, width: number, edge: number): [number, number] {
  const [short, long] = width <= height ? [width, height] : [height, width];
  const newLong = Math.floor((edge * long) / short);
  return width <= height ? [newLong, edge] : [edge, newLong];
}

/**
 * HF's center_crop: top = ⌊(H − h)/2⌋, left = ⌊(W − w)/2⌋; where the image is
 * smaller than the crop, the missing pixels are 0 (HF pads with zeros).
 */
export function centerCrop(img: RawImage, height: number, width: number): RawImage {
  const top = Math.floor((img.height - height) / 2);
  const left = Math.floor((img.width - width) / 2);
  const c = img.channels;
  const data = new Uint8Array(height * width * c);
  for (let y = 0; y < height; y++) {
    const sy = y + top;
    if (sy < 0 || sy >= img.height) continue;
    for (let x = 0; x < width; x++) {
      const sx = x + left;
      if (sx < 0 || sx >= img.width) continue;
      for (let k = 0; k < c; k++) data[(y * width + x) * c + k] = img.data[(sy * img.width + sx) * c + k];
    }
  }
  return { data, height, width, channels: img.channels };
}

// ------------------------------------------------------------ PIL's resampling (Pillow src/libImaging/Resample.c)

const PRECISION_BITS = 32 - 8 - 2;

interface Filter { support: number; weight: (x: number) => number }

const sinc = (x: number) => (x === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x));
const FILTERS: Record<number, Filter> = {
  [RESAMPLE.box]: { support: 0.5, weight: (x) => (x > -0.5 && x <= 0.5 ? 1 : 0) },
  [RESAMPLE.bilinear]: { support: 1, weight: (x) => Math.max(0, 1 - Math.abs(x)) },
  [RESAMPLE.hamming]: {
    support: 1,
    weight: (x) => {
      x = Math.abs(x);
      if (x === 0) return 1;
      if (x >= 1) return 0;
      return sinc(x) * (0.54 + 0.46 * Math.cos(Math.PI * x));
    },
  },
  [RESAMPLE.bicubic]: {
    support: 2,
    weight: (x) => { // Keys' cubic with a = −0.5
      const a = -0.5;
      x = Math.abs(x);
      if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
      if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
      return 0;
    },
  },
  [RESAMPLE.lanczos]: { support: 3, weight: (x) => (x >= -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0) },
};

/** Per output index: first input index and fixed-point weights (precompute_coeffs + normalize_coeffs_8bpc). */
function coefficients(inSize: number, outSize: number, filter: Filter): { start: number; weights: Int32Array }[] {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filter.support * filterScale;
  const out: { start: number; weights: Int32Array }[] = [];
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const xmin = Math.max(0, Math.trunc(center - support + 0.5));
    const xmax = Math.min(inSize, Math.trunc(center + support + 0.5)) - xmin;
    const w: number[] = [];
    let total = 0;
    for (let x = 0; x < xmax; x++) {
      const v = filter.weight((x + xmin - center + 0.5) * (1 / filterScale)); // PIL multiplies by 1/filterscale
      w.push(v);
      total += v;
    }
    const weights = Int32Array.from(w, (v) => {
      const k = total !== 0 ? v / total : v;
      return Math.trunc(k < 0 ? -0.5 + k * (1 << PRECISION_BITS) : 0.5 + k * (1 << PRECISION_BITS));
    });
    out.push({ start: xmin, weights });
  }
  return out;
}

/** One separable pass (horizontal: each row's columns resampled; else each column's rows), with PIL's rounding and clipping to uint8. */
function pass(img: RawImage, outSize: number, filter: Filter, horizontal: boolean): RawImage {
  const { height, width, channels: c } = img;
  const coeffs = coefficients(horizontal ? width : height, outSize, filter);
  const oh = horizontal ? height : outSize;
  const ow = horizontal ? outSize : width;
  const data = new Uint8Array(oh * ow * c);
  const half = 1 << (PRECISION_BITS - 1);
  for (let y = 0; y < oh; y++) {
    for (let x = 0; x < ow; x++) {
      const { start, weights } = coeffs[horizontal ? x : y];
      for (let k = 0; k < c; k++) {
        let ss = half;
        for (let t = 0; t < weights.length; t++) {
          const src = horizontal ? (y * width + start + t) * c + k : ((start + t) * width + x) * c + k;
          ss += img.data[src] * weights[t];
        }
        data[(y * ow + x) * c + k] = Math.min(255, Math.max(0, Math.floor(ss / (1 << PRECISION_BITS))));
      }
    }
  }
  return { data, height: oh, width: ow, channels: img.channels };
}

/**
 * Resizes as PIL's Image.resize((width, height), resample) does for 8-bit images:
 * nearest samples ⌊(x + ½)·in/out⌋; the other filters (box, bilinear, hamming,
 * bicubic a = −½, lanczos 3) are antialiased (support widened by in/out when
 * shrinking), horizontal pass first, each pass rounded and clipped to uint8.
 */
export function resize(img: RawImage, height: number, width: number, resample: number): RawImage {
  if (img.height === height && img.width === width) return img;
  if (resample === RESAMPLE.nearest) {
    const c = img.channels;
    const data = new Uint8Array(height * width * c);
    for (let y = 0; y < height; y++) {
      const sy = Math.floor((y + 0.5) * (img.height / height));
      for (let x = 0; x < width; x++) {
        const sx = Math.floor((x + 0.5) * (img.width / width));
        for (let k = 0; k < c; k++) data[(y * width + x) * c + k] = img.data[(sy * img.width + sx) * c + k];
      }
    }
    return { data, height, width, channels: img.channels };
  }
  const filter = FILTERS[resample];
  if (!filter) throw new Error(`resample ${resample} is not a PIL filter code (0…5)`);
  let x = img;
  if (width !== img.width) x = pass(x, width, filter, true);
  if (height !== img.height) x = pass(x, height, filter, false);
  return x;
}
