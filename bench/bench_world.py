"""Renders per second of the procedural world at 64 and 128 px, single process (median of 5 runs).

Usage: PYTHONPATH=src python bench/bench_world.py [--n 200] [--runs 5]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import time

from t2i_cli import world


def renders_per_second(side: int, n: int, start: int) -> float:
    """Time world.scene (spec, caption and render) for n consecutive train scenes."""
    t0 = time.perf_counter()
    for i in range(start, start + n):
        world.scene("train", i, side)
    return n / (time.perf_counter() - t0)


def main() -> None:
    """Print the machine and a small table of renders/s."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=200, help="renders per run")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    print(f"# bench_world  {datetime.datetime.now().isoformat(timespec='seconds')}")
    print(f"# {platform.platform()}  cpus={os.cpu_count()}  python {platform.python_version()}  "
          f"processor={platform.processor() or platform.machine()}")
    print(f"{'side':>5} {'renders/s (median)':>19} {'min':>8} {'max':>8}   runs x n")
    for side in (64, 128):
        world.scene("train", 0, side)  # warm up imports and caches
        rates = [renders_per_second(side, args.n, r * args.n) for r in range(args.runs)]
        print(f"{side:>5} {statistics.median(rates):>19.0f} {min(rates):>8.0f} {max(rates):>8.0f}   "
              f"{args.runs} x {args.n}")


if __name__ == "__main__":
    main()
