#!/usr/bin/env bash
# A user's journey on the maps folder (bench/make_maps_folder.py: 223 uncaptioned pictures, Cartopy's maps and Qt
# Quick's control icons at three sizes): caption them by name, preview, one whole run of the tiny preset, `t2i info`,
# `t2i eval --data`, generate, rerank, vary, export; a second whole run stopped by Ctrl-C (SIGINT) in its dVAE stage,
# resumed, and compared byte for byte with the first; and the dVAE alone at 150 steps (at the preset's lr and at the
# lower lr the watchdog's warning used to suggest) beside 600. One thread, so it can share a machine.
#   bench/maps_journey.sh [STEPS=dvae=600,transformer=300,clip=200] [WHEELS=/opt/pypi/files] [WORK=mktemp]
set -eu
cd "$(dirname "$0")/.." || exit 1
STEPS=${1:-dvae=600,transformer=300,clip=200}
WHEELS=${2:-/opt/pypi/files}
work=${3:-$(mktemp -d)}
PY=${PY:-.venv/bin/python}
export PYTHONPATH=src
t2i() { OMP_NUM_THREADS=1 $PY -m t2i_cli "$@" 2>&1 | sed "s|$work/||g"; }
echo "# $(hostname) $(date -u '+%Y-%m-%d %H:%M') $(git rev-parse --short HEAD) steps=$STEPS;" \
     "load $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"
rm -rf "$work/f" "$work/run" "$work/run-int" "$work/out" "$work/vary" "$work/ctl" "$work/w" "$work"/d-*
$PY bench/make_maps_folder.py "$work/f" --wheels "$WHEELS" | sed "s|$work/||g"
echo "\$ t2i data caption f --dry-run   (a few of its lines)"
t2i data caption "$work/f" --dry-run | sed -n '1p;4p;100p;120p;131p;200p;222,223p;$p' | sed 's|^f/||'
echo "\$ t2i data caption f"
t2i data caption "$work/f" | tail -1
echo "\$ t2i data preview f"
t2i data preview "$work/f" --out "$work/preview.png"
start=$(date +%s)
echo "\$ t2i train --stage all --preset tiny --data f --out run --steps $STEPS --sample-every 100 --threads 1 --quiet"
t2i train --stage all --preset tiny --data "$work/f" --out "$work/run" --steps "$STEPS" --sample-every 100 --threads 1 \
    --quiet
echo "# whole run: $(( $(date +%s) - start )) s"
COLUMNS=120 t2i info "$work/run"
COLUMNS=200 t2i eval --data "$work/f" --weights "$work/run/weights" --threads 1
echo "\$ t2i generate \"global map\" --n 4 ... ; t2i rerank out"
t2i generate "global map" --n 4 --weights "$work/run/weights" --seed 0 --out "$work/out" --threads 1 --quiet
t2i rerank "$work/out" --weights "$work/run/weights" --threads 1 | tail -7
echo "\$ t2i vary f/controls/dial-icon@2x.png --n 2 ... ; and with --prompt 'dial icon' (its caption)"
t2i vary "$work/f/controls/dial-icon@2x.png" --n 2 --weights "$work/run/weights" --seed 0 --out "$work/vary" --threads 1
t2i vary "$work/f/controls/dial-icon@2x.png" --n 2 --prompt "dial icon" --weights "$work/run/weights" --seed 0 \
    --out "$work/vary" --threads 1
echo "\$ t2i rerank ctl   (a copy of f/controls: each icon's three sizes against their caption; the first two prompts)"
cp -r "$work/f/controls" "$work/ctl"
t2i rerank "$work/ctl" --weights "$work/run/weights" --threads 1 | head -10
echo "\$ t2i export run/tokenizer run/dvae run/transformer run/clip --to w"
t2i export "$work/run/tokenizer" "$work/run/dvae" "$work/run/transformer" "$work/run/clip" --to "$work/w"
for m in tokenizer.json dvae.safetensors transformer.safetensors clip.safetensors; do
    cmp -s "$work/w/$m" "$work/run/weights/$m" && echo "w/$m: the same bytes as run/weights/$m"
done
echo "# the same whole run again, Ctrl-C (SIGINT) once its dVAE has logged step 200, then resumed"
set -m  # (a background job of a script ignores SIGINT without job control)
OMP_NUM_THREADS=1 $PY -m t2i_cli train --stage all --preset tiny --data "$work/f" --out "$work/run-int" \
    --steps "$STEPS" --sample-every 100 --threads 1 --quiet > "$work/int.log" 2>&1 &
pid=$!
until grep -qs '"step": 200' "$work/run-int/dvae/metrics.jsonl"; do sleep 0.2; done
kill -INT "$pid"
rc=0; wait "$pid" || rc=$?
set +m
sed "s|$work/||g" "$work/int.log"; echo "exit $rc"
COLUMNS=120 t2i info "$work/run-int" | grep -E "dvae|next"
t2i train --resume "$work/run-int" --quiet | grep -v "^all stages finished"
for m in tokenizer.json dvae.safetensors transformer.safetensors clip.safetensors; do
    cmp -s "$work/run-int/weights/$m" "$work/run/weights/$m" && echo "run-int/weights/$m: the same bytes as run's" \
        || echo "run-int/weights/$m DIFFERS from run's"
done
echo "# the dVAE alone: 150 steps at the preset's lr (1e-3) and at 1e-4, 600 steps at 1e-3; the end's metrics"
for arm in "150 1e-3" "150 1e-4" "600 1e-3"; do
    set -- $arm
    t2i train --stage dvae --preset tiny --data "$work/f" --out "$work/d-$1-$2" --steps "$1" --lr "$2" --threads 1 \
        --quiet | grep -v "^run folder" | sed -E 's/^dvae stage finished: .*"out_std": ([0-9.e-]+), "perplexity": ([0-9.]+), "codes_used": ([0-9.]+).*/  end: out_std \1, perplexity \2, codes used \3/' \
        | sed "s|^|steps $1, lr $2: |"
done
echo "# the 600-step dVAE's logged out_std (spread of its drawings) and codebook perplexity, its lr, to step 200"
$PY - "$work/d-600-1e-3/metrics.jsonl" <<'EOF'
import json
import sys

for line in open(sys.argv[1]):
    m = json.loads(line)
    if "out_std" in m and m["step"] <= 200:
        print(f"step {m['step']:3d}: out_std {m['out_std']:.4f}, perplexity {m['perplexity']:5.2f}, lr {m['lr']:.5f}")
EOF
echo "# work folder: $work"
