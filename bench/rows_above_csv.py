"""What a metadata.csv above a folder costs the folder's scan (data._rows_above, which data preview, training and
data caption run for a folder's pictures without a caption): a 16 MiB manifest of 300,000 rows naming pictures of
another folder (val/), read for the pictures of train/. Each build given (a src folder) is timed in a fresh process
per rep, in CPU seconds of one read; prints each build's median and what it found (rows naming train/'s picture,
lines left out: none, so the builds must agree).

Usage: OMP_NUM_THREADS=1 python bench/rows_above_csv.py SRC [SRC ...] [--rows 300000] [--reps 3]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = """
import sys, time
from pathlib import Path
from t2i_cli import data
ds = Path(sys.argv[1])
t = time.process_time()
rows, more, left = data._rows_above(ds / "metadata.csv", {data._key(ds / "train" / "a.png")},
                                    data._row_needles(ds / "train"))
print(time.process_time() - t, len(rows), more, sorted(left))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("srcs", nargs="+")
    ap.add_argument("--rows", type=int, default=300_000)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ds = Path(tmp) / "ds"
        (ds / "train").mkdir(parents=True)
        (ds / "train" / "a.png").write_bytes(b"")  # (named only: _rows_above reads the manifest, not the picture)
        with open(ds / "metadata.csv", "w", encoding="utf-8") as f:
            f.write("file_name,text\n")
            f.writelines(f"val/p{i:06d}.png,a picture of a red bird number {i}\n" for i in range(args.rows))
        print(f"{ds / 'metadata.csv'}: {(ds / 'metadata.csv').stat().st_size:,} bytes, {args.rows:,} rows")
        for src in args.srcs:
            runs = [subprocess.run([sys.executable, "-c", CHILD, str(ds)], env={"PYTHONPATH": str(Path(src).resolve()),
                                   "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, check=True).stdout.split(
                                   maxsplit=1) for _ in range(args.reps)]
            took = statistics.median(float(cpu) for cpu, _ in runs)
            print(f"{src}: median {took:.3f} s CPU ({', '.join(f'{float(c):.3f}' for c, _ in runs)}); found "
                  f"{runs[0][1].strip()}")


if __name__ == "__main__":
    main()
