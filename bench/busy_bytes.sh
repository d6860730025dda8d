#!/usr/bin/env bash
# The default thread count on a busy machine, old build against this one, side by side: a cold
# `t2i generate PROMPT --n N --seed S` (no --threads) alone, then two started together (each beside the other:
# 2 processes on the 2 cores), then one started while a `t2i eval` runs. For each: wall seconds, and whether
# the PNGs are byte for byte those the same build wrote alone (a seed's bytes may depend on the thread count,
# and the old default took one thread less per task running when it started; the new one keeps the cores'
# count and, busy, lets its threads sleep at once instead of spinning). Builds alternate within each round.
#   bench/busy_bytes.sh [OLD_REV=8bab2e7] [ROUNDS=3] [-- generate arguments (default: the prompt below)]
set -eu
cd "$(dirname "$0")/.." || exit 1
OLD=${1:-8bab2e7}
ROUNDS=${2:-3}
shift $(( $# >= 2 ? 2 : $# ))
[ "${1:-}" = "--" ] && shift
ARGS=("$@")
[ ${#ARGS[@]} -eq 0 ] && ARGS=("a red bird and a blue fish" --n 8 --seed 9)
. bench/ab.sh
ab_start
echo "# $(hostname) $(date -u '+%Y-%m-%d %H:%M') UTC, $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)," \
     "old=$OLD new=$(git rev-parse --short HEAD)+tree, rounds $ROUNDS, generate ${ARGS[*]}"
gen() {  # build, out folder -> wall seconds
    ab_generate "$1" "$2" "${ARGS[@]}"
}
same() {  # folder, reference folder -> "same" or "N of M differ"
    $PY - "$1" "$2" <<'PY'
import sys
from pathlib import Path
a, b = (sorted(Path(p).glob("*.png")) for p in sys.argv[1:])
diff = sum(x.read_bytes() != y.read_bytes() for x, y in zip(a, b, strict=True))
print("same" if diff == 0 else f"{diff}-of-{len(a)}-differ")
PY
}
for r in $(seq "$ROUNDS"); do
    for build in old new; do
        ref="$work/ref-$build"
        echo "$build round $r alone $(gen "$build" "$ref") same"
        gen "$build" "$work/b2" > "$work/bt" &
        t=$(gen "$build" "$work/b1")
        wait
        echo "$build round $r together $t $(same "$work/b1" "$ref") $(cat "$work/bt") $(same "$work/b2" "$ref")"
        PYTHONPATH=$(ab_src "$build") $PY -m t2i_cli eval --n 3 --candidates 1 --quiet >/dev/null 2>&1 &
        sleep 8
        t=$(gen "$build" "$work/b3")
        wait
        echo "$build round $r beside-eval $t $(same "$work/b3" "$ref")"
    done
done | tee "$work/log"
$PY - "$work/log" <<'PY'
import statistics, sys
runs, bytes_ = {}, {}
for line in open(sys.argv[1]):
    build, _, _, case, *rest = line.split()
    for wall, verdict in zip(rest[::2], rest[1::2]):
        runs.setdefault((case, build), []).append(float(wall))
        bytes_.setdefault((case, build), []).append(verdict)
for (case, build), ts in sorted(runs.items()):
    v = bytes_[case, build]
    print(f"{case:11s} {build}: median {statistics.median(ts):.2f} s over {len(ts)} processes; bytes as alone "
          f"in {v.count('same')} of {len(v)}")
PY
