"""Do the same seed and settings give the same codes whatever the thread count? Two measurements:

1. For each distinct linear layer of the transformer (as loaded at --precision), the numbers of rows in
   1..--max-rows at which one thread and two give different output bytes for the same random input (any of
   --trials draws). A product whose reduction oneDNN splits across threads for some shapes sums in another
   order there, and the bytes differ by an ulp or so.
2. End to end: the codes TextToImage draws for a few prompts, --n and --jacobi settings at 1 and 2 threads.
3. With --shapes IN x OUT ...: the same as 1 for oneDNN-packed bf16 layers of other shapes, random weights
   (what other model sizes would multiply); then nothing else runs.

Usage: PYTHONPATH=src python bench/thread_invariance.py [--weights weights] [--precision auto fp32]
       [--max-rows 600] [--trials 3] [--shapes 768x192 2048x512]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import torch
from torch import nn

from t2i_cli.models.transformer import PackedLinear, linear
from t2i_cli.pipeline import TextToImage
from t2i_cli.sampling import SamplingConfig

CASES = [("a red bird", 2, 0), ("a red bird", 9, 0), ("a red bird and a blue fish", 2, 0),
         ("a red bird", 2, 16), ("a red bird and a blue fish", 2, 16), ("a red bird", 16, 16)]


def ranges(rows: list[int]) -> str:
    """[3, 4, 5, 9] -> '3-5, 9'."""
    out: list[str] = []
    for r in rows:
        if out and int(out[-1].split("-")[-1]) == r - 1:
            out[-1] = f"{out[-1].split('-')[0]}-{r}"
        else:
            out.append(str(r))
    return ", ".join(out) or "none"


@torch.inference_mode()
def layer_rows(layer, k: int, dtype: torch.dtype, max_rows: int, trials: int) -> list[int]:
    """Row counts at which this layer's output at 1 thread differs from 2 threads' for some random input."""
    gen, bad = torch.Generator().manual_seed(0), []
    for m in range(1, max_rows + 1):
        for _ in range(trials):
            x = (torch.randn(m, k, generator=gen) * 0.5).to(dtype)
            torch.set_num_threads(1)
            a = linear(layer, x)
            torch.set_num_threads(2)
            if not torch.equal(a, linear(layer, x)):
                bad.append(m)
                break
    return bad


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", type=Path, default=Path("weights"))
    ap.add_argument("--precision", nargs="+", default=["auto", "fp32"])
    ap.add_argument("--max-rows", type=int, default=600)
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--shapes", nargs="*", default=[], help="IN x OUT of random packed bf16 layers, e.g. 768x192")
    args = ap.parse_args()
    print(f"# {platform.node()} {time.strftime('%Y-%m-%d %H:%M')} torch {torch.__version__}, load "
          f"{os.getloadavg()[0]:.2f}, rows 1..{args.max_rows}, {args.trials} random inputs per row count")
    if args.shapes:
        from t2i_cli.devices import native_bf16

        if not native_bf16():  # oneDNN's packed bf16 needs AVX-512 (BF16) or AMX; t2i packs only where it runs
            ap.error("--shapes measures oneDNN-packed bf16 layers, which this CPU cannot run (no native bf16); "
                     "use --precision fp32")
        torch.manual_seed(0)
        print("| packed bf16 layer, random weights | rows where 1 and 2 threads differ |\n|---|---|")
        for shape in args.shapes:
            k, n = (int(v) for v in shape.lower().split("x"))
            layer = PackedLinear(nn.Linear(k, n))
            print(f"| {k} x {n} | {ranges(layer_rows(layer, k, torch.bfloat16, args.max_rows, args.trials))} |")
        return
    for precision in args.precision:
        pipe = TextToImage.from_folder(args.weights, "cpu", precision=precision)
        model = pipe.bundle.transformer
        block = model.blocks[0]
        layers = {"qkv": block.attn.qkv, "attention output": block.attn.proj, "MLP in": block.mlp[0],
                  "MLP out": block.mlp[2], "image head": model.image_head}
        dtype = torch.float32 if precision == "fp32" else torch.bfloat16
        print(f"\n{precision} ({pipe.precision}, {type(block.mlp[2]).__name__}): rows where 1 and 2 threads differ")
        print("| layer | in x out | rows |\n|---|---|---|")
        for name, layer in layers.items():
            k = getattr(layer, "in_features", None) or layer.weight.shape[1]
            n = getattr(layer, "out_features", None) or layer.weight.shape[0]
            print(f"| {name} | {k} x {n} | {ranges(layer_rows(layer, k, dtype, args.max_rows, args.trials))} |")
        print("\n| prompt | --n | --jacobi | codes equal at 1 and 2 threads |\n|---|---:|---:|---|")
        for prompt, n, window in CASES:
            codes = []
            for threads in (1, 2):
                torch.set_num_threads(threads)
                drawn = pipe(prompt, n=n, seed=1, sampling=SamplingConfig(jacobi=window))
                codes.append(torch.stack([g.codes for g in drawn]))
            same = torch.equal(codes[0], codes[1])
            print(f"| {prompt} | {n} | {window} | {'yes' if same else 'no'} |")


if __name__ == "__main__":
    main()
