"""What `t2i data caption`'s check that each picture opens costs (a file t2i cannot open, empty, not a picture,
is left without a caption: training leaves it out as an unreadable image).

plan_captions (what data caption and its --dry-run run) on folders of pictures without captions: with no check,
with the check it makes (data._unopened: each picture's header read) and with a decode of each picture as
training's check decodes it (data._readable_digest: session 44's first check, not kept), in this process, each
the median of --reps runs (the decode's per-file memo cleared before each run): the 363 GNOME icons of /tmp/icons
(48 px PNGs), and --photos synthetic 4000 x 3000 pictures saved as JPEG (decoded reduced, as training decodes
them) and as PNG (decoded whole).

Usage: OMP_NUM_THREADS=1 python bench/caption_open_check.py OUT [--icons /tmp/icons] [--photos 8] [--reps 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import time
from pathlib import Path

from PIL import Image

from t2i_cli import data


def folders(out: Path, icons: Path, photos: int) -> dict[str, Path]:
    made = {"icons": out / "icons", "jpeg": out / "jpeg", "png": out / "png"}
    for f in made.values():
        if f.exists():
            shutil.rmtree(f)
        f.mkdir(parents=True)
    for png in sorted(icons.glob("*.png")):
        shutil.copyfile(png, made["icons"] / png.name)
    for i in range(photos):  # noise, so that neither format compresses it to nothing
        img = Image.effect_noise((4000, 3000), 60 + i).convert("RGB")
        img.save(made["jpeg"] / f"beach photo {chr(97 + i)}.jpg", quality=90)
        img.save(made["png"] / f"beach photo {chr(97 + i)}.png", compress_level=1)
    return made


def timed(folder: Path, reps: int, check: str) -> tuple[float, int]:
    real = data._unopened
    if check == "none":
        data._unopened = lambda path: ""
    elif check == "decode":
        data._unopened = lambda path: data._readable_digest(path)[1]
    try:
        times = []
        for _ in range(reps):
            data._digest_if_decodes.cache_clear()
            start = time.perf_counter()
            plan = data.plan_captions(folder)
            times.append(time.perf_counter() - start)
    finally:
        data._unopened = real
    return statistics.median(times), len(plan.writes)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--icons", type=Path, default=Path("/tmp/icons"))
    ap.add_argument("--photos", type=int, default=8)
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    made = folders(a.out, a.icons, a.photos)
    print(f"{'folder':<8} {'pictures':>8} {'no check s':>11} {'header s':>9} {'decode s':>9} "
          f"{'header ms/picture':>18} {'decode ms/picture':>18}")
    for name, folder in made.items():
        n = sum(1 for _ in folder.iterdir())
        (off, w_off), (head, w_head), (dec, w_dec) = (timed(folder, a.reps, c) for c in ("none", "header", "decode"))
        assert w_off == w_head == w_dec, (w_off, w_head, w_dec)  # every picture opens: the same captions each way
        print(f"{name:<8} {n:>8} {off:>11.3f} {head:>9.3f} {dec:>9.3f} {1000 * (head - off) / n:>18.2f} "
              f"{1000 * (dec - off) / n:>18.1f}")

if __name__ == "__main__":
    main()
