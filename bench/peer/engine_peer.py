"""Benchmark peer for bench/engine.ts: the same matmuls in plain PyTorch."""
import json
import statistics
import sys
import time

import torch

args = json.loads(sys.argv[1])
torch.set_num_threads(args["threads"])
torch.manual_seed(0)
DT = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def time_it(fn, warmup=3, min_runs=5, min_seconds=0.5):
    for _ in range(warmup):
        fn()
    times = []
    start = time.perf_counter()
    while len(times) < min_runs or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


with torch.no_grad():
    for m, k, n in args["shapes"]:
        for dtype in args["dtypes"]:
            a = torch.randn(m, k, dtype=DT[dtype])
            b = torch.randn(k, n, dtype=DT[dtype])
            ms = time_it(lambda: torch.matmul(a, b), min_seconds=args["min_seconds"])
            print(json.dumps({"shape": [m, k, n], "dtype": dtype, "ms": ms}), flush=True)
