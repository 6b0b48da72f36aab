"""Benchmark peer for bench/pretrain.ts: the same causal-LM pretraining step as
`randmask pretrain` in a plain PyTorch loop. OPT (pre-LayerNorm, learned positions
offset by 2, ReLU FFN, tied input/output embeddings), fp32 master weights with
torch.autocast(bfloat16) on CPU, AdamW (decoupled decay on the linear weights),
gradient clipping at 1. Prints one JSON line: median step time in ms."""
import json
import math
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

args = json.loads(sys.argv[1])
torch.set_num_threads(args["threads"])
torch.manual_seed(0)
L, d, H, ffn, V = args["layers"], args["hidden"], args["heads"], args["ffn"], args["vocab"]
B, T = args["batch"], args["block"]
DT = {"float32": torch.float32, "bfloat16": torch.bfloat16}[args["dtype"]]


class Layer(nn.Module):
    def __init__(self):
        super().__init__()
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
        self.fc1, self.fc2 = nn.Linear(d, ffn), nn.Linear(ffn, d)
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)

    def forward(self, h):
        x = self.ln1(h)
        hd = d // H
        q = (self.q(x) * hd ** -0.5).view(B, T, H, hd).transpose(1, 2)
        k = self.k(x).view(B, T, H, hd).transpose(1, 2)
        v = self.v(x).view(B, T, H, hd).transpose(1, 2)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True) if hasattr(F, "scaled_dot_product_attention") else \
            (torch.softmax((q @ k.transpose(2, 3)).masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf")), -1) @ v)
        h = h + self.o(a.transpose(1, 2).reshape(B, T, d))
        return h + self.fc2(F.relu(self.fc1(self.ln2(h))))


class OPT(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(V, d)
        self.pos = nn.Embedding(T + 2, d)
        self.layers = nn.ModuleList(Layer() for _ in range(L))
        self.lnf = nn.LayerNorm(d)

    def forward(self, ids):
        h = self.embed(ids) + self.pos(torch.arange(T) + 2)
        for layer in self.layers:
            h = layer(h)
        return F.linear(self.lnf(h), self.embed.weight)  # tied head, every position


model = OPT()
decay = [p for n, p in model.named_parameters() if n.endswith("weight") and p.dim() == 2 and "embed" not in n and "pos" not in n]
rest = [p for n, p in model.named_parameters() if not any(p is q for q in decay)]
opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}], lr=1e-3, betas=(0.9, 0.95))
gen = torch.Generator().manual_seed(1)
batches = [torch.randint(3, V, (B, T), generator=gen) for _ in range(4)]


def step(ids):
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=DT == torch.bfloat16):
        logits = model(ids)
    loss = F.cross_entropy(logits[:, :-1].reshape(-1, V).float(), ids[:, 1:].reshape(-1))
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    opt.zero_grad(set_to_none=True)
    return loss.item()


times, losses = [], []
for i in range(args["warmup"] + args["steps"]):
    t0 = time.perf_counter()
    losses.append(step(batches[i % len(batches)]))
    if i >= args["warmup"]:
        times.append((time.perf_counter() - t0) * 1000)
print(json.dumps({"step_ms": statistics.median(times), "loss_first": losses[0], "loss_last": losses[-1], "torch": torch.__version__}))
