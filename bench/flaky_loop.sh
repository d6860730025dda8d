#!/usr/bin/env bash
# How often a test fails when the machine is busy: run one pytest node N times beside BUSY busy loops (each a
# `while 1: pass` process at nice -5, so the test's processes get less CPU than they would alone), and count the
# failures; each failing run's output is kept as /tmp/flaky-loop-I.log.
# Usage: bash bench/flaky_loop.sh TEST_NODE [N=12] [BUSY=3]
#   e.g. bash bench/flaky_loop.sh "tests/test_divergence.py::test_torchrun_stops_every_process_when_one_diverges"
set -u
node=$1; n=${2:-12}; busy=${3:-3}
pids=()
for _ in $(seq 1 "$busy"); do nice -n -5 python3 -c 'while 1: pass' & pids+=($!); done
trap 'kill "${pids[@]}" 2>/dev/null' EXIT
fails=0
for i in $(seq 1 "$n"); do
  if ! PYTHONPATH=src timeout 300 .venv/bin/python -m pytest -o addopts="" -q -x -p no:cacheprovider "$node" \
      > "/tmp/flaky-loop-$i.log" 2>&1; then
    fails=$((fails + 1))
  else
    rm -f "/tmp/flaky-loop-$i.log"
  fi
done
echo "$node: $fails of $n failed beside $busy busy loops ($(nproc) CPUs, $(date -u +%F' '%H:%M) UTC)"
