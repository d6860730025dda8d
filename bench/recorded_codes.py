"""How far the dVAE's reading of a picture t2i drew is from the codes it was drawn from: for each prompt, one
image drawn (the default precision, one candidate), written as `t2i generate` writes it, read back as `vary` and
`--image` read a picture (load_rgb at the model's side, then the dVAE encoder), and compared cell by cell with
the codes the PNG records. Before 0.12.7 an image prompt of t2i's own picture started from that reading.

Usage: PYTHONPATH=src .venv/bin/python bench/recorded_codes.py [--weights weights] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from t2i_cli.image_prompt import source_codes
from t2i_cli.images import load_rgb, tensor_from_image
from t2i_cli.outputs import made_from, provenance, write_image
from t2i_cli.pipeline import TextToImage

PROMPTS = ("a red bird", "two blue fish at night", "a yellow star above a green tree", "three red cars",
           "a small white cat on the left", "a purple house", "a big orange sun and a blue fish", "a pink flower")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default="weights")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    pipe = TextToImage.from_folder(Path(args.weights), "cpu", precision="auto")
    dvae, side = pipe.bundle.dvae, pipe.bundle.dvae.cfg.image_side
    print(f"# {platform.node()} {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, {os.cpu_count()} CPUs; "
          f"weights {pipe.bundle.identity}, {pipe.precision}, decoder {pipe.decoder_precision}, seed {args.seed}")
    print("| prompt | cells | the dVAE's reading agrees | vary/--image start from the recorded codes |")
    print("|---|---:|---:|---|")
    shares = []
    with tempfile.TemporaryDirectory() as work, torch.inference_mode():
        for prompt in PROMPTS:
            request = pipe.request(prompt)
            g = pipe(prompt, 1, args.seed)[0]
            meta = provenance(g, args.seed, 1, request.sampling, pipe.bundle.identity,
                              made_from(request, precision=pipe.precision))
            path = write_image(g, Path(work), meta)
            read = dvae.codes_from_image(tensor_from_image(load_rgb(path, side)).unsqueeze(0)).flatten()
            agree = int((read == g.codes.cpu()).sum())
            shares.append(agree / g.codes.numel())
            recorded = bool(torch.equal(source_codes(dvae, path), g.codes.cpu()))
            print(f"| {prompt} | {g.codes.numel()} | {agree} ({100 * shares[-1]:.0f}%) | "
                  f"{'yes' if recorded else 'no'} |")
    print(f"\nmedian agreement {100 * statistics.median(shares):.1f}%, mean {100 * statistics.mean(shares):.1f}%")


if __name__ == "__main__":
    main()
