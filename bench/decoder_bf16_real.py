"""The dVAE decoder in bf16 (what `--precision auto` runs on a CPU with native bf16 since t2i 0.6.0) against fp32
on pictures t2i did not draw: every picture of a folder (or a data source) is encoded by the fp32 encoder, then
decoded by the fp32 decoder and by the same decoder cast to bf16 (DVAE.decode_in). Reports the reconstruction
PSNR of each against the picture, and how far the bf16 pixels move from the fp32 ones (8-bit levels).

Usage: PYTHONPATH=src .venv/bin/python bench/decoder_bf16_real.py DVAE.safetensors SOURCE [SOURCE ...]
       [--part all|train|val] [--threads 2]
(SOURCE: a folder of image + .txt pairs, a .jsonl manifest or world:val, at the dVAE's own image side)
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import time

import torch

from t2i_cli.data import open_source
from t2i_cli.models.dvae import psnr
from t2i_cli.weights import load_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dvae")
    ap.add_argument("sources", nargs="+")
    ap.add_argument("--part", default="all")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit", type=int, default=512, help="pictures per source at most")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    fp32 = load_model(args.dvae, "dvae")
    bf16 = copy.deepcopy(fp32).decode_in(torch.bfloat16)
    side = fp32.cfg.image_side
    print(f"# {platform.node()} {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC torch {torch.__version__}, "
          f"{args.threads} threads, load {os.getloadavg()[0]:.2f}; dVAE {args.dvae} ({side} px, "
          f"{'FSQ' if fp32.fsq is not None else 'Gumbel'} codes of {fp32.cfg.n_codes})")
    print("| source | pictures | PSNR fp32 decoder (dB) | PSNR bf16 decoder (dB) | bf16 - fp32 (dB) "
          "| mean pixel move (of 255) | largest | pixels moved |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for source in args.sources:
        data = open_source(source, side, part=args.part, n_scenes=args.limit)
        n = min(len(data), args.limit)
        x = torch.stack([data[i][0] for i in range(n)])
        p32, p16, moves = [], [], []
        with torch.inference_mode():
            for lo in range(0, n, 32):
                xb = x[lo:lo + 32]
                codes = fp32.codes_from_image(xb)
                a, b = fp32.image_from_codes(codes), bf16.image_from_codes(codes)
                p32.append(psnr(a, xb))
                p16.append(psnr(b, xb))
                moves.append((a.mul(255).round() - b.mul(255).round()).abs().flatten())
        p32_, p16_, move = torch.cat(p32).mean().item(), torch.cat(p16).mean().item(), torch.cat(moves)
        print(f"| {source} | {n} | {p32_:.3f} | {p16_:.3f} | {p16_ - p32_:+.3f} | {move.mean():.2f} | "
              f"{move.max():.0f} | {(move > 0).float().mean():.1%} |")


if __name__ == "__main__":
    main()
