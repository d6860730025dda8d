#!/usr/bin/env bash
# Peak memory of reading a folder whose caption files hold many short lines (each line is a caption, each a
# string of its own): `t2i data preview` of the GNOME icons (bench/make_icon_folder.py), every caption file
# replaced by LINES three-byte lines, this build against an older commit, alternating fresh processes.
#   bench/caption_memory.sh [OLD_REV=58f103b] [RUNS=3] [LINES=20000]
set -eu
cd "$(dirname "$0")/.." || exit 1
OLD=${1:-58f103b}
RUNS=${2:-3}
LINES=${3:-20000}
. bench/ab.sh
ab_start
$PY bench/make_icon_folder.py "$work/icons" >/dev/null
$PY - "$work/icons" "$LINES" <<'PY'
import sys
from pathlib import Path
folder, lines = Path(sys.argv[1]), int(sys.argv[2])
for i, txt in enumerate(sorted(folder.glob("*.txt"))):
    txt.write_text("".join(f"{(i + k) % 100:02d}\n" for k in range(lines)))
PY
echo "# $(hostname) $(date -u '+%Y-%m-%d %H:%M') old=$OLD new=$(git rev-parse --short HEAD)" \
     "pictures=$(ls "$work"/icons/*.png | wc -l) lines per caption file=$LINES"
echo "# load $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"
for r in $(seq "$RUNS"); do
    for build in old new; do
        src=$(ab_src "$build")
        rm -f "$work/preview.png"
        rc=0
        PYTHONPATH=$src /usr/bin/time -f "%e %M" -o "$work/t" $PY -m t2i_cli data preview "$work/icons" \
            --out "$work/preview.png" > /dev/null 2> "$work/err" || rc=$?
        read -r wall kb < <(tail -1 "$work/t")
        echo "$build $r $wall s $((kb / 1024)) MB exit $rc $(head -c 200 "$work/err" | tr '\n' ' ')"
        echo "$build $wall $((kb / 1024))" >> "$work/all"
    done
done
ab_summary
