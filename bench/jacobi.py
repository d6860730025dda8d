"""Speculative Jacobi decoding (`--jacobi W`) against plain decoding on the shipped transformer, side by
side in one process: forward passes per image and decode seconds per image, for each precision, window
and batch (1 = `generate --candidates 1`, 4 = the default best of 4), over world prompts of every eval task,
windows alternating within each repetition; median over --reps of the mean over prompts.

Usage: PYTHONPATH=src python bench/jacobi.py [--weights weights] [--reps 3] [--prompts 7]
       [--windows 0 4 8 16] [--batch 1 4] [--precision fp32 int8]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from t2i_cli.pipeline import TextToImage
from t2i_cli.sampling import SamplingConfig, draw_codes
from t2i_cli.world.tasks import TASKS, task_prompts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default="weights")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--prompts", type=int, default=len(TASKS), help="one prompt per task, cycling")
    ap.add_argument("--windows", type=int, nargs="+", default=[0, 4, 8, 16])
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--precision", nargs="+", default=["fp32", "int8"])
    args = ap.parse_args()
    prompts = [task_prompts(TASKS[i % len(TASKS)], 1 + i // len(TASKS), 7)[i // len(TASKS)][0]
               for i in range(args.prompts)]
    print(f"# {platform.node()} {time.strftime('%Y-%m-%d %H:%M')} torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, load {os.getloadavg()[0]:.2f}, reps {args.reps}, "
          f"{len(prompts)} prompts: {prompts}")
    rows = []
    for precision in args.precision:
        pipe = TextToImage.from_folder(Path(args.weights), "cpu", precision=precision)
        model, empty = pipe.bundle.transformer, torch.tensor(pipe.bundle.tokenizer.empty(pipe.text_len))
        secs: dict[tuple[int, int], list[float]] = {}
        passes: dict[tuple[int, int], list[int]] = {}
        for _ in range(args.reps):
            for b in args.batch:
                for w in args.windows:
                    t, seen = time.perf_counter(), []
                    for k, prompt in enumerate(prompts):
                        ids = torch.tensor([pipe.request(prompt).encoded.ids] * b)
                        stats: dict = {}
                        with torch.inference_mode():
                            draw_codes(model, ids, empty, SamplingConfig(jacobi=w), torch.Generator().manual_seed(k),
                                       stats=stats)
                        seen.append(stats["passes"])
                    secs.setdefault((b, w), []).append((time.perf_counter() - t) / len(prompts))
                    passes[(b, w)] = seen
        for b in args.batch:
            base = statistics.median(secs[(b, 0)])
            for w in args.windows:
                s = statistics.median(secs[(b, w)])
                rows.append(f"| {precision} | {b} | {w or 'off'} | {statistics.mean(passes[(b, w)]):.1f} | "
                            f"{s:.2f} | {s / b * 1000 / model.cfg.n_image:.2f} | {base / s:.2f}x |")
    print("| precision | batch | --jacobi | passes per image | decode s per batch | ms per code | speed-up |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
