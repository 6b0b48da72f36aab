// When a fine-tuning run stops as diverged (its record's status "diverged", never a crash): the
// sweeps' LR grids reach 1e-1, where dense methods blow up (the paper's Figure 3).

/**
 * Why a step's loss ends a fine-tuning run as diverged, or null: a loss that is not finite, or (factor > 0)
 * one above factor × the first step's loss.
 */
export function lossDivergence(loss: number, first: number, factor: number): string | null {
  if (!Number.isFinite(loss)) return `loss is ${loss}`;
  if (factor > 0 && loss > factor * first) return `loss exploded: ${loss.toPrecision(4)} > ${factor} × first step's ${first.toPrecision(4)}`;
  return null;
}
