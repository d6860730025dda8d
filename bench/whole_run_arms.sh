#!/usr/bin/env bash
# A whole `t2i train --stage all` on a folder under several sets of extra options ("arms"), side by side, then
# each run's weights scored by `t2i eval --data` (16 draws per val caption, eval seeds 0 and 1, 2 threads).
#   bench/whole_run_arms.sh DATA STEPS ARM...
#   e.g. bench/whole_run_arms.sh /tmp/icons dvae=800,transformer=600,clip=300 "--crop 1" ""
set -eu
cd "$(dirname "$0")/.." || exit 1
DATA=$1 STEPS=$2
shift 2
PY=.venv/bin/python
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
t2i() { PYTHONPATH=src $PY -m t2i_cli "$@"; }
echo "# $(hostname) $(date -u '+%Y-%m-%d %H:%M') $(git rev-parse --short HEAD) data=$DATA steps=$STEPS"
echo "# load $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"
a=0
for arm in "$@"; do
    a=$((a + 1))
    start=$(date +%s)
    # shellcheck disable=SC2086  # an arm is a list of options
    t2i train --stage all --data "$DATA" --steps "$STEPS" $arm --out "$work/$a" -q > "$work/log" 2>&1
    echo "[${arm:-defaults}]: $(( $(date +%s) - start )) s; transformer stopped at $(
        $PY -c "import json; print(json.load(open('$work/$a/transformer/train_config.json'))['steps'])") steps"
    for es in 0 1; do
        t2i eval --data "$DATA" --weights "$work/$a/weights" --n 64 --draws 16 --seed "$es" --threads 2 \
            --json "$work/e.json" -q >/dev/null 2>&1
        $PY -c "import json; r = json.load(open('$work/e.json')); c, d = r['clip'], r['dvae']
print(f'  eval --data seed $es: dVAE PSNR {d[\"psnr\"]:.2f} dB, bits per code {r[\"transformer\"][\"bits_per_code\"]:.3f}, '
      f'CLIP score generated {c[\"score_generated\"]:.4f} (real {c[\"score_real\"]:.4f}), Frechet distance {c[\"frechet_distance\"]:.4f}')"
    done
    if [ -n "${KEEP:-}" ]; then cp -r "$work/$a" "$KEEP/all-$a"; fi  # KEEP=DIR keeps the runs
done
