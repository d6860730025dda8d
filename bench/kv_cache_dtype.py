"""The KV cache's dtype for bf16 and int8 decoding on the CPU: the model's own (bf16) against fp32, side by
side in one process (`KVCache.for_model` picks bf16 on a CPU with AMX tiles, fp32 on one without).
`TextToImage(prompt, n)` wall time (decode + dVAE) of the shipped weights, the two caches alternating,
median of --reps runs.

Usage: PYTHONPATH=src python bench/kv_cache_dtype.py [--weights weights] [--reps 5] [--n 1 4 16]
       [--jacobi 0 16]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch  # noqa: E402

from precision import alternating_medians, decode_args, print_header  # noqa: E402  (the shared timing loop)
from t2i_cli.models.transformer import KVCache, amx_tiles  # noqa: E402
from t2i_cli.pipeline import TextToImage  # noqa: E402

FOR_MODEL = KVCache.for_model  # t2i's: bf16 with AMX tiles, else fp32 for a bf16 model on the CPU


@classmethod
def model_dtype_cache(cls, model, batch, device):  # the cache in the model's dtype, as before 2026-12-02
    # (when the table in BENCHMARKS.md was measured bf16 was not yet packed; run now, both columns are)
    return cls(model.cfg, batch, device, next(model.parameters()).dtype)


@classmethod
def fp32_cache(cls, model, batch, device):  # t2i's cache on a CPU without AMX tiles
    return cls(model.cfg, batch, device, torch.float32)


def main() -> None:
    ap = decode_args(__doc__)
    ap.add_argument("--precision", nargs="+", default=["bf16", "int8"])
    args = ap.parse_args()
    pipes = {p: TextToImage.from_folder(Path(args.weights), "cpu", precision=p) for p in args.precision}
    print_header(args.reps)
    caches = {"model dtype": model_dtype_cache, "fp32": fp32_cache}
    print(f"# this CPU has AMX tiles: {amx_tiles()}, so t2i's cache for a bf16 model is "
          f"{'bf16' if amx_tiles() else 'fp32'}")

    def use(make):
        def prepare() -> None:
            KVCache.for_model = make
        return prepare

    variants = {(name, cache): (pipe, use(make)) for name, pipe in pipes.items() for cache, make in caches.items()}
    median = alternating_medians(variants, args.n, args.jacobi, args.reps, warm_up=True)
    KVCache.for_model = classmethod(FOR_MODEL.__func__)
    print("| precision | n | --jacobi | cache in the model's dtype (s) | fp32 cache (s) | model dtype / fp32 |")
    print("|---|---:|---:|---:|---:|---:|")
    for n in args.n:
        for j in args.jacobi:
            for name in pipes:
                a, b = (median[((name, c), n, j)] for c in caches)
                print(f"| {name} | {n} | {j or 'off'} | {a:.2f} | {b:.2f} | {a / b:.2f}x |")


if __name__ == "__main__":
    main()
