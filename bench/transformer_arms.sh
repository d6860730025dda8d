#!/usr/bin/env bash
# The transformer stage on a folder of real pictures under several sets of extra `t2i train` options ("arms"),
# side by side: for each seed and arm, the stage at the default preset (validation every 100 steps, --patience 2,
# at most STEPS steps), its validation bits per code at each validation and at its best, then its exported best
# model (with CLIP_RUN) scored by `t2i eval --data` with 16 draws per val caption at eval seeds 0 and 1 (2 threads:
# the default follows the load, and bf16 decoding differs with the thread count).
#   bench/transformer_arms.sh DATA DVAE_RUN TOKENIZER_RUN CLIP_RUN "SEEDS" STEPS ARM...
#   e.g. bench/transformer_arms.sh /tmp/icons R/dvae R/tokenizer R/clip "0 1" 1500 "" "--model dropout=0.1"
set -eu
cd "$(dirname "$0")/.." || exit 1
DATA=$1 DVAE=$2 TOK=$3 CLIP=$4 SEEDS=$5 STEPS=$6
shift 6
PY=.venv/bin/python
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
t2i() { PYTHONPATH=src $PY -m t2i_cli "$@"; }
echo "# $(hostname) $(date -u '+%Y-%m-%d %H:%M') $(git rev-parse --short HEAD) data=$DATA seeds=$SEEDS steps=$STEPS"
echo "# load $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"
for seed in $SEEDS; do
    a=0
    for arm in "$@"; do
        a=$((a + 1))
        run=$work/tr-$seed-$a
        start=$(date +%s)
        # shellcheck disable=SC2086  # an arm is a list of options
        t2i train --stage transformer --data "$DATA" --dvae "$DVAE" --tokenizer "$TOK" --steps "$STEPS" \
            --sample-every 100 --patience 2 --seed "$seed" $arm --out "$run" -q >/dev/null 2>&1
        echo "seed $seed [${arm:-defaults}] ($(( $(date +%s) - start )) s): val bits per code $(
            $PY bench/run_vals.py "$run/metrics.jsonl" val_bits_per_code)"
        t2i export "$run" "$CLIP" --to "$work/w-$seed-$a" >/dev/null 2>&1
        for es in 0 1; do
            t2i eval --data "$DATA" --weights "$work/w-$seed-$a" --n 64 --draws 16 --seed "$es" --threads 2 \
                --json "$work/e.json" -q >/dev/null 2>&1
            $PY -c "import json; r = json.load(open('$work/e.json')); c = r['clip']
print(f'  eval --data seed $es: bits per code {r[\"transformer\"][\"bits_per_code\"]:.3f}, CLIP score generated '
      f'{c[\"score_generated\"]:.4f} (real {c[\"score_real\"]:.4f}), Frechet distance {c[\"frechet_distance\"]:.4f}')"
        done
        if [ -n "${KEEP:-}" ]; then cp -r "$run" "$KEEP/tr-$seed-$a"; fi  # KEEP=DIR keeps the runs
    done
done
