"""Train the eval judge's object classifier, save it, and print its validation table at 64 and 128 px.

The judge must agree with the spec on real renders of every task's prompts at least 98% of the time and
reject renders of a wrong scene at least as often; "64 degraded" (renders blurred, resampled and noised
like decoded images) is for information.

Usage: PYTHONPATH=src python bench/validate_judge.py OUT.safetensors [--steps 1000] [--images 2000]
       [--seed 0] [--n 300] [--val-seed 1]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from t2i_cli import weights
from t2i_cli.models.classifier import JudgeConfig
from t2i_cli.world import evaluate as ev
from t2i_cli.world import judge as jd
from t2i_cli.world import judge_training as jt
from t2i_cli.world import tasks

THRESHOLD = 0.98


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path, help="where to write the judge (safetensors, kind 'judge')")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--images", type=int, default=2000, help="renders the training crops come from")
    ap.add_argument("--seed", type=int, default=0, help="training seed")
    ap.add_argument("--n", type=int, default=300, help="prompts per task in validation")
    ap.add_argument("--val-seed", type=int, default=1, help="seed of the validation prompt sets")
    args = ap.parse_args()

    t0 = time.perf_counter()
    model = jt.train_judge(steps=args.steps, seed=args.seed, side=64, n_images=args.images)
    train_s = time.perf_counter() - t0
    weights.save_model(model, args.out, "judge")
    n_params = sum(p.numel() for p in model.parameters())
    print(f"judge: {n_params} parameters, {JudgeConfig()}; trained in {train_s:.1f} s "
          f"({args.steps} steps, {args.images} renders, torch {torch.__version__}); saved to {args.out}")

    judge = jd.load_judge(args.out)
    runs = {"64": (64, False), "128": (128, False), "64 degraded": (64, True)}
    results = {}
    for name, (side, degraded) in runs.items():
        t0 = time.perf_counter()
        results[name] = ev.validate_judge(judge, args.n, args.val_seed, side, is_degraded=degraded)
        print(f"validated {name} px: {args.n} prompts x 7 tasks x (right + wrong) in {time.perf_counter() - t0:.1f} s")

    print(f"\n{'':<20}" + "".join(f"{name + ' px':>22}" for name in runs))
    print(f"{'task':<20}" + f"{'agree':>12}{'reject':>10}" * len(runs))
    for task in tasks.TASKS:
        cells = "".join(f"{results[n][task]['agreement']:>12.3f}{results[n][task]['rejects_wrong']:>10.3f}"
                        for n in runs)
        print(f"{task:<20}{cells}")
    ok = all(r[t][k] >= THRESHOLD for name, r in results.items() if "degraded" not in name
             for t in tasks.TASKS for k in ("agreement", "rejects_wrong"))
    print(f"\nclean renders at 64 and 128 px: every task {'>=' if ok else 'NOT all >='} {THRESHOLD:.0%} "
          f"on agreement and rejects_wrong")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
