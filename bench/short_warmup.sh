#!/bin/bash
# Short runs before and after the warm-up cap (a quarter of the run at most), on a folder of real pictures:
# the dVAE and the transformer stages of the default preset, 100 steps each, old and new source side by side.
#   bash bench/short_warmup.sh OLD_SRC DATA DVAE_RUN TOKENIZER_RUN OUT
# e.g. git worktree add /tmp/old 35efba5; bash bench/short_warmup.sh /tmp/old/src /tmp/icons /tmp/icons-run/dvae \
#      /tmp/icons-run/tokenizer /tmp/warm
set -e
old_src=$1 data=$2 dvae=$3 tok=$4 out=$5
for side in old new; do
  if [ "$side" = old ]; then src=$old_src; else src=$(dirname "$0")/../src; fi
  PYTHONPATH=$src .venv/bin/t2i train --stage dvae --data "$data" --preset default --steps 100 --sample-every 0 \
    --log-every 10 --quiet --out "$out/$side-dvae" > /dev/null
  PYTHONPATH=$src .venv/bin/t2i train --stage transformer --data "$data" --preset default --dvae "$dvae" \
    --tokenizer "$tok" --steps 100 --sample-every 0 --log-every 10 --quiet --out "$out/$side-tr" > /dev/null
done
for run in old-dvae new-dvae old-tr new-tr; do
  python3 - "$out/$run" <<'PY'
import json, sys
rows = [json.loads(x) for x in open(sys.argv[1] + "/metrics.jsonl")]
val = [r for r in rows if "val_loss" in r][-1]
lr = [r["lr"] for r in rows if "lr" in r]
keys = [k for k in ("val_psnr", "val_bits_per_code") if k in val]
print(sys.argv[1].rsplit("/", 1)[1], "step", val["step"], " ".join(f"{k} {val[k]:.3f}" for k in keys),
      f"lr peak {max(lr):.2e} last {lr[-1]:.2e}")
PY
done
