"""images.image_size of PNGs: how many decodes it makes and its time, for each t2i source tree given (the old build
from `git archive`, and this one), each in its own process. Pictures: a 12-megapixel PNG (noise) and the 363 GNOME
icons of an icon folder.

    OMP_NUM_THREADS=1 python bench/png_image_size.py --icons /tmp/icons --scratch DIR OLD_SRC NEW_SRC
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import json, sys, time
from pathlib import Path
from PIL import ImageFile
from t2i_cli import images
decodes = 0
real = ImageFile.ImageFile.load
def counted(self):
    global decodes
    if getattr(self, "_im", None) is None and getattr(self, "tile", None):  # (a load that decodes pixels)
        decodes += 1
    return real(self)
ImageFile.ImageFile.load = counted
out = {}
for name, paths, reps in json.loads(Path(sys.argv[1]).read_text()):
    decodes = 0
    sizes = [images.image_size(Path(p)) for p in paths]  # (warm: files in the page cache)
    decodes = 0
    start = time.perf_counter()
    for _ in range(reps):
        sizes = [images.image_size(Path(p)) for p in paths]
    out[name] = {"pictures": len(paths), "ms_each": 1000 * (time.perf_counter() - start) / reps / len(paths),
                 "decodes_each": decodes / reps / len(paths), "sizes": [list(x) for x in sizes]}
print(json.dumps(out))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--icons", type=Path, required=True)
    ap.add_argument("--scratch", type=Path, required=True)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("srcs", nargs="+", type=Path)
    a = ap.parse_args()
    import numpy as np
    from PIL import Image

    a.scratch.mkdir(parents=True, exist_ok=True)
    big = a.scratch / "photo12mp.png"
    if not big.exists():
        rng = np.random.default_rng(0)
        Image.fromarray(rng.integers(0, 256, (3000, 4000, 3), dtype=np.uint8)).save(big)
    sets = [["png 12 MP", [str(big)], a.reps], ["icons", sorted(map(str, a.icons.glob("*.png"))), a.reps]]
    print(f"{'build':<28}{'set':<12}{'pictures':>9}{'decodes/picture':>17}{'ms/picture':>12}  sizes as first build")
    first: dict = {}
    for src in a.srcs:
        listed = a.scratch / "sets.json"
        listed.write_text(json.dumps(sets))
        r = subprocess.run([sys.executable, "-c", CHILD, str(listed)], env={**os.environ, "PYTHONPATH": str(src),
                           "OMP_NUM_THREADS": "1"}, capture_output=True, text=True)
        if r.returncode:
            sys.exit(r.stderr[-2000:])
        for name, row in json.loads(r.stdout).items():
            same = first.setdefault(name, row["sizes"]) == row["sizes"]
            print(f"{str(src)[-28:]:<28}{name:<12}{row['pictures']:>9}{row['decodes_each']:>17.2f}"
                  f"{row['ms_each']:>12.2f}  {'all' if same else 'NOT ALL'}")


if __name__ == "__main__":
    main()
