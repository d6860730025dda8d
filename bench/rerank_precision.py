"""The shipped CLIP reranker in fp32 and bf16 (`t2i rerank --precision`), side by side in one process:
seconds to score a folder's worth of generated-size images (128 px, resized to the CLIP's side) against
one prompt, alternating formats, median of --reps; and what bf16 does to the ranking: hard-negative
retrieval accuracy (world val scenes against their twins, as in BENCHMARKS' reranker section), and how
many pairs of the timed images the two formats order the same way against each image's own caption.

Usage: PYTHONPATH=src python bench/rerank_precision.py [--weights weights] [--reps 7] [--images 64]
       [--scenes 512]
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from t2i_cli.images import tensor_from_image
from t2i_cli.stages import encode_captions, hard_negative_accuracy
from t2i_cli.weights import load_model, load_tokenizer
from t2i_cli.world.splits import scene


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default="weights")
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--scenes", type=int, default=512)
    args = ap.parse_args()
    folder = Path(args.weights)
    tok = load_tokenizer(folder / "tokenizer.json")
    fp32 = load_model(folder / "clip.safetensors", "clip")
    models = {"fp32": fp32, "bf16": copy.deepcopy(fp32).to(torch.bfloat16)}
    text_len = fp32.cfg.text_len
    print(f"# {platform.node()} {time.strftime('%Y-%m-%d %H:%M')} torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, load {os.getloadavg()[0]:.2f}, reps {args.reps}")
    shots = [scene("val", i, 128) for i in range(args.images)]
    images = torch.stack([tensor_from_image(s[0]) for s in shots])
    text = encode_captions(tok, [shots[0][1]], text_len)
    secs: dict[str, list[float]] = {k: [] for k in models}
    with torch.inference_mode():
        for _ in range(args.reps):
            for name, m in models.items():
                t = time.perf_counter()
                m.score(images, text)
                secs[name].append(time.perf_counter() - t)
        caps = encode_captions(tok, [s[1] for s in shots], text_len)
        scores = {name: torch.stack([m.score(images, caps[c:c + 1]) for c in range(len(caps))])
                  for name, m in models.items()}  # (caption, image)
        hard = {name: hard_negative_accuracy(m, tok, text_len, 128, range(args.scenes), "cpu")["accuracy"]
                for name, m in models.items()}
    order = {k: torch.sign(v[:, :, None] - v[:, None, :]) for k, v in scores.items()}  # (caption, i, j)
    same = float((order["fp32"] == order["bf16"]).float().mean())
    print(f"| format | score {args.images} images, s | hard-negative accuracy ({args.scenes} val scenes) |")
    print("|---|---:|---:|")
    for name in models:
        print(f"| {name} | {statistics.median(secs[name]):.3f} | {hard[name]:.3f} |")
    print(f"pairs of images ordered alike by fp32 and bf16, per caption: {same:.2%}; "
          f"fp32 / bf16 time: {statistics.median(secs['fp32']) / statistics.median(secs['bf16']):.2f}x")


if __name__ == "__main__":
    main()
