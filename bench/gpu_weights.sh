#!/bin/bash
# Run on a lent GPU machine (the device tool) from the repository root: check the CUDA path with the tiny
# preset, then start the GPU recipe of the shipped weights in the background (setsid, so it outlives this
# command); bench/gpu_poll.sh reports on it and packs its results into $OUT.
#   usage: bash bench/gpu_weights.sh [SECONDS_TO_WATCH]
set -u
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
W=/tmp/t2i; mkdir -p $W
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, typer, rich, tokenizers, PIL, safetensors; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'cpus', __import__('os').cpu_count())"
T="${PY:-python3} -m t2i_cli"; D=${DEV:-cuda}
S=$W/smoke; rm -rf $S; t0=$(date +%s)
set -e
$T train --stage tokenizer --preset tiny --out $S/tok -q
$T train --stage dvae --preset tiny --steps 30 --device $D --out $S/dvae -q
$T train --stage transformer --preset tiny --steps 30 --device $D --dvae $S/dvae --tokenizer $S/tok --out $S/tr -q
$T train --stage clip --preset tiny --steps 30 --device $D --tokenizer $S/tok --out $S/clip -q
$T export $S/tr $S/clip --to $S/w --half
$T generate "a red bird" --weights $S/w --device $D --n 4 --candidates 2 --seed 0 --out $S/o1 -q
$T generate "a red bird" --weights $S/w --device $D --n 4 --candidates 2 --seed 0 --out $S/o2 -q
cmp <(cat $S/o1/*.png | sha256sum) <(cat $S/o2/*.png | sha256sum) && echo "cuda generate: same seed, same bytes"
$T rerank $S/o1 --weights $S/w --device $D | tail -3
echo "smoke test passed in $(( $(date +%s) - t0 )) s"
set +e
[ -n "${SMOKE_ONLY:-}" ] && exit 0
setsid nohup python3 bench/make_weights.py --preset large --runs $W/runs --to $W/weights --device cuda \
  --workers 11 --side-workers 4 --parallel --budget dvae=270 --budget transformer=690 --no-eval \
  > $W/log 2>&1 < /dev/null &
echo "started make_weights (pid $!)"
bash bench/gpu_poll.sh ${1:-0}
