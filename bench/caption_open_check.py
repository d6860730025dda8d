"""What `t2i data caption`'s check that each picture opens costs (a picture t2i cannot open, truncated or
undecodable, is left without a caption: training leaves it out as an unreadable image).

plan_captions (what data caption and its --dry-run run) on folders of pictures without captions, with the check
and with it replaced by a no-op, in this process, each the median of --reps runs (the check's per-file memo
cleared before each run): the 363 GNOME icons of /tmp/icons (48 px PNGs), and --photos synthetic 4000 x 3000
pictures saved as JPEG (decoded reduced, as training decodes them) and as PNG (decoded whole).

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


def timed(folder: Path, reps: int, check: bool) -> tuple[float, int]:
    real = data._readable_digest
    if not check:
        data._readable_digest = lambda path, side=None: ("", "", None)
    try:
        times = []
        for _ in range(reps):
            data._digest_if_decodes.cache_clear()
            start = time.perf_counter()
            plan = data.plan_captions(folder)
            times.append(time.perf_counter() - start)
    finally:
        data._readable_digest = real
    return statistics.median(times), len(plan.writes)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--icons", type=Path, default=Path("/tmp/icons"))
    ap.add_argument("--photos", type=int, default=8)
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    made = folders(a.out, a.icons, a.photos)
    print(f"{'folder':<8} {'pictures':>8} {'without check s':>16} {'with check s':>13} {'per picture ms':>15}")
    for name, folder in made.items():
        n = sum(1 for _ in folder.iterdir())
        off, w_off = timed(folder, a.reps, False)
        on, w_on = timed(folder, a.reps, True)
        assert w_off == w_on, (w_off, w_on)  # every picture opens: the same captions either way
        print(f"{name:<8} {n:>8} {off:>16.3f} {on:>13.3f} {1000 * (on - off) / n:>15.1f}")


if __name__ == "__main__":
    main()
