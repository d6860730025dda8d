#!/usr/bin/env bash
# `t2i train --flip` against `--no-flip` on a folder of real pictures, side by side: for each seed, the
# transformer stage both ways (validation every 100 steps, --patience 2), its validation bits per code at each
# validation and at its best, then each run's exported model (its best transformer, with CLIP_RUN) scored by
# `t2i eval --data` with 16 draws per val caption at eval seeds 0 and 1; and the dVAE stage both ways (seed 0,
# DVAE_STEPS steps), its val PSNR at the end. Every arm with --crop 1, as 0.10.0 trained (the presets crop since
# 0.11.0).
#   bench/flip.sh DATA DVAE_RUN TOKENIZER_RUN CLIP_RUN [SEEDS="0 1"] [DVAE_STEPS=800]
set -eu
cd "$(dirname "$0")/.." || exit 1
DATA=$1 DVAE=$2 TOK=$3 CLIP=$4 SEEDS=${5:-0 1} DVAE_STEPS=${6:-800}
PY=.venv/bin/python
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
t2i() { PYTHONPATH=src $PY -m t2i_cli "$@"; }
echo "# $(hostname) $(date -u '+%Y-%m-%d %H:%M') $(git rev-parse --short HEAD) data=$DATA seeds=$SEEDS"
echo "# load $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"
vals() {  # "step:value ..." of a run's validations, and the best
    $PY - "$1/metrics.jsonl" "$2" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
v = [(r["step"], r[sys.argv[2]]) for r in rows if sys.argv[2] in r]
best = (min if sys.argv[2] != "val_psnr" else max)(v, key=lambda sv: sv[1])
print(" ".join(f"{s}:{x:.3f}" for s, x in v), f"| best {best[1]:.3f} at {best[0]}")
PY
}
for seed in $SEEDS; do
    for arm in no-flip flip; do
        start=$(date +%s)
        t2i train --stage transformer --data "$DATA" --dvae "$DVAE" --tokenizer "$TOK" --steps 1000 \
            --sample-every 100 --patience 2 --seed "$seed" --"$arm" --crop 1 --out "$work/tr-$seed-$arm" -q \
            >/dev/null 2>&1
        echo "transformer seed $seed --$arm ($(( $(date +%s) - start )) s): val bits per code $(vals "$work/tr-$seed-$arm" val_bits_per_code)"
        t2i export "$work/tr-$seed-$arm" "$CLIP" --to "$work/w-$seed-$arm" >/dev/null 2>&1
        for es in 0 1; do
            t2i eval --data "$DATA" --weights "$work/w-$seed-$arm" --n 64 --draws 16 --seed "$es" \
                --json "$work/e.json" -q >/dev/null 2>&1
            $PY -c "import json; r = json.load(open('$work/e.json')); c = r['clip']
print(f'  eval --data seed $es: bits per code {r[\"transformer\"][\"bits_per_code\"]:.3f}, CLIP score generated '
      f'{c[\"score_generated\"]:.4f} (real {c[\"score_real\"]:.4f}), Frechet distance {c[\"frechet_distance\"]:.4f}')"
        done
    done
done
for arm in no-flip flip; do
    start=$(date +%s)
    t2i train --stage dvae --data "$DATA" --steps "$DVAE_STEPS" --sample-every 100 --seed 0 --"$arm" --crop 1 \
        --out "$work/dv-$arm" -q >/dev/null 2>&1
    echo "dVAE seed 0 --$arm ($(( $(date +%s) - start )) s): val PSNR $(vals "$work/dv-$arm" val_psnr)"
done
