// Full fine-tuning: every parameter trains, in place (no copy of the base is kept),
// except a vision classifier's fixed head (the paper fixes it; ModelShapes.fixed).
import type { MethodDefinition } from "../method.js";
import type { BaseModel } from "../base-model.js";
import { InPlaceInstance } from "../in-place.js";
import { modelShapes } from "../shapes.js";

const NAME = "full";

export const full: MethodDefinition = {
  name: NAME,
  summary: "every parameter trains (the baseline)",
  options: [],
  resolveConfig: () => ({}),
  count: (_c, shapes) => shapes.totalParams - [...shapes.fixed].reduce((n, f) => n + shapes.params.get(f)!.reduce((a, b) => a * b, 1), 0),
  apply: (model, config) => new InPlaceInstance(NAME, config, model, trained(model), false),
  load: (model, config, tensors) => new InPlaceInstance(NAME, config, model, trained(model), false, tensors),
};

function trained(model: BaseModel): string[] {
  const fixed = modelShapes(model).fixed;
  return [...model.params.keys()].filter((n) => !fixed.has(n));
}
