#!/usr/bin/env bash
# A picture deleted mid-run: what an error that ends a training run keeps. For this build and OLD_REV, side by
# side: a copy of a folder of real pictures, `t2i train --stage dvae` on it (tiny preset, batch 4, --ckpt-every
# 100); once the run has logged step DELETE_AT, the copy's second half of pictures is deleted, and the run ends
# at the first batch that holds a picture not yet read. Then: its error line, the step of the checkpoint it left,
# the steps trained that were lost; with the pictures back, `--resume` to STEPS, and its last loss.
#   bench/error_mid_run.sh DATA [OLD_REV=e24f1c6] [STEPS=300] [DELETE_AT=20]
set -u
cd "$(dirname "$0")/.." || exit 1
DATA=$1 OLD=${2:-e24f1c6} STEPS=${3:-300} DELETE_AT=${4:-20}
PY=$PWD/.venv/bin/python
work=$(mktemp -d)
trap 'git worktree remove --force "$work/old" >/dev/null 2>&1; rm -rf "$work"' EXIT
git worktree add -q --detach "$work/old" "$OLD"
echo "# $(hostname) $(date -u '+%Y-%m-%d %H:%M') this build $(git rev-parse --short HEAD)+ against $OLD; data=$DATA"
echo "# load $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs, $(ls "$DATA"/*.png | wc -l) pictures"
last_step() { $PY -c "import json,sys; print(max([json.loads(l)['step'] for l in open(sys.argv[1])] or [0]))" "$1"; }
ckpt_step() { PYTHONPATH=$PWD/src $PY -c "import sys; from t2i_cli.weights import read_metadata
print(read_metadata(sys.argv[1])['step'])" "$1"; }
for arm in old new; do
    src=$PWD/src; [ "$arm" = old ] && src=$work/old/src
    rm -rf "$work/pics" "$work/run-$arm"; cp -r "$DATA" "$work/pics"
    PYTHONPATH=$src $PY -m t2i_cli train --stage dvae --data "$work/pics" --preset tiny --batch-size 4 \
        --steps "$STEPS" --ckpt-every 100 --log-every 5 --workers 0 --out "$work/run-$arm" 2>"$work/err-$arm" &
    pid=$!
    until [ -f "$work/run-$arm/metrics.jsonl" ] && [ "$(last_step "$work/run-$arm/metrics.jsonl")" -ge "$DELETE_AT" ]; do
        sleep 0.2
    done
    ls "$work/pics"/*.png | sort | tail -n +"$(( $(ls "$work/pics"/*.png | wc -l) / 2 ))" | xargs rm -f
    wait $pid; code=$?
    logged=$(last_step "$work/run-$arm/metrics.jsonl")
    saved=$( [ -f "$work/run-$arm/checkpoint.safetensors" ] && ckpt_step "$work/run-$arm/checkpoint.safetensors" || echo none)
    echo "## $arm: exit $code; last step logged $logged; checkpoint at step $saved"
    echo "   $(tail -1 "$work/err-$arm")"
    rm -rf "$work/pics"; cp -r "$DATA" "$work/pics"
    PYTHONPATH=$src $PY -m t2i_cli train --resume "$work/run-$arm" -q >/dev/null 2>"$work/resume-$arm" \
        || { echo "   resume failed: $(tail -1 "$work/resume-$arm")"; continue; }
    echo "   resumed from step $saved to $(ckpt_step "$work/run-$arm/checkpoint.safetensors"); last loss" \
         "$($PY -c "import json,sys; print(round([r for r in map(json.loads, open(sys.argv[1])) if 'loss' in r][-1]['loss'], 4))" \
            "$work/run-$arm/metrics.jsonl")"
done
