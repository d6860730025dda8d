"""How often each process of a 2-process torchrun training run decodes the pictures of a folder: the training cache
(data.PairDataset, TRAINING_CACHE_BYTES) is held in memory by each process, no file, so each process decodes (once)
the pictures it reads, and the source's opening check decodes each picture in every process. Counts calls of
images.load_rgb (a picture decoded at a side), per rank, and their time. One thread per process.

Usage: PYTHONPATH=src python bench/torchrun_decodes.py FOLDER [--steps N] [--work DIR]
  FOLDER: pictures with NAME.txt captions (a copy of an icon folder)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[1] / "src")

COUNTING = f"""
import atexit, os, sys, time
sys.path.insert(0, {SRC!r})
import t2i_cli.images as images
real, seen = images.load_rgb, {{"calls": 0, "s": 0.0, "files": set()}}
def load_rgb(path, *a, **k):
    t = time.perf_counter()
    out = real(path, *a, **k)
    seen["calls"] += 1
    seen["s"] += time.perf_counter() - t
    seen["files"].add(str(path))
    return out
images.load_rgb = load_rgb
atexit.register(lambda: print(f"RANK {{os.environ['RANK']}} load_rgb calls {{seen['calls']}} pictures "
                              f"{{len(seen['files'])}} seconds {{seen['s']:.2f}}", file=sys.stderr))
from t2i_cli.cli import main
sys.argv = ["t2i", *sys.argv[1:]]
main()
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--work", default=None)
    a = ap.parse_args()
    work = Path(a.work or tempfile.mkdtemp(prefix="t2i-decodes-"))
    work.mkdir(parents=True, exist_ok=True)
    (work / "tmp").mkdir(exist_ok=True)
    script = work / "counting_t2i.py"
    script.write_text(COUNTING)
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1", "TMPDIR": str(work / "tmp")}
    pictures = sum(1 for p in Path(a.folder).iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    for workers in (0,):  # (a loader worker ends without atexit: its decodes would go uncounted)
        out = work / f"run-w{workers}"
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script),
               "train", "--preset", "tiny", "--stage", "dvae", "--steps", str(a.steps), "--sample-every", "0",
               "--workers", str(workers), "--device", "cpu", "-q", "--data", a.folder, "--out", str(out)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        lines = sorted(ln for ln in proc.stderr.splitlines() if ln.startswith("RANK "))
        print(f"# --workers {workers}, {pictures} pictures in the folder, {a.steps} steps, exit {proc.returncode}")
        for ln in lines:
            print(ln)


if __name__ == "__main__":
    main()
