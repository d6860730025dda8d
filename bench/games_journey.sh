#!/usr/bin/env bash
# A user's journey on the games folder (bench/make_games_folder.py: 217 captioned sprites, playing cards and
# photos from three Python wheels): one whole run of the default preset with few steps, what `t2i info` says of it,
# `t2i eval --data` on its held-out pictures, and one generated picture. One thread, so it can share a machine.
#   bench/games_journey.sh [STEPS=dvae=150,transformer=150,clip=100] [WHEELS=/opt/pypi/files] [WORK=mktemp]
set -eu
cd "$(dirname "$0")/.." || exit 1
STEPS=${1:-dvae=150,transformer=150,clip=100}
WHEELS=${2:-/opt/pypi/files}
work=${3:-$(mktemp -d)}
PY=${PY:-.venv/bin/python}
export PYTHONPATH=src
t2i() { OMP_NUM_THREADS=1 $PY -m t2i_cli "$@"; }
echo "# $(hostname) $(date -u '+%Y-%m-%d %H:%M') $(git rev-parse --short HEAD) steps=$STEPS;" \
     "load $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"
rm -rf "$work/games" "$work/run"
$PY bench/make_games_folder.py "$work/games" --wheels "$WHEELS"
start=$(date +%s)
t2i train --stage all --data "$work/games" --out "$work/run" --steps "$STEPS" --sample-every 50 \
    --quiet 2>&1 | sed "s|$work/||g"
echo "# whole run: $(( $(date +%s) - start )) s"
t2i info "$work/run" | sed "s|$work/||g"
COLUMNS=200 t2i eval --data "$work/games" --weights "$work/run/weights" --threads 1 2>&1 | sed "s|$work/||g"
t2i generate "king of hearts playing card" --weights "$work/run/weights" --seed 0 --out "$work/out" --threads 1 \
    --quiet 2>&1 | sed "s|$work/||g"
echo "# work folder: $work"
