"""How long a folder source takes to open as the folder grows in the files a copy from a Mac leaves (t2i 0.16.0):
N pictures' `.txt` captions beside N macOS `._NAME.png` AppleDouble files (a copy from a Mac's disk or a zip made
there writes one beside each picture; they are no pictures and t2i sets them apart), and 20 real pictures with
captions (bench/make_icon_folder.py's GNOME icons) so that the folder has pairs to read. For each build (a `src`
folder, e.g. `git archive REV src | tar -x -C DIR`) and each N: the median time of `data.open_source` on the
folder in a fresh process, and the pairs and the ._ files counted. Builds alternate within each rep.

Usage: python bench/scan_scale.py ICONS OUT --build old=DIR/src --build new=src [--n 2000 --n 4000] [--reps 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

PROBE = """
import sys, time
from t2i_cli import data
t = time.perf_counter()
ds = data.open_source(sys.argv[1], 64, part="all")
took = time.perf_counter() - t
said = ds.skipped_message() or ""
print(f"{took:.4f} {len(ds)} {'macOS metadata file' in said}")
"""


def build_folder(icons: Path, out: Path, n: int) -> Path:
    folder = out / f"n{n}"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for p in sorted(icons.glob("*.png"))[:20]:
        shutil.copyfile(p, folder / p.name)
        shutil.copyfile(p.with_suffix(".txt"), folder / p.with_suffix(".txt").name)
    fork = b"\x00\x05\x16\x07" + bytes(78)  # an AppleDouble header's magic, as a Mac writes one
    for i in range(n):
        (folder / f"._photo-{i:06d}.png").write_bytes(fork)
        (folder / f"photo-{i:06d}.txt").write_text(f"photo number {i}\n", encoding="utf-8")
    return folder


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("icons", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--build", action="append", required=True, help="NAME=SRC_DIR")
    ap.add_argument("--n", type=int, action="append")
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    builds = dict(b.split("=", 1) for b in a.build)
    sizes = a.n or [1000, 2000, 4000, 8000]
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} CPUs, load "
          f"{os.getloadavg()[0]:.2f}, reps {a.reps}, builds {builds}")
    for n in sizes:
        folder = build_folder(a.icons, a.out, n)
        times: dict[str, list[float]] = {name: [] for name in builds}
        seen: dict[str, str] = {}
        for _ in range(a.reps):
            for name, src in builds.items():
                env = dict(os.environ, PYTHONPATH=str(Path(src).resolve()))
                got = subprocess.run([sys.executable, "-c", PROBE, str(folder)], env=env, capture_output=True,
                                     text=True, check=True).stdout.split()
                times[name].append(float(got[0]))
                seen[name] = f"{got[1]} pairs, ._ files set apart: {got[2]}"
        line = "; ".join(f"{name} {statistics.median(t):.3f} s ({seen[name]})" for name, t in times.items())
        print(f"N {n:6d} ._ files + {n} captions: {line}")


if __name__ == "__main__":
    main()
