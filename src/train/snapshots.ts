// Copies of the trainable weights held during fine-tuning: the initial ones (the distance travelled
// from initialisation, the paper's Figure 5) and the best evaluation's (Hugging Face Trainer's
// load_best_model_at_end).
import { keep, noGrad, type Tensor } from "../engine/index.js";

/** Detached copies of `params`, kept outside tidy scopes; the caller disposes them. */
export function snapshot(params: Tensor[]): Tensor[] {
  return params.map((p) => keep(noGrad(() => p.detach().clone())));
}

/** The weights of the best evaluation so far: save() replaces them, restore() copies them back into the same params and frees them. */
export class BestWeights {
  private saved: Tensor[] | null = null;

  save(params: Tensor[]): void {
    this.saved?.forEach((t) => t.dispose());
    this.saved = snapshot(params);
  }

  /** Copies the saved weights into `params` (the list given to save()); does nothing when none were saved. */
  restore(params: Tensor[]): void {
    const saved = this.saved;
    if (!saved) return;
    noGrad(() => params.forEach((p, i) => p.copy_(saved[i])));
    saved.forEach((t) => t.dispose());
    this.saved = null;
  }
}
