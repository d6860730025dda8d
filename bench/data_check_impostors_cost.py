"""What session 47's checks of a folder's odd files cost a data check (t2i data preview, each training stage's
check): a Git LFS pointer, web page, SVG or HEIC under a picture's name (images.impostor, run on a file that does not
decode) and a wholly transparent picture (images.wholly_transparent, run on a picture blank once made white).

Builds a folder of real pictures (copies of /tmp/icons' GNOME icons, each name its own), transparent pictures blank
on white (drawn in white, or nothing drawn: the kinds a widget skin folder holds) and Git LFS pointer files, then
times data.open_source over it, its decode cache emptied before each pass, with those checks as they are and with
them stubbed out (as before them: "unreadable image", "blank once made white"), and the time spent inside each check
(the passes' wall times differ by more than that on a shared machine). Best of --repeats passes, one thread.

Usage: OMP_NUM_THREADS=1 python bench/data_check_impostors_cost.py [--icons /tmp/icons] [--real 2000]
       [--blank 1000] [--pointers 500] [--repeats 3] [--work DIR]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

from t2i_cli import data, images

LFS = ("version https://git-lfs.github.com/spec/v1\n"
       "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 12345\n")


def build(folder: Path, icons: Path, real: int, blank: int, pointers: int) -> None:
    pngs = sorted(icons.glob("*.png"))
    for i in range(real):
        src = pngs[i % len(pngs)]
        shutil.copyfile(src, folder / f"{src.stem}-{i}.png")
        (folder / f"{src.stem}-{i}.txt").write_text(f"{src.stem.replace('-', ' ')} {i}\n")
    for i in range(blank):  # half drawn in white (a sprite for a dark background), half with nothing drawn
        im = Image.new("RGBA", (48, 48), (255, 255, 255, 0))
        if i % 2 == 0:
            im.paste((255, 255, 255, 255), (4 + i % 20, 8, 30, 40))
        else:
            im.putpixel((i % 48, 0), (255, 255, 255, 0))  # (each file its own bytes)
        im.save(folder / f"skin-{i}.png")
        (folder / f"skin-{i}.txt").write_text(f"skin {i}\n")
    for i in range(pointers):
        (folder / f"pointer-{i}.png").write_text(LFS.replace("12345", str(10000 + i)))
        (folder / f"pointer-{i}.txt").write_text(f"pointer {i}\n")


def check(folder: Path) -> tuple[float, str]:
    data._digest_if_decodes.cache_clear()
    start = time.perf_counter()
    ds = data.open_source(str(folder), 64)
    return time.perf_counter() - start, ds.skipped_message() or f"using {len(ds)}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--icons", type=Path, default=Path("/tmp/icons"))
    ap.add_argument("--real", type=int, default=2000)
    ap.add_argument("--blank", type=int, default=1000)
    ap.add_argument("--pointers", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--work", type=Path, default=None)
    a = ap.parse_args()
    torch.set_num_threads(1)
    work = Path(tempfile.mkdtemp(dir=a.work))
    folder = work / "pics"
    folder.mkdir()
    try:
        build(folder, a.icons, a.real, a.blank, a.pointers)
        n = a.real + a.blank + a.pointers
        print(f"folder: {a.real} real icons, {a.blank} transparent pictures blank on white (half with nothing drawn), "
              f"{a.pointers} Git LFS pointers: {n} pictures")
        real_impostor, real_clear = images.impostor, images.wholly_transparent
        inside = {"impostor": [0, 0.0], "wholly_transparent": [0, 0.0]}  # calls, seconds inside (a "with" pass)

        def timed(name, fn):
            def wrapped(path):
                start = time.perf_counter()
                try:
                    return fn(path)
                finally:
                    inside[name][0] += 1
                    inside[name][1] += time.perf_counter() - start
            return wrapped

        times: dict[str, list[float]] = {"with the checks": [], "checks stubbed": []}
        said = {}
        for _ in range(a.repeats):  # (interleaved, so a busy moment of the machine falls on both)
            for name in times:
                stub = name == "checks stubbed"
                images.impostor = (lambda path: "") if stub else timed("impostor", real_impostor)
                images.wholly_transparent = (lambda path: False) if stub else timed("wholly_transparent", real_clear)
                seconds, said[name] = check(folder)
                times[name].append(seconds)
        images.impostor, images.wholly_transparent = real_impostor, real_clear
        for name, t in times.items():
            print(f"{name:16s} best {min(t):6.2f} s ({1000 * min(t) / n:.2f} ms a picture), passes "
                  + ", ".join(f"{s:.2f}" for s in t))
        for name, (calls, seconds) in inside.items():
            calls, seconds = calls // a.repeats, seconds / a.repeats
            print(f"inside {name}: {calls} calls a pass, {seconds:.3f} s a pass"
                  + (f" ({1000 * seconds / calls:.2f} ms a call)" if calls else ""))
        for name, line in said.items():
            print(f"{name}: {' '.join(line.split())[:400]}")
    finally:
        shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
