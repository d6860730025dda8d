"""Where a cold `t2i generate "a red bird"` spends its time, per setting: each run is a fresh Python process
that times, in order, `import torch`, importing t2i, loading the weights folder (and converting to the
precision), drawing the codes, the dVAE decode, CLIP reranking (when drawing several) and writing the PNGs,
the steps `t2i generate` takes. Settings alternate within each round; median of --runs per step.

Usage: PYTHONPATH=src .venv/bin/python bench/cold_breakdown.py [--runs 5] [--weights weights]
       [--settings "fp32 c4 j0" "int8 c1 j16" ...]   (precision, candidates, --jacobi window)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import torch
t1 = time.perf_counter()
from pathlib import Path
from t2i_cli.outputs import provenance, write_image
from t2i_cli.pipeline import TextToImage
from t2i_cli.sampling import SamplingConfig, draw_codes
t2 = time.perf_counter()
weights, precision, candidates, window, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
pipe = TextToImage.from_folder(Path(weights), "cpu", need_clip=candidates > 1, precision=precision)
t3 = time.perf_counter()
sampling = SamplingConfig(jacobi=window)
req = pipe.request("a red bird", sampling)
cfg = pipe.bundle.transformer.cfg
gen = torch.Generator().manual_seed(0)
ids = torch.tensor([req.encoded.ids] * candidates)
empty = torch.tensor(pipe.bundle.tokenizer.empty(pipe.text_len))
with torch.inference_mode():
    codes, _ = draw_codes(pipe.bundle.transformer, ids, empty, sampling, gen)
    t4 = time.perf_counter()
    images = pipe.bundle.dvae.image_from_codes(codes.view(candidates, cfg.grid, cfg.grid)).float()
t5 = time.perf_counter()
from t2i_cli.pipeline import Generated
results = [Generated(images[i], "a red bird", i) for i in range(candidates)]
if candidates > 1:
    results = pipe.rerank(results, 1)
t6 = time.perf_counter()
for g in results:
    write_image(g, Path(out), provenance(g, 0, candidates, sampling, pipe.bundle.identity))
t7 = time.perf_counter()
print(json.dumps({"import torch": t1 - t0, "import t2i": t2 - t1, "load": t3 - t2, "codes": t4 - t3,
                  "dVAE decode": t5 - t4, "rerank": t6 - t5, "PNG": t7 - t6}))
"""
STEPS = ("import torch", "import t2i", "load", "codes", "dVAE decode", "rerank", "PNG")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--weights", default="weights")
    ap.add_argument("--settings", nargs="+", default=["fp32 c4 j0", "fp32 c1 j0", "int8 c1 j0", "int8 c1 j16",
                                                       "int8 c4 j16"])
    args = ap.parse_args()
    print(f"# {platform.node()} {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.2f}, {args.runs} runs per setting, fresh process each")
    got: dict[str, list[dict]] = {s: [] for s in args.settings}
    walls: dict[str, list[float]] = {s: [] for s in args.settings}
    for _ in range(args.runs):
        for s in args.settings:
            precision, c, j = s.split()
            with tempfile.TemporaryDirectory() as out:
                t = time.perf_counter()
                r = subprocess.run([sys.executable, "-c", CHILD, args.weights, precision, c[1:], j[1:], out],
                                   capture_output=True, text=True, check=True)
                walls[s].append(time.perf_counter() - t)
            got[s].append(json.loads(r.stdout.strip().splitlines()[-1]))
    print("| setting (precision, candidates, jacobi) | " + " | ".join(STEPS) + " | process wall |")
    print("|---|" + "---:|" * (len(STEPS) + 1))
    for s in args.settings:
        med = [statistics.median(run[k] for run in got[s]) for k in STEPS]
        print(f"| {s} | " + " | ".join(f"{m:.2f}" for m in med) + f" | **{statistics.median(walls[s]):.2f}** |")


if __name__ == "__main__":
    main()
