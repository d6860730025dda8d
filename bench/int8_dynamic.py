"""t2i's int8 (`_weight_int8pack_mm`: int8 weights, bf16 activations) against fbgemm's dynamic int8 linear
(`torch.ops.quantized.linear_dynamic`: int8 weights with the same per-channel scales, activations quantised to
8 bits per call, fp32 elsewhere), side by side in one process: `TextToImage(prompt, n)` wall time (decode +
dVAE) of the shipped weights, alternating, median of --reps runs after one warm-up round. On a CPU without
native bf16 (AVX2) t2i's int8 emulates its bf16 activations; fbgemm has AVX2 int8 kernels. Also how many of the
codes the two formats draw for one seed agree (a format that quantises activations draws other images).

Usage: PYTHONPATH=src python bench/int8_dynamic.py [--weights weights] [--reps 5] [--n 1 4 16]
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from precision import alternating_medians, decode_args, print_header  # noqa: E402  (the shared timing loop)
from t2i_cli.models import transformer as tm  # noqa: E402
from t2i_cli.pipeline import TextToImage  # noqa: E402


class DynamicInt8Linear(torch.nn.Module):
    """An Int8Linear's product through fbgemm's dynamic int8 kernel: the same int8 weights and scales."""

    def __init__(self, layer: tm.Int8Linear):
        super().__init__()
        q = layer.qweight[:, :layer.in_features].float()
        scales = layer.scales.double()
        w = torch.quantize_per_channel(q * scales.float()[:, None], scales, torch.zeros_like(scales, dtype=torch.long),
                                       0, torch.qint8)
        bias = None if layer.bias is None else layer.bias.float()
        self.packed = torch.ops.quantized.linear_prepack(w, bias)
        self.out_features = layer.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        y = torch.ops.quantized.linear_dynamic(x.reshape(-1, shape[-1]), self.packed, True)
        return y.view(*shape[:-1], self.out_features)


def dynamic(weights: Path) -> TextToImage:
    pipe = TextToImage.from_folder(weights, "cpu", precision="int8")
    model = pipe.bundle.transformer
    for block in model.blocks:
        block.attn.qkv, block.attn.proj = DynamicInt8Linear(block.attn.qkv), DynamicInt8Linear(block.attn.proj)
        block.mlp[0], block.mlp[2] = DynamicInt8Linear(block.mlp[0]), DynamicInt8Linear(block.mlp[2])
    model.image_head = DynamicInt8Linear(model.image_head)
    model.float()  # embeddings and norms back to fp32 (the packed weights are not parameters)
    return pipe


def main() -> None:
    warnings.filterwarnings("ignore", message=".*quantiz.*")  # PyTorch 2.13 marks quantised tensors deprecated
    args = decode_args(__doc__).parse_args()
    base = TextToImage.from_folder(Path(args.weights), "cpu", precision="int8")
    dyn = dynamic(Path(args.weights))
    print_header(args.reps)
    print(f"# CPU capability {torch.backends.cpu.get_cpu_capability()}, native bf16: "
          f"{tm.cpu_says('_is_avx512_bf16_supported')}")
    a = torch.stack([g.codes for g in base("a red bird", n=4, seed=0)])
    b = torch.stack([g.codes for g in dyn("a red bird", n=4, seed=0)])
    first = (a != b).int().argmax(dim=1).tolist()
    print(f"# codes of 4 images at seed 0 alike in both: {(a == b).float().mean():.1%} (first difference at code "
          f"{first})")
    pipes = {"int8": (base, None), "dynamic": (dyn, None)}
    median = alternating_medians(pipes, args.n, [0], args.reps, warm_up=True)
    print("| n | t2i int8 (s) | fbgemm dynamic int8 (s) | speed-up |")
    print("|---:|---:|---:|---:|")
    for n in args.n:
        x, y = (median[(name, n, 0)] for name in pipes)
        print(f"| {n} | {x:.2f} | {y:.2f} | {x / y:.2f}x |")


if __name__ == "__main__":
    main()
