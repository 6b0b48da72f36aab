// BitFit (Ben Zaken et al. 2022): only bias vectors train — every linear's
// bias (q, k, v, out, fc1, fc2) and every layer norm's bias; a vision
// classifier's fixed head keeps its bias.
import { type MethodDefinition, PeftConfigError } from "../method.js";
import { modelShapes, type ModelShapes } from "../shapes.js";
import { InPlaceInstance } from "../in-place.js";

const NAME = "bitfit";

function biasNames(shapes: ModelShapes): string[] {
  return [...shapes.params.keys()].filter((n) => n.endsWith(".bias") && !shapes.fixed.has(n));
}

export const bitfit: MethodDefinition = {
  name: NAME,
  summary: "all bias vectors (linears and layer norms) train",
  options: [],
  resolveConfig(_raw, shapes) {
    if (biasNames(shapes).length === 0) {
      throw new PeftConfigError(NAME, `this ${shapes.architecture} has no bias vectors, so BitFit would train nothing ` +
        "(Llama and Mistral have none unless attention_bias/mlp_bias; OPT: enable_bias and layer-norm affine are off); choose another method");
    }
    return {};
  },
  count: (_c, shapes) => biasNames(shapes).reduce((n, b) => n + shapes.params.get(b)![0], 0),
  apply: (model, config) => new InPlaceInstance(NAME, config, model, biasNames(modelShapes(model)), true),
  load: (model, config, tensors) => new InPlaceInstance(NAME, config, model, biasNames(modelShapes(model)), true, tensors),
};
