"""draw_codes of several git revisions side by side in one process: the default `generate "a red bird"` decode (4
candidates with guidance, 8 rows, bf16 packed, seed 0), arms alternating, median of --rounds, in process CPU
seconds (time.process_time: on a shared machine the wall counts the time others held the core) at --threads.

    PYTHONPATH=src python bench/decode_revs_ab.py REV [REV ...] [--rounds 5] [--threads 1] [--weights weights]

Each REV's src/t2i_cli (`git archive`) is unpacked to a temporary folder as a package of its own name
(t2i_rev0, t2i_rev1, ...; every `t2i_cli` in its .py files renamed), so each arm runs that revision's own
code, decode_step and loop, on its own copy of the model. The script checks every arm draws the same codes
(the first arm's), and says the load average before and after. "paired" is the median over rounds of the
first arm's time over this arm's in the same round (neighbours in time share the machine's load).
"""

from __future__ import annotations

import argparse
import importlib
import io
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

os.environ.setdefault("GOMP_SPINCOUNT", "10000")  # as cli.bound_spinning, before torch loads

import torch  # noqa: E402


def unpack(rev: str, name: str, into: Path) -> str:
    """rev's src/t2i_cli as the package `name` under into; returns rev's short hash."""
    short = subprocess.run(["git", "rev-parse", "--short", rev], capture_output=True, text=True, check=True).stdout
    tar = subprocess.run(["git", "archive", rev, "src/t2i_cli"], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(tar)) as t:
        t.extractall(into / "x" / name, filter="data")
    (into / "x" / name / "src" / "t2i_cli").rename(into / name)
    for py in (into / name).rglob("*.py"):
        py.write_text(py.read_text().replace("t2i_cli", name))
    return short.strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("revs", nargs="+")
    ap.add_argument("--weights", default="weights")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    tmp = Path(tempfile.mkdtemp(prefix="t2i-revs-"))
    sys.path.insert(0, str(tmp))
    arms = {}
    for k, rev in enumerate(args.revs):
        name = f"t2i_rev{k}"
        label = f"{rev} ({unpack(rev, name, tmp)})"
        pipe = importlib.import_module(f"{name}.pipeline").TextToImage.from_folder(Path(args.weights), "cpu",
                                                                                    precision="bf16")
        sampling = importlib.import_module(f"{name}.sampling")
        m, B = pipe.bundle.transformer, 4
        ids = torch.tensor(pipe.request("a red bird").encoded.ids).expand(B, -1)
        uncond = torch.tensor(pipe.bundle.tokenizer.empty(pipe.text_len))
        arms[label] = (lambda s=sampling, m=m, ids=ids, u=uncond:
                       s.draw_codes(m, ids, u, s.SamplingConfig(), torch.Generator().manual_seed(0))[0])
    print(f"# {time.strftime('%Y-%m-%d %H:%M')} torch {torch.__version__}, {args.threads} thread(s), "
          f"{args.rounds} alternating rounds after a warm-up, process CPU s per image (4 candidates, 8 rows), "
          f"load {os.getloadavg()[0]:.2f}")
    codes = [fn() for fn in arms.values()]  # warm-up
    if any(not torch.equal(c, codes[0]) for c in codes):
        raise SystemExit("the arms drew other codes")
    times: dict[str, list[float]] = {name: [] for name in arms}
    for _ in range(args.rounds):
        for name, fn in arms.items():
            t = time.process_time()
            fn()
            times[name].append(time.process_time() - t)
    base = next(iter(times.values()))
    print(f"# load at end {os.getloadavg()[0]:.2f}; the same codes in every arm")
    print("| arm | CPU s (median) | first arm / this | paired: median of first / this | rounds faster | all rounds |")
    print("|---|---:|---:|---:|---:|---|")
    for name, v in times.items():
        med, pairs = statistics.median(v), [a / b for a, b in zip(base, v, strict=True)]
        print(f"| {name} | {med:.3f} | {statistics.median(base) / med:.3f}x | {statistics.median(pairs):.3f}x | "
              f"{sum(p > 1 for p in pairs)}/{len(pairs)} | {' '.join(f'{x:.2f}' for x in v)} |")


if __name__ == "__main__":
    main()
