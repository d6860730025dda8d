"""A folder shaped like a phone's photos, for timing training on large JPEGs: each picture of a captioned folder
(the GNOME icons of bench/make_icon_folder.py) composited on white, scaled to 4000 x 3000 (12 megapixels, the
picture centred at full height), with sensor-like noise, saved as a quality-90 JPEG beside its caption.

    python bench/make_photo_folder.py SOURCE OUT [--n 64] [--width 4000] [--height 3000]
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
from PIL import Image


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--width", type=int, default=4000)
    ap.add_argument("--height", type=int, default=3000)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=False)
    rng = np.random.default_rng(0)
    pictures = sorted(p for p in args.source.iterdir() if p.suffix == ".png" and p.with_suffix(".txt").is_file())
    for p in pictures[:args.n]:
        with Image.open(p) as im:
            icon = im.convert("RGBA")
        canvas = Image.new("RGBA", icon.size, (255, 255, 255, 255))
        canvas.alpha_composite(icon)
        side = args.height
        photo = Image.new("RGB", (args.width, args.height), (250, 250, 248))
        photo.paste(canvas.convert("RGB").resize((side, side), Image.BICUBIC), ((args.width - side) // 2, 0))
        pixels = np.asarray(photo, dtype=np.float32) + rng.normal(0, 6, (args.height, args.width, 3))
        Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(args.out / f"{p.stem}.jpg", quality=90)
        shutil.copy(p.with_suffix(".txt"), args.out / f"{p.stem}.txt")
    print(f"{len(pictures[:args.n])} photos in {args.out}")


if __name__ == "__main__":
    main()
