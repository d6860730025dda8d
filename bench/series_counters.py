"""Which numbers at a caption's end `t2i data caption` takes for a folder's counter (name_captions.series_captions),
this build against an older one: every picture file under the roots (default /usr/share and /usr/lib) captioned by
its name, grouped by its folder as `data caption` plans them, each build in a fresh process (the older build's
source given as a folder, e.g. made with `git archive REV src | tar x -C DIR`). Prints how many captions end in a
number before the series rule, how many each build takes it off, and the captions that differ (up to --show).

Usage: python bench/series_counters.py OLD_SRC [--roots /usr/share /usr/lib] [--show 20]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUFFIXES = {".png", ".jpg", ".jpeg", ".svg", ".gif", ".webp", ".bmp", ".xpm", ".ico"}
CHILD = """
import json, sys
from pathlib import Path
from t2i_cli.name_captions import CaptionPlan, caption_of, series_captions
out = {}
for folder, files in json.load(open(sys.argv[1])).items():
    plan = CaptionPlan(Path(folder), "name")
    for f in files:
        if (caption := caption_of(Path(f).stem)) is not None:
            plan.writes.setdefault(Path(folder, Path(f).stem + ".txt"), (caption, []))[1].append(Path(folder, f))
    before = {str(t): c for t, (c, _) in plan.writes.items()}
    series_captions(plan)
    out.update({t: [before[t], c] for t, (c, _) in ((str(t), v) for t, v in plan.writes.items())})
print(json.dumps(out))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("old_src")
    ap.add_argument("--roots", nargs="+", default=["/usr/share", "/usr/lib"])
    ap.add_argument("--show", type=int, default=20)
    args = ap.parse_args()
    folders: dict[str, list[str]] = {}
    for root in args.roots:
        for folder, _, files in os.walk(root):
            pictures = sorted(f for f in files if Path(f).suffix.lower() in SUFFIXES)
            if pictures:
                folders[folder] = pictures
    work = Path(os.environ.get("TMPDIR", "/tmp")) / f"series_counters_{os.getpid()}.json"
    work.write_text(json.dumps(folders), encoding="utf-8")
    got = {}
    try:
        for build, src in (("old", str(Path(args.old_src).resolve())), ("new", str(ROOT / "src"))):
            out = subprocess.run([sys.executable, "-c", CHILD, str(work)], env=dict(os.environ, PYTHONPATH=src),
                                 check=True, capture_output=True, text=True).stdout
            got[build] = json.loads(out)
    finally:
        work.unlink(missing_ok=True)
    numbered = sum(1 for before, _ in got["new"].values() if before.rsplit(" ", 1)[-1].isdigit())
    print(f"# {sum(map(len, folders.values())):,} pictures in {len(folders):,} folders, {len(got['new']):,} captioned "
          f"by name, {numbered:,} of those captions end in a number")
    for build, captions in got.items():
        print(f"{build}: {sum(1 for before, after in captions.values() if before != after):,} numbers taken off as a "
              f"counter's")
    differ = sorted(t for t in got["new"] if got["old"].get(t) != got["new"][t])
    print(f"captions that differ: {len(differ)}")
    for t in differ[:args.show]:
        print(f"  {t}: old {got['old'][t][1]!r}, new {got['new'][t][1]!r}")


if __name__ == "__main__":
    main()
