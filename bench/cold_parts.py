"""The parts of a cold `t2i generate "a red bird"` beside `import torch` and the codes, in CPU seconds (one thread, so
that a loaded machine's queue does not count). The load's parts as a cold generate takes them: each in a fresh
process, once, in load_folder's order (the files' hash, the tokenizer, each model read and converted), then
from_folder whole (with the bf16 packing and the checks); the median of --reps processes (a part repeated in one
process measured the allocator and the garbage collector: a second dVAE load took 0.11 s, the first 0.025). The
dVAE decode and the rerank of 4 candidates: their first call in one process, then the median of --reps more. And,
in fresh processes, the CPU the kernel spends on the process after generate's os._exit (its teardown).

Usage: PYTHONPATH=src python bench/cold_parts.py [--reps 5] [--exits 3] [--weights weights]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EXIT = r"""
import os, sys, time
real = os._exit
def stamped(code):
    sys.stderr.write(f"CPU {time.process_time()!r}\n")
    sys.stderr.flush()
    real(code)
os._exit = stamped
sys.argv = ["t2i"] + sys.argv[1:]
from t2i_cli.__main__ import entry
entry()
"""


LOAD_PARTS = ("folder_hashes (sha256 of every file, for the provenance)", "load_tokenizer",
              "load_model dvae (decoder and codebook read into bf16)", "load_model transformer (read into bf16)",
              "load_model clip", "load_model clip-2", "TextToImage.from_folder (all of the above, packing, checks)")
LOAD = r"""
import sys, time
import t2i_cli.cli as cli
cli._imports_held("t2i_cli.pipeline")  # as generate imports them (since 0.19.0: the collector off, then frozen)
import torch
torch.set_num_threads(1)
from pathlib import Path
from t2i_cli import weights as W
from t2i_cli.pipeline import TextToImage
f, bf16 = Path(sys.argv[1]), torch.bfloat16
steps = (lambda: W.folder_hashes(f), lambda: W.load_tokenizer(f / "tokenizer.json"),
         lambda: W.load_model(f / "dvae.safetensors", "dvae", "cpu", {"decoder.": bf16, "codebook.": bf16}),
         lambda: W.load_model(f / "transformer.safetensors", "transformer", "cpu", {"": bf16}),
         lambda: W.load_model(f / "clip.safetensors", "clip", "cpu"),
         lambda: W.load_model(f / W.SECOND_CLIP, "clip", "cpu"),
         lambda: TextToImage.from_folder(f, "cpu", need_clip=True, precision="auto"))
seen = []
for step in steps:
    c = time.process_time()
    step()
    seen.append(time.process_time() - c)
print(" ".join(repr(x) for x in seen))
"""


def cpu_of(fn, reps: int) -> tuple[float, float]:
    """(the first call's CPU seconds, the median of the next reps)."""
    seen = []
    for _ in range(reps + 1):
        c = time.process_time()
        fn()
        seen.append(time.process_time() - c)
    return seen[0], statistics.median(seen[1:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--exits", type=int, default=3)
    ap.add_argument("--weights", default="weights")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    from t2i_cli.pipeline import Generated, TextToImage

    folder = Path(args.weights)
    print(f"# {time.strftime('%Y-%m-%d %H:%M')} UTC, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}, "
          f"torch {torch.__version__}, 1 thread, CPU seconds: first call, then the median of {args.reps}")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1] / "src"), OMP_NUM_THREADS="1")
    runs = [subprocess.run([sys.executable, "-c", LOAD, str(folder.resolve())], capture_output=True, text=True,
                           env=env, check=True).stdout.split("\n")[-2] for _ in range(args.reps)]
    seen = [dict(zip(LOAD_PARTS, map(float, r.split()), strict=True)) for r in runs]
    print(f"| load part (a fresh process each, once, in this order) | median of {args.reps} |\n|---|---:|")
    for name in LOAD_PARTS:
        print(f"| {name} | {statistics.median(s[name] for s in seen):.4f} |")
    print("| part (one process) | first call | median after |\n|---|---:|---:|")
    pipe = TextToImage.from_folder(folder, "cpu", need_clip=True, precision="auto")
    cfg = pipe.bundle.transformer.cfg
    codes = torch.randint(0, cfg.image_vocab, (4, cfg.grid, cfg.grid), generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        images = pipe.bundle.dvae.image_from_codes(codes).float()
        first, med = cpu_of(lambda: pipe.bundle.dvae.image_from_codes(codes).float(), args.reps)
        print(f"| dVAE decode of 4 candidates | {first:.4f} | {med:.4f} |")
        first, med = cpu_of(lambda: pipe.rerank([Generated(images[i], "a red bird", i) for i in range(4)], 1),
                            args.reps)
        print(f"| rerank of 4 candidates (2 CLIPs) | {first:.4f} | {med:.4f} |")
    after = []
    for _ in range(args.exits):
        with tempfile.TemporaryDirectory() as out:
            r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            r = subprocess.run([sys.executable, "-c", EXIT, "generate", "a red bird", "--seed", "0", "--out", out,
                                "--quiet", "--weights", str(folder.resolve())], capture_output=True, text=True,
                               env=env, check=True)
            r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            total = r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime
            after.append(total - float(r.stderr.split("CPU ")[1].split()[0]))
    print(f"CPU after os._exit (the kernel's teardown of the process), {args.exits} fresh generates: "
          f"{' '.join(f'{a:.3f}' for a in after)}, median {statistics.median(after):.3f}")


if __name__ == "__main__":
    main()
