"""What `t2i data caption` makes of every distinct file name on the system, this build against an older one: the
stem of every file under the roots (default /usr/share, /usr/lib and the project's virtual environment's lib: about
77,000 names of every kind, pictures or not, a real mix of words, ids, versions, counters and abbreviations) and any
names given in --names files (one a line), captioned by name_captions.caption_of in a fresh process per build (the
older build's source given as a folder, e.g. made with `git archive REV src | tar x -C DIR`). Prints how many names,
how many captions differ, and every differing caption (up to --show); the names each build would read as a Korean
name before a "-min" (name_captions._KOREAN_NAME, where the build has it); and, of this build's captions, the series
of one folder (3 names or more captioned "NAME N"), counted by their shape (with its start, 1, or not; two numbers in
a row or none), those with their start and none in a row printed: the shape of "apollo 1, 11, 13" and "bird 1, 4, 9".

Usage: python bench/name_corpus.py OLD_SRC [--roots /usr/share /usr/lib VENV/lib] [--names FILE ...] [--show 200]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHILD = """
import json, sys
from t2i_cli import name_captions
names = json.load(open(sys.argv[1]))
korean = getattr(name_captions, "_KOREAN_NAME", None)
print(json.dumps({"captions": [name_captions.caption_of(n) for n in names],
                  "korean": [n for n in names if korean is not None and korean.fullmatch(n)]}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("old_src")
    ap.add_argument("--roots", nargs="+", default=["/usr/share", "/usr/lib", str(Path(sys.prefix) / "lib")])
    ap.add_argument("--names", nargs="*", default=[], help="files of more names to caption, one a line")
    ap.add_argument("--show", type=int, default=200)
    args = ap.parse_args()
    seen: dict[str, None] = {}
    folders: dict[str, list[str]] = {}
    for root in args.roots:
        for folder, _, files in os.walk(root):
            folders[folder] = [Path(f).stem for f in files]
            for f in files:
                seen.setdefault(Path(f).stem, None)
    system = len(seen)
    for path in args.names:
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            if line.strip():
                seen.setdefault(line.strip(), None)
    names = sorted(seen)
    work = Path(os.environ.get("TMPDIR", "/tmp")) / f"name_corpus_{os.getpid()}.json"
    work.write_text(json.dumps(names), encoding="utf-8")
    got = {}
    try:
        for build, src in (("old", str(Path(args.old_src).resolve())), ("new", str(ROOT / "src"))):
            out = subprocess.run([sys.executable, "-c", CHILD, str(work)], env=dict(os.environ, PYTHONPATH=src),
                                 check=True, capture_output=True, text=True).stdout
            got[build] = json.loads(out)
    finally:
        work.unlink(missing_ok=True)
    print(f"# {len(names):,} names ({system:,} of files under {' '.join(args.roots)}, "
          f"{len(names) - system:,} more from --names)")
    for build, out in got.items():
        print(f"{build}: {sum(c is None for c in out['captions']):,} without a caption; read as a Korean name before "
              f"-min: {len(out['korean'])} {out['korean'][:12]}")
    differ = [(n, a, b) for n, a, b in zip(names, got["old"]["captions"], got["new"]["captions"], strict=True)
              if a != b]
    print(f"captions that differ: {len(differ)}")
    for n, a, b in differ[:args.show]:
        print(f"  {n!r}: old {a!r}, new {b!r}")
    caption = dict(zip(names, got["new"]["captions"], strict=True))
    shapes: dict[str, list[tuple[str, str, list[int]]]] = {}
    for folder, stems in folders.items():
        series: dict[str, set[int]] = {}
        for stem in stems:
            if (m := re.fullmatch(r"(.+) ([1-9][0-9]{0,3})", caption[stem] or "")) is not None:
                series.setdefault(m.group(1), set()).add(int(m.group(2)))
        for base, numbers in series.items():
            if len(numbers) >= 3:
                shape = (("with its start" if 1 in numbers else "without its start") + ", "
                         + ("two in a row" if any(n + 1 in numbers for n in numbers) else "none in a row"))
                shapes.setdefault(shape, []).append((folder, base, sorted(numbers)))
    print("series of 3 names or more in one folder (this build's captions): "
          + ", ".join(f"{shape} {len(found)}" for shape, found in sorted(shapes.items())))
    for folder, base, numbers in shapes.get("with its start, none in a row", []):
        print(f"  {folder}: {base!r} {numbers[:12]}")


if __name__ == "__main__":
    main()
