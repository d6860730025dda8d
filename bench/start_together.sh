#!/usr/bin/env bash
# Two cold `t2i generate` started at the same instant, old build against this one, side by side: each process's
# wall seconds, and per build the median and how many rounds took more than twice the median one alone (the
# race where each start missed the other and both spun on the same cores). Each round also times one alone.
# Builds alternate within each round.
#   bench/start_together.sh [OLD_REV=6d1682d] [ROUNDS=8] [-- generate arguments (default: "a red bird")]
set -eu
cd "$(dirname "$0")/.." || exit 1
OLD=${1:-6d1682d}
ROUNDS=${2:-8}
shift $(( $# >= 2 ? 2 : $# ))
[ "${1:-}" = "--" ] && shift
ARGS=("$@")
[ ${#ARGS[@]} -eq 0 ] && ARGS=("a red bird")
. bench/ab.sh
ab_start
echo "# $(hostname) $(date -u '+%Y-%m-%d %H:%M') UTC, $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)," \
     "old=$OLD new=$(git rev-parse --short HEAD)+tree, rounds $ROUNDS, generate ${ARGS[*]}"
gen() {  # build, out folder -> wall seconds
    ab_generate "$1" "$2" "${ARGS[@]}"
}
for r in $(seq "$ROUNDS"); do
    for build in old new; do
        echo "$build round $r alone $(gen "$build" "$work/a")"
        gen "$build" "$work/b2" > "$work/bt" &
        t=$(gen "$build" "$work/b1")
        wait
        echo "$build round $r together $t $(cat "$work/bt")"
    done
done | tee "$work/log"
$PY - "$work/log" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    build, _, r, case, *walls = line.split()
    runs.setdefault((case, build), []).append([float(w) for w in walls])
for build in ("old", "new"):
    alone = statistics.median(w[0] for w in runs["alone", build])
    rounds = runs["together", build]
    slow = sum(max(ws) > 2 * alone for ws in rounds)
    print(f"{build}: alone median {alone:.2f} s; together median {statistics.median(x for ws in rounds for x in ws):.2f} s "
          f"over {2 * len(rounds)} processes, worst {max(max(ws) for ws in rounds):.2f} s; "
          f"{slow} of {len(rounds)} rounds over twice alone")
PY
