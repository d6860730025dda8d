#!/usr/bin/env bash
# `t2i generate --prompts FILE` against one `t2i generate LINE` per line, side by side: each round runs the
# file's P prompts both ways (alternating which goes first), as fresh processes under /usr/bin/time; prints each
# run's wall seconds (the P commands' sum) and peak RSS, the medians, and whether the two ways wrote the same
# bytes (they must: --prompts draws each line as `generate LINE` does).
#   bench/prompt_file.sh [PROMPTS=16] [RUNS=3] [-- extra generate arguments, given to both]
set -eu
cd "$(dirname "$0")/.." || exit 1
P=${1:-16}
RUNS=${2:-3}
shift $(( $# >= 2 ? 2 : $# ))
[ "${1:-}" = "--" ] && shift
PY=.venv/bin/python
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The first P prompts of eval's world tasks, seed 0: one-object, colour, position, count and two-object prompts.
PYTHONPATH=src $PY - "$P" > "$work/prompts.txt" <<'PY'
import sys
from t2i_cli.world import tasks
p = [prompt for t in tasks.TASKS for prompt, _ in tasks.task_prompts(t, 50, 0)]
print("\n".join(p[i * len(p) // int(sys.argv[1])] for i in range(int(sys.argv[1]))))
PY
echo "# $(hostname) $(date -u '+%Y-%m-%d %H:%M') $(git rev-parse --short HEAD) prompts=$P runs=$RUNS args: $*"
echo "# load $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"
file_way() {
    PYTHONPATH=src /usr/bin/time -f "%e %M" -o "$work/t" $PY -m t2i_cli generate --prompts "$work/prompts.txt" \
        --seed 0 --out "$1" --quiet "${@:2}" >/dev/null
    read -r wall kb < "$work/t"
    echo "file $r $wall s $((kb / 1024)) MB"; echo "file $wall $((kb / 1024))" >> "$work/all"
}
line_way() {
    local sum=0 peak=0
    while IFS= read -r line; do
        PYTHONPATH=src /usr/bin/time -f "%e %M" -o "$work/t" $PY -m t2i_cli generate "$line" --seed 0 \
            --out "$1" --quiet "${@:2}" >/dev/null
        read -r wall kb < "$work/t"
        sum=$($PY -c "print(round($sum + $wall, 2))"); peak=$(( kb > peak ? kb : peak ))
    done < "$work/prompts.txt"
    echo "lines $r $sum s $((peak / 1024)) MB"; echo "lines $sum $((peak / 1024))" >> "$work/all"
}
for r in $(seq "$RUNS"); do
    rm -rf "$work/a" "$work/b"
    if [ $((r % 2)) = 1 ]; then file_way "$work/a" "$@"; line_way "$work/b" "$@"
    else line_way "$work/b" "$@"; file_way "$work/a" "$@"; fi
    if diff -r "$work/a" "$work/b" >/dev/null; then same="the same $(ls "$work/a" | wc -l) files, byte for byte"
    else same="DIFFERENT files"; fi
    echo "# round $r: $same"
done
$PY - "$work/all" "$P" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
med = {}
for way in ("file", "lines"):
    med[way] = statistics.median(float(w) for b, w, _ in rows if b == way)
    print(f"{way}: median {med[way]:.2f} s for {sys.argv[2]} prompts, peak RSS {max(int(m) for b, _, m in rows if b == way)} MB")
print(f"--prompts is {med['lines'] / med['file']:.2f}x faster")
PY
