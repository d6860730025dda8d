"""`t2i eval`'s scoring of some of the world's tasks only: the same prompts, image seeds, candidates, reranking and
judge as `t2i eval --seed S --candidates C` gives those tasks (evaluate_model with tasks=...), without the rest
of the eval. For measuring what a setting does to two objects and colour attribution at several candidates.

Usage: PYTHONPATH=src .venv/bin/python bench/eval_tasks.py [--tasks two_objects colour_attribution]
       [--seeds 0 1] [--candidates 8] [--precision auto] [--n 50] [--weights weights] [--json F]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from t2i_cli.pipeline import TextToImage
from t2i_cli.sampling import SamplingConfig
from t2i_cli.world import evaluate as ev
from t2i_cli.world import judge as jd
from t2i_cli.world.tasks import TASKS


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", nargs="+", default=["two_objects", "colour_attribution"], choices=TASKS)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--candidates", type=int, default=8)
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--weights", type=Path, default=Path("weights"))
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    pipe = TextToImage.from_folder(args.weights, "cpu", need_clip=args.candidates > 1, precision=args.precision)
    judge = jd.load_judge(args.weights / "judge.safetensors")
    print(f"# {platform.node()} {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, load {os.getloadavg()[0]:.2f}; precision {pipe.precision} (decoder "
          f"{pipe.decoder_precision}), {args.candidates} candidates, {args.n} prompts per task, default sampling")
    runs = {}
    for seed in args.seeds:
        runs[seed] = ev.evaluate_model(pipe, judge, args.n, seed, SamplingConfig(), args.candidates,
                                       tasks=tuple(args.tasks))
    print("| task | " + " | ".join(f"seed {s}" for s in args.seeds) + " |")
    print("|---|" + "---:|" * len(args.seeds))
    for task in args.tasks:
        print(f"| {task} | " + " | ".join(f"{runs[s]['tasks'][task]['accuracy']:.0%}" for s in args.seeds) + " |")
    print("seconds: " + ", ".join(f"seed {s} {runs[s]['seconds']:.0f} s" for s in args.seeds))
    if args.json is not None:
        args.json.write_text(json.dumps({str(s): r for s, r in runs.items()}, indent=1))


if __name__ == "__main__":
    main()
