"""Peak memory of reading one large PNG for training (images.load_rgb), each in a fresh process.

Two pictures under Pillow's pixel bound (89 megapixels) but small on disk: 9,400 x 9,400 of 16-bit RGBA and of
16-bit grey, rows of constant colour (they compress to well under a megabyte). Each is read --reps times in a
fresh Python process (peak RSS from getrusage, which includes the interpreter and torch: the baseline row reads
a 64 x 64 picture); with --src DIR, a second source tree (another checkout's src/) is measured alternately, side
by side.

    PYTHONPATH=src python bench/large_png_memory.py [--src /tmp/old/src] [--reps 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

PROBE = """
import resource, sys
from pathlib import Path
from t2i_cli.images import load_rgb
load_rgb(Path(sys.argv[1]), 64)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""


NAMES = {"small 64x64 RGB": "small.png", "16-bit RGBA 9400x9400": "rgba16.png", "16-bit grey 9400x9400": "grey16.png"}


def make(folder: Path) -> dict[str, Path]:
    side = 9400
    rows = np.linspace(0, 65535, side, dtype=np.uint16)
    rgba = np.empty((side, side, 4), dtype=">u2")
    rgba[..., 0] = rows[:, None]
    rgba[..., 1] = 65535 - rows[:, None]
    rgba[..., 2] = 30000
    rgba[..., 3] = np.where(np.arange(side) % 7 == 0, 0, 65535)[:, None]
    out = {name: folder / file for name, file in NAMES.items()}
    Image.new("RGB", (64, 64), (200, 30, 30)).save(out["small 64x64 RGB"])
    # Pillow writes 16-bit RGBA only from raw data: a PNG of mode RGBA;16B via frombuffer
    Image.frombuffer("RGBA", (side, side), rgba.tobytes(), "raw", "RGBA;16B", 0, 1).save(out["16-bit RGBA 9400x9400"])
    Image.fromarray(np.broadcast_to(rows[:, None], (side, side)).astype(np.uint16)).save(out["16-bit grey 9400x9400"])
    return out


def peak(src: str, path: Path) -> int:
    r = subprocess.run([sys.executable, "-c", PROBE, str(path)], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": src}, check=True)
    return int(r.stdout.strip())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", default=None, help="another source tree to measure side by side")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--make", default=None, help=argparse.SUPPRESS)  # (the child that makes the pictures)
    args = ap.parse_args()
    if args.make:
        make(Path(args.make))
        return
    here = str(Path(__file__).resolve().parents[1] / "src")
    trees = {"this build": here} | ({"--src": args.src} if args.src else {})
    print(f"- date {time.strftime('%Y-%m-%dT%H:%M')}; {platform.platform()}; {os.cpu_count()} CPUs; "
          f"Pillow {Image.__version__}; median of {args.reps} fresh processes, peak RSS in MB")
    with tempfile.TemporaryDirectory() as tmp:
        # made in a process of its own: a child's peak RSS starts from its parent's (Linux keeps the high-water
        # mark across fork and exec), and making the pictures takes 1.7 GB
        subprocess.run([sys.executable, __file__, "--make", tmp], check=True)
        pictures = {name: Path(tmp) / file for name, file in NAMES.items()}
        for name, path in pictures.items():
            print(f"  {name}: {path.stat().st_size:,} bytes on disk")
        print("\n| picture | " + " | ".join(trees) + " |\n|---|" + "---:|" * len(trees))
        for name, path in pictures.items():
            runs: dict[str, list[int]] = {t: [] for t in trees}
            for _ in range(args.reps):  # alternating, so the trees share the machine's state
                for tree, src in trees.items():
                    runs[tree].append(peak(src, path))
            print(f"| {name} | " + " | ".join(f"{statistics.median(v):,.0f}" for v in runs.values()) + " |")


if __name__ == "__main__":
    main()
