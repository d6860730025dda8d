"""How t2i 0.9.0's square crop (the centre square resampled alone, `images.square`) compares with 0.8's (the
whole picture resized on its short side, then centre-cropped) on real pictures: the pixel difference between
the two, and the pixels each resize makes, for every non-square picture under the given folders.

    PYTHONPATH=src python bench/square_crop.py FOLDER [FOLDER ...] [--side 64]
"""

from __future__ import annotations

import argparse
import datetime
import platform
from pathlib import Path

import numpy as np
from PIL import Image

from t2i_cli.images import IMAGE_SUFFIXES, opened, square, to_rgb


def old_square(img: Image.Image, side: int) -> tuple[Image.Image, int]:
    """t2i 0.8.1's square(), and the pixels of its intermediate resize."""
    w, h = img.size
    scale = side / min(w, h)
    nw, nh = max(side, round(w * scale)), max(side, round(h * scale))
    img = img.resize((nw, nh), Image.LANCZOS)
    left, top = (nw - side) // 2, (nh - side) // 2
    return img.crop((left, top, left + side, top + side)), nw * nh


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("folders", nargs="+", type=Path)
    ap.add_argument("--side", type=int, default=64)
    a = ap.parse_args()
    files = sorted(p for f in a.folders for p in f.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    print(f"# {platform.node()} {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, side {a.side}")
    rows = []
    for p in files:
        with opened(p) as im:
            im.load()
            img = to_rgb(im)
        if img.width == img.height:
            continue
        old, made = old_square(img, a.side)
        new = square(img, a.side)
        d = np.abs(np.asarray(old, dtype=np.int16) - np.asarray(new, dtype=np.int16))
        mse = float((d.astype(np.float64) ** 2).mean())
        psnr = float("inf") if mse == 0 else 10 * np.log10(255 ** 2 / mse)
        rows.append((p.name, img.size, made, float(d.mean()), int(d.max()), psnr))
    if not rows:
        raise SystemExit(f"no non-square picture among the {len(files)} in {', '.join(map(str, a.folders))}: "
                         "nothing to compare (square pictures are not cropped)")
    print("| picture | size | 0.8 resize pixels | mean difference (of 255) | largest | PSNR old vs new (dB) |")
    print("|---|---|---:|---:|---:|---:|")
    for name, size, made, mean, mx, psnr in rows:
        print(f"| {name} | {size[0]} x {size[1]} | {made:,} | {mean:.2f} | {mx} | {psnr:.1f} |")
    means = np.array([r[3] for r in rows])
    psnrs = np.array([r[5] for r in rows])
    print(f"{len(rows)} non-square pictures of {len(files)}: mean difference median {np.median(means):.2f}, "
          f"PSNR median {np.median(psnrs):.1f} dB (min {psnrs.min():.1f}); 0.9.0 resizes to {a.side}^2 = "
          f"{a.side ** 2:,} pixels each, 0.8 made up to {max(r[2] for r in rows):,}")


if __name__ == "__main__":
    main()
