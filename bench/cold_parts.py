"""The parts of a cold `t2i generate "a red bird"` beside `import torch` and the codes, in CPU seconds (one thread, so
that a loaded machine's queue does not count): each part of loading the shipped weights folder (the files' hash,
each model read and converted, the bf16 packing), the dVAE decode and the rerank of 4 candidates, each repeated in
one process after a first (cold) call, median of --reps; and, in fresh processes, the CPU the kernel spends on the
process after generate's os._exit (its teardown: unmapping some 400 MB).

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
    from t2i_cli import weights as W
    from t2i_cli.pipeline import Generated, TextToImage

    folder = Path(args.weights)
    print(f"# {time.strftime('%Y-%m-%d %H:%M')} UTC, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}, "
          f"torch {torch.__version__}, 1 thread, CPU seconds: first call, then the median of {args.reps}")
    bf16 = torch.bfloat16
    parts = {
        "folder_hashes (sha256 of every file, for the provenance)": lambda: W.folder_hashes(folder),
        "load_tokenizer": lambda: W.load_tokenizer(folder / "tokenizer.json"),
        "load_model dvae (decoder and codebook read into bf16)":
            lambda: W.load_model(folder / "dvae.safetensors", "dvae", "cpu", {"decoder.": bf16, "codebook.": bf16}),
        "load_model transformer (read into bf16)":
            lambda: W.load_model(folder / "transformer.safetensors", "transformer", "cpu", {"": bf16}),
        "load_model clip": lambda: W.load_model(folder / "clip.safetensors", "clip", "cpu"),
        "load_model clip-2": lambda: W.load_model(folder / W.SECOND_CLIP, "clip", "cpu"),
        "TextToImage.from_folder (all of the above, packing, checks)":
            lambda: TextToImage.from_folder(folder, "cpu", need_clip=True, precision="auto"),
    }
    print("| part | first call | median after |\n|---|---:|---:|")
    for name, fn in parts.items():
        first, med = cpu_of(fn, args.reps)
        print(f"| {name} | {first:.4f} | {med:.4f} |")
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
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1] / "src"), OMP_NUM_THREADS="1")
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
