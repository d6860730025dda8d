"""What reranking by default costs: one image drawn alone against the best of K drawn in one batch and
scored by the weights' CLIP (what `t2i generate PROMPT` does with --candidates 1 and by default).

Both are timed in one process, interleaved (1, K, 1, K, ...), after one warm-up each; the model load is
not included (it is the same for both, plus the CLIP's: reported apart). Median of --runs.

Usage: PYTHONPATH=src python bench/candidates_cost.py [--weights weights] [--k 4] [--runs 7] [--prompt "a red bird"]
       [--precision fp32|bf16|int8|auto] [--threads N]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import torch

from t2i_cli.pipeline import TextToImage
from t2i_cli.weights import load_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default="weights")
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--prompt", default="a red bird")
    ap.add_argument("--precision", default="fp32", help="the transformer's (generate's default is auto)")
    ap.add_argument("--threads", type=int, default=0, help="intra-op threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    pipe = TextToImage.from_folder(Path(args.weights), "cpu", need_clip=True, precision=args.precision)
    t = time.perf_counter()
    load_model(Path(args.weights) / "clip.safetensors", "clip")
    clip_load = time.perf_counter() - t
    print(f"# {platform.node()} {time.strftime('%Y-%m-%d %H:%M')} weights={pipe.bundle.identity} "
          f"threads={torch.get_num_threads()} precision={pipe.precision} prompt={args.prompt!r} k={args.k} "
          f"runs={args.runs}")

    def one(seed: int) -> float:
        t0 = time.perf_counter()
        pipe(args.prompt, n=1, seed=seed)
        return time.perf_counter() - t0

    def best_of_k(seed: int) -> float:
        t0 = time.perf_counter()
        pipe.rerank(pipe(args.prompt, n=args.k, seed=seed), 1)
        return time.perf_counter() - t0

    one(0), best_of_k(0)  # warm-up
    singles, bests = [], []
    for seed in range(1, args.runs + 1):
        singles.append(one(seed))
        bests.append(best_of_k(seed))
    a, b = statistics.median(singles), statistics.median(bests)
    print(f"one image:      median {a:.3f} s  ({', '.join(f'{x:.2f}' for x in singles)})")
    print(f"best of {args.k}:      median {b:.3f} s  ({', '.join(f'{x:.2f}' for x in bests)})")
    print(f"ratio {b / a:.2f}x; loading the CLIP once: {clip_load:.3f} s")


if __name__ == "__main__":
    main()
