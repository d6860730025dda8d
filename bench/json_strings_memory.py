"""What one line that is not JSON, holding a backslash, of a manifest above a folder costs in memory and CPU to read
as JSON's strings (data._rows_above's may_name), this build against an older one side by side: DIR/ds/train/ (one
picture, no caption) below DIR/ds/metadata.jsonl of one line, '{"x": "train/' and then --kb kB of --kind escapes:
slashes ("a\\/" repeated: a string of many escapes), quotes ('a\\"' repeated: of many escaped quotes), plain ("a"
repeated, then one "\\/": a long string of few escapes). Each build runs in a fresh process: tracemalloc's peak
while the manifest is read (its 16 MiB read buffer included) and the CPU seconds of that read (without tracemalloc,
median of --reps). The older build's source is a folder, e.g. made with `git archive REV src | tar x -C DIR`.

Usage: python bench/json_strings_memory.py OLD_SRC DIR [--kb 900] [--kind slashes|quotes|plain] [--reps 3]
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
import json, sys, time, tracemalloc
from pathlib import Path
from t2i_cli.data import _key, _rows_above
ds = Path(sys.argv[1])
wanted = {_key(ds / "train" / "pic.png")}
t = time.process_time()
_, _, left = _rows_above(ds / "metadata.jsonl", wanted, ("train",))
s = time.process_time() - t
tracemalloc.start()
_rows_above(ds / "metadata.jsonl", wanted, ("train",))
print(json.dumps({"s": s, "peak": tracemalloc.get_traced_memory()[1], "left": sorted(left)}))
"""
KINDS = {"slashes": lambda n: b"a\\/" * (n // 3), "quotes": lambda n: b'a\\"' * (n // 3),
         "plain": lambda n: b"a" * n + b"\\/"}


def main() -> None:
    from PIL import Image

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("old_src")
    ap.add_argument("dir")
    ap.add_argument("--kb", type=int, default=900)
    ap.add_argument("--kind", choices=sorted(KINDS), default="slashes")
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    ds = Path(args.dir) / args.kind / "ds"
    (ds / "train").mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (16, 16), (200, 30, 30)).save(ds / "train" / "pic.png")
    (ds / "metadata.jsonl").write_bytes(b'{"x": "train/' + KINDS[args.kind](args.kb * 1000) + b"\n")
    builds = {"old": str(Path(args.old_src).resolve()), "new": str(ROOT / "src")}
    got: dict[str, list[dict]] = {b: [] for b in builds}
    for _ in range(args.reps):
        for build, src in builds.items():
            env = dict(os.environ, PYTHONPATH=src, OMP_NUM_THREADS="1")
            out = subprocess.run([sys.executable, "-c", CHILD, str(ds)], env=env, check=True, capture_output=True,
                                 text=True).stdout
            got[build].append(json.loads(out))
    print(f"# {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.node()}, "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}, one line of {args.kb} kB of '{args.kind}', "
          f"median of {args.reps}")
    for build, runs in got.items():
        print(f"{build}: {statistics.median(r['s'] for r in runs):.3f} s CPU, peak "
              f"{max(r['peak'] for r in runs) / 2**20:.1f} MiB traced; lines left out: {runs[-1]['left']}")


if __name__ == "__main__":
    main()
