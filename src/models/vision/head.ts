// The FIXED linear head of an image classifier. The paper (Table 2, after
// Ilharco et al. 2023) classifies with CLIP's zero-shot head: class-name prompts
// through CLIP's text tower, L2-normalised, applied to normalised image
// features, never trained. Offline there is no text tower, so the head comes
// from (1) a file (`--head FILE.safetensors`: `weight` [classes, dim], optional
// `bias` [classes]), (2) the checkpoint's own classifier (ViTForImageClassification),
// or (3) a linear probe fitted once on frozen features and then frozen — a
// deviation from the paper, stated wherever it is used.
import { type Tensor, AdamW, crossEntropy, linear, noGrad, tensor, tidy, keep, zeros } from "../../engine/index.js";
import { loadFile, readHeader, saveFile } from "../../io/safetensors.js";
import type { ViT } from "./vit.js";

export class LinearHead {
  /**
   * @param weight [classes, dim]
   * @param bias [classes] or null
   * @param normalize L2-normalise features first (Ilharco et al.'s ClassificationHead for CLIP)
   */
  constructor(readonly weight: Tensor, readonly bias: Tensor | null, readonly normalize: boolean) {}

  get numClasses(): number { return this.weight.size(0); }
  get dim(): number { return this.weight.size(1); }

  /** features [batch, dim] → logits [batch, classes]. */
  forward(features: Tensor): Tensor {
    return tidy(() => {
      const f = this.normalize ? features.div(features.pow(2).sum(-1, true).sqrt().clamp(1e-12)) : features;
      return linear(f, this.weight.to(f.dtype), this.bias?.to(f.dtype) ?? null);
    });
  }

  /** Writes `weight`, `bias` (when present) and the normalise flag (metadata) atomically. */
  save(file: string): void {
    const tensors = new Map([["weight", this.weight]]);
    if (this.bias) tensors.set("bias", this.bias);
    saveFile(file, tensors, { normalize: String(this.normalize) });
  }

  /**
   * Loads a head file: `weight` [classes, dim] and optional `bias` [classes], float.
   * Whether features are L2-normalised first comes from the file's metadata
   * (`normalize`: "true" / "false", as save() writes it), else `defaultNormalize`
   * (true suits CLIP heads, built from normalised text embeddings).
   * @throws Error naming the file for other tensors, wrong ranks, a dim other than `dim`, or non-finite values.
   */
  static load(file: string, opts: { dim?: number; defaultNormalize?: boolean } = {}): LinearHead {
    const t = loadFile(file);
    const fail = (msg: string): never => {
      for (const x of t.values()) x.dispose();
      throw new Error(`${file}: ${msg}`);
    };
    const weight = t.get("weight") ?? fail("no 'weight' tensor (a head file holds weight [classes, dim] and optionally bias [classes])");
    const extra = [...t.keys()].filter((k) => k !== "weight" && k !== "bias");
    if (extra.length) fail(`unexpected tensor(s) ${extra.join(", ")} (a head file holds weight and optionally bias)`);
    if (weight.rank !== 2 || !(weight.dtype.startsWith("float") || weight.dtype === "bfloat16")) fail(`'weight' must be a float [classes, dim] matrix, got ${weight.dtype} [${weight.shape}]`);
    if (opts.dim !== undefined && weight.size(1) !== opts.dim) fail(`'weight' is [${weight.shape}] but the model's features have ${opts.dim} dimensions`);
    const bias = t.get("bias") ?? null;
    if (bias && (bias.rank !== 1 || bias.size(0) !== weight.size(0))) fail(`'bias' must be [${weight.size(0)}], got [${bias.shape}]`);
    for (const [name, x] of [["weight", weight], ["bias", bias]] as const) {
      if (x && tidy(() => x.isfinite().logicalNot().sum().item()) > 0) fail(`'${name}' holds NaN or infinite values`);
    }
    const flag = readHeader(file).metadata?.normalize;
    if (flag !== undefined && flag !== "true" && flag !== "false") fail(`metadata 'normalize' must be "true" or "false", got ${JSON.stringify(flag)}`);
    return new LinearHead(weight, bias, flag === undefined ? opts.defaultNormalize ?? false : flag === "true");
  }

  /** The classifier a ViTForImageClassification checkpoint carries (it reads the un-normalised [CLS] features). */
  static fromClassifier(model: ViT): LinearHead {
    const w = model.params.get("classifier.weight");
    if (!w) throw new Error("this ViT checkpoint has no classifier (ViTModel); give a head file or fit a linear probe");
    return new LinearHead(w, model.params.get("classifier.bias") ?? null, false);
  }

  dispose(): void {
    this.weight.dispose();
    this.bias?.dispose();
  }
}

export interface ProbeOptions {
  /** L2 penalty λ/2·‖W‖² on the weights (not the bias); 1e-3 by default. */
  l2?: number;
  /** Full-batch AdamW steps with a cosine-decayed learning rate; 500 by default. */
  steps?: number;
  lr?: number;
  normalize?: boolean;
}

/**
 * A linear probe: multinomial logistic regression on frozen features, fitted
 * once (full batch, zero initialisation, so deterministic) and returned as a
 * fixed head. Minimises mean cross-entropy + λ/2·‖W‖² (CLIP's linear-probe
 * evaluation, Radford et al. 2021 §3.2, with L-BFGS there; AdamW here).
 * @param features [N, dim] float
 * @param labels N class ids in [0, numClasses)
 * @throws Error when labels and features disagree in count or a label is out of range.
 */
export function linearProbe(features: Tensor, labels: number[], numClasses: number, opts: ProbeOptions = {}): LinearHead {
  const [n, dim] = features.shape;
  if (labels.length !== n) throw new Error(`linear probe: ${labels.length} labels for ${n} feature rows`);
  if (labels.some((l) => !Number.isInteger(l) || l < 0 || l >= numClasses)) throw new Error(`linear probe: labels must be integers in [0, ${numClasses})`);
  const normalize = opts.normalize ?? false;
  const steps = opts.steps ?? 500;
  const lr = opts.lr ?? 0.1;
  const l2 = opts.l2 ?? 1e-3;
  const weight = keep(zeros([numClasses, dim]).setRequiresGrad(true));
  const bias = keep(zeros([numClasses]).setRequiresGrad(true));
  const head = new LinearHead(weight, bias, normalize);
  const x = keep(noGrad(() => features.to("float32").detach()));
  const y = keep(tensor(labels, [n], "int64"));
  const opt = new AdamW([weight, bias], { lr });
  for (let s = 0; s < steps; s++) {
    opt.lr = lr * 0.5 * (1 + Math.cos((Math.PI * s) / steps));
    tidy(() => probeObjective(head, x, y, l2).backward());
    opt.step();
    opt.zeroGrad();
  }
  x.dispose();
  y.dispose();
  weight.setRequiresGrad(false);
  bias.setRequiresGrad(false);
  return head;
}

/** Mean cross-entropy of the head on (x, y) + λ/2·‖W‖²: the probe's objective. */
export function probeObjective(head: LinearHead, x: Tensor, y: Tensor, l2: number): Tensor {
  return crossEntropy(head.forward(x), y).add(head.weight.pow(2).sum().mul(l2 / 2));
}
