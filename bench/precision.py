"""Decode speed of the shipped transformer in fp32, bf16 and int8 (`--precision`), side by side in one
process: `TextToImage(prompt, n)` wall time (decode + dVAE), alternating formats, median of --reps runs.
Also the shared timing loop of bench/kv_cache_dtype.py and bench/packed_bf16.py (`alternating_medians`).

Usage: PYTHONPATH=src python bench/precision.py [--weights weights] [--reps 5] [--n 1 4 16] [--jacobi 0 16]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Callable, Hashable

import torch

from t2i_cli.pipeline import TextToImage
from t2i_cli.sampling import SamplingConfig


def decode_args(doc: str) -> argparse.ArgumentParser:
    """--weights, --reps, --n and --jacobi, the options every decode-speed bench here takes."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default="weights")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--n", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--jacobi", type=int, nargs="+", default=[0], help="windows (0: plain decoding)")
    return ap


def print_header(reps: int) -> None:
    print(f"# {platform.node()} {time.strftime('%Y-%m-%d %H:%M')} torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, load {os.getloadavg()[0]:.2f}, reps {reps}")


def alternating_medians(variants: dict[Hashable, tuple[TextToImage, Callable[[], None] | None]], ns: list[int],
                        windows: list[int], reps: int, warm_up: bool) -> dict[tuple, float]:
    """Median seconds of `pipe("a red bird", n, seed 0, --jacobi j)` per (variant, n, j): every variant runs
    once per n and window in each of `reps` rounds (after `prepare()`, when given), so the variants
    alternate; with warm_up a first round runs and is not counted."""
    times: dict[tuple, list[float]] = {}
    for rep in range(reps + warm_up):
        for n in ns:
            for j in windows:
                for key, (pipe, prepare) in variants.items():
                    if prepare is not None:
                        prepare()
                    t = time.perf_counter()
                    pipe("a red bird", n=n, seed=0, sampling=SamplingConfig(jacobi=j))
                    if rep >= warm_up:
                        times.setdefault((key, n, j), []).append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    args = decode_args(__doc__).parse_args()
    formats = ("fp32", "bf16", "int8")
    pipes = {p: (TextToImage.from_folder(Path(args.weights), "cpu", precision=p), None) for p in formats}
    print_header(args.reps)
    median = alternating_medians(pipes, args.n, args.jacobi, args.reps, warm_up=False)
    print("| n | --jacobi | fp32 s | bf16 s | int8 s | fp32 / bf16 | fp32 / int8 |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for n in args.n:
        for j in args.jacobi:
            a, b, c = (median[(f, n, j)] for f in formats)
            print(f"| {n} | {j or 'off'} | {a:.2f} | {b:.2f} | {c:.2f} | {a / b:.2f}x | {a / c:.2f}x |")


if __name__ == "__main__":
    main()
