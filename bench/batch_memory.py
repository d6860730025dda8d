"""How many images one decode batch takes, before and after pipeline.DECODE_MEMORY (t2i 0.12.4).

For the shipped weights and for transformer configs of other sizes (the shipped dVAE and CLIPs beside them):
the fp32 state one image takes (TextToImage.image_bytes: 4 rows of KV cache with Jacobi's slack, or the
dVAE's activations; a CLIP scores in batches of its own), the images a `generate` batch and an eval batch take,
and that batch's state. Before
0.12.4 every model decoded 16 (generate) and 16 or 32 (eval) images whatever its size. Computed from the configs
(nothing is decoded); the test suite checks that the KV caches allocated follow these counts.

Usage: PYTHONPATH=src .venv/bin/python bench/batch_memory.py [--weights weights]
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from t2i_cli.pipeline import DECODE_MEMORY, MAX_BATCH, MAX_EVAL_BATCH, ROWS_PER_IMAGE, TextToImage
from t2i_cli.weights import MAX_ACTIVATION_BYTES, check_budget


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", type=Path, default=Path("weights"))
    args = ap.parse_args()
    pipe = TextToImage.from_folder(args.weights, device="cpu", need_clip=True, precision="fp32")
    real = pipe.bundle.transformer.cfg
    shapes = {"shipped": {},
              "24 x 1024": {"n_layer": 24, "n_head": 16, "n_embd": 1024},
              "64 x 512, text 3,800": {"n_layer": 64, "n_head": 8, "n_embd": 512, "text_len": 3800}}
    print(f"DECODE_MEMORY {DECODE_MEMORY / 2**30:.0f} GiB, {ROWS_PER_IMAGE} rows an image; "
          f"a file's per-sequence bound {MAX_ACTIVATION_BYTES / 2**30:.0f} GiB")
    print("| transformer | KV a row | state an image | generate batch (before) | its state (before) "
          "| eval batch (before) | its state (before) |")
    for name, change in shapes.items():
        cfg = dataclasses.replace(real, **change)
        check_budget(cfg)  # a file may carry it
        pipe.bundle.transformer.cfg = cfg
        per, row = pipe.image_bytes(), cfg.activation_bytes()
        gen, ev = pipe.per_batch(), pipe.fit(MAX_EVAL_BATCH)
        # Before: 16 images of 2 rows (guidance) and eval's 32 of up to 4 (guidance, two region prompts) or 16.
        old_ev = MAX_EVAL_BATCH if 4 * MAX_EVAL_BATCH * row <= 1 << 30 else 16
        print(f"| {name} | {row / 2**20:,.1f} MiB | {per / 2**20:,.0f} MiB | {gen} ({MAX_BATCH}) | "
              f"{gen * per / 2**30:.2f} GiB ({MAX_BATCH * per / 2**30:.2f}) | {ev} ({old_ev}) | "
              f"{ev * per / 2**30:.2f} GiB ({old_ev * per / 2**30:.2f}) |")
    pipe.bundle.transformer.cfg = real


if __name__ == "__main__":
    main()
