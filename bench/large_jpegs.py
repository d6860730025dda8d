"""What decoding a large JPEG at a reduced scale (`images.load_rgb`'s draft, t2i 0.9.2) costs and saves.

Quality: for every JPEG under the given folders (pictures t2i did not draw), the PSNR between load_rgb's
picture and the full decode's (the same centre square, Lanczos, from the whole-size picture), at each side,
with t2i's DRAFT_MARGIN and the others given.
Speed: NAME-12mp.jpg, 4000 x 3000 photos made from each of the first --photos of those JPEGs (upscaled, with
sensor-like noise, quality 90), read by load_rgb and by a full decode alternately, median of --reps.

    PYTHONPATH=src python bench/large_jpegs.py FOLDER [FOLDER ...] [--sides 64 128] [--photos 3] [--reps 5]
                                                [--margins 1 2]
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from t2i_cli import images
from t2i_cli.images import load_rgb, opened, square, to_rgb


def full_decode(path: Path, side: int) -> Image.Image:
    """load_rgb before t2i 0.9.2: the whole picture decoded, then the centre square resized."""
    with opened(path) as im:
        im.load()
        img = to_rgb(ImageOps.exif_transpose(im))
    return square(img, side)


def psnr(a: Image.Image, b: Image.Image) -> float:
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    mse = ((x - y) ** 2).mean()
    return math.inf if mse == 0 else 10 * math.log10(255 ** 2 / mse)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folders", nargs="+", type=Path)
    ap.add_argument("--sides", type=int, nargs="+", default=[64, 128])
    ap.add_argument("--photos", type=int, default=3)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--margins", type=int, nargs="+", default=[1, 2], help="other DRAFT_MARGINs to compare")
    args = ap.parse_args()
    jpegs = sorted({p for f in args.folders for p in f.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg")})
    print(f"# {platform.node()} {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}; {len(jpegs)} JPEGs")
    print("| DRAFT_MARGIN | side | pictures | decoded smaller | PSNR to the full decode: min | median |")
    print("|---:|---:|---:|---:|---:|---:|")
    shipped = images.DRAFT_MARGIN
    for margin in sorted({*args.margins, shipped}):
        images.DRAFT_MARGIN = margin
        for side in args.sides:
            values = [psnr(load_rgb(p, side), full_decode(p, side)) for p in jpegs]
            finite = [v for v in values if math.isfinite(v)]
            low, mid = min(finite, default=math.inf), statistics.median(finite) if finite else math.inf
            print(f"| {margin}{' (t2i)' if margin == shipped else ''} | {side} | {len(values)} | {len(finite)} | "
                  f"{low:.1f} dB | {mid:.1f} dB |")
    images.DRAFT_MARGIN = shipped
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        photos = []
        for p in jpegs[:args.photos]:
            with opened(p) as im:
                big = np.asarray(to_rgb(im).resize((4000, 3000), Image.BICUBIC), dtype=np.float32)
            big += rng.normal(0, 6, big.shape)
            out = Path(tmp) / f"{p.stem}-12mp.jpg"
            Image.fromarray(big.clip(0, 255).astype(np.uint8)).save(out, quality=90)
            photos.append(out)
        print("\n| photo | MB | side | full decode s | load_rgb s | faster |")
        print("|---|---:|---:|---:|---:|---:|")
        for photo in photos:
            for side in args.sides:
                t_full, t_new = [], []
                for _ in range(args.reps):
                    for fn, times in ((full_decode, t_full), (load_rgb, t_new)):
                        t0 = time.perf_counter()
                        fn(photo, side)
                        times.append(time.perf_counter() - t0)
                a, b = statistics.median(t_full), statistics.median(t_new)
                mb = photo.stat().st_size / 1e6
                print(f"| {photo.name} | {mb:.1f} | {side} | {a:.3f} | {b:.3f} | {a / b:.2f}x |")


if __name__ == "__main__":
    main()
