"""What regional guidance costs: a two-object prompt drawn with and without `--regional W`, side by side in one
process (interleaved, after one warm-up each; the model load not included), for one image and for the best of
K reranked by the weights' CLIP (what `t2i generate PROMPT` does by default). Regional guidance adds two rows
per image to every decode step (4 instead of 2 with guidance). Median of --runs.

Usage: PYTHONPATH=src python bench/regional_cost.py [--weights weights] [--k 4] [--runs 7] [--regional 2]
           [--prompt "a red bird and a blue fish"] [--precision fp32]
"""

from __future__ import annotations

import argparse
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
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--regional", type=float, default=2.0)
    ap.add_argument("--prompt", default="a red bird and a blue fish")
    ap.add_argument("--precision", default="fp32")
    args = ap.parse_args()
    pipe = TextToImage.from_folder(Path(args.weights), "cpu", need_clip=True, precision=args.precision)
    plain, regional = SamplingConfig(regional=0.0), SamplingConfig(regional=args.regional)
    if not pipe.request(args.prompt, regional).regions:
        raise SystemExit(f"{args.prompt!r} has no regions: give two objects of the world's grammar")
    print(f"# {platform.node()} {time.strftime('%Y-%m-%d %H:%M')} weights={pipe.bundle.identity} "
          f"threads={torch.get_num_threads()} precision={pipe.precision} prompt={args.prompt!r} k={args.k} "
          f"regional={args.regional:g} runs={args.runs}")

    def timed(sampling: SamplingConfig, k: int, seed: int) -> float:
        t0 = time.perf_counter()
        drawn = pipe(args.prompt, n=k, seed=seed, sampling=sampling)
        if k > 1:
            pipe.rerank(drawn, 1)
        return time.perf_counter() - t0

    cases = [(f"{k} image{'s' * (k > 1)}, regional {w:g}", s, k) for k in (1, args.k)
             for w, s in ((0.0, plain), (args.regional, regional))]
    for _, s, k in cases:
        timed(s, k, 0)  # warm-up
    times: dict[str, list[float]] = {name: [] for name, _, _ in cases}
    for seed in range(1, args.runs + 1):
        for name, s, k in cases:
            times[name].append(timed(s, k, seed))
    med = {name: statistics.median(t) for name, t in times.items()}
    print("| case | median s | runs |")
    print("|---|---:|---|")
    for name, t in times.items():
        print(f"| {name} | {med[name]:.3f} | {', '.join(f'{x:.2f}' for x in t)} |")
    names = list(med)
    print(f"regional / plain: one image {med[names[1]] / med[names[0]]:.2f}x, best of {args.k} "
          f"{med[names[3]] / med[names[2]]:.2f}x")


if __name__ == "__main__":
    main()
