#!/bin/bash
# Watch the background GPU recipe for up to SECONDS (or until it ends), then print its state and pack its
# weights and run logs (no checkpoints) into $OUT as 15 MB parts: cat pack.tgz.part-* | tar xz
#   usage: bash bench/gpu_poll.sh [SECONDS]
W=/tmp/t2i; end=$(( $(date +%s) + ${1:-0} ))
while [ $(date +%s) -lt $end ] && ! grep -q "stage wall times\|failed\|Traceback" $W/log 2>/dev/null; do sleep 10; done
cat $W/log
for f in $W/runs/*/metrics.jsonl; do echo "$f: $(tail -1 $f)"; done
tail -c 600 $W/runs/*.log 2>/dev/null
nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader
uptime
if [ -n "${OUT:-}" ]; then
  (cd $W && find -L runs weights log -type f ! -name 'checkpoint.safetensors' ! -path 'runs/*/*.safetensors' \
     ! -path 'runs/*/samples/*' 2>/dev/null; for d in runs/*/samples; do ls $d/*.png 2>/dev/null | tail -n 2; done) \
    | (cd $W && tar czf - -T -) | split -b 15M - $OUT/pack.tgz.part-
  ls -la $OUT
fi
