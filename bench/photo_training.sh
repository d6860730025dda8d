#!/usr/bin/env bash
# `t2i train --stage dvae` on a folder of 12-megapixel JPEG photos (bench/make_photo_folder.py from the GNOME
# icons of bench/make_icon_folder.py), this build against an older commit, alternating fresh processes: wall
# time and peak RSS of the whole command (checking the folder, STEPS steps, validation), and whether the two
# builds trained the same model.
#   bench/photo_training.sh [OLD_REV=58f103b] [RUNS=3] [STEPS=24] [PHOTOS=64]
set -eu
cd "$(dirname "$0")/.." || exit 1
OLD=${1:-58f103b}
RUNS=${2:-3}
STEPS=${3:-24}
PHOTOS=${4:-64}
. bench/ab.sh
ab_start
$PY bench/make_icon_folder.py "$work/icons" >/dev/null
PYTHONPATH=src $PY bench/make_photo_folder.py "$work/icons" "$work/photos" --n "$PHOTOS" >/dev/null
echo "# $(hostname) $(date -u '+%Y-%m-%d %H:%M') old=$OLD new=$(git rev-parse --short HEAD) photos=$PHOTOS" \
     "($(du -sm "$work/photos" | cut -f1) MB) steps=$STEPS"
echo "# load $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"
for r in $(seq "$RUNS"); do
    for build in old new; do
        src=$(ab_src "$build")
        rm -rf "$work/run-$build"
        PYTHONPATH=$src /usr/bin/time -f "%e %M" -o "$work/t" $PY -m t2i_cli train --stage dvae \
            --data "$work/photos" --steps "$STEPS" --out "$work/run-$build" --quiet > /dev/null 2>&1
        read -r wall kb < "$work/t"
        ab_record "$build" "$r" "$wall" "$kb"
    done
    if cmp -s "$work/run-old/dvae.safetensors" "$work/run-new/dvae.safetensors"
    then echo "round $r: the same dvae.safetensors"; else echo "round $r: the models DIFFER"; fi
done
ab_summary 1
