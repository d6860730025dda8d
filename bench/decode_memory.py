"""Why 16 images decode at the speed they do: two measurements on this machine.

1. Attention over one layer's bf16 KV cache (32 rows, 8 heads, 48 dims: 16 images with guidance) at a cache
   length, PyTorch's scaled_dot_product_attention for one new query per row: the same layer's cache read
   again and again (it stays in the CPU's caches) against 8 layers' caches in turn, as a decode step reads
   them (they come from memory). The difference is what streaming the KV cache costs.
2. One forward pass of the shipped transformer (--precision) over 32 rows after a KV cache of 128 codes,
   for windows of W codes per row (W = 1 is a plain decode step's work, through the window path): the cost
   per pass and per position, i.e. how much a Jacobi pass must save to pay.

Usage: PYTHONPATH=src .venv/bin/python bench/decode_memory.py [--threads 2] [--reps 7] [--weights weights]
       [--precision auto]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from t2i_cli.models.transformer import KVCache
from t2i_cli.pipeline import TextToImage


def attention(reps: int) -> None:
    B, H, D, L, room = 32, 8, 48, 8, 280
    k = torch.randn(L, B, H, room, D, dtype=torch.bfloat16)
    v = torch.randn(L, B, H, room, D, dtype=torch.bfloat16)
    q = torch.randn(B, H, 1, D, dtype=torch.bfloat16)
    print("| cache length | one layer's cache again (us per call) | 8 layers' caches in turn (us per call) | ratio |")
    print("|---:|---:|---:|---:|")
    for T in (64, 152, 279):
        got = {}
        for name, layers in (("one", [0] * L), ("eight", list(range(L)))):
            runs = []
            for _ in range(reps):
                for i in layers:  # warm
                    F.scaled_dot_product_attention(q, k[i, :, :, :T], v[i, :, :, :T])
                t = time.perf_counter()
                for _ in range(10):
                    for i in layers:
                        F.scaled_dot_product_attention(q, k[i, :, :, :T], v[i, :, :, :T])
                runs.append((time.perf_counter() - t) / (10 * L) * 1e6)
            got[name] = statistics.median(runs)
        print(f"| {T} | {got['one']:.0f} | {got['eight']:.0f} | {got['eight'] / got['one']:.2f}x |")


def window_pass(weights: Path, precision: str, reps: int) -> None:
    pipe = TextToImage.from_folder(weights, "cpu", precision=precision)
    model, rows, done = pipe.bundle.transformer, 32, 128
    cfg = model.cfg
    gen = torch.Generator().manual_seed(0)
    text = torch.randint(0, cfg.text_vocab, (rows, cfg.text_len), generator=gen)
    codes = torch.randint(0, cfg.image_vocab, (rows, cfg.n_image), generator=gen)
    print(f"\n{precision} ({pipe.precision}), {rows} rows after {done} cached codes")
    print("| window W | ms per pass | ms per position |")
    print("|---:|---:|---:|")
    with torch.inference_mode():
        cache = KVCache.for_model(model, rows, torch.device("cpu"), slack=17)
        model.image_logits(text, codes[:, :done], cache)  # text and the first `done` codes
        starts = torch.full((rows,), done, dtype=torch.long)
        for W in (1, 2, 4, 8, 16):
            window = codes[:, done:done + W]
            model.ragged_window_logits(window, starts, cache)  # warm: oneDNN primitives for this shape
            runs = []
            for _ in range(reps):
                t = time.perf_counter()
                model.ragged_window_logits(window, starts, cache)
                runs.append(time.perf_counter() - t)
            ms = statistics.median(runs) * 1e3
            print(f"| {W} | {ms:.2f} | {ms / W:.2f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--weights", type=Path, default=Path(__file__).resolve().parents[1] / "weights")
    ap.add_argument("--precision", default="auto")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"# {platform.node()} {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.2f}, {args.threads} threads, torch {torch.__version__}, median of {args.reps}")
    with torch.inference_mode():
        attention(args.reps)
    window_pass(args.weights, args.precision, args.reps)


if __name__ == "__main__":
    main()
