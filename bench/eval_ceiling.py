"""What the dVAE alone allows: the judge on dVAE reconstructions of the eval prompts' real renders.

    .venv/bin/python bench/eval_ceiling.py [--weights weights] [--n 50] [--seed 0]

A transformer that predicted exactly the codes of the real render could score no better than this (up to
sampling luck), so it separates what the dVAE limits from what the transformer limits.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from t2i_cli import world
from t2i_cli.images import tensor_from_image
from t2i_cli.weights import load_model
from t2i_cli.world import judge as jd
from t2i_cli.world import tasks


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", default="weights")
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    dvae = load_model(f"{args.weights}/dvae.safetensors", "dvae")
    judge = jd.load_judge(f"{args.weights}/judge.safetensors")
    side = dvae.cfg.image_side
    print("| task | judge on real renders | judge on dVAE reconstructions |\n|---|---:|---:|")
    for task in tasks.TASKS:
        real = recon = 0
        for i, (_, spec) in enumerate(tasks.task_prompts(task, args.n, args.seed)):
            img = world.render(spec, i, side)
            real += judge.passes(task, np.asarray(img), spec)
            with torch.inference_mode():
                x = tensor_from_image(img)[None]
                y = dvae.image_from_codes(dvae.codes_from_image(x))[0]
            recon += judge.passes(task, y, spec)
        print(f"| {task} | {real / args.n:.0%} | {recon / args.n:.0%} |", flush=True)


if __name__ == "__main__":
    main()
