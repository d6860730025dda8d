"""Reranking two-object prompts by their regions, compared on candidate pools (bench/candidate_pool.py).

The shipped reranker scores the whole picture against the whole prompt. For a prompt regional guidance
splits ("a red bird and a blue fish": "a red bird on the left", "a blue fish on the right",
world.captions.region_prompts), this also scores each object on its own, two ways, with the same CLIP (no
retraining):

- "crops": each object's half of the picture (the box the world draws it in, pipeline.crop_place),
  padded to a square with its edge pixels, against the object's caption without its place ("a red bird",
  world.captions.object_prompts; `t2i`'s reranker adds pipeline.CROP_SCORE_WEIGHT x their mean);
  the object is then ~1.4x larger in the reranker's 64 px input than in the whole picture;
- "places": the whole picture against each region prompt, place included ("a red bird on the left");
- with --tight, "tight m M": each object's half cropped further to the box of its pixels unlike the half's
  border (the background), widened by M of its side on each side, squared, so a tiny object fills the
  reranker's input; "nosize" scores it against the caption without its size word, which zooming in loses.

The score of a candidate is the shipped score plus w times the mean (or the minimum) of its region scores,
for several w; prompts without regions keep the shipped score. For each setting: the accuracy of the
candidate it ranks first among the first K (as bench/rerank_pool.py), beside the oracle.

Usage: PYTHONPATH=src python bench/rerank_regions.py --pool /tmp/pool8r/pool-seed1 [--ks 4 8] [--tight]
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from candidate_pool import load_pool, pool_header  # noqa: E402  (the pool's reader)
from rerank_pooling import print_accuracy_table  # noqa: E402  (the shared accuracy table)
from t2i_cli.pipeline import crop_place
from t2i_cli.weights import load_model, load_tokenizer
from t2i_cli.world.captions import object_prompts, region_prompts

TIGHT = [(m, nosize) for m in (0.25, 0.5) for nosize in (False, True)]  # the --tight variants


def tight_name(margin: float, nosize: bool) -> str:
    return f"tight m{margin:g}" + (" nosize" if nosize else "")


def tight_crop(image: torch.Tensor, place: str, margin: float, threshold: float = 0.15) -> torch.Tensor:
    """(3, H, W) in [0, 1] -> the square around the pixels of the place's box (crop_place) that differ from the
    median colour of the box's border by more than threshold in some channel, widened by margin x its side on
    each side and kept inside the box; the whole box if fewer than 4 pixels differ."""
    box = crop_place(image[None], place)[0]
    side = box.shape[-1]
    border = torch.cat([box[:, 0], box[:, -1], box[:, :, 0], box[:, :, -1]], dim=1)
    fg = (box - border.median(dim=1).values[:, None, None]).abs().amax(0) > threshold
    if int(fg.sum()) < 4:
        return box
    ys, xs = fg.any(1).nonzero()[:, 0], fg.any(0).nonzero()[:, 0]
    y0, y1, x0, x1 = int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1
    s = min(side, int(max(y1 - y0, x1 - x0) * (1 + 2 * margin)) + 1)
    top = min(max(0, (y0 + y1) // 2 - s // 2), side - s)
    left = min(max(0, (x0 + x1) // 2 - s // 2), side - s)
    return box[:, top:top + s, left:left + s]


def without_size(caption: str) -> str:
    """"a small blue fish on a pink background" -> "a blue fish on a pink background" (article fixed)."""
    text = re.sub(r"^an? (small|big) ", "a ", caption)
    return re.sub(r"^a (?=[aeiou])", "an ", text)


@torch.inference_mode()
def region_scores(clip, tok, images: torch.Tensor, prompts: list[str], tight: bool = False
                  ) -> dict[str, torch.Tensor]:
    """Per candidate (P, K): the shipped score, and for prompts with regions the mean and the minimum of the
    crop scores and of the place scores (NaN where a prompt has no regions); with tight, the mean of each
    tight crop variant's scores too."""
    P, K = images.shape[:2]
    names = ["crops mean", "crops min", "places mean", "places min"]
    names += [f"{tight_name(*v)} mean" for v in TIGHT] if tight else []
    out = {k: torch.full((P, K), float("nan")) for k in names}
    shipped = torch.empty(P, K)

    def ids(text: str) -> torch.Tensor:
        return torch.tensor([tok.encode(text, clip.cfg.text_len).ids])

    for p, prompt in enumerate(prompts):
        x = images[p].float() / 255
        shipped[p] = clip.score(x, ids(prompt))
        regions, objects = region_prompts(prompt), object_prompts(prompt)
        if not regions:
            continue
        crops = torch.stack([clip.score(crop_place(x, place), ids(text)) for text, place in objects])
        places = torch.stack([clip.score(x, ids(text)) for text, _ in regions])
        out["crops mean"][p], out["crops min"][p] = crops.mean(0), crops.amin(0)
        out["places mean"][p], out["places min"][p] = places.mean(0), places.amin(0)
        for margin, nosize in TIGHT if tight else []:
            out[f"{tight_name(margin, nosize)} mean"][p] = torch.stack([
                clip.score(torch.stack([clip.fit_side(tight_crop(x[k], place, margin)[None])[0] for k in range(K)]),
                           ids(without_size(text) if nosize else text))
                for text, place in objects]).mean(0)
    return {"shipped": shipped, **out}


def pool_parser(doc: str) -> argparse.ArgumentParser:
    """The options of a script that scores one pool with one CLIP: --pool, --clip, --tokenizer, --ks."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pool", type=Path, required=True, help="OUT/pool-seedS (without suffix)")
    ap.add_argument("--clip", type=Path, default=Path("weights/clip.safetensors"))
    ap.add_argument("--tokenizer", type=Path, default=Path("weights/tokenizer.json"))
    ap.add_argument("--ks", type=int, nargs="+", default=[4, 8])
    return ap


def main() -> None:
    ap = pool_parser(__doc__)
    ap.add_argument("--weights", type=float, nargs="+", default=[0.5, 1, 2, 4])
    ap.add_argument("--tight", action="store_true", help="also the tight crops around each object")
    args = ap.parse_args()
    t0 = time.time()
    tensors, meta = load_pool(args.pool)
    passed, rows = tensors["passed"], meta["rows"]
    clip, tok = load_model(args.clip, "clip"), load_tokenizer(args.tokenizer)
    parts = region_scores(clip, tok, tensors["images"], [r["prompt"] for r in rows], args.tight)
    shipped = parts["shipped"]
    # all-equal scores rank the first candidate first (argmax keeps the first of ties)
    settings = {"first candidate": torch.zeros_like(shipped), "shipped": shipped}
    for name in (k for k in parts if k != "shipped"):
        extra = parts[name]
        has = ~extra.isnan()
        for w in args.weights:
            settings[f"shipped + {w:g} x {name}"] = torch.where(has, shipped + w * extra, shipped)
        settings[f"{name} alone"] = torch.where(has, extra, shipped)
    print(f"{pool_header(args.pool, meta)} clip {args.clip}")
    print_accuracy_table("reranker", settings, passed, rows, args.ks)
    print(f"\n({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
