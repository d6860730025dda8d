"""What it costs to know, before the weights load, that a --top-p is greedy (at or below 1/codebook): the
transformer's config read from its safetensors header alone (weights.file_config, no tensor read), against loading
the weights folder (TextToImage.from_folder), the load a refusal made after it waited for. Median of --runs each,
in one process (torch already imported; the header read after a first warm-up read).

Usage: PYTHONPATH=src .venv/bin/python bench/greedy_header.py [--runs 7] [--weights weights]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from t2i_cli.pipeline import TextToImage
from t2i_cli.weights import file_config


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--weights", type=Path, default=Path("weights"))
    args = ap.parse_args()
    path = args.weights / "transformer.safetensors"
    vocab = file_config(path, "transformer")[0].image_vocab  # (warm-up)
    header, load = [], []
    for _ in range(args.runs):
        t = time.perf_counter()
        file_config(path, "transformer")
        header.append(time.perf_counter() - t)
        t = time.perf_counter()
        TextToImage.from_folder(args.weights, "cpu")
        load.append(time.perf_counter() - t)
    h, w = statistics.median(header), statistics.median(load)
    print(f"transformer file: {path.stat().st_size:,} bytes, image_vocab {vocab}")
    print(f"header config read (file_config): median {h * 1e3:.2f} ms of {args.runs}")
    print(f"weights folder load (from_folder): median {w * 1e3:.1f} ms of {args.runs}")
    print(f"header read / load: {h / w:.4f}")


if __name__ == "__main__":
    main()
