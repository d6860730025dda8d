#!/usr/bin/env bash
# Cold `t2i generate "a red bird"` of this build against an older commit, side by side: each round runs
# the old build (a git worktree) and this one as fresh processes, alternating, with the same arguments,
# under /usr/bin/time; prints each run's wall seconds and peak RSS, then the medians.
#   bench/cold_compare.sh [OLD_REV=5d76cf5] [RUNS=5] [-- extra generate arguments]
set -eu
cd "$(dirname "$0")/.." || exit 1
OLD=${1:-5d76cf5}
RUNS=${2:-5}
shift $(( $# >= 2 ? 2 : $# ))
[ "${1:-}" = "--" ] && shift
. bench/ab.sh
ab_start
echo "# $(hostname) $(date -u '+%Y-%m-%d %H:%M') old=$OLD new=$(git rev-parse --short HEAD) runs=$RUNS args: $*"
echo "# load $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"
for r in $(seq "$RUNS"); do
    for build in old new; do
        src=$(ab_src "$build")
        out=$(mktemp -d "$work/out.XXXX")
        PYTHONPATH=$src /usr/bin/time -f "%e %M" -o "$work/t" $PY -m t2i_cli generate "a red bird" --seed 0 \
            --out "$out" --quiet "$@" >/dev/null
        read -r wall kb < "$work/t"
        ab_record "$build" "$r" "$wall" "$kb"
    done
done
ab_summary
