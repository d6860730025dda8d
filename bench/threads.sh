#!/usr/bin/env bash
# Wall time of `t2i generate "a red bird" --n N --threads T` (cold, the whole command) for T in 1 2 and N in
# 1 16, alternating T, ROUNDS rounds; prints every run and the median per (N, T).
#   bench/threads.sh [ROUNDS=3]
set -eu
cd "$(dirname "$0")/.." || exit 1
ROUNDS=${1:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "# $(hostname) $(date -u '+%Y-%m-%d %H:%M') $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
for n in 1 16; do
    for r in $(seq "$ROUNDS"); do
        for t in 1 2; do
            s=$(date +%s.%N)
            .venv/bin/t2i generate "a red bird" --n "$n" --threads "$t" --out "$work/o" -q >/dev/null
            e=$(date +%s.%N)
            echo "n=$n threads=$t round=$r $(echo "$e - $s" | bc) s" | tee -a "$work/times"
        done
    done
done
.venv/bin/python - "$work/times" <<'PY'
import collections, statistics, sys
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    n, t, _, sec, _ = line.split()
    runs[(n, t)].append(float(sec))
for (n, t), v in sorted(runs.items()):
    print(f"{n} {t}: median {statistics.median(v):.2f} s over {len(v)} runs")
PY
