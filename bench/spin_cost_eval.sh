#!/usr/bin/env bash
# What bounding OpenMP's spinning (t2i's default since 0.6.0, cli.bound_spinning) costs a `t2i eval` running
# alone: the same build with T2I_OMP=keep (libgomp's default spinning) and without, alternating.
#   bench/spin_cost_eval.sh [ROUNDS=2] [N=10]
set -eu
cd "$(dirname "$0")/.." || exit 1
ROUNDS=${1:-2}
N=${2:-10}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "# $(hostname) $(date -u '+%Y-%m-%d %H:%M') UTC, $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), eval --n $N, rounds $ROUNDS"
for r in $(seq "$ROUNDS"); do
    for e in T2I_OMP=keep X_T2I=1; do
        env "$e" PYTHONPATH=src .venv/bin/python -m t2i_cli eval --weights weights --n "$N" --json "$work/e.json" -q >/dev/null
        label=$([ "$e" = T2I_OMP=keep ] && echo "libgomp default" || echo "bounded (t2i)")
        .venv/bin/python -c "import json,sys; d=json.load(open(sys.argv[1])); print(sys.argv[2], 'round', sys.argv[3], \
f\"{d['seconds']:.1f} s\", f\"{d['images_per_second']:.2f} images/s\")" "$work/e.json" "$label" "$r"
    done
done
