"""How late a stop during `t2i train --stage tokenizer` is answered, old build against new. The command runs as it
is, with one observation hook: the moment the tokenizers library starts reading the captions it trains on is
marked by a file (from then on the main thread is inside the library's train_from_iterator: its Rust trainer reads
the captions on its own rayon threads and merges, and checks no Python signal). Each round runs the stage once
uninterrupted per build (D: from that mark to its tokenizer.json on disk), then per build a run
SIGINTed at a random moment (seeded) of [0, D] after the mark, and measures the time from the signal to stderr's
"interrupted" line and to the process's exit; a run that finished first is counted apart. A stopped run's folder must
hold no tokenizer.json (nothing half written).

    OMP_NUM_THREADS=1 python bench/tokenizer_stop.py [--old REV] [--new REV] [--rounds 8] [--seed 0] [--data world]

Each build is a git worktree of its revision (--new HEAD by default), so editing the tree meanwhile changes nothing.
Prints one line per run, then per build the median and largest delay to the line and to the exit.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# The child: t2i's entry, with TextTokenizer.train's captions wrapped so that their second reading's start (the
# library's) touches MARK. (The first reading counts characters, in Python.)
HOOK = r"""
import os, sys
from t2i_cli.models import tokenizer as T
real = T.TextTokenizer.train.__func__
def train(cls, texts, *a, **k):
    class Marked:
        reads = 0
        def __iter__(self):
            Marked.reads += 1
            if Marked.reads == 2:
                open(os.environ["T2I_BENCH_MARK"], "w").close()
            yield from texts
    return real(cls, Marked(), *a, **k)
T.TextTokenizer.train = classmethod(train)
sys.argv = ["t2i", *sys.argv[1:]]
from t2i_cli.__main__ import entry
entry()
"""


def run(src: Path, out: Path, data: str, delay: float | None) -> tuple[float | None, float, int, float]:
    """(signal to the interrupted line or None, signal to exit, exit code, mark to tokenizer.json) of one run
    stopped delay s after the mark; delay None: not stopped."""
    mark = out.with_name(out.name + ".mark")
    env = dict(os.environ, PYTHONPATH=str(src), OMP_NUM_THREADS="1", T2I_BENCH_MARK=str(mark))
    p = subprocess.Popen([sys.executable, "-c", HOOK, "train", "--stage", "tokenizer", "--data", data, "--out",
                          str(out), "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, text=True)
    while not mark.exists() and p.poll() is None:
        time.sleep(0.001)
    marked = time.monotonic()
    length = float("nan")
    if delay is None:
        while not (out / "tokenizer.json").exists() and p.poll() is None:
            time.sleep(0.001)
        length = time.monotonic() - marked
    else:
        while time.monotonic() - marked < delay and p.poll() is None:
            time.sleep(0.001)
    sent = time.monotonic()
    if delay is not None and p.poll() is None:
        p.send_signal(signal.SIGINT)
    line = None
    for text in p.stderr:
        if text.startswith("interrupted"):
            line = time.monotonic() - sent
    p.wait()
    mark.unlink(missing_ok=True)
    return line, time.monotonic() - sent, p.returncode, length


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--old", default="HEAD~1")
    ap.add_argument("--new", default="HEAD")
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", default="world")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # (a kill of this script removes its worktrees)
    # (started in the background by a shell without job control, SIGINT is ignored, and the t2i it starts keeps
    # it so: a handler of Python's own is put back to the default in a child)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp())
    builds = {"old": work / "old" / "src", "new": work / "new" / "src"}
    print(f"# {os.uname().nodename} {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, {os.cpu_count()} CPUs, "
          f"load {open('/proc/loadavg').read().split()[:3]}; old={args.old} new={args.new}; data={args.data}")
    delays: dict[str, list[tuple[float, float]]] = {b: [] for b in builds}
    finished = {b: 0 for b in builds}
    try:
        for build in builds:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(work / build),
                            getattr(args, build)], check=True)
        for r in range(args.rounds):
            for build, src in builds.items():
                out = work / f"{build}-{r}-whole"
                _, _, rc, length = run(src, out, args.data, None)
                if rc != 0:
                    raise SystemExit(f"{build} round {r}: the uninterrupted run failed (exit {rc})")
                shutil.rmtree(out, ignore_errors=True)
                at = rng.uniform(0, length)
                out = work / f"{build}-{r}"
                line, gone, rc, _ = run(src, out, args.data, at)
                left = (out / "tokenizer.json").exists()
                if rc not in (0, 130):
                    raise SystemExit(f"{build} round {r}: exit {rc}")
                if rc == 0:
                    finished[build] += 1
                    print(f"{build} round {r}: training {length:.2f} s, stop at {at:.2f} s: finished first")
                else:
                    delays[build].append((line if line is not None else float("nan"), gone))
                    print(f"{build} round {r}: training {length:.2f} s, stop at {at:.2f} s: line "
                          f"{'none' if line is None else f'{line:.3f} s'}, exit {gone:.3f} s, rc {rc}, "
                          f"tokenizer.json left: {left}", flush=True)
                shutil.rmtree(out, ignore_errors=True)
    finally:
        for build in builds:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(work / build)],
                           stderr=subprocess.DEVNULL)
        shutil.rmtree(work, ignore_errors=True)
    for build, got in delays.items():
        if got:
            lines, exits = [g[0] for g in got], [g[1] for g in got]
            print(f"{build}: {len(got)} stopped ({finished[build]} finished first): signal to line median "
                  f"{statistics.median(lines):.3f} s, max {max(lines):.3f} s; signal to exit median "
                  f"{statistics.median(exits):.3f} s, max {max(exits):.3f} s")


if __name__ == "__main__":
    main()
