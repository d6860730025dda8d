#!/usr/bin/env bash
# A stop that reaches a training run's data loader worker as well as its main process (a scheduler's, systemd's or
# pkill's SIGTERM to each process), old build against this one, side by side: `t2i train --stage dvae` on DATA
# (tiny preset, 1 loader worker, checkpoints only at the end), and once it has logged 3 steps a SIGTERM in ORDER:
#   main-then-worker  the main process, then 0.05 s later its worker
#   worker-then-main  the worker, then 0.05 s later the main process
#   together          one kill of both
#   worker            the worker alone
# Each run's line: exit code, whether stderr says "internal error" or holds a traceback, the checkpoint's step
# against the last step logged (lost = logged - saved), a worker left running, temporary files left; then per
# build and order how many runs ended well (exit 130, one line, no step lost, nothing left behind).
#   bench/stop_orders.sh DATA [OLD_REV=ff1372b] [ROUNDS=3] [ORDERS="main-then-worker worker-then-main together worker"]
set -u
cd "$(dirname "$0")/.." || exit 1
DATA=$1 OLD=${2:-ff1372b} ROUNDS=${3:-3} ORDERS=${4:-main-then-worker worker-then-main together worker}
PY=$PWD/.venv/bin/python
work=$(mktemp -d)
trap 'git worktree remove --force "$work/old" >/dev/null 2>&1; rm -rf "$work"' EXIT
git worktree add -q --detach "$work/old" "$OLD"
echo "# $(hostname) $(date -u '+%Y-%m-%d %H:%M') UTC, $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg);" \
     "old=$OLD new=$(git rev-parse --short HEAD)+tree; data=$DATA; rounds $ROUNDS"
logged() { local n; n=$(grep -c '"loss"' "$1" 2>/dev/null); echo "${n:-0}"; }
saved() { [ -f "$1" ] && PYTHONPATH=$PWD/src $PY -c "import sys; from t2i_cli.weights import read_metadata
print(read_metadata(sys.argv[1])['step'])" "$1" 2>/dev/null || echo none; }
for r in $(seq 1 "$ROUNDS"); do
  for order in $ORDERS; do
    for arm in old new; do
      src=$PWD/src; [ "$arm" = old ] && src=$work/old/src
      run=$work/run-$arm-$order-$r
      setsid env PYTHONPATH="$src" OMP_NUM_THREADS=1 $PY -m t2i_cli train --stage dvae --data "$DATA" --preset tiny \
          --workers 1 --steps 100000 --ckpt-every 100000 --sample-every 0 --log-every 1 --out "$run" \
          >/dev/null 2>"$run.err" &
      main=$!
      until [ "$(logged "$run/metrics.jsonl")" -ge 3 ] || ! kill -0 $main 2>/dev/null; do sleep 0.1; done
      worker=$(ps -o pid= --ppid $main | tr -d ' ' | head -1)
      case $order in
        main-then-worker) kill -TERM $main; sleep 0.05; kill -TERM $worker;;
        worker-then-main) kill -TERM $worker; sleep 0.05; kill -TERM $main;;
        together) kill -TERM $main $worker;;
        worker) kill -TERM $worker;;
      esac
      wait $main; code=$?
      sleep 0.5
      left=$(ps -o pid= -p $worker 2>/dev/null | wc -l)
      tmps=$(ls -a "$run" 2>/dev/null | grep -c '\.tmp$')
      n=$(grep '"loss"' "$run/metrics.jsonl" 2>/dev/null | tail -1 | sed 's/.*"step": \([0-9]*\).*/\1/')
      s=$(saved "$run/checkpoint.safetensors")
      internal=$(grep -c 'internal error' "$run.err"); tb=$(grep -c 'Traceback' "$run.err")
      lost=$([ "$s" = none ] && echo "${n:-0}" || echo $(( ${n:-0} - s )))
      ok=$([ $code = 130 ] && [ "$internal" = 0 ] && [ "$tb" = 0 ] && [ "$lost" -le 0 ] && [ "$left" = 0 ] \
           && [ "$tmps" = 0 ] && echo yes || echo no)
      echo "$arm $order #$r: exit $code, internal error $internal, tracebacks $tb, logged ${n:-0}, saved $s," \
           "lost $lost, worker left $left, tmp $tmps, well $ok :: $(tail -1 "$run.err" | cut -c1-150)"
      echo "$arm $order $ok" >> "$work/all"
    done
  done
done
for arm in old new; do
  for order in $ORDERS; do
    echo "$arm $order: ended well in $(grep -c "^$arm $order yes" "$work/all") of $(grep -c "^$arm $order " "$work/all")"
  done
done
