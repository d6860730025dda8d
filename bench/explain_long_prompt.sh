#!/usr/bin/env bash
# Wall time of `t2i rerank DIR --prompt P --explain` of one picture with a WORDS-word prompt (shipped weights), this
# build against an older commit, alternating fresh processes. --explain scored the picture once per word (each
# variant without one word), though the CLIP reads only its first few dozen tokens.
#   bench/explain_long_prompt.sh [OLD_REV=3e0f97f] [RUNS=3] [WORDS=400]
set -eu
cd "$(dirname "$0")/.." || exit 1
OLD=${1:-3e0f97f}
RUNS=${2:-3}
WORDS=${3:-400}
. bench/ab.sh
ab_start
prompt=$($PY -c "print(' '.join(['a red bird and a blue fish'] + ['on', 'the', 'grass'] * ($WORDS // 3))[:10**6])")
echo "# $(hostname) $(date -u '+%Y-%m-%d %H:%M') old=$OLD new=$(git rev-parse --short HEAD) words=$(echo "$prompt" | wc -w)"
echo "# load $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"
for r in $(seq "$RUNS"); do
    for build in old new; do
        rm -rf "$work/d" && mkdir "$work/d"
        $PY -c "from PIL import Image; Image.new('RGB', (64, 64), (200, 40, 40)).save('$work/d/a.png')"
        src=$(ab_src "$build")
        PYTHONPATH=$src /usr/bin/time -f "%e %M" -o "$work/t" $PY -m t2i_cli rerank "$work/d" --prompt "$prompt" \
            --explain --quiet > "$work/$build.out"
        read -r wall kb < "$work/t"
        ab_record "$build" "$r" "$wall" "$kb"
    done
done
if cmp -s "$work/old.out" "$work/new.out"; then echo "the printed ranking and word deltas: identical"
else echo "the printed output differs:"; diff "$work/old.out" "$work/new.out" | head -20; fi
ab_summary
