"""Sampling schedules at equal cost on `t2i eval`'s tasks (issue 15): does stronger guidance early (when the
layout is drawn) or a lower temperature help compositions?

Each setting is run through the eval's own code (world.evaluate.evaluate_model: the same prompts, image
seeds and judge as `t2i eval`, one candidate unless --candidates), on the tasks and seeds given. A setting is
"guidance=G" (constant), "guidance=G,start=S" (S at the first code, moving linearly to G at the last), with
optional ",temperature=T", ",top_k=K" or ",stop=F" (guidance stops after a share F of the codes).

Usage: PYTHONPATH=src python bench/sampling_schedules.py [--weights weights] [--n 50] [--seeds 0 1]
           [--tasks two_objects colour_attribution counting] [--candidates 1]
           --settings guidance=3 guidance=3,start=6 ...
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

from t2i_cli.pipeline import TextToImage
from t2i_cli.sampling import SamplingConfig
from t2i_cli.world.evaluate import evaluate_model
from t2i_cli.world.judge import load_judge

KEYS = {"guidance": ("guidance", float), "start": ("guidance_start", float), "temperature": ("temperature", float),
        "top_k": ("top_k", int), "top_p": ("top_p", float), "stop": ("guidance_stop", float)}


def parse(setting: str) -> SamplingConfig:
    fields = {}
    for item in setting.split(","):
        key, _, value = item.partition("=")
        name, kind = KEYS[key.strip()]
        fields[name] = kind(value)
    return SamplingConfig(**fields)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default="weights")
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--tasks", nargs="+", default=["two_objects", "colour_attribution", "counting"])
    ap.add_argument("--settings", nargs="+", required=True)
    ap.add_argument("--candidates", type=int, default=1, help="draw N per prompt, keep the reranker's pick")
    args = ap.parse_args()
    t0 = time.time()
    pipe = TextToImage.from_folder(Path(args.weights), "cpu", need_clip=args.candidates > 1)
    judge = load_judge(Path(args.weights) / "judge.safetensors")
    print(f"# {platform.node()} {time.strftime('%Y-%m-%d %H:%M')} weights={pipe.bundle.identity} n={args.n} "
          f"seeds={args.seeds} candidates={args.candidates}")
    print("| setting | seed | " + " | ".join(args.tasks) + " | mean | seconds |")
    print("|---|---|" + "---:|" * (len(args.tasks) + 2))
    for setting in args.settings:
        sampling = parse(setting)
        for seed in args.seeds:
            r = evaluate_model(pipe, judge, args.n, seed, sampling, args.candidates, tasks=tuple(args.tasks))
            accs = [r["tasks"][t]["accuracy"] for t in args.tasks]
            print(f"| {setting} | {seed} | " + " | ".join(f"{100 * a:.0f}%" for a in accs)
                  + f" | {100 * sum(accs) / len(accs):.1f}% | {r['seconds']:.0f} |", flush=True)
    print(f"({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
