"""Benchmark peer for bench/suite.ts: the same OPT training step in plain
PyTorch (random weights, batch 8 x 64, loss on the last 2 positions), with
logits at every position as Hugging Face models compute them. Methods:
  lora        two extra matmuls per target (r=8, alpha=16 on q, v)
  dense-mask  random masking done naively: a dense trainable delta times a fixed mask
  shira       random masking as SHiRA does it: a dense copy plus a sparse COO delta
  structured  whole-column mask, done like dense-mask
  bitfit, full
One configuration per process (peak RSS); prints one JSON line."""
import json
import math
import statistics
import sys
import time

import torch

import torch.nn.functional as F

from peak_rss import peak_mib, reset_peak  # beside this script

args = json.loads(sys.argv[1])
torch.set_num_threads(args["threads"])
torch.manual_seed(0)
DT = {"float32": torch.float32, "bfloat16": torch.bfloat16}[args["dtype"]]
B, T, K = 8, 64, 2
d = args.get("hidden", 768)
L = args.get("layers", 12)
H = d // 64
V = 50272
method = args["method"]


def rand(*shape, std=0.02):
    return (torch.randn(*shape) * std).to(DT)


class Linear:
    def __init__(self, out_f, in_f):
        self.w = rand(out_f, in_f)
        self.b = torch.zeros(out_f, dtype=DT)

    def __call__(self, x):
        return F.linear(x, self.w, self.b)


class LoraLinear:
    def __init__(self, base, r=8, alpha=16):
        self.base = base
        self.a = torch.empty(r, base.w.shape[1]).uniform_(-1 / math.sqrt(base.w.shape[1]), 1 / math.sqrt(base.w.shape[1])).requires_grad_()
        self.bm = torch.zeros(base.w.shape[0], r, requires_grad=True)
        self.scale = alpha / r

    def params(self):
        return [self.a, self.bm]

    def __call__(self, x):
        return self.base(x) + F.linear(F.linear(x, self.a.to(DT)), self.bm.to(DT)) * self.scale


class DenseMaskLinear:
    def __init__(self, base, mask):
        self.base = base
        self.mask = mask.to(DT)
        self.delta = torch.zeros(base.w.shape, requires_grad=True)

    def params(self):
        return [self.delta]

    def __call__(self, x):
        return F.linear(x, self.base.w + self.delta.to(DT) * self.mask, self.base.b)


class ShiraLinear:
    def __init__(self, base, mask):
        self.base = base
        self.idx = mask.nonzero().t().contiguous()
        self.values = torch.zeros(self.idx.shape[1], requires_grad=True)

    def params(self):
        return [self.values]

    def __call__(self, x):
        delta = torch.sparse_coo_tensor(self.idx, self.values, self.base.w.shape).to_dense().to(DT)
        return F.linear(x, self.base.w + delta, self.base.b)


def mask_for(shape, density, structured):
    if structured:
        k = round(density * shape[0] * shape[1])
        m = torch.zeros(shape)
        width = math.ceil(k / shape[0])
        m[:, :width] = 1
        return m
    return (torch.rand(shape) < density).float()


class Layer:
    def __init__(self):
        self.q, self.k, self.v, self.o = (Linear(d, d) for _ in range(4))
        self.fc1, self.fc2 = Linear(4 * d, d), Linear(d, 4 * d)
        self.ln1 = (torch.ones(d, dtype=DT), torch.zeros(d, dtype=DT))
        self.ln2 = (torch.ones(d, dtype=DT), torch.zeros(d, dtype=DT))

    def __call__(self, h, causal):
        r = h
        x = F.layer_norm(h, (d,), *self.ln1)
        q = (self.q(x) * (64 ** -0.5)).view(B, T, H, 64).transpose(1, 2)
        k = self.k(x).view(B, T, H, 64).transpose(1, 2)
        v = self.v(x).view(B, T, H, 64).transpose(1, 2)
        s = q @ k.transpose(2, 3) + causal
        p = F.softmax(s.float(), dim=-1).to(DT) if DT != torch.float32 else F.softmax(s, dim=-1)
        a = (p @ v).transpose(1, 2).reshape(B, T, d)
        h = r + self.o(a)
        r = h
        x = F.layer_norm(h, (d,), *self.ln2)
        return r + self.fc2(F.relu(self.fc1(x)))


embed = rand(V, d)
pos = rand(2048 + 2, d)
layers = [Layer() for _ in range(L)]
lnf = (torch.ones(d, dtype=DT), torch.zeros(d, dtype=DT))
causal = torch.full((T, T), -1e9).triu(1).to(DT)
ids = torch.tensor([(i * 7919) % 50000 + 3 for i in range(B * T)]).view(B, T)
targets = torch.tensor([(i * 31) % 50000 for i in range(B * K)])
positions = torch.arange(T) + 2

trainable = []
density = args.get("density", 0.0)
for layer in layers:
    if method == "lora":
        layer.q, layer.v = LoraLinear(layer.q), LoraLinear(layer.v)
        trainable += layer.q.params() + layer.v.params()
    elif method in ("dense-mask", "shira", "structured"):
        cls = ShiraLinear if method == "shira" else DenseMaskLinear
        layer.q = cls(layer.q, mask_for(layer.q.w.shape, density, method == "structured"))
        layer.v = cls(layer.v, mask_for(layer.v.w.shape, density, method == "structured"))
        trainable += layer.q.params() + layer.v.params()
    elif method == "bitfit":
        for lin in (layer.q, layer.k, layer.v, layer.o, layer.fc1, layer.fc2):
            lin.b.requires_grad_()
            trainable.append(lin.b)
        for ln in (layer.ln1, layer.ln2):
            ln[1].requires_grad_()
            trainable.append(ln[1])
    elif method == "full":
        for lin in (layer.q, layer.k, layer.v, layer.o, layer.fc1, layer.fc2):
            trainable += [lin.w.requires_grad_(), lin.b.requires_grad_()]
        for ln in (layer.ln1, layer.ln2):
            trainable += [ln[0].requires_grad_(), ln[1].requires_grad_()]
if method == "full":
    trainable += [embed.requires_grad_(), pos.requires_grad_(), lnf[0].requires_grad_(), lnf[1].requires_grad_()]
elif method == "bitfit":
    trainable.append(lnf[1].requires_grad_())

opt = torch.optim.AdamW(trainable, lr=1e-4, weight_decay=0.0)


def step():
    h = F.embedding(ids, embed) + F.embedding(positions, pos)
    for layer in layers:
        h = layer(h, causal)
    h = F.layer_norm(h, (d,), *lnf)
    logits = F.linear(h, embed)  # every position, as Hugging Face computes them
    loss = F.cross_entropy(logits[:, T - K:].reshape(B * K, -1).float(), targets)
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    return loss.item()


reset_peak()
times, losses = [], []
for i in range(args["warmup"] + args["steps"]):
    t0 = time.perf_counter()
    losses.append(step())
    if i >= args["warmup"]:
        times.append((time.perf_counter() - t0) * 1000)
if method in ("dense-mask", "structured"):
    n_trainable = int(sum(m.mask.float().sum().item() for layer in layers for m in (layer.q, layer.v)))
else:
    n_trainable = sum(p.numel() for p in trainable)
print(json.dumps({"step_ms": statistics.median(times), "peak_rss_mib": peak_mib(), "trainable": n_trainable,
                  "loss_first": losses[0], "loss_last": losses[-1], "losses": losses}))
