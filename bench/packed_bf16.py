"""`--precision bf16` on the CPU with the decode loop's linear layers oneDNN-packed at load (PackedLinear,
what t2i does) against plain bf16 F.linear (the build before), side by side in one process.
`TextToImage(prompt, n)` wall time (decode + dVAE) of the shipped weights, the two alternating, median of
--reps runs after one warm-up round; both use the fp32 KV cache. Also the time pack_bf16 takes at load.

Usage: PYTHONPATH=src python bench/packed_bf16.py [--weights weights] [--reps 5] [--n 1 4 16] [--jacobi 0 16]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from precision import alternating_medians, decode_args, print_header  # noqa: E402  (the shared timing loop)
from t2i_cli.models.transformer import pack_bf16  # noqa: E402
from t2i_cli.pipeline import TextToImage  # noqa: E402


def main() -> None:
    args = decode_args(__doc__).parse_args()
    plain = TextToImage.from_folder(Path(args.weights), "cpu")
    plain.bundle.transformer.to(torch.bfloat16)
    packed = TextToImage.from_folder(Path(args.weights), "cpu")
    t = time.perf_counter()
    pack_bf16(packed.bundle.transformer)
    pack_s = time.perf_counter() - t
    pipes = {"plain bf16": (plain, None), "packed bf16": (packed, None)}
    print_header(args.reps)
    print(f"# pack_bf16 of the shipped transformer (fp32 -> bf16, reorder): {pack_s * 1000:.0f} ms")
    median = alternating_medians(pipes, args.n, args.jacobi, args.reps, warm_up=True)
    print("| n | --jacobi | plain bf16 (s) | packed bf16 (s) | speed-up |")
    print("|---:|---:|---:|---:|---:|")
    for n in args.n:
        for j in args.jacobi:
            a, b = (median[(name, n, j)] for name in pipes)
            print(f"| {n} | {j or 'off'} | {a:.2f} | {b:.2f} | {a / b:.2f}x |")


if __name__ == "__main__":
    main()
