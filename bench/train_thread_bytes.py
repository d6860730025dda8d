"""Whether `t2i train` gives the same bytes at --threads 1 and 2 (BENCHMARKS.md "Training at another thread count"):
one tiny whole run (the world, --preset tiny, STEPS steps a stage, --workers 0) at each count, every stage's model
compared (same bytes, or the largest difference of a weight); then a dVAE run of STEPS steps at 1 thread stopped
(SIGTERM) after half of its steps and resumed (same total) at 1 and at 2 threads, against the run trained straight
through.
    PYTHONPATH=src python bench/train_thread_bytes.py [--steps 20]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

# `t2i train` whose AdamW sends itself SIGTERM after its STOP-th step (a stop: the run checkpoints and ends; not SIGINT,
# which a shell's background job ignores)
STOPPED = """
import os, signal, sys, torch
stop, real, calls = int(os.environ["STOP_AFTER"]), torch.optim.AdamW.step, [0]
def step(self, *a, **k):
    out = real(self, *a, **k)
    calls[0] += 1
    if calls[0] == stop:
        os.kill(os.getpid(), signal.SIGTERM)
    return out
torch.optim.AdamW.step = step
from t2i_cli.cli import main
sys.argv = ["t2i", *sys.argv[1:]]
main()
"""


def t2i(*args: str, stop_after: int = 0) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src"), "STOP_AFTER": str(stop_after)}
    env.pop("OMP_NUM_THREADS", None)
    cmd = ["-c", STOPPED] if stop_after else ["-m", "t2i_cli"]
    done = subprocess.run([sys.executable, *cmd, "train", *map(str, args)], env=env, stdout=subprocess.DEVNULL)
    if done.returncode not in ((130, 143) if stop_after else (0,)):
        raise SystemExit(f"t2i train {' '.join(map(str, args))}: exit {done.returncode}")


def compare(a: Path, b: Path) -> str:
    from t2i_cli.weights import load_tensors

    if a.read_bytes() == b.read_bytes():
        return "same bytes"
    ta, tb = load_tensors(a)[0], load_tensors(b)[0]
    worst = max(float((ta[k].float() - tb[k].float()).abs().max()) for k in ta)
    return f"other bytes, largest weight difference {worst:.3g}"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=20)
    steps = p.parse_args().steps
    import torch

    print(f"# torch {torch.__version__}, {os.cpu_count()} CPUs; tiny preset, world, {steps} steps a stage, --workers 0")
    common = ["--preset", "tiny", "--workers", "0", "--device", "cpu", "-q"]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for n in (1, 2):
            t2i("--stage", "all", "--steps", steps, "--sample-every", steps, *common, "--threads", n,
                "--out", work / f"all{n}")
        for stage in ("dvae", "transformer", "clip"):
            name = f"{stage}.safetensors"
            said = compare(work / "all1" / stage / name, work / "all2" / stage / name)
            print(f"whole run, {stage}: --threads 1 vs 2: {said}")
        half = steps // 2
        dvae = ["--stage", "dvae", "--steps", steps, "--sample-every", "0", "--ckpt-every", steps, *common]
        t2i(*dvae, "--threads", "1", "--out", work / "straight")
        for n in (1, 2):
            t2i(*dvae, "--threads", "1", "--out", work / f"resumed{n}", stop_after=half)
            t2i("--resume", work / f"resumed{n}", "--threads", n, "-q")
            print(f"dvae, {steps} steps at 1 thread vs stopped after {half} and resumed at {n}: "
                  f"{compare(work / 'straight' / 'dvae.safetensors', work / f'resumed{n}' / 'dvae.safetensors')}")

if __name__ == "__main__":
    main()
