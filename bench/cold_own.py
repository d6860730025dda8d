"""What of a cold `t2i generate` is neither `import torch` nor the codes, part by part, in CPU seconds: each part
measured in a fresh process (the modules before it imported first, as a cold generate imports them), median of
--runs. The parts: the interpreter's start; t2i_cli.cli's import, Typer and Rich alone, Typer and Rich where torch
is already in (what they add beyond the standard library modules that torch imports too), t2i's own modules (before
torch, and those a generate imports after it); Typer's command tree; within `import torch`, inspect.getframeinfo
(torch records where each custom operator is registered: a file name and a line, through getframeinfo's default
line of context) and inspect.getmodule (torch.library asks which module registers each fake kernel: on its first
call for a frame, the real path of every module imported so far; the two overlap); the world package's renderer
and splits, which generate never calls (pipeline imports world.captions, and with it the package), after
t2i.images; and the progress bar's ticks of a default generate (256 updates of a silent bar, each with its rate's
text). With --overlap, also the wall time of weights.load_folder (the shipped folder, one process, warm files,
alternating) as it is and with folder_hashes on a thread beside the models' load: the one wall gain issue 14's
0.20.0 notes left open. With --codes, the default generate's own CPU after its imports, and the share of it in
the transformer's attention calls and in its linear layers.

Usage: PYTHONPATH=src python bench/cold_own.py [--runs 7] [--codes 5] [--overlap 15]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time

TYPER_RICH = "import typer, typer.main, rich.console, rich.progress"
CLOCK = "import time\nt0 = time.process_time()\n"
PARTS = {
    "interpreter start (python -c pass, whole process)": None,
    "import t2i_cli.cli (all of it: what a cold generate imports before torch)": ("", "import t2i_cli.cli"),
    "  Typer and Rich alone (typer, rich.console, rich.progress)": ("", TYPER_RICH),
    "  Typer and Rich after torch (beyond the standard library modules torch imports too)":
        ("import gc, torch\ngc.freeze()", TYPER_RICH),  # (frozen, as _imports_held leaves it)
    "  t2i's own modules (t2i_cli.cli after Typer and Rich)": (TYPER_RICH, "import t2i_cli.cli"),
    "Typer's command tree (typer.main.get_command: every command's options, built at each start)":
        ("import t2i_cli.cli, typer.main\ncli = t2i_cli.cli", "typer.main.get_command(cli.app)"),
    "t2i's modules after torch (t2i_cli.pipeline, t2i_cli.outputs; their libraries imported first)":
        ("import gc, torch, numpy\ngc.freeze()\nimport t2i_cli.cli, PIL.Image, PIL.ImageDraw, PIL.ImageFont, "
         "PIL.ImageOps, PIL.PngImagePlugin, tokenizers, safetensors.torch", "import t2i_cli.pipeline, t2i_cli.outputs"),
    "world's renderer and splits (import t2i_cli.world.captions after t2i_cli.images)":
        ("import t2i_cli.cli, torch, t2i_cli.images", "import t2i_cli.world.captions"),
}

INSIDE_TORCH = r"""
import inspect, time
spent = {}
for name in ("getframeinfo", "getmodule"):
    real = getattr(inspect, name)
    def timed(*a, _real=real, _name=name, **k):
        t = time.process_time()
        try:
            return _real(*a, **k)
        finally:
            spent[_name] = spent.get(_name, 0.0) + time.process_time() - t
    setattr(inspect, name, timed)
import t2i_cli.cli as cli
t = time.process_time()
cli._imports_held()
print(time.process_time() - t, spent.get("getframeinfo", 0.0), spent.get("getmodule", 0.0))
"""

TICKS = r"""
import time
import t2i_cli.cli as cli
with cli.progress_bar(True) as bar:
    task = bar.add_task("decoding", total=1024, rate="")
    t = time.process_time()
    for d in range(4, 1025, 4):
        bar.update(task, completed=d, rate=cli.rate_text(bar.tasks[task], "tokens"))
    print(time.process_time() - t)
"""

OVERLAP = r"""
import statistics, threading, time
from t2i_cli import weights
real = weights.folder_hashes
def threaded():
    box = {}
    def work():
        box["r"] = real("weights")
    t = threading.Thread(target=work, daemon=True)
    t.start()
    weights.folder_hashes = lambda folder, each=None: (t.join(), box["r"])[1]
    try:
        return weights.load_folder("weights")
    finally:
        weights.folder_hashes = real
