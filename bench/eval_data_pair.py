"""Two settings of `t2i eval --data` on the same folder, weights and seeds, side by side: for each seed, one
run per setting (alternating, fresh processes), then per setting the mean and standard deviation over seeds
of the generated images' CLIP score against their captions and of the Frechet distance (t2i's CLIP space),
and the paired difference B - A with its standard error; also each run's seconds. For checks such as "does
this decoding change draw from the same distribution on real pictures".

Usage: PYTHONPATH=src .venv/bin/python bench/eval_data_pair.py --data /tmp/icons --weights /tmp/icons-run/weights
       [--seeds 10] [--draws 8] [--n 128] --a "" --b "--jacobi 16"
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MEASURES = (("CLIP score generated", lambda d: d["clip"]["score_generated"]),
            ("Frechet distance", lambda d: d["clip"]["frechet_distance"]),
            ("seconds", lambda d: d["seconds"]))


def sd(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--weights", required=True)
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--draws", type=int, default=8)
    ap.add_argument("--n", type=int, default=128)
    ap.add_argument("--a", default="", help="eval options of setting A (a shell-quoted string)")
    ap.add_argument("--b", default="--jacobi 16", help="eval options of setting B")
    args = ap.parse_args()
    settings = {"A": shlex.split(args.a), "B": shlex.split(args.b)}
    print(f"# {platform.node()} {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.2f}; data {args.data}, weights {args.weights}, {args.seeds} seeds, "
          f"{args.draws} draws, A: {args.a!r}, B: {args.b!r}")
    got: dict[str, list[dict]] = {"A": [], "B": []}
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    with tempfile.TemporaryDirectory() as work:
        for seed in range(args.seeds):
            for name, extra in settings.items():
                out = Path(work) / f"{name}-{seed}.json"
                subprocess.run([sys.executable, "-m", "t2i_cli", "eval", "--data", args.data, "--weights",
                                args.weights, "--n", str(args.n), "--draws", str(args.draws), "--seed", str(seed),
                                "--json", str(out), "-q", *extra], env=env, check=True, capture_output=True)
                got[name].append(json.loads(out.read_text()))
    print("| measure | A mean (sd) | B mean (sd) | B - A, paired (standard error) |")
    print("|---|---:|---:|---:|")
    for label, get in MEASURES:
        a, b = ([get(d) for d in got[k]] for k in ("A", "B"))
        diff = [y - x for x, y in zip(a, b, strict=True)]
        se = statistics.stdev(diff) / len(diff) ** 0.5 if len(diff) > 1 else float("nan")
        print(f"| {label} | {statistics.mean(a):.4f} ({sd(a):.4f}) | {statistics.mean(b):.4f} ({sd(b):.4f}) | "
              f"{statistics.mean(diff):+.4f} ({se:.4f}) |")
    for label, get in MEASURES[:2]:
        for k in ("A", "B"):
            print(f"{label} {k} per seed: " + " ".join(f"{get(d):.4f}" for d in got[k]))


if __name__ == "__main__":
    main()
