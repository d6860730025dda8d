"""Decode speed of the shipped transformer in fp32, bf16 and int8 (`--precision`), side by side in one
process: `TextToImage(prompt, n)` wall time (decode + dVAE), alternating formats, median of --reps runs.

Usage: PYTHONPATH=src python bench/precision.py [--weights weights] [--reps 5] [--n 1 4 16] [--jacobi 0 16]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from t2i_cli.pipeline import TextToImage
from t2i_cli.sampling import SamplingConfig


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default="weights")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--n", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--jacobi", type=int, nargs="+", default=[0], help="windows (0: plain decoding)")
    args = ap.parse_args()
    formats = ("fp32", "bf16", "int8")
    pipes = {p: TextToImage.from_folder(Path(args.weights), "cpu", precision=p) for p in formats}
    print(f"# {platform.node()} {time.strftime('%Y-%m-%d %H:%M')} torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, load {os.getloadavg()[0]:.2f}, reps {args.reps}")
    times: dict[tuple[str, int], list[float]] = {}
    for _ in range(args.reps):
        for n in args.n:
            for j in args.jacobi:
                for name, pipe in pipes.items():
                    t = time.perf_counter()
                    pipe("a red bird", n=n, seed=0, sampling=SamplingConfig(jacobi=j))
                    times.setdefault((name, n, j), []).append(time.perf_counter() - t)
    print("| n | --jacobi | fp32 s | bf16 s | int8 s | fp32 / bf16 | fp32 / int8 |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for n in args.n:
        for j in args.jacobi:
            a, b, c = (statistics.median(times[(f, n, j)]) for f in formats)
            print(f"| {n} | {j or 'off'} | {a:.2f} | {b:.2f} | {c:.2f} | {a / b:.2f}x | {a / c:.2f}x |")


if __name__ == "__main__":
    main()