got = {"plain": [], "threaded": []}
weights.load_folder("weights")  # (files read once, not counted)
for i in range(ROUNDS):
    for k in ("plain", "threaded") if i % 2 == 0 else ("threaded", "plain"):
        t = time.perf_counter()
        weights.load_folder("weights") if k == "plain" else threaded()
        got[k].append(time.perf_counter() - t)
print(statistics.median(got["plain"]), statistics.median(got["threaded"]))
"""

# The default generate's run (the real command, in-process after its imports), with the CPU of its attention calls
# and of its linear layers (decode_step's own helpers, each timed around the call) summed.
CODES = r"""
import sys, tempfile, time
import torch.nn.functional as F
import t2i_cli.cli as cli
cli._imports_held("t2i_cli.pipeline", "t2i_cli.outputs")
from t2i_cli.models import transformer as tr
spent = {"attention": 0.0, "linear": 0.0}
def timed(real, key):
    def call(*a, **k):
        t = time.process_time()
        try:
            return real(*a, **k)
        finally:
            spent[key] += time.process_time() - t
    return call
F.scaled_dot_product_attention = timed(F.scaled_dot_product_attention, "attention")
tr.linear, tr.linear_gelu = timed(tr.linear, "linear"), timed(tr.linear_gelu, "linear")
with tempfile.TemporaryDirectory() as out:
    t = time.process_time()
    cli.app(["generate", "a red bird", "--seed", "0", "--out", out, "--quiet", *sys.argv[1:]], standalone_mode=False)
    whole = time.process_time() - t
print(whole, spent["attention"], spent["linear"])
"""


def env() -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    e["OMP_NUM_THREADS"] = "1"
    return e


def run(code: str) -> list[float]:
    r = subprocess.run([sys.executable, "-c", code], check=True, env=env(), capture_output=True, text=True)
    # (the last line: a generate names its file above it)
    return [float(x) for x in (r.stdout.strip().splitlines() or [""])[-1].split()]


def part(before: str, what: str) -> float:
    return run(f"{before}\n{CLOCK}{what}\nprint(time.process_time() - t0)")[0]


def start() -> float:
    import resource

    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-c", "pass"], check=True, env=env())
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--codes", type=int, default=0, help="runs of the attention and linear split (0: none)")
    ap.add_argument("--overlap", type=int, default=0, help="rounds of the load's wall, plain and threaded (0: none)")
    args = ap.parse_args()
    print(f"# {platform.node()} {time.strftime('%Y-%m-%d %H:%M')} UTC, {os.cpu_count()} CPUs, load "
          f"{os.getloadavg()[0]:.2f}, 1 thread, CPU seconds, a fresh process each, median of {args.runs}")
    run("import t2i_cli.cli, torch, t2i_cli.pipeline, t2i_cli.outputs")  # bytecode written once, not counted
    rows: dict[str, list[float]] = {k: [] for k in PARTS}
    rows.update({k: [] for k in ("import torch (as _imports_held makes it)", "  of it: inspect.getframeinfo",
                                 "  of it: inspect.getmodule", "256 progress ticks (a default generate's)")})
    for _ in range(args.runs):
        for name, code in PARTS.items():
            rows[name].append(start() if code is None else part(*code))
        whole, frames, modules = run(INSIDE_TORCH)
        rows["import torch (as _imports_held makes it)"].append(whole)
        rows["  of it: inspect.getframeinfo"].append(frames)
        rows["  of it: inspect.getmodule"].append(modules)
        rows["256 progress ticks (a default generate's)"].append(run(TICKS)[0])
    print(f"# load {os.getloadavg()[0]:.2f} at the end")
    print("| part | CPU s (median) | min..max |")
    print("|---|---:|---:|")
    for name, got in rows.items():
        print(f"| {name} | {statistics.median(got):.4f} | {min(got):.4f}..{max(got):.4f} |")
    if args.codes:
        got = [run(CODES) for _ in range(args.codes)]
        whole, attention, linear = (statistics.median(g[i] for g in got) for i in range(3))
        print(f"the default generate after its imports (load, codes, decode, rerank, PNG), CPU s, median of "
              f"{args.codes}: {whole:.3f}; of it F.scaled_dot_product_attention {attention:.3f}, the transformer's "
              f"linear layers {linear:.3f}")
    if args.overlap:
        plain, threaded = run(OVERLAP.replace("ROUNDS", str(args.overlap)))
        print(f"weights.load_folder wall, median of {args.overlap} (one process, {os.cpu_count()} CPUs, one torch "
              f"thread): as it is {plain:.4f} s, folder_hashes on a thread {threaded:.4f} s")


if __name__ == "__main__":
    main()
