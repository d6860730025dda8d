#!/usr/bin/env bash
# Peak memory and wall time of `t2i rerank FOLDER --prompt "a red bird"` over a large folder of real pictures,
# this build against an older commit, alternating fresh processes: the GNOME icons of bench/make_icon_folder.py
# copied COPIES times (363 icons x 6 = 2,178 PNGs) so the folder is larger than one scoring batch many times over.
#   bench/rerank_memory.sh [OLD_REV=58f103b] [RUNS=3] [COPIES=6]
set -eu
cd "$(dirname "$0")/.." || exit 1
OLD=${1:-58f103b}
RUNS=${2:-3}
COPIES=${3:-6}
. bench/ab.sh
ab_start
$PY bench/make_icon_folder.py "$work/icons" >/dev/null
mkdir "$work/many"
i=0
for c in $(seq "$COPIES"); do
    for f in "$work"/icons/*.png; do i=$((i + 1)); cp "$f" "$work/many/im$i.png"; done
done
echo "# $(hostname) $(date -u '+%Y-%m-%d %H:%M') old=$OLD new=$(git rev-parse --short HEAD) pictures=$i"
echo "# load $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"
for r in $(seq "$RUNS"); do
    for build in old new; do
        src=$(ab_src "$build")
        rm -f "$work/many/ranking.json"
        PYTHONPATH=$src /usr/bin/time -f "%e %M" -o "$work/t" $PY -m t2i_cli rerank "$work/many" \
            --prompt "a red bird" > "$work/$build.txt" 2>/dev/null
        read -r wall kb < "$work/t"
        ab_record "$build" "$r" "$wall" "$kb"
    done
done
# the same score for every picture (ties may be listed in another order)
if diff <(awk 'NF==3{print $3, $2}' "$work/old.txt" | sort) <(awk 'NF==3{print $3, $2}' "$work/new.txt" | sort) >/dev/null
then echo "every picture's score: the same in both builds"; else echo "scores DIFFER between the builds"; fi
ab_summary
