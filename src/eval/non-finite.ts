// Scores that are not numbers: NaN or ±Inf logits from weights (or an adapter) that overflowed. No
// prediction can be taken from them (an argmax would pick the NaN), so evaluation stops instead;
// training then ends the run as diverged.

export class NonFiniteScoresError extends Error {
  /** `example`: its index in the evaluated list; `what`: the scores ("option scores", "class logits"). */
  constructor(readonly example: number, what: string) {
    super(`the model's ${what} for example ${example} are not finite (NaN or infinite logits: the weights or the adapter overflowed)`);
    this.name = "NonFiniteScoresError";
  }
}
