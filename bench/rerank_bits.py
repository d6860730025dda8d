"""What `t2i rerank --bits` reads: the shipped transformer's bits per code of pictures it drew against real
pictures it did not (a folder of captioned images, e.g. the GNOME icons of bench/make_icon_folder.py), each
against its own prompt or caption and against an unrelated one. A t2i PNG is read by its recorded codes, a real
picture by the dVAE (rerank.add_bits, as the command does).

Usage: PYTHONPATH=src python bench/rerank_bits.py --data /tmp/icons [--n 8] [--weights weights]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from t2i_cli import rerank as rr
from t2i_cli.outputs import provenance, write_image
from t2i_cli.pipeline import TextToImage
from t2i_cli.sampling import SamplingConfig

PROMPTS = ["a red bird", "a blue fish on the left", "two green cats", "a big yellow star at night"]
UNRELATED = "a purple house above a white car"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="a folder of NAME.png + NAME.txt pictures")
    ap.add_argument("--n", type=int, default=8, help="pictures of each kind")
    ap.add_argument("--weights", type=Path, default=Path(__file__).resolve().parents[1] / "weights")
    args = ap.parse_args()
    pipe = TextToImage.from_folder(args.weights, "cpu")
    print(f"# {platform.node()} {time.strftime('%Y-%m-%d %H:%M')} torch {torch.__version__}, weights "
          f"{pipe.bundle.identity}, fp32, {args.n} pictures of each kind")
    with tempfile.TemporaryDirectory() as tmp:
        drawn = []
        for i in range(args.n):
            prompt = PROMPTS[i % len(PROMPTS)]
            g = pipe(prompt, n=1, seed=i)[0]
            path = write_image(g, Path(tmp), provenance(g, i, 1, SamplingConfig(), pipe.bundle.identity))
            drawn.append(rr.Ranked(path, prompt, 0.0))
        real = [rr.Ranked(p, p.with_suffix(".txt").read_text().splitlines()[0], 0.0)
                for p in sorted(args.data.glob("*.png"))[:args.n]]
        rows = []
        for kind, items in (("drawn by the model", drawn), ("real (not drawn by t2i)", real)):
            rr.add_bits(pipe, items)
            own = [r.bits for r in items]
            other = [rr.Ranked(r.path, UNRELATED, 0.0) for r in items]
            rr.add_bits(pipe, other)
            rows.append((kind, statistics.median(own), min(own), max(own), statistics.median(r.bits for r in other)))
    print("| pictures | bits per code, own prompt: median (min-max) | against an unrelated prompt: median |")
    print("|---|---:|---:|")
    for kind, med, lo, hi, other in rows:
        print(f"| {kind} | {med:.3f} ({lo:.3f}-{hi:.3f}) | {other:.3f} |")


if __name__ == "__main__":
    main()
