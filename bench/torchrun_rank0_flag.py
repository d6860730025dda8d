"""What train.on_rank_0's agreement costs a 2-process torchrun training run (gloo, CPU, one thread each): the
1-number broadcast (train._on_every_rank) after rank 0's metrics line, samples or early stop, against a training step
of the dVAE of --preset tiny. Times, in each process, every _on_every_rank call and the interval between two steps'
loss reductions (train._mean_over_ranks, once a step: one whole step, the broadcast of a logged step included).
Rank 0 reaches the broadcast last (it wrote the line first), so its time there is the broadcast's own cost; rank
1's also holds its wait for rank 0's line, which the next step's reduction would hold without the broadcast.

Usage: PYTHONPATH=src python bench/torchrun_rank0_flag.py [--steps N] [--log-every N] [--work DIR]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[1] / "src")

TIMING = f"""
import atexit, os, statistics, sys, time
sys.path.insert(0, {SRC!r})
import t2i_cli.train as train
real_flag, real_mean = train._on_every_rank, train._mean_over_ranks
flags, ends = [], []
def on_every_rank(flag, dd):
    t = time.perf_counter()
    out = real_flag(flag, dd)
    flags.append(time.perf_counter() - t)
    return out
def mean_over_ranks(x, dd):
    out = real_mean(x, dd)
    ends.append(time.perf_counter())
    return out
train._on_every_rank, train._mean_over_ranks = on_every_rank, mean_over_ranks
def report():
    steps = [b - a for a, b in zip(ends[5:], ends[6:])]  # (the first steps warm up)
    ms = lambda xs: f"median {{statistics.median(xs) * 1e3:.3f}} ms, max {{max(xs) * 1e3:.3f}} ms" if xs else "none"
    print(f"RANK {{os.environ['RANK']}} broadcasts {{len(flags)}}: {{ms(flags)}}; steps timed {{len(steps)}}: "
          f"{{ms(steps)}}", file=sys.stderr)
atexit.register(report)
from t2i_cli.cli import main
sys.argv = ["t2i", *sys.argv[1:]]
main()
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--log-every", type=int, default=1)
    ap.add_argument("--work", default=None)
    a = ap.parse_args()
    work = Path(a.work or tempfile.mkdtemp(prefix="t2i-rank0-flag-"))
    work.mkdir(parents=True, exist_ok=True)
    (work / "tmp").mkdir(exist_ok=True)
    script = work / "timing_t2i.py"
    script.write_text(TIMING)
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1", "TMPDIR": str(work / "tmp")}
    out = work / f"run-log{a.log_every}"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script),
           "train", "--preset", "tiny", "--stage", "dvae", "--steps", str(a.steps), "--log-every", str(a.log_every),
           "--sample-every", "0", "--workers", "0", "--device", "cpu", "-q", "--data", "world", "--out", str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    print(f"# --preset tiny --stage dvae, {a.steps} steps, --log-every {a.log_every}, exit {proc.returncode}")
    for ln in sorted(ln for ln in proc.stderr.splitlines() if ln.startswith("RANK ")):
        print(ln)
    if proc.returncode:
        print(proc.stderr[-2000:], file=sys.stderr)


if __name__ == "__main__":
    main()
