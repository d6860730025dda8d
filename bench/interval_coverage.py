"""How often eval --data's 95% interval holds the true mean, at the small val splits a user's folder gives
(5% of 40-600 pictures: 2-30 of them): the normal-approximation interval (mean -+ 1.96 standard errors, t2i
0.12.10's first draft) against Student's t (data_eval.interval), on normal measurements and on skewed ones
(exponential: PSNR and bits per code are not normal), and on real per-picture PSNRs when a weights folder and a
picture folder are given (subsamples of the folder's pictures, their mean over the folder as the truth).

    python bench/interval_coverage.py [--trials 20000] [--weights weights --data /tmp/icons]
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch

from t2i_cli.data_eval import interval


def normal_interval(v: torch.Tensor) -> list[float]:
    half = 1.96 * float(v.double().std()) / math.sqrt(len(v))
    return [float(v.double().mean()) - half, float(v.double().mean()) + half]


def coverage(draw, truth: float, n: int, trials: int) -> tuple[float, float]:
    hit_z = hit_t = 0
    for _ in range(trials):
        v = draw(n)
        lo, hi = normal_interval(v)
        hit_z += lo <= truth <= hi
        lo, hi = interval(v)
        hit_t += lo <= truth <= hi
    return hit_z / trials, hit_t / trials


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=20000)
    ap.add_argument("--weights", type=Path)
    ap.add_argument("--data", type=Path)
    args = ap.parse_args()
    g = torch.Generator().manual_seed(0)
    sources = {"normal": (lambda n: torch.randn(n, generator=g), 0.0),
               "exponential": (lambda n: torch.empty(n).exponential_(generator=g), 1.0)}
    if args.weights and args.data:
        from t2i_cli.data import open_source
        from t2i_cli.models.dvae import psnr
        from t2i_cli.pipeline import TextToImage

        pipe = TextToImage.from_folder(args.weights, "cpu")
        dvae = pipe.bundle.dvae
        pics = open_source(str(args.data), dvae.cfg.image_side, part="all")
        with torch.inference_mode():
            x = torch.stack([pics[i][0] for i in range(len(pics))])
            real = torch.cat([psnr(dvae.image_from_codes(dvae.codes_from_image(x[i:i + 32])), x[i:i + 32])
                              for i in range(0, len(x), 32)]).double()
        sources[f"PSNR of {len(real)} pictures"] = (
            lambda n: real[torch.randperm(len(real), generator=g)[:n]], float(real.mean()))
    print(f"{'measurements':>28} {'n':>3}  {'1.96 s.e.':>9}  {'Student t':>9}  ({args.trials} trials)")
    for name, (draw, truth) in sources.items():
        for n in (2, 3, 5, 10, 30):
            z, t = coverage(draw, truth, n, args.trials)
            print(f"{name:>28} {n:>3}  {z:>9.3f}  {t:>9.3f}")


if __name__ == "__main__":
    main()
