"""Hugging Face peer for bench/suite.ts (`--peer hf`): what a user of the Python
stack runs — transformers' OPTForCausalLM (OPT-125m's configuration, random
weights, dropout off, the default attention implementation) with PEFT's LoRA
(r=8, alpha=16, dropout 0 on q_proj, v_proj) and torch.optim.AdamW; batch 8 x 64,
loss on the last 2 positions ({"batch", "seq", "hidden", "layers"} change the shapes;
{"device": "cuda"} runs on the GPU and adds torch.cuda's peak allocated/reserved MiB). By default the model computes logits at every
position as Hugging Face training does; {"logits_to_keep": true} asks
transformers for the last K+1 only. One configuration per process; prints one JSON line."""
import json
import statistics
import sys
import time

import torch

import transformers
import peft
from transformers import OPTConfig, OPTForCausalLM
from peft import LoraConfig, get_peft_model

from peak_rss import peak_mib, reset_peak  # beside this script

args = json.loads(sys.argv[1])
torch.set_num_threads(args["threads"])
torch.manual_seed(0)
transformers.logging.set_verbosity_error()
DT = {"float32": torch.float32, "bfloat16": torch.bfloat16}[args["dtype"]]
B, T, K = args.get("batch", 8), args.get("seq", 64), 2
DEV = torch.device(args.get("device", "cpu"))
CUDA = DEV.type == "cuda"
d = args.get("hidden", 768)
L = args.get("layers", 12)
keep = args.get("logits_to_keep", 0)


config = OPTConfig(vocab_size=50272, hidden_size=d, num_hidden_layers=L, ffn_dim=4 * d, num_attention_heads=d // 64,
                   max_position_embeddings=2048, word_embed_proj_dim=d, do_layer_norm_before=True,
                   dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, layerdrop=0.0)
with DEV:  # built (and randomly initialised) on the device: 1.3b's CPU init takes longer than its benchmark
    model = OPTForCausalLM(config).to(DT)
model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=["q_proj", "v_proj"],
                                         task_type="CAUSAL_LM"))
model.train()
trainable = [p for p in model.parameters() if p.requires_grad]
opt = torch.optim.AdamW(trainable, lr=1e-4, weight_decay=0.0)
ids = torch.tensor([(i * 7919) % 50000 + 3 for i in range(B * T)], device=DEV).view(B, T)
targets = ids[:, T - K:].reshape(-1)


def step():
    # logits_to_keep=0 is transformers' "every position"
    logits = model(input_ids=ids, logits_to_keep=K + 1 if keep else 0).logits
    # positions T-K-1 .. T-2 predict the last K tokens
    loss = torch.nn.functional.cross_entropy(logits[:, -K - 1:-1].reshape(B * K, -1).float(), targets)
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    return loss.item()


reset_peak()
if CUDA:
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
times, losses = [], []
for i in range(args["warmup"] + args["steps"]):
    t0 = time.perf_counter()
    losses.append(step())  # .item() waits for the step's kernels
    if i >= args["warmup"]:
        times.append((time.perf_counter() - t0) * 1000)
print(json.dumps({"step_ms": statistics.median(times), "peak_rss_mib": peak_mib(), "trainable": sum(p.numel() for p in trainable),
                  "loss_first": losses[0], "loss_last": losses[-1], "losses": losses,
                  "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__},
                  "attn_implementation": model.base_model.model.config._attn_implementation,
                  **({"cuda_peak_allocated_mib": torch.cuda.max_memory_allocated() / 2**20,
                      "cuda_peak_reserved_mib": torch.cuda.max_memory_reserved() / 2**20,
                      "gpu": torch.cuda.get_device_name()} if CUDA else {})}))
