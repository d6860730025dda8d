#!/usr/bin/env bash
# One training stage, an old build against this one, side by side (alternating, REPS runs each): the wall time
# and peak memory of `t2i train --stage STAGE --data DATA --steps STEPS` with no validation or sample grid
# (--sample-every 0) and the build's own --precision default, plus EXTRA options; each run's first metrics line
# says what precision it trained in, where the build records it.
#   bench/train_precision_ab.sh OLD STAGE DATA STEPS REPS [EXTRA...]
#   e.g. bench/train_precision_ab.sh b941933 dvae /tmp/icons 5 3
set -eu
cd "$(dirname "$0")/.." || exit 1
OLD=$1 STAGE=$2 DATA=$3 STEPS=$4 REPS=$5
shift 5
. bench/ab.sh
ab_start
echo "# $(hostname) $(date -u '+%Y-%m-%d %H:%M') old=$OLD new=$(git rev-parse --short HEAD) stage=$STAGE data=$DATA steps=$STEPS"
echo "# $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), native bf16: $(PYTHONPATH=src $PY -c \
    'from t2i_cli.devices import native_bf16; print(native_bf16())'); load $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"
for r in $(seq "$REPS"); do
    for build in old new; do
        out=$work/$build-$r
        /usr/bin/time -f '%e %M' -o "$work/time" env PYTHONPATH="$(ab_src $build)" $PY -m t2i_cli train \
            --stage "$STAGE" --data "$DATA" --steps "$STEPS" --sample-every 0 --ckpt-every "$STEPS" --workers 1 \
            --out "$out" -q "$@" >/dev/null 2>"$work/err" || { cat "$work/err"; exit 1; }
        read -r wall kb < "$work/time"
        ab_record "$build" "$r ($($PY -c "import json; r = json.loads(open('$out/metrics.jsonl').readline())
print(r.get('precision', 'not recorded'))"))" "$wall" "$kb"
    done
done
ab_summary 1
