"""How long `t2i data caption` takes to make a caption from a file name (name_captions.caption_of), this build against
an older one side by side: every distinct stem of the picture files under /usr/share and /usr/lib (a real mix of
icon, theme and package names), captioned in a fresh process per build and round, builds alternating; prints the
median seconds per build and how many captions differ between them (the older build's source given as a folder,
e.g. made with `git archive REV src | tar x -C DIR`).

Usage: python bench/caption_speed.py OLD_SRC [--reps 5] [--roots /usr/share /usr/lib] [--show 12]
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUFFIXES = {".png", ".jpg", ".jpeg", ".svg", ".gif", ".webp", ".bmp", ".xpm", ".ico"}
CHILD = """
import json, sys, time
from t2i_cli.name_captions import caption_of
names = json.load(open(sys.argv[1]))
t = time.perf_counter()
out = [caption_of(n) for n in names]
print(json.dumps({"s": time.perf_counter() - t, "captions": out}))
"""


def stems(roots: list[str]) -> list[str]:
    seen: dict[str, None] = {}
    for root in roots:
        for _, _, files in os.walk(root):
            for f in files:
                p = Path(f)
                if p.suffix.lower() in SUFFIXES:
                    seen.setdefault(p.stem, None)
    return sorted(seen)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("old_src")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--roots", nargs="+", default=["/usr/share", "/usr/lib"])
    ap.add_argument("--show", type=int, default=12, help="how many of the differing captions to print")
    args = ap.parse_args()
    names = stems(args.roots)
    work = Path(os.environ.get("TMPDIR", "/tmp")) / f"caption_speed_{os.getpid()}.json"
    work.write_text(json.dumps(names), encoding="utf-8")
    builds = {"old": str(Path(args.old_src).resolve()), "new": str(ROOT / "src")}
    times: dict[str, list[float]] = {b: [] for b in builds}
    captions: dict[str, list] = {}
    try:
        for _ in range(args.reps):
            for build, src in builds.items():
                env = dict(os.environ, PYTHONPATH=src)
                out = subprocess.run([sys.executable, "-c", CHILD, str(work)], env=env, check=True,
                                     capture_output=True, text=True).stdout
                got = json.loads(out)
                times[build].append(got["s"])
                captions[build] = got["captions"]
    finally:
        work.unlink(missing_ok=True)
    load = os.getloadavg()[0]
    print(f"# {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.node()}, "
          f"{os.cpu_count()} CPUs, load {load:.2f}, {len(names)} names, median of {args.reps}")
    for build in builds:
        ts = ", ".join(f"{t:.3f}" for t in times[build])
        med = statistics.median(times[build])
        print(f"{build}: {med:.3f} s ({ts}), {1e3 * med / len(names):.3f} ms a name")
    differ = [(n, a, b) for n, a, b in zip(names, captions["old"], captions["new"], strict=True) if a != b]
    print(f"captions that differ: {len(differ)} of {len(names)}")
    for n, a, b in differ[:args.show]:
        print(f"  {n!r}: old {a!r}, new {b!r}")


if __name__ == "__main__":
    main()
