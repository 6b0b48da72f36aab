// Full fine-tuning: every parameter trains, in place (no copy of the base is kept).
import type { MethodDefinition } from "../method.js";
import { InPlaceInstance } from "../in-place.js";

const NAME = "full";

export const full: MethodDefinition = {
  name: NAME,
  summary: "every parameter trains (the baseline)",
  resolveConfig: () => ({}),
  count: (_c, shapes) => shapes.totalParams,
  apply: (model, config) => new InPlaceInstance(NAME, config, model, [...model.params.keys()], false),
  load: (model, config, tensors) => new InPlaceInstance(NAME, config, model, [...model.params.keys()], false, tensors),
};
