"""What naming a t2i sheet wherever it sorts among a folder's pictures without a caption costs a folder's scan
(data._scan_folder, what data preview, training and data caption read first): each such PNG's header is now read
for t2i's mark, where an older build read it only until one picture's name could caption it. A folder of the PNGs
of SRC (e.g. /tmp/icons) copied without their captions, scanned in a fresh process per build and rep; prints each
build's median seconds and what it said of a sheet.

Usage: python bench/sheet_check_cost.py OLD_SRC [--pictures /tmp/icons] [--reps 3]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHILD = """
import sys, time
from pathlib import Path
from t2i_cli import data
t = time.perf_counter()
pairs, skipped = data._scan_folder(Path(sys.argv[1]))
took = time.perf_counter() - t
print(took, skipped[data.UNCAPTIONED], data.SHEET_AMONG in skipped)
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("old_src")
    ap.add_argument("--pictures", default="/tmp/icons")
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "pics"
        folder.mkdir()
        for p in sorted(Path(args.pictures).glob("*.png")):
            shutil.copyfile(p, folder / p.name)
        print("build  pictures without a caption  median s  sheet named")
        for build, src in (("old", str(Path(args.old_src).resolve())), ("new", str(ROOT / "src"))):
            runs = []
            for _ in range(args.reps):
                out = subprocess.run([sys.executable, "-c", CHILD, str(folder)], check=True, capture_output=True,
                                     text=True, env=dict(os.environ, PYTHONPATH=src)).stdout.split()
                runs.append(float(out[0]))
            print(f"{build:5}  {int(out[1]):26,}  {statistics.median(runs):8.3f}  {out[2]}")


if __name__ == "__main__":
    main()
