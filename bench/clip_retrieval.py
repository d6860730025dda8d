"""CLIP retrieval on world `val`: for each caption, is its own image the best-scoring among the candidates?

    .venv/bin/python bench/clip_retrieval.py [--weights weights] [--candidates 100] [--rounds 5]

Each round takes `candidates` consecutive val scenes (disjoint rounds) and reports text-to-image top-1
accuracy; the median and range over rounds are printed.
"""

from __future__ import annotations

import argparse
import statistics

import torch

from t2i_cli.data import open_source
from t2i_cli.weights import load_folder


@torch.inference_mode()
def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", default="weights")
    ap.add_argument("--candidates", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    bundle = load_folder(args.weights, need_clip=True)
    clip, tok = bundle.clip, bundle.tokenizer
    ds = open_source("world:val", clip.cfg.image_side, n_scenes=args.candidates * args.rounds)
    accs = []
    for r in range(args.rounds):
        items = [ds[r * args.candidates + i] for i in range(args.candidates)]
        images = torch.stack([x for x, _ in items])
        text = torch.tensor([tok.encode(c, clip.cfg.text_len).ids for _, c in items])
        img, txt = clip.embed(images, text)
        sims = txt @ img.t()  # (captions, images)
        accs.append(float((sims.argmax(1) == torch.arange(args.candidates)).float().mean()))
    print(f"text-to-image top-1 among {args.candidates} val scenes: median {statistics.median(accs):.1%} "
          f"(rounds: {', '.join(f'{a:.0%}' for a in accs)})")


if __name__ == "__main__":
    main()
