#!/usr/bin/env bash
# Wall time of `t2i data preview` of a folder whose one picture has a caption of one LETTERS-letter word (a caption
# file may hold 64 KB), this build against an older commit, alternating fresh processes. The sheet's label was cut
# to its tile a letter at a time, each cut measured again (time grows with the square of the word's length).
#   bench/long_caption_preview.sh [OLD_REV=86a54a5] [RUNS=3] [LETTERS=4000]
set -eu
cd "$(dirname "$0")/.." || exit 1
OLD=${1:-86a54a5}
RUNS=${2:-3}
LETTERS=${3:-4000}
. bench/ab.sh
ab_start
mkdir "$work/data"
$PY -c "from PIL import Image; Image.new('RGB', (64, 64), (200, 40, 40)).save('$work/data/a.png')"
$PY -c "print('a' * $LETTERS)" > "$work/data/a.txt"
echo "# $(hostname) $(date -u '+%Y-%m-%d %H:%M') old=$OLD new=$(git rev-parse --short HEAD) letters=$LETTERS"
echo "# load $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"
for r in $(seq "$RUNS"); do
    for build in old new; do
        src=$(ab_src "$build")
        PYTHONPATH=$src /usr/bin/time -f "%e %M" -o "$work/t" $PY -m t2i_cli data preview "$work/data" --n 1 \
            --side 64 --out "$work/$build.png" --force -q >/dev/null
        read -r wall kb < "$work/t"
        ab_record "$build" "$r" "$wall" "$kb"
    done
done
ab_summary
