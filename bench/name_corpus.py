"""What `t2i data caption` makes of every distinct file name on the system, this build against an older one: the
stem of every file under the roots (default /usr/share, /usr/lib and the project's virtual environment's lib: about
77,000 names of every kind, pictures or not, a real mix of words, ids, versions, counters and abbreviations) and any
names given in --names files (one a line), captioned by name_captions.caption_of in a fresh process per build (the
older build's source given as a folder, e.g. made with `git archive REV src | tar x -C DIR`). Prints how many names,
how many captions differ, and every differing caption (up to --show).

Usage: python bench/name_corpus.py OLD_SRC [--roots /usr/share /usr/lib VENV/lib] [--names FILE ...] [--show 200]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHILD = """
import json, sys
from t2i_cli.name_captions import caption_of
print(json.dumps([caption_of(n) for n in json.load(open(sys.argv[1]))]))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("old_src")
    ap.add_argument("--roots", nargs="+", default=["/usr/share", "/usr/lib", str(Path(sys.prefix) / "lib")])
    ap.add_argument("--names", nargs="*", default=[], help="files of more names to caption, one a line")
    ap.add_argument("--show", type=int, default=200)
    args = ap.parse_args()
    seen: dict[str, None] = {}
    for root in args.roots:
        for _, _, files in os.walk(root):
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
    for build, captions in got.items():
        print(f"{build}: {sum(c is None for c in captions):,} without a caption")
    differ = [(n, a, b) for n, a, b in zip(names, got["old"], got["new"], strict=True) if a != b]
    print(f"captions that differ: {len(differ)}")
    for n, a, b in differ[:args.show]:
        print(f"  {n!r}: old {a!r}, new {b!r}")


if __name__ == "__main__":
    main()
