#!/usr/bin/env bash
# One training stage on a folder of real pictures under several sets of extra `t2i train` options ("arms"), side
# by side: for each seed and arm, STEPS steps at the default preset with COMMON options (validation every 100
# steps), a validation metric at each validation and at its best (val_psnr: highest; others: lowest).
#   bench/stage_arms.sh STAGE DATA "SEEDS" STEPS "COMMON" METRIC ARM...
#   e.g. bench/stage_arms.sh dvae /tmp/icons 0 800 "" val_psnr "--crop 1" "--crop 0.8"
#        bench/stage_arms.sh clip /tmp/icons "0 1" 600 "--tokenizer R/tokenizer --patience 0" val_loss "--crop 1" ""
set -eu
cd "$(dirname "$0")/.." || exit 1
STAGE=$1 DATA=$2 SEEDS=$3 STEPS=$4 COMMON=$5 METRIC=$6
shift 6
PY=.venv/bin/python
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
t2i() { PYTHONPATH=src $PY -m t2i_cli "$@"; }
echo "# $(hostname) $(date -u '+%Y-%m-%d %H:%M') $(git rev-parse --short HEAD) stage=$STAGE data=$DATA seeds=$SEEDS steps=$STEPS"
echo "# load $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"
for seed in $SEEDS; do
    a=0
    for arm in "$@"; do
        a=$((a + 1))
        run=$work/$STAGE-$seed-$a
        start=$(date +%s)
        # shellcheck disable=SC2086  # COMMON and an arm are lists of options
        t2i train --stage "$STAGE" --data "$DATA" --steps "$STEPS" --sample-every 100 --seed "$seed" $COMMON $arm \
            --out "$run" -q >/dev/null 2>&1
        echo "seed $seed [${arm:-defaults}] ($(( $(date +%s) - start )) s): $METRIC $(
            $PY bench/run_vals.py "$run/metrics.jsonl" "$METRIC")"
        if [ -n "${KEEP:-}" ]; then cp -r "$run" "$KEEP/$STAGE-$seed-$a"; fi  # KEEP=DIR keeps the runs
    done
done
