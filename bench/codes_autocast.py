"""Whether the dVAE's codes move under bf16 autocast (what the transformer stage trains under): the shipped
dVAE on 64 world:train scenes (or --data SRC's first 64 images), codes_from_image with and without autocast.

    PYTHONPATH=src python bench/codes_autocast.py LABEL [--weights weights] [--data SRC]
"""

import argparse
from pathlib import Path

import torch

from t2i_cli.data import open_source
from t2i_cli.weights import load_model


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("label", nargs="?", default="")
    ap.add_argument("--weights", type=Path, default=Path(__file__).resolve().parents[1] / "weights")
    ap.add_argument("--data", default="world:train", help="a data source (its first 64 images)")
    a = ap.parse_args()
    torch.set_num_threads(2)
    dvae = load_model(a.weights / "dvae.safetensors", "dvae", torch.device("cpu"))
    ds = open_source(a.data, dvae.cfg.image_side, n_scenes=64)
    x = torch.stack([ds[i][0] for i in range(min(64, len(ds)))])
    with torch.no_grad():
        c32 = dvae.codes_from_image(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            c16 = dvae.codes_from_image(x)
    print(a.label, f"{a.data}, {len(x)} images:", "codes that differ under bf16 autocast: %.2f%%"
          % (100 * (c32 != c16).float().mean()))


if __name__ == "__main__":
    main()
