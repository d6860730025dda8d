"""Reranking with the score averaged over shifted copies of each candidate (test-time augmentation), compared
on candidate pools (bench/candidate_pool.py).

The reranker reads a 128 px candidate at 64 px (area average), where a small object is a few pixels and
which 2 x 2 block each of its edges falls in changes what the CLIP sees. Averaging the shipped score (the
sentence score plus 0.5 x the mean of the objects' crop scores, pipeline.TextToImage.score) over copies of
the picture moved by a pixel or two (edges replicated) asks whether that aliasing is what picks the wrong
candidate. Settings: "phases" = the four 1-pixel shifts (0/1 in x and y: every phase of the 2 x 2 average);
"cross 2" = unshifted and 2 pixels up, down, left and right; "both" = the union.

Usage: PYTHONPATH=src python bench/rerank_shifts.py --pool /tmp/p8/pool-seed1 [--ks 4 8]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from candidate_pool import load_pool, pool_header  # noqa: E402  (the pool's reader)
from rerank_pooling import print_accuracy_table  # noqa: E402  (the shared accuracy table)
from rerank_regions import pool_parser, region_scores  # noqa: E402  (options; the shipped score and its crops)
from t2i_cli.pipeline import CROP_SCORE_WEIGHT
from t2i_cli.weights import load_model, load_tokenizer

PHASES = [(0, 0), (1, 0), (0, 1), (1, 1)]
CROSS2 = [(0, 0), (2, 0), (-2, 0), (0, 2), (0, -2)]
SETTINGS = {"unshifted": [(0, 0)], "phases": PHASES, "cross 2": CROSS2,
            "both": sorted(set(PHASES) | set(CROSS2))}


def shifted(images: torch.Tensor, dx: int, dy: int) -> torch.Tensor:
    """(..., 3, H, W) moved dx pixels right and dy down, the edge pixels replicated into the gap."""
    if dx == dy == 0:
        return images
    shape = images.shape
    x = images.reshape(-1, *shape[-3:]).float()
    p = max(abs(dx), abs(dy))
    x = F.pad(x, (p, p, p, p), mode="replicate")
    H, W = shape[-2:]
    x = x[..., p - dy:p - dy + H, p - dx:p - dx + W]
    return x.round().to(images.dtype).reshape(shape)


def main() -> None:
    args = pool_parser(__doc__).parse_args()
    t0 = time.time()
    tensors, meta = load_pool(args.pool)
    passed, rows = tensors["passed"], meta["rows"]
    prompts = [r["prompt"] for r in rows]
    clip, tok = load_model(args.clip, "clip"), load_tokenizer(args.tokenizer)
    per_shift = {}
    for dx, dy in SETTINGS["both"]:
        parts = region_scores(clip, tok, shifted(tensors["images"], dx, dy), prompts)
        crops = parts["crops mean"]
        per_shift[dx, dy] = torch.where(crops.isnan(), parts["shipped"], parts["shipped"] + CROP_SCORE_WEIGHT * crops)
    settings = {"first candidate": torch.zeros_like(per_shift[0, 0])}
    settings.update({name: torch.stack([per_shift[s] for s in shifts]).mean(0) for name, shifts in SETTINGS.items()})
    print(f"{pool_header(args.pool, meta)} clip {args.clip}")
    print_accuracy_table("shipped score averaged over", settings, passed, rows, args.ks)
    print(f"\n({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
