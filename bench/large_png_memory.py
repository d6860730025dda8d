"""Peak memory and time of reading one large PNG (images.load_rgb, what training's loader and `data preview` call)
and of `t2i data preview` of a folder of one, each in a fresh process, this build against another side by side.

Pictures under Pillow's pixel bound (89 megapixels) but small on disk, rows of changing colour (they compress to
well under a megabyte): 9,000 x 9,000 of 8-bit RGBA (a seventh of its rows transparent, a fifth half so), RGB, LA
and a palette with transparent entries, 9,400 x 9,400 of 16-bit RGBA and of 16-bit grey. Each is read --reps
times in a fresh Python process (peak RSS from getrusage, which includes the interpreter and torch: the baseline
row reads a 64 x 64 picture; seconds are load_rgb's own); the preview rows time the whole command (wait4's peak
RSS). Each build's bytes are compared: "same" when every build loads every picture to the same bytes. With --old
REV, a git worktree of that commit is measured (alternately, so the builds share the machine's state); --src DIR
names another checkout's src/ instead.

    PYTHONPATH=src python bench/large_png_memory.py [--old 9aae54b | --src /tmp/old/src] [--reps 3]
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
import hashlib, resource, sys, time
from pathlib import Path
from t2i_cli.images import load_rgb
t = time.perf_counter()
img = load_rgb(Path(sys.argv[1]), 64)
t = time.perf_counter() - t
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, t, hashlib.sha256(img.tobytes()).hexdigest())
"""


NAMES = {"small 64x64 RGB": "small.png", "RGBA 9000x9000": "rgba.png", "RGB 9000x9000": "rgb.png",
         "LA 9000x9000": "la.png", "palette+tRNS 9000x9000": "ptrns.png", "16-bit RGBA 9400x9400": "rgba16.png",
         "16-bit grey 9400x9400": "grey16.png"}
PREVIEW = "preview of RGBA 9000x9000"


