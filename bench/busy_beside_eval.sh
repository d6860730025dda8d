#!/usr/bin/env bash
# A cold `t2i generate` started while a `t2i eval` (or, with LONG=train, a `t2i train --stage dvae`) already
# runs (a long job first, then a short one on the same 2 cores), with t2i's default ("t2i": GOMP_SPINCOUNT=10000,
# and for the generate one thread less per running task) and the old behaviour ("old": T2I_OMP=keep, and
# --threads = the cores for eval and generate). Prints the generate's and the long job's wall seconds per
# round, settings alternating.
#   bench/busy_beside_eval.sh [ROUNDS=2] [EVAL_N=3] [DELAY=8]      (LONG=train: EVAL_N is its --steps)
set -eu
cd "$(dirname "$0")/.." || exit 1
ROUNDS=${1:-2}
EVAL_N=${2:-3}
DELAY=${3:-8}
PY=.venv/bin/python
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
LONG=${LONG:-eval}
echo "# $(hostname) $(date -u '+%Y-%m-%d %H:%M') UTC, $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), rounds $ROUNDS, long job $LONG ($EVAL_N), generate after ${DELAY} s"
for r in $(seq "$ROUNDS"); do
    for setting in t2i old; do
        envs=(X_T2I=1) threads=()
        [ "$setting" = old ] && envs=(T2I_OMP=keep) threads=(--threads "$(nproc)")
        t0=$(date +%s.%N)
        if [ "$LONG" = train ]; then
            rm -rf "$work/run"
            env "${envs[@]}" PYTHONPATH=src $PY -m t2i_cli train --stage dvae --steps "$EVAL_N" --out "$work/run" -q >/dev/null &
        else
            env "${envs[@]}" PYTHONPATH=src $PY -m t2i_cli eval --n "$EVAL_N" --candidates 1 -q "${threads[@]}" >/dev/null &
        fi
        ev=$!
        sleep "$DELAY"
        rm -rf "$work/o"
        g0=$(date +%s.%N)
        env "${envs[@]}" PYTHONPATH=src $PY -m t2i_cli generate "a red bird" --seed 0 --quiet --out "$work/o" "${threads[@]}" >/dev/null
        g1=$(date +%s.%N)
        wait $ev
        t1=$(date +%s.%N)
        echo "$setting round $r: generate $(echo "$g1 - $g0" | bc) s, $LONG $(echo "$t1 - $t0" | bc) s"
    done
done
