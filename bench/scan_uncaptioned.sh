#!/usr/bin/env bash
# Reading a folder where many pictures have no caption, old build against this one, side by side: the seconds
# data._scan_folder (what training, data preview, data caption and eval --data read a folder with) takes on a
# folder of N tiny distinct PNGs of which every other one has a NAME.txt, median of ROUNDS, builds alternating.
# The folders are made once under a temporary folder.
#   bench/scan_uncaptioned.sh [OLD_REV=6d1682d] [ROUNDS=3] [SIZES="1000 2000 4000 8000"]
set -eu
cd "$(dirname "$0")/.." || exit 1
OLD=${1:-6d1682d}
ROUNDS=${2:-3}
SIZES=${3:-1000 2000 4000 8000}
. bench/ab.sh
ab_start
echo "# $(hostname) $(date -u '+%Y-%m-%d %H:%M') UTC, $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)," \
     "old=$OLD new=$(git rev-parse --short HEAD)+tree, rounds $ROUNDS"
for n in $SIZES; do
    $PY - "$work/f$n" "$n" <<'PY'
import sys
from pathlib import Path
from PIL import Image
root, n = Path(sys.argv[1]), int(sys.argv[2])
root.mkdir(parents=True)
for i in range(n):
    Image.new("RGB", (8, 8), (i % 256, i // 256 % 256, 7)).save(root / f"p{i:05d}.png")
    if i % 2:
        (root / f"p{i:05d}.txt").write_text("a red bird")
PY
    for r in $(seq "$ROUNDS"); do
        for build in old new; do
            PYTHONPATH=$(ab_src "$build") $PY - "$work/f$n" <<'PY' | sed "s/^/$build $n $r /"
import sys, time
from pathlib import Path
from t2i_cli import data
t = time.perf_counter()
pairs, skipped = data._scan_folder(Path(sys.argv[1]))
print(f"{time.perf_counter() - t:.3f} {len(pairs)}")
PY
        done
    done
done | tee "$work/log"
$PY - "$work/log" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    build, n, _, s, pairs = line.split()
    runs.setdefault((int(n), build), []).append((float(s), int(pairs)))
print("| pictures (half without a caption) | old s | new s | old / new | pairs (old, new) |")
print("|---:|---:|---:|---:|---|")
for n in sorted({n for n, _ in runs}):
    old, new = (statistics.median(s for s, _ in runs[n, b]) for b in ("old", "new"))
    print(f"| {n:,} | {old:.2f} | {new:.2f} | {old / new:.1f}x | {runs[n, 'old'][0][1]}, {runs[n, 'new'][0][1]} |")
PY
