"""How `t2i eval --data`'s two distances behave at the sizes it is run at: the Frechet distance and the kernel
distance (KID) between two disjoint random halves of one folder's real pictures, in a weights folder's CLIP image
space, for several n (pictures per half), median and spread over --reps random splits. Two halves of one set
are as alike as two sets get: a distance's value there is its floor at that n (0 for an unbiased one).

Usage: PYTHONPATH=src .venv/bin/python bench/distance_floor.py --data /tmp/icons [--weights weights]
       [--sizes 8 16 32 64 128 180] [--reps 20]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import time
from pathlib import Path

import torch

from t2i_cli.data import open_source
from t2i_cli.data_eval import frechet_distance, kernel_distance
from t2i_cli.weights import load_folder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--weights", default="weights")
    ap.add_argument("--sizes", type=int, nargs="+", default=[8, 16, 32, 64, 128, 180])
    ap.add_argument("--reps", type=int, default=20)
    args = ap.parse_args()
    torch.manual_seed(0)
    bundle = load_folder(Path(args.weights), "cpu")
    clip = bundle.clip.eval()
    side = bundle.dvae.cfg.image_side
    data = open_source(args.data, side, val_fraction=0.0)
    with torch.inference_mode():
        embs = []
        for lo in range(0, len(data), 32):
            x = torch.stack([data[i][0] for i in range(lo, min(lo + 32, len(data)))])
            text = torch.zeros(len(x), clip.cfg.text_len, dtype=torch.long)
            embs.append(clip.embed(x, text)[0])
        emb = torch.cat(embs)
    print(f"# {platform.node()} {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, {os.cpu_count()} CPUs; "
          f"{args.data}: {len(emb)} pictures, CLIP of {args.weights} ({emb.shape[1]} numbers), {args.reps} "
          f"random splits per n")
    print("| n per half | Frechet median (min-max) | kernel distance median (min-max) |")
    print("|---:|---:|---:|")
    rng = random.Random(0)
    for n in args.sizes:
        if 2 * n > len(emb):
            print(f"| {n} | (needs {2 * n} pictures) | |")
            continue
        fd, kd = [], []
        for _ in range(args.reps):
            order = rng.sample(range(len(emb)), 2 * n)
            a, b = emb[order[:n]], emb[order[n:]]
            fd.append(frechet_distance(a, b))
            kd.append(kernel_distance(a, b))
        print(f"| {n} | {statistics.median(fd):.4f} ({min(fd):.4f}-{max(fd):.4f}) | "
              f"{statistics.median(kd):.4f} ({min(kd):.4f}-{max(kd):.4f}) |")


if __name__ == "__main__":
    main()
