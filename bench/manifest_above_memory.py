"""What the byte search of a manifest above a folder (data._pieces_above) holds in memory, this build against an older
one: a JSONL of --mb MiB of two-byte lines "a", every one holding the name of a folder "a" below it, searched for
that name, each build in a fresh process. Prints, per build, the pieces found, the last line number, the seconds
and the process's peak resident memory (ru_maxrss) less its peak before the search (the file's bytes read included).
The older build's source is a folder, e.g. made with `git archive REV src | tar x -C DIR`.

Usage: python bench/manifest_above_memory.py OLD_SRC [--mb 16]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHILD = """
import resource, sys, time
from t2i_cli import data
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
n = last = 0
with open(sys.argv[1], "rb") as f:
    for line, raw in data._pieces_above(f, (b"a",), [None]):
        n, last = n + 1, line
took = time.perf_counter() - t
grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(f"{n:,} pieces, last line {last:,}, {took:.1f} s, peak memory +{grew / 1024:,.0f} MiB")
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("old_src")
    ap.add_argument("--mb", type=int, default=16)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        manifest = Path(tmp) / "metadata.jsonl"
        manifest.write_bytes(b"a\n" * (args.mb << 19))
        print(f"# {args.mb} MiB of two-byte lines naming folder 'a'")
        for build, src in (("old", str(Path(args.old_src).resolve())), ("new", str(ROOT / "src"))):
            out = subprocess.run([sys.executable, "-c", CHILD, str(manifest)], env=dict(os.environ, PYTHONPATH=src),
                                 check=True, capture_output=True, text=True).stdout
            print(f"{build}: {out.strip()}")


if __name__ == "__main__":
    main()
