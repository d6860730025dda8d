"""Near-greedy sampling: does a temperature or top-p at the edge of what t2i accepts, or --top-k 1 beside strong
guidance, draw something broken (NaN or infinite pixels, codes outside the codebook, an image of one repeated code,
a crash), and do its n draws of one prompt differ (--top-k 1's are refused above n=1 because they never do)?

Each setting draws n images of each prompt (seed 0, the pipeline's own generators; n=1 for top_k=1, which refuses
more) with the weights given, and prints per setting: whether every pixel is finite, whether every code is in the
codebook, the fewest distinct codes in one image (of the grid's cells), how many distinct images the n draws are
(per prompt), and the mean share of the cells where a draw agrees with the top_k=1 image of its prompt (drawn at the
default guidance, 3), and the seconds the setting took.

Usage: PYTHONPATH=src OMP_NUM_THREADS=1 python bench/near_greedy.py [--weights weights] [--n 4]
           [--prompts "a red bird" ...] [--settings top_p=1e-9 temperature=0.001,guidance=100 ...]
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch

from t2i_cli.errors import UsageError
from t2i_cli.pipeline import TextToImage
from t2i_cli.sampling import SamplingConfig

KEYS = {"guidance": ("guidance", float), "temperature": ("temperature", float), "top_k": ("top_k", int),
        "top_p": ("top_p", float)}
DEFAULT_SETTINGS = ["default", "temperature=0.001", "top_p=1e-9", "top_p=0.001", "top_p=0.01", "top_p=0.1",
                    "top_k=1,guidance=1", "top_k=1,guidance=100", "temperature=0.001,guidance=100",
                    "top_p=1e-9,guidance=100", "temperature=0.001,top_k=1,guidance=100"]


def parse(setting: str) -> SamplingConfig:
    fields = {}
    for item in filter(None, setting.split(",")):
        if item == "default":
            continue
        key, _, value = item.partition("=")
        name, kind = KEYS[key.strip()]
        fields[name] = kind(value)
    return SamplingConfig(**fields)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", type=Path, default=Path("weights"))
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--prompts", nargs="+", default=["a red bird", "two green cats"])
    ap.add_argument("--settings", nargs="+", default=DEFAULT_SETTINGS)
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}")
    pipe = TextToImage.from_folder(args.weights, "cpu")  # fp32: the reference precision
    vocab, cells = pipe.bundle.transformer.cfg.image_vocab, pipe.bundle.transformer.cfg.n_image
    greedy = {p: pipe(p, n=1, seed=0, sampling=SamplingConfig(top_k=1))[0].codes for p in args.prompts}
    print(f"weights {args.weights}: codebook {vocab}, {cells} cells; n={args.n} per prompt, seed 0, prompts "
          f"{args.prompts}")
    print(f"{'setting':42} {'finite':>6} {'in book':>7} {'min distinct codes':>18} {'distinct images':>15} "
          f"{'same as top_k=1':>15} {'s':>6}")
    for setting in args.settings:
        sampling = parse(setting)
        n = 1 if sampling.top_k == 1 else args.n
        start = time.perf_counter()
        try:
            drawn = {p: pipe(p, n=n, seed=0, sampling=sampling) for p in args.prompts}
        except UsageError as e:  # t2i's own refusal of a setting
            print(f"{setting:42} refused: {e}")
            continue
        except Exception as e:  # a crash is one of the things measured
            print(f"{setting:42} crashed: {type(e).__name__}: {e}")
            continue
        seconds = time.perf_counter() - start
        gs = [g for p in args.prompts for g in drawn[p]]
        finite = all(bool(torch.isfinite(g.image).all()) for g in gs)
        in_book = all(bool(((g.codes >= 0) & (g.codes < vocab)).all()) for g in gs)
        fewest = min(int(g.codes.unique().numel()) for g in gs)
        distinct = [len({tuple(g.codes.tolist()) for g in drawn[p]}) for p in args.prompts]
        same = sum(float((g.codes == greedy[p]).float().mean()) for p in args.prompts for g in drawn[p]) / len(gs)
        print(f"{setting:42} {str(finite):>6} {str(in_book):>7} {fewest:>18} "
              f"{'/'.join(f'{d}' for d in distinct) + f' of {n}':>15} {same:>15.3f} {seconds:>6.1f}")


if __name__ == "__main__":
    main()
