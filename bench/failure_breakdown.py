"""Why two-object and colour-attribution prompts fail, as the eval's judge sees them (issue 15).

For each task, --regional weight and seed, the eval's own prompts and image seeds (`t2i eval --candidates 1
--regional W` draws the same images: one candidate, default sampling but for regional guidance); each image is
read by the judge and sorted by judge.failure_kind: right, both missing, object missing, wrong class, colours
swapped, wrong colour, wrong relation. "extra objects" counts images with more detections than the prompt
names (it is not a failure by itself).

Usage: PYTHONPATH=src python bench/failure_breakdown.py [--weights weights] [--n 50] [--seeds 0 1] [--regional 0 2]
"""

from __future__ import annotations

import argparse
import collections
import platform
import time
from pathlib import Path

from t2i_cli.pipeline import TextToImage
from t2i_cli.sampling import SamplingConfig
from t2i_cli.world.judge import FAILURES, failure_kind, load_judge
from t2i_cli.world.tasks import TASK_CHECKS, image_seed, task_prompts

TASKS = ("two_objects", "colour_attribution")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default="weights")
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--regional", type=float, nargs="+", default=[SamplingConfig().regional],
                    help="regional guidance weights, one row each (default: the default's)")
    args = ap.parse_args()
    t0 = time.time()
    pipe = TextToImage.from_folder(Path(args.weights), "cpu")
    judge = load_judge(Path(args.weights) / "judge.safetensors")
    print(f"# {platform.node()} {time.strftime('%Y-%m-%d %H:%M')} weights={pipe.bundle.identity} n={args.n} "
          f"seeds={args.seeds}")
    cols = ("right",) + FAILURES
    print("| task | regional | seed | task accuracy | " + " | ".join(cols) + " | extra objects |")
    print("|---|---:|---|---:|" + "---:|" * (len(cols) + 1))
    for task, w, seed in ((t, w, s) for t in TASKS for w in args.regional for s in args.seeds):
        sampling = SamplingConfig(regional=w)
        prompts = task_prompts(task, args.n, seed)
        seeds = [image_seed(seed, task, i) for i in range(len(prompts))]
        images = pipe.draw_each([pipe.request(p, sampling) for p, _ in prompts], seeds)
        tally, extra, passed = collections.Counter(), 0, 0
        for g, (_, spec) in zip(images, prompts, strict=True):
            found = judge.detect(g.image, spec.background)
            tally[failure_kind(found, spec) or "right"] += 1
            extra += len(found) > len(spec.objects)
            checks = judge.check(g.image, spec)
            passed += all(checks.get(c, False) for c in TASK_CHECKS[task])
        n = len(prompts)
        print(f"| {task} | {w:g} | {seed} | {passed / n:.0%} | " + " | ".join(f"{tally[c]}" for c in cols)
              + f" | {extra} |")
    print(f"({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
