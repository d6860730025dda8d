"""What lines that are not JSON in a manifest above a folder cost `t2i data preview FOLDER` since they are read as
JSON's strings (data._rows_above's may_name: its escapes read, a string naming a picture that has its caption passed
over, one stat a path), this build against an older one side by side. The worst case: DIR/ds/train/ (16 pictures, the
even ones captioned) below DIR/ds/metadata.jsonl, --mb MB (16 MiB is all that is read) of lines that are not JSON (each
without its closing brace), every one holding the folder's name as a path's part: --kind captioned, each naming
train/pic_00.png (captioned), a string passed over now; --kind escaped, each naming it as
"\\u0074rain/pic_00.png" (its escapes read first, now); --kind caption, the name in a caption's string, "a train/tram
line" (read, found, counted, as before); --kind many, lines of 1 MB, each of 50,000 strings naming train/pic_00.png
(their quotes were counted from the line's start at each mention: give it --mb 2). Opened in a fresh process per
build and round, builds alternating. Prints the median seconds of opening the folder (open_source, as `data preview`
does) per build, and what each said of the manifest's lines left out that may caption the folder's pictures (data
caption refuses beside them). The older build's source is a folder, e.g. made with `git archive REV src | tar x -C DIR`.

Usage: python bench/lines_left_above_cost.py OLD_SRC DIR [--reps 5] [--mb 16] [--kind captioned|escaped|caption|many]
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
CHILD = """
import json, sys, time
from pathlib import Path
from t2i_cli.data import open_source, _scan_folder
t = time.perf_counter()
open_source(sys.argv[1], 16)
s = time.perf_counter() - t
_, skipped = _scan_folder(Path(sys.argv[1]))
print(json.dumps({"s": s, "lines": skipped.above_lines}))
"""
LINES = {"captioned": '{{"file_name": "train/pic_00.png", "text": "a photo number {k}"\n',
         "escaped": '{{"file_name": "\\\\u0074rain/pic_00.png", "text": "a photo number {k}"\n',
         "caption": '{{"file_name": "other/img_{k:07d}.jpg", "text": "a train/tram line {k}"\n',
         "many": '{{"files": [' + '"train/pic_00.png", ' * 50_000 + '"{k}"\n'}


def make(root: Path, mb: int, kind: str) -> Path:
    """The dataset under root/kind (made once, reused)."""
    from PIL import Image

    train = root / kind / "ds" / "train"
    made = root / kind / "ds" / ".made"
    if made.is_file() and made.read_text() == str(mb):
        return train
    train.mkdir(parents=True, exist_ok=True)
    for i in range(16):
        Image.new("RGB", (16, 16), (16 * i, 90, 200)).save(train / f"pic_{i:02d}.png")
        if i % 2 == 0:
            (train / f"pic_{i:02d}.txt").write_text(f"a picture number {i}\n", encoding="utf-8")
    rows, size, k = [], 0, 0
    while size < mb << 20:
        rows.append(LINES[kind].format(k=k))
        size += len(rows[-1])
        k += 1
    (root / kind / "ds" / "metadata.jsonl").write_text("".join(rows), encoding="utf-8")
    made.write_text(str(mb))
    return train


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("old_src")
    ap.add_argument("dir")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--mb", type=int, default=16)
    ap.add_argument("--kind", choices=sorted(LINES), default="captioned")
    args = ap.parse_args()
    folder = make(Path(args.dir), args.mb, args.kind)
    builds = {"old": str(Path(args.old_src).resolve()), "new": str(ROOT / "src")}
    times: dict[str, list[float]] = {b: [] for b in builds}
    said: dict[str, str] = {}
    for _ in range(args.reps):
        for build, src in builds.items():
            env = dict(os.environ, PYTHONPATH=src, OMP_NUM_THREADS="1")
            out = subprocess.run([sys.executable, "-c", CHILD, str(folder)], env=env, check=True,
                                 capture_output=True, text=True).stdout
            got = json.loads(out)
            times[build].append(got["s"])
            said[build] = got["lines"]
    print(f"# {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.node()}, "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}, {args.mb} MB of '{args.kind}' lines above {folder}, "
          f"median of {args.reps}")
    for build in builds:
        print(f"{build}: {statistics.median(times[build]):.3f} s ({', '.join(f'{t:.3f}' for t in times[build])})")
        print(f"  lines left out that may caption: {said[build][:160] or '(none)'}")


if __name__ == "__main__":
    main()
