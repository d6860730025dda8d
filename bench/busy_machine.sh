#!/usr/bin/env bash
# Cold `t2i generate` alone and with a second one started beside it (a busy machine: 2 processes on the same
# cores), under several settings, alternating within each round: "t2i" is t2i's own default (since 0.6.0:
# GOMP_SPINCOUNT=10000 and one thread less per other running task, cli.py); "old" is what t2i did before
# (libgomp's default spinning, --threads = the cores); VAR=VALUE is "old" with that OpenMP variable
# (OMP_WAIT_POLICY=ACTIVE spins, PASSIVE sleeps at once, GOMP_SPINCOUNT=N spins N times, then sleeps);
# "1thread" is "old" with --threads 1. Prints every run's wall seconds, then the median per setting.
#   bench/busy_machine.sh [ROUNDS=3] [-- extra generate arguments]
#   SETTINGS="t2i old OMP_WAIT_POLICY=PASSIVE GOMP_SPINCOUNT=10000 1thread" bench/busy_machine.sh 2
set -eu
cd "$(dirname "$0")/.." || exit 1
ROUNDS=${1:-3}
shift || true
[ "${1:-}" = "--" ] && shift
SETTINGS=${SETTINGS:-"t2i old OMP_WAIT_POLICY=PASSIVE 1thread"}
PY=.venv/bin/python
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "# $(hostname) $(date -u '+%Y-%m-%d %H:%M') UTC, $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), rounds $ROUNDS, args: $*"
one() {  # setting, output folder, generate arguments -> wall seconds of one cold generate
    local setting=$1 out=$2
    shift 2
    local envs=(T2I_OMP=keep) threads=(--threads "$(nproc)")
    case "$setting" in
        t2i) envs=(X_T2I=1); threads=() ;;
        old) ;;
        1thread) threads=(--threads 1) ;;
        *) envs+=("$setting") ;;
    esac
    rm -rf "$out"
    local t0 t1
    t0=$(date +%s.%N)
    env "${envs[@]}" PYTHONPATH=src $PY -m t2i_cli generate "a red bird" --seed 0 --quiet --out "$out" "${threads[@]}" "$@" >/dev/null
    t1=$(date +%s.%N)
    echo "$t1 - $t0" | bc
}
for r in $(seq "$ROUNDS"); do
    for setting in $SETTINGS; do
        echo "alone $setting round $r $(one "$setting" "$work/a" "$@")"
        one "$setting" "$work/b" "$@" > "$work/bt" &
        a=$(one "$setting" "$work/a" "$@")
        wait
        echo "busy $setting round $r $a $(cat "$work/bt")"
    done
done | tee "$work/log"
$PY - "$work/log" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    kind, setting, _, _, *rest = line.split()
    runs.setdefault((kind, setting), []).extend(float(x) for x in rest)
for (kind, setting), ts in sorted(runs.items()):
    print(f"{kind:5s} {setting:24s} median {statistics.median(ts):.2f} s over {len(ts)} processes")
PY
