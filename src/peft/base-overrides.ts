// Base parameters replaced by trained copies that an adapter carries (PEFT's
// trained biases and modules_to_save). Each name is replaced alone, so a copy
// of a tied tensor unties it (a saved lm_head gets its own weight, as PEFT's
// deep copy of the module does); restore() puts the originals back.
import { type Tensor, keep } from "../engine/index.js";
import { Linear, type CausalLM } from "../models/causal-lm.js";

export class BaseOverrides {
  private readonly originals = new Map<string, Tensor>();
  private readonly copies = new Map<string, Tensor>();

  /** Takes copies of `tensors` (the caller keeps ownership of those) in the parameters' dtypes. */
  constructor(private readonly model: CausalLM, tensors: Map<string, Tensor>) {
    for (const [name, t] of tensors) {
      const orig = model.params.get(name)!;
      const copy = keep(t.to(orig.dtype));
      this.originals.set(name, orig);
      this.copies.set(name, copy);
      this.set(name, copy);
    }
  }

  get size(): number { return this.copies.size; }
  tensor(name: string): Tensor { return this.copies.get(name)!; }

  private set(name: string, t: Tensor): void {
    this.model.params.set(name, t);
    const module = name.replace(/\.(weight|bias)$/, "");
    if (this.model.linears.get(module) instanceof Linear) {
      this.model.linears.set(module, new Linear(this.model.params.get(`${module}.weight`)!, this.model.params.get(`${module}.bias`) ?? null));
    }
  }

  restore(): void {
    for (const [name, orig] of this.originals) { this.set(name, orig); this.copies.get(name)!.dispose(); }
    this.originals.clear();
    this.copies.clear();
  }
}
