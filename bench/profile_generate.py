"""Where one warm `t2i generate` spends its time: torch profiler over one call on the shipped weights.

    PYTHONPATH=src .venv/bin/python bench/profile_generate.py [--threads 2] [--weights weights] [--n 1] [--rows 12]

Prints the wall time of the call, the dVAE decode alone, and the top ops by self CPU time.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from t2i_cli.pipeline import TextToImage


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--weights", type=Path, default=Path(__file__).resolve().parents[1] / "weights")
    ap.add_argument("--n", type=int, default=1, help="images per call (one batch up to 16)")
    ap.add_argument("--rows", type=int, default=12, help="ops listed")
    ap.add_argument("--precision", default="fp32", help="auto, fp32, bf16 or int8 (the transformer)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    pipe = TextToImage.from_folder(args.weights, "cpu", precision=args.precision)
    pipe("a red bird", n=args.n, seed=0)  # warm-up
    t0 = time.perf_counter()
    pipe("a red bird", n=args.n, seed=0)
    print(f"warm generate of {args.n}: {time.perf_counter() - t0:.2f} s ({args.threads} threads)")
    side = pipe.bundle.dvae.cfg.grid
    with torch.inference_mode():
        t0 = time.perf_counter()
        pipe.bundle.dvae.image_from_codes(torch.zeros(1, side, side, dtype=torch.long))
        print(f"dVAE decode of one image: {time.perf_counter() - t0:.3f} s")
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        pipe("a red bird", n=args.n, seed=0)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))


if __name__ == "__main__":
    main()
