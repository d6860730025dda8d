"""Warm images per second of `TextToImage.__call__` (codes, dVAE decode; no CLIP, no PNG) at several batch sizes,
this build against an older commit, side by side: each round runs one fresh process per build (alternating),
which loads the shipped weights at --precision, warms up once per size, then times --reps calls per size.
Median over every timed call of every round.

Usage: PYTHONPATH=src .venv/bin/python bench/throughput.py [--old REV] [--n 1 4 16] [--rounds 3] [--reps 3]
       [--precision auto] [--prompt "a red bird"] [--threads 2] [--jacobi 0 8] [--guidance-stop 0 0.5]
(--jacobi: each window in turn, 0 = plain decoding; each size is timed with each window)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys, time
import torch
from t2i_cli.pipeline import TextToImage
from t2i_cli.sampling import SamplingConfig
args = json.loads(sys.argv[1])
torch.set_num_threads(args["threads"])
pipe = TextToImage.from_folder(args["weights"], "cpu", precision=args["precision"])
out = {}
for n, stop, w in [(n, s, w) for n in args["n"] for s in args["stop"] for w in args["jacobi"] if not (s and w)]:
    sampling = SamplingConfig(jacobi=w, **({"guidance_stop": stop} if stop else {}))
    pipe(args["prompt"], n=n, seed=0, sampling=sampling)  # warm-up: oneDNN primitives, allocator
    times = []
    for r in range(args["reps"]):
        t0 = time.perf_counter()
        pipe(args["prompt"], n=n, seed=r + 1, sampling=sampling)
        times.append(time.perf_counter() - t0)
    out[f"{n} {w} {stop}"] = times
print(json.dumps(out))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--old", default=None, help="commit to compare against (default: this build alone)")
    ap.add_argument("--n", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--prompt", default="a red bird")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--jacobi", type=int, nargs="+", default=[0], help="--jacobi windows to time (0: plain)")
    ap.add_argument("--guidance-stop", type=float, nargs="+", default=[0.0],
                    help="--guidance-stop shares to time (0: off; a build before it has only 0)")
    ap.add_argument("--weights", default=str(ROOT / "weights"))
    args = ap.parse_args()
    child = {"n": args.n, "reps": args.reps, "precision": args.precision, "prompt": args.prompt,
             "threads": args.threads, "weights": args.weights, "jacobi": args.jacobi, "stop": args.guidance_stop}
    with tempfile.TemporaryDirectory() as work:
        builds = {"new": ROOT / "src"}
        if args.old:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", f"{work}/old", args.old],
                           check=True, capture_output=True)
            builds = {"old": Path(work) / "old" / "src", **builds}
        try:
            keys = [f"{n} {w} {s}" for n in args.n for s in args.guidance_stop for w in args.jacobi
                    if not (s and w)]  # --guidance-stop does not combine with --jacobi
            times: dict[str, dict[str, list[float]]] = {b: {k: [] for k in keys} for b in builds}
            head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                                  text=True).stdout.strip()
            print(f"# {platform.node()} {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, {os.cpu_count()} CPUs, "
                  f"load {os.getloadavg()[0]:.2f}, {args.threads} threads, precision {args.precision}, "
                  f"prompt {args.prompt!r}, {args.rounds} rounds x {args.reps} reps; new = {head} + working tree"
                  + (f", old = {args.old}" if args.old else ""))
            for _ in range(args.rounds):
                for name, src in builds.items():
                    env = {**os.environ, "PYTHONPATH": str(src)}
                    res = subprocess.run([sys.executable, "-c", CHILD, json.dumps(child)], env=env, check=True,
                                         capture_output=True, text=True)
                    for key, ts in json.loads(res.stdout.strip().splitlines()[-1]).items():
                        times[name][key] += ts
        finally:
            if args.old:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", f"{work}/old"],
                               capture_output=True)
    print("| n | --jacobi | --guidance-stop | " + " | ".join(f"{b} s per call | {b} images/s" for b in builds)
          + (" | old / new |" if args.old else " |"))
    print("|---:|---:|---:|" + "---:|---:|" * len(builds) + ("---:|" if args.old else ""))
    for key in keys:
        n = int(key.split()[0])
        med = {b: statistics.median(times[b][key]) for b in builds}
        cells = " | ".join(f"{med[b]:.3f} | {n / med[b]:.2f}" for b in builds)
        stop = float(key.split()[2]) or "off"
        print(f"| {n} | {key.split()[1]} | {stop} | {cells}"
              + (f" | {med['old'] / med['new']:.2f}x |" if args.old else " |"))


if __name__ == "__main__":
    main()
