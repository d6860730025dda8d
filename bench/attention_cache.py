"""One decode step's attention over a KV cache that does not fit the CPU's cache: PyTorch's SDPA against a plain
softmax(q K^T) V, over an fp32 cache and a bf16 one, at the shipped shape (8 layers, 8 heads of 48, 280 positions).

    PYTHONPATH=src .venv/bin/python bench/attention_cache.py [--rows 8 32] [--rounds 5] [--threads 2]

Each layer has its own K and V (8 layers' worth cycled, as a decode step reads them: 55 MB at 8 rows in fp32, past
a 32 MB L3), so the times are memory-bound as in a decode. Prints the median over rounds, in microseconds per
layer. "plain" computes q K^T in the cache's dtype (bf16 scores: rounded to 8 bits of mantissa, where PyTorch's
kernels keep them in fp32), the softmax in fp32, then the weights in the cache's dtype times V.
"""

from __future__ import annotations

import argparse
import statistics
import time
from functools import partial

import torch
import torch.nn.functional as F

LAYERS, HEADS, HEAD_DIM = 8, 8, 48


def attend_sdpa(q: torch.Tensor, ks: list[torch.Tensor], vs: list[torch.Tensor]) -> list[torch.Tensor]:
    return [F.scaled_dot_product_attention(q, k, v) for k, v in zip(ks, vs, strict=True)]


def attend_plain(q: torch.Tensor, ks: list[torch.Tensor], vs: list[torch.Tensor]) -> list[torch.Tensor]:
    out = []
    for k, v in zip(ks, vs, strict=True):
        w = torch.matmul(q, k.transpose(-1, -2)).float().mul_(HEAD_DIM ** -0.5).softmax(-1)
        out.append(torch.matmul(w.to(k.dtype), v))
    return out


def per_layer(fn, reps: int) -> float:
    for _ in range(2):
        fn()
    t = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t) / reps / LAYERS * 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, nargs="+", default=[8, 32], help="rows decoded together (2 per image)")
    ap.add_argument("--positions", type=int, default=280)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cap = getattr(torch.backends.cpu, "get_cpu_capability", lambda: "?")()
    print(f"# {time.strftime('%Y-%m-%d %H:%M')} torch {torch.__version__}, {args.threads} threads, CPU capability "
          f"{cap}, {args.positions} positions, median of {args.rounds} rounds x {args.reps} steps, us per layer")
    print("| rows | cache | MB per layer (K+V) | SDPA | plain | SDPA / plain |")
    print("|---:|---|---:|---:|---:|---:|")
    g = torch.Generator().manual_seed(0)
    for rows in args.rows:
        shape = (rows, HEADS, args.positions, HEAD_DIM)
        for dtype in (torch.float32, torch.bfloat16):
            ks = [torch.randn(shape, generator=g).to(dtype) for _ in range(LAYERS)]
            vs = [torch.randn(shape, generator=g).to(dtype) for _ in range(LAYERS)]
            q = torch.randn(rows, HEADS, 1, HEAD_DIM, generator=g).to(dtype)

            sdpa = partial(attend_sdpa, q, ks, vs)
            plain = partial(attend_plain, q, ks, vs)
            with torch.inference_mode():
                a, b = [], []
                for _ in range(args.rounds):  # (alternating, so a slower moment of the machine falls on both)
                    a.append(per_layer(sdpa, args.reps))
                    b.append(per_layer(plain, args.reps))
            mb = 2 * ks[0].numel() * ks[0].element_size() / 1e6
            sa, sb = statistics.median(a), statistics.median(b)
            print(f"| {rows} | {str(dtype).removeprefix('torch.')} | {mb:.1f} | {sa:.0f} | {sb:.0f} | {sa / sb:.2f}x |")


if __name__ == "__main__":
    main()
