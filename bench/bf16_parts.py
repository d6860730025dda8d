"""Two parts of a bf16 decode, each in its two forms side by side on the shipped weights: the dVAE's decode of
1, 4 and 16 images in fp32 against bf16 (DVAE.decode_in; and how far the bf16 pixels move, in 8-bit levels),
and the MLP's first product with its GELU as two calls against one fused oneDNN call (PackedLinear.gelu) at 2, 8
and 32 rows (1, 4 and 16 images with guidance). Forms alternate within each repetition; median of --reps.

Usage: PYTHONPATH=src .venv/bin/python bench/bf16_parts.py [--reps 7] [--threads 2] [--weights weights]
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import statistics
import time

import torch
import torch.nn.functional as F

from t2i_cli.models.transformer import PackedLinear, amx_tiles, can_pack_bf16
from t2i_cli.weights import load_model


def timed(fn, reps: int, inner: int) -> list[float]:
    fn()
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        out.append((time.perf_counter() - t0) / inner)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--weights", default="weights")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"# {platform.node()} {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC torch {torch.__version__}, "
          f"{args.threads} threads, load {os.getloadavg()[0]:.2f}, AMX tiles: {amx_tiles()}, reps {args.reps}")
    fp32 = load_model(f"{args.weights}/dvae.safetensors", "dvae")
    bf16 = copy.deepcopy(fp32).decode_in(torch.bfloat16)
    g, n_codes = fp32.cfg.grid, fp32.cfg.n_codes
    codes = torch.randint(0, n_codes, (16, g, g), generator=torch.Generator().manual_seed(0))
    print("\n| images | dVAE fp32 (ms) | dVAE bf16 (ms) | fp32 / bf16 | mean pixel move (of 255) | largest |")
    print("|---:|---:|---:|---:|---:|---:|")
    with torch.inference_mode():
        for n in (1, 4, 16):
            c = codes[:n]
            t = {"fp32": [], "bf16": []}
            for _ in range(args.reps):  # alternate
                t["fp32"] += timed(lambda c=c: fp32.image_from_codes(c), 1, 1)
                t["bf16"] += timed(lambda c=c: bf16.image_from_codes(c), 1, 1)
            a, b = (m.image_from_codes(c).mul(255).round() for m in (fp32, bf16))
            move = (a - b).abs()
            f, h = statistics.median(t["fp32"]) * 1e3, statistics.median(t["bf16"]) * 1e3
            print(f"| {n} | {f:.1f} | {h:.1f} | {f / h:.2f}x | {move.mean():.2f} | {move.max():.0f} |")
    if not can_pack_bf16():
        print("\n(no oneDNN bf16 linear kernels here: no fused GELU)")
        return
    tr = load_model(f"{args.weights}/transformer.safetensors", "transformer")
    fc = PackedLinear(tr.blocks[0].mlp[0])
    print("\n| rows | product then GELU (us) | fused (us) | two calls / fused |")
    print("|---:|---:|---:|---:|")
    with torch.inference_mode():
        for rows in (2, 8, 32):
            x = torch.randn(rows, fc.in_features, generator=torch.Generator().manual_seed(1)).bfloat16()
            t = {"two": [], "fused": []}
            for _ in range(args.reps):
                t["two"] += timed(lambda x=x: F.gelu(fc(x), approximate="tanh"), 1, 300)
                t["fused"] += timed(lambda x=x: fc.gelu(x), 1, 300)
            a, b = statistics.median(t["two"]) * 1e6, statistics.median(t["fused"]) * 1e6
            print(f"| {rows} | {a:.1f} | {b:.1f} | {a / b:.2f}x |")


if __name__ == "__main__":
    main()
