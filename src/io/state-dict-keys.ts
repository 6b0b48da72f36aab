// State-dict key names as real uploads have them. Many checkpoints were saved
// from the base model rather than the causal-LM wrapper, so their keys lack the
// wrapper's prefix: facebook/opt-125m has `decoder.*` where OPTForCausalLM says
// `model.decoder.*`; the original gpt2 upload has `h.*`/`wte.*` for
// `transformer.h.*`. transformers accepts both (base_model_prefix handling in
// PreTrainedModel._load_pretrained_model, modeling_utils.py); so does this.

/**
 * Renames each stored key that is not one of the model's parameter names but
 * becomes one with `prefix` in front (e.g. `decoder.layers.0.fc1.weight` →
 * `model.decoder.layers.0.fc1.weight` for prefix "model."). Other keys are
 * kept as stored, for the caller's own missing/unexpected checks; a tied
 * `lm_head.weight` may be absent or present, the caller decides.
 * Throws an Error naming `source` when a name is stored both with and without the prefix.
 */
export function alignKeyPrefix<T>(tensors: Map<string, T>, expected: Iterable<string>, prefix: string, source: string): Map<string, T> {
  const names = new Set(expected);
  const out = new Map<string, T>();
  for (const [key, value] of tensors) {
    const name = !names.has(key) && names.has(prefix + key) ? prefix + key : key;
    if (out.has(name)) throw new Error(`${source}: holds both '${key}' and '${name}'; one checkpoint cannot give a tensor twice`);
    out.set(name, value);
  }
  return out;
}
