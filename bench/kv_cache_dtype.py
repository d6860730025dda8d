"""The KV cache's dtype for bf16 and int8 decoding on the CPU: the model's own (bf16) against fp32
(`KVCache.for_model`, what t2i does), side by side in one process. `TextToImage(prompt, n)` wall time
(decode + dVAE) of the shipped weights, the two caches alternating, median of --reps runs.

Usage: PYTHONPATH=src python bench/kv_cache_dtype.py [--weights weights] [--reps 5] [--n 1 4 16]
       [--jacobi 0 16]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from t2i_cli.models.transformer import KVCache
from t2i_cli.pipeline import TextToImage
from t2i_cli.sampling import SamplingConfig

FOR_MODEL = KVCache.for_model  # t2i's: fp32 for a bf16 model on the CPU


@classmethod
def model_dtype_cache(cls, model, batch, device):  # the cache in the model's dtype, as before 2026-12-02
    # (when the table in BENCHMARKS.md was measured bf16 was not yet packed; run now, both columns are)
    return cls(model.cfg, batch, device, next(model.parameters()).dtype)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default="weights")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--n", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--jacobi", type=int, nargs="+", default=[0])
    ap.add_argument("--precision", nargs="+", default=["bf16", "int8"])
    args = ap.parse_args()
    pipes = {p: TextToImage.from_folder(Path(args.weights), "cpu", precision=p) for p in args.precision}
    print(f"# {platform.node()} {time.strftime('%Y-%m-%d %H:%M')} torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, load {os.getloadavg()[0]:.2f}, reps {args.reps}")
    caches = {"model dtype": model_dtype_cache, "fp32": classmethod(FOR_MODEL.__func__)}
    times: dict[tuple, list[float]] = {}
    for rep in range(args.reps + 1):  # the first round warms up and is not counted
        for n in args.n:
            for j in args.jacobi:
                for name, pipe in pipes.items():
                    for cache, make in caches.items():
                        KVCache.for_model = make
                        t = time.perf_counter()
                        pipe("a red bird", n=n, seed=0, sampling=SamplingConfig(jacobi=j))
                        if rep:
                            times.setdefault((name, n, j, cache), []).append(time.perf_counter() - t)
    KVCache.for_model = classmethod(FOR_MODEL.__func__)
    print("| precision | n | --jacobi | cache in the model's dtype (s) | fp32 cache (s) | speed-up |")
    print("|---|---:|---:|---:|---:|---:|")
    for n in args.n:
        for j in args.jacobi:
            for name in pipes:
                a, b = (statistics.median(times[(name, n, j, c)]) for c in caches)
                print(f"| {name} | {n} | {j or 'off'} | {a:.2f} | {b:.2f} | {a / b:.2f}x |")


if __name__ == "__main__":
    main()
