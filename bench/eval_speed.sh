#!/usr/bin/env bash
# `t2i eval` speed of this build against an older commit, side by side on one machine, same weights and
# settings: runs `t2i eval --n N --json` with each build ROUNDS times (alternating) and prints each
# run's generation seconds, images/s and overall score, then the median seconds of each build.
#   bench/eval_speed.sh [OLD_REV=7be74bf] [N=10] [ROUNDS=3]
# OLD_ARGS and NEW_ARGS (environment) add eval options to one build's runs, e.g. the same build with and
# without a setting: OLD_ARGS= NEW_ARGS="--jacobi 16" bench/eval_speed.sh HEAD 10 3
set -eu
cd "$(dirname "$0")/.." || exit 1
OLD=${1:-7be74bf}
N=${2:-10}
ROUNDS=${3:-3}
PY=.venv/bin/python
work=$(mktemp -d)
trap 'git worktree remove --force "$work/old" >/dev/null 2>&1; rm -rf "$work"' EXIT
git worktree add --detach "$work/old" "$OLD" >/dev/null 2>&1
echo "# $(hostname) $(date -u '+%Y-%m-%d %H:%M') old=$OLD new=$(git rev-parse --short HEAD) n=$N rounds=$ROUNDS" \
    "old args: ${OLD_ARGS:-} new args: ${NEW_ARGS:-}"
for r in $(seq "$ROUNDS"); do
    for build in old new; do
        src=$([ "$build" = old ] && echo "$work/old/src" || echo src)
        args=$([ "$build" = old ] && echo "${OLD_ARGS:-}" || echo "${NEW_ARGS:-}")
        # shellcheck disable=SC2086  # the extra options split into words
        PYTHONPATH=$src $PY -m t2i_cli eval --weights weights --n "$N" --json "$work/$build-$r.json" -q $args >/dev/null
        $PY -c "import json,sys; d=json.load(open(sys.argv[1])); print(sys.argv[2], 'round', sys.argv[3], \
f\"{d['seconds']:.1f} s\", f\"{d['images_per_second']:.2f} images/s\", f\"overall {d['overall']:.4f}\")" \
            "$work/$build-$r.json" "$build" "$r"
    done
done
$PY - "$work" "$ROUNDS" <<'PY'
import json, statistics, sys
work, rounds = sys.argv[1], int(sys.argv[2])
med = {b: statistics.median(json.load(open(f"{work}/{b}-{r}.json"))["seconds"] for r in range(1, rounds + 1))
       for b in ("old", "new")}
print(f"median seconds: old {med['old']:.1f}, new {med['new']:.1f}, speed-up {med['old'] / med['new']:.2f}x")
PY
