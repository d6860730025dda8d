"""Reranking by several CLIPs at once, compared on candidate pools (bench/candidate_pool.py): each CLIP's
score as `t2i` ranks by it (the sentence score, plus pipeline.CROP_SCORE_WEIGHT x the mean of the objects'
crop scores for a two-object prompt), and the mean of those scores over the CLIPs (an ensemble: CLIPs of one
recipe trained from other seeds score on one scale). For each: the accuracy of the candidate it ranks first
among the first K, beside the first candidate and the oracle.

Usage: PYTHONPATH=src python bench/rerank_ensemble.py --pool /tmp/p8/pool-seed1 \
           --clips weights/clip.safetensors /tmp/clip-s1-w/clip.safetensors --names shipped seed1 [--ks 4 8]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from candidate_pool import load_pool, pool_header  # noqa: E402  (the pool's reader)
from rerank_pooling import print_accuracy_table  # noqa: E402  (the shared accuracy table)
from rerank_regions import pool_parser, region_scores  # noqa: E402  (the shipped score's parts)
from t2i_cli.pipeline import CROP_SCORE_WEIGHT
from t2i_cli.weights import load_model, load_tokenizer


def main() -> None:
    ap = pool_parser(__doc__)
    ap.add_argument("--clips", type=Path, nargs="+", required=True)
    ap.add_argument("--names", nargs="+", help="one per --clips (default: their paths)")
    args = ap.parse_args()
    names = args.names or [str(c) for c in args.clips]
    if len(names) != len(args.clips):
        ap.error("give one --names entry per --clips path")
    t0 = time.time()
    tensors, meta = load_pool(args.pool)
    passed, rows = tensors["passed"], meta["rows"]
    tok = load_tokenizer(args.tokenizer)
    prompts = [r["prompt"] for r in rows]
    scores = {}
    for name, path in zip(names, args.clips, strict=True):
        parts = region_scores(load_model(path, "clip"), tok, tensors["images"], prompts)
        crops = parts["crops mean"]
        scores[name] = torch.where(crops.isnan(), parts["shipped"], parts["shipped"] + CROP_SCORE_WEIGHT * crops)
    settings = {"first candidate": torch.zeros_like(next(iter(scores.values()))), **scores,
                f"mean of {', '.join(names)}": torch.stack(list(scores.values())).mean(0)}
    named = ", ".join(f"{n}={p}" for n, p in zip(names, args.clips, strict=True))
    print(f"{pool_header(args.pool, meta)} clips {named}")
    print_accuracy_table("reranker", settings, passed, rows, args.ks)
    print(f"\n({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
