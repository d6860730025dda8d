"""How fast each image's Jacobi window moves at first, which decides whether it narrows to one code per pass
(sampling.JACOBI_CHECK, JACOBI_MIN_RATE): the codes each image has made final after its first JACOBI_CHECK
window passes, over world prompts of every eval task, 4 images per prompt (the default best of 4), default
sampling and `--jacobi 16`; quantiles, and how many images narrowed.

Usage: PYTHONPATH=src python bench/jacobi_pace.py [--weights weights] [--prompts 10] [--seed 7]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import torch

from t2i_cli.pipeline import TextToImage
from t2i_cli.sampling import JACOBI_CHECK, JACOBI_MIN_RATE, SamplingConfig, draw_codes
from t2i_cli.world.tasks import TASKS, task_prompts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", type=Path, default=Path("weights"))
    ap.add_argument("--prompts", type=int, default=10, help="prompts per task")
    ap.add_argument("--seed", type=int, default=7, help="the world prompts' seed")
    ap.add_argument("--window", type=int, default=16)
    args = ap.parse_args()
    t0 = time.time()
    pipe = TextToImage.from_folder(args.weights, "cpu", precision="auto")
    model, empty = pipe.bundle.transformer, torch.tensor(pipe.bundle.tokenizer.empty(pipe.text_len))
    paces, narrowed, images = [], 0, 0
    for task in TASKS:
        for k, (prompt, *_) in enumerate(task_prompts(task, args.prompts, args.seed)):
            ids = torch.tensor([pipe.request(prompt).encoded.ids] * 4)
            stats: dict = {}
            with torch.inference_mode():
                draw_codes(model, ids, empty, SamplingConfig(jacobi=args.window),
                           [torch.Generator().manual_seed(100 * k + i) for i in range(4)], stats=stats)
            paces += stats.get("paces", [])
            narrowed += stats["narrowed"]
            images += 4
    paces.sort()
    q = {f"{x:g}": paces[int(x * (len(paces) - 1))] for x in (0, 0.01, 0.05, 0.25, 0.5, 0.75, 1)} if paces else {}
    limit = JACOBI_MIN_RATE * JACOBI_CHECK
    print(f"# {platform.node()} {time.strftime('%Y-%m-%d %H:%M')} weights {args.weights} "
          f"({model.cfg.n_image} codes), {images} images, --jacobi {args.window}, load {os.getloadavg()[0]:.2f}")
    print(f"codes final after {JACOBI_CHECK} window passes, quantiles over {len(paces)} images still drawing: {q}")
    print(f"narrowed (under {limit:g}): {narrowed} of {images} images ({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
