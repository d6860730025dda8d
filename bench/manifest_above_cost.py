"""What manifests above a folder cost `t2i data preview FOLDER` (data._manifest_above reads the first 16 MiB of each
.jsonl one or two folders up, to say which of the folder's pictures without a caption they name), this build against
an older one side by side: a scraped dataset's layout, DIR/ds/train/ (pictures, half without a caption) beside four
JSONL parts of another name in DIR/ds (parts-000.jsonl ..., --mb MB each, rows naming other folders' pictures, one row
in 1,000 a caption with a JSON escape, "caf\\u00e9", and --named rows naming pictures of train/), opened in a fresh
process per build and round, builds alternating. Prints the median seconds of opening the folder (open_source, as
`data preview` does) per build, and whether both builds said the same (the summary line, and the pictures a manifest
above names, which `t2i data caption` leaves as they are). The older build's source is a folder, e.g. made with
`git archive REV src | tar x -C DIR`.

Usage: python bench/manifest_above_cost.py OLD_SRC DIR [--reps 5] [--mb 20] [--named 4]
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
ds = open_source(sys.argv[1], 16)
s = time.perf_counter() - t
_, skipped = _scan_folder(Path(sys.argv[1]))
print(json.dumps({"s": s, "said": ds.skipped_message(), "named": sorted(skipped.above_named)}))
"""


def make(root: Path, mb: int, named: int) -> Path:
    """The dataset under root (made once, reused): ds/train with 16 pictures, the even ones captioned."""
    from PIL import Image

    train = root / "ds" / "train"
    if (root / "ds" / "parts-003.jsonl").is_file() and (root / "ds" / ".made").read_text() == f"{mb} {named}":
        return train
    train.mkdir(parents=True, exist_ok=True)
    for i in range(16):
        Image.new("RGB", (16, 16), (16 * i, 90, 200)).save(train / f"pic_{i:02d}.png")
        if i % 2 == 0:
            (train / f"pic_{i:02d}.txt").write_text(f"a picture number {i}\n", encoding="utf-8")
    for part in range(4):
        rows, size, k = [], 0, 0
        while size < mb << 20:
            caption = "a caf\u00e9 table" if k % 1000 == 999 else f"a photo of a red bird number {k}"
            row = json.dumps({"file_name": f"other_{part}/img_{k:07d}.jpg", "text": caption}) + "\n"
            rows.append(row)
            size += len(row)
            k += 1
        for j in range(named):  # rows naming pictures of train/ without a caption, spread through the part
            at = (j + 1) * len(rows) // (named + 2)
            rows.insert(at, json.dumps({"file_name": f"train/pic_{(2 * (part * named + j) + 1) % 16:02d}.png",
                                        "text": f"a named picture {part} {j}"}) + "\n")
        (root / "ds" / f"parts-{part:03d}.jsonl").write_text("".join(rows), encoding="utf-8")
    (root / "ds" / ".made").write_text(f"{mb} {named}")
    return train


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("old_src")
    ap.add_argument("dir")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--mb", type=int, default=20)
    ap.add_argument("--named", type=int, default=4)
    args = ap.parse_args()
    folder = make(Path(args.dir), args.mb, args.named)
    builds = {"old": str(Path(args.old_src).resolve()), "new": str(ROOT / "src")}
    times: dict[str, list[float]] = {b: [] for b in builds}
    said: dict[str, dict] = {}
    for _ in range(args.reps):
        for build, src in builds.items():
            env = dict(os.environ, PYTHONPATH=src, OMP_NUM_THREADS="1")
            out = subprocess.run([sys.executable, "-c", CHILD, str(folder)], env=env, check=True,
                                 capture_output=True, text=True).stdout
            got = json.loads(out)
            times[build].append(got.pop("s"))
            said[build] = got
    print(f"# {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.node()}, "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}, 4 parts of {args.mb} MB above {folder}, "
          f"median of {args.reps}")
    for build in builds:
        print(f"{build}: {statistics.median(times[build]):.3f} s ({', '.join(f'{t:.3f}' for t in times[build])})")
    print(f"pictures named above: old {len(said['old']['named'])}, new {len(said['new']['named'])}; the same summary "
          f"and pictures: {said['old'] == said['new']}")
    print(f"summary: {said['new']['said']}")


if __name__ == "__main__":
    main()
