"""`t2i data caption` on a real folder of named pictures t2i did not draw: the GNOME Adwaita icon theme's 48 px
full-colour icons as the theme ships them (category sub-folders: apps, devices, places, ...; file names such as
`folder-pictures.png`, `x-office-document.png`, `face-smile-big.png`), copied without captions.

For each `--from` (name, folder): the command's time (the CLI in a subprocess, as a user runs it), the caption files
written, the pictures left without one, how many captions by name agree with bench/make_icon_folder.py's hand-made
rule (which also drops the MIME-style word "x"), a few examples, and how many pairs a training run then reads
(data.open_source on the folder). Run twice more, the command writes nothing and leaves every file as it was.

Usage: python bench/data_caption.py OUT [--theme /usr/share/icons/Adwaita] [--reps 3]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_icon_folder import caption as hand_caption  # noqa: E402
from t2i_cli import data  # noqa: E402


def copy_theme(theme: Path, out: Path) -> int:
    """The theme's 48x48 full-colour PNGs, category folders kept, no captions."""
    if out.exists():
        shutil.rmtree(out)
    n = 0
    for png in sorted((theme / "48x48").glob("*/*.png")):
        if "symbolic" in png.name:
            continue
        (out / png.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(png, out / png.parent.name / png.name)
        n += 1
    return n


def tree_digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(folder)).encode() + p.read_bytes())
    return h.hexdigest()[:16]


def t2i(*args: str) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "t2i_cli", *args], capture_output=True, text=True)
    return time.perf_counter() - start, r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--theme", type=Path, default=Path("/usr/share/icons/Adwaita"))
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} CPUs, load "
          f"{os.getloadavg()[0]:.2f}, theme {a.theme}, 48x48, reps {a.reps}")
    for source in ("name", "folder"):
        times = []
        for _ in range(a.reps):
            pictures = copy_theme(a.theme, a.out)
            seconds, r = t2i("data", "caption", str(a.out), "--from", source, "-q")
            if r.returncode != 0:
                raise SystemExit(f"t2i data caption --from {source} failed ({r.returncode}): {r.stderr.strip()}")
            times.append(seconds)
        captions = {p: p.read_text().strip() for p in sorted(a.out.rglob("*.txt"))}
        written = len(captions)
        left = sum(1 for p in a.out.rglob("*.png") if not p.with_suffix(".txt").exists())
        print(f"--from {source}: {pictures} pictures, {written} caption files written, {left} left without one, "
              f"median {statistics.median(times):.2f} s of {a.reps} runs ({', '.join(f'{t:.2f}' for t in times)})")
        if r.stderr.strip():
            print(f"  says: {r.stderr.strip()}")
        if source == "name":
            agree = sum(1 for p, c in captions.items() if c == hand_caption(p.stem))
            print(f"  agrees with make_icon_folder's rule on {agree} of {written} "
                  f"({100 * agree / max(written, 1):.1f}%); differ, e.g.:")
            for p, c in [(p, c) for p, c in captions.items() if c != hand_caption(p.stem)][:4]:
                print(f"    {p.name}: {c!r} (hand rule {hand_caption(p.stem)!r})")
        else:
            print(f"  captions: {', '.join(sorted(set(captions.values())))}")
        print("  e.g. " + "; ".join(f"{p.relative_to(a.out)}: {c!r}" for p, c in list(captions.items())[::97][:4]))
        ds = data.open_source(str(a.out), 16, val_fraction=0.0)
        print(f"  training reads {len(ds)} pairs; skipped: {ds.skipped_message()}")
        before = tree_digest(a.out)
        _, again = t2i("data", "caption", str(a.out), "--from", source)
        print(f"  again: exit {again.returncode}, {again.stdout.strip()!r}; folder unchanged: "
              f"{tree_digest(a.out) == before}")
        if source == "name":  # the same pairs as a Hugging Face-style metadata.csv (0.13.2 reads it as a manifest)
            rows = [(str(p.with_suffix(".png").relative_to(a.out)), c) for p, c in captions.items()]
            with open(a.out / "metadata.csv", "w", newline="", encoding="utf-8") as f:
                csv.writer(f).writerows([("file_name", "text"), *rows])
            manifest = data.open_source(str(a.out / "metadata.csv"), 16, val_fraction=0.0)
            same = sorted((Path(manifest.file_of(i)), tuple(manifest.captions_at(i))) for i in range(len(manifest))) \
                == sorted((Path(ds.file_of(i)), tuple(ds.captions_at(i))) for i in range(len(ds)))
            print(f"  as metadata.csv ({len(rows)} rows): {len(manifest)} pairs, the folder's pairs exactly: {same}")


if __name__ == "__main__":
    main()
