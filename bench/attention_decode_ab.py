"""Whole warm generates with the decode's one-query attention through PyTorch's SDPA (as t2i) against a plain
softmax(qK^T)V in fp32 (bench/attention_cache.py measured the second faster over a cache past the L3), side by side
in one process, alternating.

    PYTHONPATH=src .venv/bin/python bench/attention_decode_ab.py [--n 4 16] [--rounds 5] [--precision bf16]
        [--bf16-cache] [--threads 2] [--clock wall|cpu]

"plain" swaps torch.nn.functional.scaled_dot_product_attention for a plain product wherever a call has one query
and no mask (the decode step); prefills and masked windows keep SDPA. Prints the median seconds per generate.
--bf16-cache: the plain arm also keeps a bf16 model's cache in bf16 where t2i makes it fp32 (a CPU without AMX), its
q K^T and weights times V in bf16 (scores rounded to bf16), the softmax in fp32; the SDPA arm is t2i's own.
--clock cpu times the process's CPU seconds (time.process_time), which on a shared machine leave out the time other
processes held the cores (with --threads 1, the work itself).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from t2i_cli.models.transformer import KVCache
from t2i_cli.pipeline import TextToImage

SDPA = F.scaled_dot_product_attention
FOR_MODEL = KVCache.for_model.__func__


def bf16_cache(cls, model, batch, device, slack=0):
    return cls(model.cfg, batch, device, next(model.parameters()).dtype, slack)


def plain(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, **kw):
    if q.shape[-2] != 1 or attn_mask is not None or is_causal or dropout_p or kw:
        return SDPA(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal, **kw)
    w = torch.matmul(q, k.transpose(-1, -2)).float().mul_(q.shape[-1] ** -0.5)
    return torch.matmul(w.softmax(-1).to(v.dtype), v)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, nargs="+", default=[4, 16])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--precision", default="bf16")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bf16-cache", action="store_true")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    ap.add_argument("--weights", type=Path, default=Path(__file__).resolve().parents[1] / "weights")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    pipe = TextToImage.from_folder(args.weights, "cpu", precision=args.precision)
    print(f"# {time.strftime('%Y-%m-%d %H:%M')} torch {torch.__version__}, {args.threads} threads, precision "
          f"{args.precision}, 'a red bird', median of {args.rounds} alternating rounds, warm"
          + (", plain arm with a bf16 cache" if args.bf16_cache else "") + f", {args.clock} clock")
    print("| n | SDPA s | plain s | SDPA / plain |")
    print("|---:|---:|---:|---:|")
    for n in args.n:
        pipe("a red bird", n, 0)
        times: dict[str, list[float]] = {"sdpa": [], "plain": []}
        for _ in range(args.rounds):
            for name, fn in (("sdpa", SDPA), ("plain", plain)):
                F.scaled_dot_product_attention = fn
                if name == "plain" and args.bf16_cache:
                    KVCache.for_model = classmethod(bf16_cache)
                try:
                    t = clock()
                    pipe("a red bird", n, 0)
                    times[name].append(clock() - t)
                finally:
                    F.scaled_dot_product_attention = SDPA
                    KVCache.for_model = classmethod(FOR_MODEL)
        a, b = statistics.median(times["sdpa"]), statistics.median(times["plain"])
        print(f"| {n} | {a:.3f} | {b:.3f} | {a / b:.2f}x |")


if __name__ == "__main__":
    main()
