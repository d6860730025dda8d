"""One decode step's attention on the CPU, fp32 against bf16: `scaled_dot_product_attention` and a hand-written
softmax(q k^T / sqrt(d)) v, one query per row over L cached positions of a (B, 8, 280, 48) cache (the shipped
shape: 8 heads of 48, 280 positions), at B = 2 / 8 / 32 rows (1 / 4 / 16 images with guidance).
Mean milliseconds per call over --reps calls after 10 warm-up calls. What decides `KVCache.for_model`'s dtype
(BENCHMARKS.md, "A bf16 KV cache where the CPU has AMX").

Usage: PYTHONPATH=src python bench/attention_dtype.py [--threads 2] [--reps 200]
"""

from __future__ import annotations

import argparse
import platform
import time

import torch
import torch.nn.functional as F

from t2i_cli.models.transformer import amx_tiles


def per_call_ms(f, reps: int) -> float:
    for _ in range(10):
        f()
    t0 = time.perf_counter()
    for _ in range(reps):
        f()
    return (time.perf_counter() - t0) / reps * 1e3


def by_hand(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return ((q @ k.transpose(-1, -2)) * q.shape[-1] ** -0.5).softmax(-1) @ v


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=200)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    amx = amx_tiles()
    print(f"# {platform.node()} {time.strftime('%Y-%m-%d %H:%M')} torch {torch.__version__}, {args.threads} threads, "
          f"AMX tiles: {amx}, reps {args.reps}")
    print("| cached positions | rows | sdpa fp32 | by hand fp32 | sdpa bf16 | by hand bf16 | sdpa fp32 / bf16 |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    g = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        for length in (50, 150, 270):
            for rows in (2, 8, 32):
                ms = []
                for dtype in (torch.float32, torch.bfloat16):
                    k = torch.randn(rows, 8, 280, 48, generator=g).to(dtype)[:, :, :length]
                    v = torch.randn(rows, 8, 280, 48, generator=g).to(dtype)[:, :, :length]
                    q = torch.randn(rows, 8, 1, 48, generator=g).to(dtype)
                    ms.append(per_call_ms(lambda q=q, k=k, v=v: F.scaled_dot_product_attention(q, k, v), args.reps))
                    ms.append(per_call_ms(lambda q=q, k=k, v=v: by_hand(q, k, v), args.reps))
                print(f"| {length} | {rows} | {ms[0]:.3f} | {ms[1]:.3f} | {ms[2]:.3f} | {ms[3]:.3f} | "
                      f"{ms[0] / ms[2]:.2f}x |")


if __name__ == "__main__":
    main()
