"""PyTorch's allocator with transparent huge pages (THP_MEM_ALLOC_ENABLE=1: blocks of 2 MB and more madvised
MADV_HUGEPAGE) against without, for the default `generate "a red bird"` decode (4 candidates with guidance, 8 rows,
bf16 packed, fp32 KV cache of 2 x 27 MB): a fresh process per arm, arms alternating, each drawing the codes
--draws times (the first is the cold one a `t2i generate` pays: its KV cache's pages faulted in).

    PYTHONPATH=src python bench/thp_decode.py [--rounds 5] [--draws 3] [--threads 1]

Prints per arm the median over rounds of the first draw and of the later ones (wall and process CPU seconds),
the KV cache's allocation (torch.zeros, ms), the huge pages the process held (kB) and the codes' digest (the
same bytes in both arms: huge pages change where memory lies, not the arithmetic).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

CHILD = r"""
import hashlib, json, os, sys, time
import torch
from pathlib import Path
from t2i_cli.models.transformer import KVCache
from t2i_cli.pipeline import TextToImage
from t2i_cli.sampling import SamplingConfig, draw_codes
torch.set_num_threads(int(sys.argv[1]))
pipe = TextToImage.from_folder(Path(sys.argv[3]), "cpu", precision="bf16")
m = pipe.bundle.transformer
ids = torch.tensor(pipe.request("a red bird").encoded.ids)
empty = torch.tensor(pipe.bundle.tokenizer.empty(pipe.text_len))
walls, cpus, huge = [], [], 0
for _ in range(int(sys.argv[2])):
    g = torch.Generator().manual_seed(0)
    w, c = time.perf_counter(), time.process_time()
    codes = draw_codes(m, ids.expand(4, -1), empty, SamplingConfig(), g)[0]
    walls.append(time.perf_counter() - w)
    cpus.append(time.process_time() - c)
w = time.perf_counter()
cache = KVCache.for_model(m, 8, "cpu")
alloc = time.perf_counter() - w
huge = int([x for x in open("/proc/self/smaps_rollup") if x.startswith("AnonHugePages")][0].split()[1])
print(json.dumps({"walls": walls, "cpus": cpus, "alloc": alloc, "huge": huge,
                  "digest": hashlib.sha256(codes.numpy().tobytes()).hexdigest()[:16]}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--draws", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--weights", default="weights")
    args = ap.parse_args()
    arms = {"4 kB pages (as shipped)": "0", "THP_MEM_ALLOC_ENABLE=1": "1"}
    results: dict[str, list[dict]] = {a: [] for a in arms}
    print(f"# {time.strftime('%Y-%m-%d %H:%M')}, {args.threads} thread(s), {args.rounds} rounds x {args.draws} draws, "
          f"load at start {os.getloadavg()[0]:.2f}")
    for _ in range(args.rounds):
        for arm, value in arms.items():
            env = dict(os.environ, THP_MEM_ALLOC_ENABLE=value, GOMP_SPINCOUNT=os.environ.get("GOMP_SPINCOUNT", "10000"))
            out = subprocess.run([sys.executable, "-c", CHILD, str(args.threads), str(args.draws), args.weights],
                                 env=env, capture_output=True, text=True, check=True).stdout
            results[arm].append(json.loads(out.strip().splitlines()[-1]))
    print(f"# load at end {os.getloadavg()[0]:.2f}")
    print("| arm | first draw wall s | first draw CPU s | later draws wall s | later draws CPU s | KV cache zeros ms "
          "| huge pages kB | codes |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for arm, runs in results.items():
        def med(f, runs=runs):
            return statistics.median(f(r) for r in runs)

        def later(r, key):
            return statistics.median(r[key][1:] or r[key])
        print(f"| {arm} | {med(lambda r: r['walls'][0]):.2f} | {med(lambda r: r['cpus'][0]):.2f} "
              f"| {med(lambda r: later(r, 'walls')):.2f} | {med(lambda r: later(r, 'cpus')):.2f} "
              f"| {1000 * med(lambda r: r['alloc']):.0f} | {med(lambda r: r['huge']):.0f} "
              f"| {', '.join(sorted({r['digest'] for r in runs}))} |")


if __name__ == "__main__":
    main()
