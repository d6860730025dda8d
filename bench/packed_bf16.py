"""`--precision bf16` on the CPU with the decode loop's linear layers oneDNN-packed at load (PackedLinear,
what t2i does) against plain bf16 F.linear (the build before), side by side in one process.
`TextToImage(prompt, n)` wall time (decode + dVAE) of the shipped weights, the two alternating, median of
--reps runs after one warm-up round; both use the fp32 KV cache. Also the time pack_bf16 takes at load.

Usage: PYTHONPATH=src python bench/packed_bf16.py [--weights weights] [--reps 5] [--n 1 4 16] [--jacobi 0 16]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from t2i_cli.models.transformer import pack_bf16
from t2i_cli.pipeline import TextToImage
from t2i_cli.sampling import SamplingConfig


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default="weights")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--n", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--jacobi", type=int, nargs="+", default=[0])
    args = ap.parse_args()
    plain = TextToImage.from_folder(Path(args.weights), "cpu")
    plain.bundle.transformer.to(torch.bfloat16)
    packed = TextToImage.from_folder(Path(args.weights), "cpu")
    t = time.perf_counter()
    pack_bf16(packed.bundle.transformer)
    pack_s = time.perf_counter() - t
    pipes = {"plain bf16": plain, "packed bf16": packed}
    print(f"# {platform.node()} {time.strftime('%Y-%m-%d %H:%M')} torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, load {os.getloadavg()[0]:.2f}, reps {args.reps}")
    print(f"# pack_bf16 of the shipped transformer (fp32 -> bf16, reorder): {pack_s * 1000:.0f} ms")
    times: dict[tuple, list[float]] = {}
    for rep in range(args.reps + 1):  # the first round warms up and is not counted
        for n in args.n:
            for j in args.jacobi:
                for name, pipe in pipes.items():
                    t = time.perf_counter()
                    pipe("a red bird", n=n, seed=0, sampling=SamplingConfig(jacobi=j))
                    if rep:
                        times.setdefault((name, n, j), []).append(time.perf_counter() - t)
    print("| n | --jacobi | plain bf16 (s) | packed bf16 (s) | speed-up |")
    print("|---:|---:|---:|---:|---:|")
    for n in args.n:
        for j in args.jacobi:
            a, b = (statistics.median(times[(name, n, j)]) for name in pipes)
            print(f"| {n} | {j or 'off'} | {a:.2f} | {b:.2f} | {a / b:.2f}x |")


if __name__ == "__main__":
    main()
