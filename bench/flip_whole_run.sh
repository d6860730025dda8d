#!/usr/bin/env bash
# A whole `t2i train --stage all` on a folder with `--no-flip` and with the default preset's mirroring, side by
# side, then each run's weights scored by `t2i eval --data` (16 draws per val caption, eval seeds 0 and 1). Both
# arms with --crop 1: "default" is 0.10.0's defaults (the presets crop since 0.11.0).
#   bench/flip_whole_run.sh DATA [STEPS="dvae=800,transformer=600,clip=300"]
set -eu
cd "$(dirname "$0")/.." || exit 1
DATA=$1 STEPS=${2:-dvae=800,transformer=600,clip=300}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
t2i() { PYTHONPATH=src .venv/bin/python -m t2i_cli "$@"; }
echo "# $(hostname) $(date -u '+%Y-%m-%d %H:%M') $(git rev-parse --short HEAD) data=$DATA steps=$STEPS"
echo "# load $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"
for arm in no-flip default; do
    flag=(--crop 1); [ "$arm" = no-flip ] && flag=(--crop 1 --no-flip)  # --crop 1: as 0.10.0 trained
    start=$(date +%s)
    t2i train --stage all --data "$DATA" --steps "$STEPS" "${flag[@]}" --out "$work/$arm" -q > "$work/log" 2>&1
    echo "$arm: $(( $(date +%s) - start )) s; transformer stopped at $(.venv/bin/python -c "import json; print(json.load(open('$work/$arm/transformer/train_config.json'))['steps'])") steps"
    for es in 0 1; do
        t2i eval --data "$DATA" --weights "$work/$arm/weights" --n 64 --draws 16 --seed "$es" --json "$work/e.json" \
            -q >/dev/null 2>&1
        .venv/bin/python -c "import json; r = json.load(open('$work/e.json')); c, d = r['clip'], r['dvae']
print(f'  eval --data seed $es: dVAE PSNR {d[\"psnr\"]:.2f} dB, bits per code {r[\"transformer\"][\"bits_per_code\"]:.3f}, '
      f'CLIP score generated {c[\"score_generated\"]:.4f} (real {c[\"score_real\"]:.4f}), Frechet distance {c[\"frechet_distance\"]:.4f}')"
    done
done
