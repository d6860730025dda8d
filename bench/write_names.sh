#!/usr/bin/env bash
# Writing many new files into a folder that already holds many of the same name, old build against this one,
# side by side: the seconds files.write_new (how generate, vary and eval --images name every PNG) takes for
# WRITES small files STEM-NNN.png into a folder already holding K of them, median of ROUNDS, builds alternating.
#   bench/write_names.sh [OLD_REV=6d1682d] [ROUNDS=3] [KS="0 1000 5000"] [WRITES=256]
set -eu
cd "$(dirname "$0")/.." || exit 1
OLD=${1:-6d1682d}
ROUNDS=${2:-3}
KS=${3:-0 1000 5000}
WRITES=${4:-256}
. bench/ab.sh
ab_start
echo "# $(hostname) $(date -u '+%Y-%m-%d %H:%M') UTC, $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)," \
     "old=$OLD new=$(git rev-parse --short HEAD)+tree, rounds $ROUNDS, $WRITES writes"
for k in $KS; do
    for r in $(seq "$ROUNDS"); do
        for build in old new; do
            PYTHONPATH=$(ab_src "$build") $PY - "$work/d" "$k" "$WRITES" <<'PY' | sed "s/^/$build $k $r /"
import shutil, sys, time
from pathlib import Path
from t2i_cli.files import write_new
d, k, writes = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
shutil.rmtree(d, ignore_errors=True)
d.mkdir()
for i in range(k):
    (d / f"a-red-bird-{i:03d}.png").write_bytes(b"x")
t = time.perf_counter()
for _ in range(writes):
    write_new(d, "a-red-bird", ".png", lambda p: p.write_bytes(b"y" * 1000))
print(f"{time.perf_counter() - t:.3f}")
PY
        done
    done
done | tee "$work/log"
$PY - "$work/log" "$WRITES" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    build, k, _, s = line.split()
    runs.setdefault((int(k), build), []).append(float(s))
print(f"| files already there | old s for {sys.argv[2]} writes | new s | old / new |")
print("|---:|---:|---:|---:|")
for k in sorted({k for k, _ in runs}):
    old, new = (statistics.median(runs[k, b]) for b in ("old", "new"))
    print(f"| {k:,} | {old:.2f} | {new:.2f} | {old / new:.1f}x |")
PY