def make(folder: Path) -> None:
    out = {name: folder / file for name, file in NAMES.items()}
    Image.new("RGB", (64, 64), (200, 30, 30)).save(out["small 64x64 RGB"])
    s = 9000
    rows = np.linspace(0, 255, s).astype(np.uint8)
    rgba = np.empty((s, s, 4), np.uint8)
    rgba[..., 0] = rows[:, None]
    rgba[..., 1] = 255 - rows[:, None]
    rgba[..., 2] = rows[None, :]
    rgba[..., 3] = np.where(np.arange(s) % 7 == 0, 0, np.where(np.arange(s) % 5 == 0, 128, 255))[:, None]
    Image.fromarray(rgba, "RGBA").save(out["RGBA 9000x9000"])
    Image.fromarray(np.ascontiguousarray(rgba[..., :3]), "RGB").save(out["RGB 9000x9000"])
    Image.fromarray(np.ascontiguousarray(rgba[..., [0, 3]]), "LA").save(out["LA 9000x9000"])
    del rgba
    index = (np.add.outer(np.arange(s) // 40, np.arange(s) // 40) % 256).astype(np.uint8)
    palette = Image.frombytes("P", (s, s), index.tobytes())
    palette.putpalette([v for i in range(256) for v in (i, i * 7 % 256, 255 - i)])
    palette.save(out["palette+tRNS 9000x9000"], transparency=bytes(0 if i % 3 == 0 else 255 for i in range(256)))
    del index, palette
    side = 9400
    rows16 = np.linspace(0, 65535, side, dtype=np.uint16)
    rgba16 = np.empty((side, side, 4), dtype=">u2")
    rgba16[..., 0] = rows16[:, None]
    rgba16[..., 1] = 65535 - rows16[:, None]
    rgba16[..., 2] = 30000
    rgba16[..., 3] = np.where(np.arange(side) % 7 == 0, 0, 65535)[:, None]
    # Pillow writes 16-bit RGBA only from raw data: a PNG of mode RGBA;16B via frombuffer
    Image.frombuffer("RGBA", (side, side), rgba16.tobytes(), "raw", "RGBA;16B", 0, 1).save(out["16-bit RGBA 9400x9400"])
    del rgba16
    Image.fromarray(np.broadcast_to(rows16[:, None], (side, side)).astype(np.uint16)).save(out["16-bit grey 9400x9400"])
    preview = folder / "preview"
    preview.mkdir()
    os.link(out["RGBA 9000x9000"], preview / "big.png")
    (preview / "big.txt").write_text("a large picture")


def load(src: str, path: Path) -> tuple[int, float, str]:
    r = subprocess.run([sys.executable, "-c", PROBE, str(path)], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": src}, check=True)
    mb, seconds, digest = r.stdout.split()
    return int(mb), float(seconds), digest


def preview(src: str, folder: Path, out: Path) -> tuple[int, float, str]:
    start = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-m", "t2i_cli", "data", "preview", str(folder), "--n", "1", "--side", "64",
                          "--out", str(out), "--force", "-q"], env={**os.environ, "PYTHONPATH": src},
                         stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(p.pid, 0)
    if status:
        raise SystemExit(f"data preview failed ({status})")
    return usage.ru_maxrss // 1024, time.perf_counter() - start, ""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--old", default=None, help="a commit to measure side by side (a git worktree of it)")
    ap.add_argument("--src", default=None, help="another source tree to measure side by side")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--make", default=None, help=argparse.SUPPRESS)  # (the child that makes the pictures)
    args = ap.parse_args()
    if args.make:
        make(Path(args.make))
        return
    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as tmp:
        other = args.src
        if args.old:
            subprocess.run(["git", "-C", str(root), "worktree", "add", "--detach", f"{tmp}/old", args.old],
                           check=True, capture_output=True)
            other = f"{tmp}/old/src"
        try:
            run(args, {"this build": str(root / "src")} | ({args.old or "--src": other} if other else {}), Path(tmp))
        finally:
            if args.old:
                subprocess.run(["git", "-C", str(root), "worktree", "remove", "--force", f"{tmp}/old"], check=False)


def run(args: argparse.Namespace, trees: dict[str, str], tmp: Path) -> None:
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print(f"- date {time.strftime('%Y-%m-%dT%H:%M')}; {platform.platform()}; {os.cpu_count()} CPUs; load "
          f"{os.getloadavg()[0]:.2f}; Pillow {Image.__version__}; this build {rev}; median of {args.reps} fresh "
          f"processes, peak RSS in MB, seconds (load_rgb's own; the preview's whole command)")
    # made in a process of its own: a child's peak RSS starts from its parent's (Linux keeps the high-water mark
    # across fork and exec), and making the pictures takes 1.3 GB
    subprocess.run([sys.executable, __file__, "--make", str(tmp)], check=True)
    pictures = {name: tmp / file for name, file in NAMES.items()}
    for name, path in pictures.items():
        print(f"  {name}: {path.stat().st_size:,} bytes on disk")
    print("\n| picture | " + " | ".join(f"{t} MB | {t} s" for t in trees) + " | pixels |\n|---|"
          + "---:|---:|" * len(trees) + "---|")
    for name in [*pictures, PREVIEW]:
        runs: dict[str, list[tuple[int, float, str]]] = {t: [] for t in trees}
        for _ in range(args.reps):  # alternating, so the trees share the machine's state
            for tree, src in trees.items():
                runs[tree].append(preview(src, tmp / "preview", tmp / "sheet.png") if name == PREVIEW
                                  else load(src, pictures[name]))
        digests = {d for v in runs.values() for _, _, d in v}
        print(f"| {name} | " + " | ".join(f"{statistics.median(m for m, _, _ in v):,.0f} | "
                                          f"{statistics.median(s for _, s, _ in v):.2f}" for v in runs.values())
              + f" | {'' if name == PREVIEW else 'same' if len(digests) == 1 else 'DIFFER'} |")


if __name__ == "__main__":
    main()
