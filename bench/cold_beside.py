"""A cold `t2i generate "a red bird" --seed 0` of two source trees, side by side: each run is a fresh process of the
real command (the `t2i` entry, which ends with os._exit as the installed `t2i` does; a gc callback sums the CPU
time of Python's garbage collections and says it as the process exits), the trees alternating
within each round; the wall (from the parent's start of the process to its exit) and the CPU time of the process
(user + system, every thread: getrusage of the children), and the CPU time until torch begins to load (a second
child per round that stops there: the interpreter's start, importing the command line, parsing). Checks that the
two trees write the same PNG bytes (pixels and provenance).

Usage: python bench/cold_beside.py --old OLD/src --new NEW/src [--runs 7] [--weights weights]
       (OLD/src: e.g. `git archive BASE src | tar -x -C /tmp/base`)
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Stops where generate first imports torch (cli._imports_held), printing the CPU time spent until then.
BEFORE_TORCH = r"""
import sys, time
import t2i_cli.cli as cli

class Parsed(BaseException):
    pass

def held(*modules):
    raise Parsed

cli._imports_held = held
sys.argv = ["t2i"] + sys.argv[1:]
try:
    cli.app(standalone_mode=False)
except Parsed:
    print(time.process_time(), "pydantic" in sys.modules)
"""


# The t2i entry, with the CPU time of every garbage collection summed and written to stderr at os._exit.
GC_SUMMED = r"""
import gc, os, sys, time
spent, began = [0.0], [0.0]
def collecting(phase, info):
    if phase == "start":
        began[0] = time.process_time()
    else:
        spent[0] += time.process_time() - began[0]
gc.callbacks.append(collecting)
real = os._exit
def summed(code):
    import resource
    sys.stderr.write(f"GC {spent[0]!r} RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}\n")
    sys.stderr.flush()
    real(code)
os._exit = summed
sys.argv = ["t2i"] + sys.argv[1:]
from t2i_cli.__main__ import entry
entry()
"""


def child_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def cold(src: str, args: list[str], out: Path) -> tuple[float, float, bytes, float, float]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = src
    cpu, t = child_cpu(), time.perf_counter()
    r = subprocess.run([sys.executable, "-c", GC_SUMMED, "generate", "a red bird", "--seed", "0", "--out", str(out),
                        "--quiet", *args], check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       text=True)
    wall, cpu = time.perf_counter() - t, child_cpu() - cpu
    said = r.stderr.rsplit("GC ", 1)[1].split()
    return wall, cpu, (out / "a-red-bird-000.png").read_bytes(), float(said[0]), int(said[2]) / 1024


def before_torch(src: str, args: list[str]) -> tuple[float, bool]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = src
    r = subprocess.run([sys.executable, "-c", BEFORE_TORCH, "generate", "a red bird", "--seed", "0", *args],
                       check=True, env=env, capture_output=True, text=True)
    cpu, pyd = r.stdout.split()
    return float(cpu), pyd == "True"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--old", required=True)
    ap.add_argument("--new", required=True)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--weights", default="weights")
    args = ap.parse_args()
    extra = ["--weights", str(Path(args.weights).resolve())]
    trees = {"old": str(Path(args.old).resolve()), "new": str(Path(args.new).resolve())}
    print(f"# {platform.node()} {time.strftime('%Y-%m-%d %H:%M')} UTC, {os.cpu_count()} CPUs, load "
          f"{os.getloadavg()[0]:.2f} at the start, {args.runs} runs per tree, alternating, a fresh process each")
    got: dict[str, dict[str, list[float]]] = {k: {m: [] for m in ("wall", "cpu", "parse", "gc", "rss")} for k in trees}
    pngs: dict[str, set[bytes]] = {k: set() for k in trees}
    pydantic: dict[str, set[bool]] = {k: set() for k in trees}
    with tempfile.TemporaryDirectory() as tmp:
        for k, src in trees.items():  # a first run of each, not counted: bytecode written, files read once
            cold(src, extra, Path(tmp) / f"warm-{k}")
        for i in range(args.runs):
            for k, src in (trees.items() if i % 2 == 0 else reversed(trees.items())):
                wall, cpu, png, gc_cpu, rss = cold(src, extra, Path(tmp) / f"{k}-{i}")
                parse, pyd = before_torch(src, extra)
                got[k]["wall"].append(wall)
                got[k]["cpu"].append(cpu)
                got[k]["parse"].append(parse)
                got[k]["gc"].append(gc_cpu)
                got[k]["rss"].append(rss)
                pngs[k].add(png)
                pydantic[k].add(pyd)
    print(f"# load {os.getloadavg()[0]:.2f} at the end")
    print("| tree | wall s (median) | wall min..max | CPU s (median) | CPU min..max | CPU s before torch (median) "
          "| Pydantic imported | CPU s of garbage collection (median) | peak RSS MB (median) |")
    print("|---|---:|---:|---:|---:|---:|---|---:|---:|")
    for k in trees:
        w, c, p = got[k]["wall"], got[k]["cpu"], got[k]["parse"]
        print(f"| {k} | {statistics.median(w):.3f} | {min(w):.2f}..{max(w):.2f} | {statistics.median(c):.3f} | "
              f"{min(c):.2f}..{max(c):.2f} | {statistics.median(p):.3f} | {sorted(pydantic[k])} | "
              f"{statistics.median(got[k]['gc']):.3f} | {statistics.median(got[k]['rss']):.0f} |")
    same = len(pngs["old"]) == 1 and pngs["old"] == pngs["new"]
    print(f"same PNG bytes in every run of both trees: {same}")


if __name__ == "__main__":
    main()
