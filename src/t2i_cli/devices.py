"""One device resolution for every command: `--device auto|cpu|cuda`."""

from __future__ import annotations

import torch

from t2i_cli.errors import UsageError, option
from t2i_cli.sampling_config import DEVICES, no_cuda  # (torch-free, for generate's checks before a pipe is read)


def resolve_device(name: str | torch.device) -> torch.device:
    """'auto' picks CUDA when present; asking for CUDA without one is a usage error, never a silent CPU run. A
    torch.device (the Python API) of type cpu or cuda is taken as it is (cuda:1 too)."""
    if isinstance(name, torch.device):
        if name.type not in ("cpu", "cuda"):
            raise UsageError(f"device must be a cpu or cuda device, got {name}")
        if name.type == "cuda" and not torch.cuda.is_available():
            raise UsageError(f"device {name} was asked for but no CUDA GPU is available; use cpu")
        if name.type == "cuda" and name.index is not None and name.index >= torch.cuda.device_count():
            raise UsageError(f"device {name} was asked for but this machine has {torch.cuda.device_count()} CUDA "
                             f"GPU(s), cuda:0 to cuda:{torch.cuda.device_count() - 1}")
        return name
    if name not in DEVICES:
        raise UsageError(f"{option('device')} must be auto, cpu or cuda, got {name!r}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise no_cuda()
    return torch.device(name)


def native_bf16() -> bool:
    """Whether this CPU has bf16 dot products (AVX-512 BF16, or AMX, which implies it)."""
    from t2i_cli.models.transformer import cpu_says

    return cpu_says("_is_avx512_bf16_supported")


def cuda_bf16() -> bool:
    """Whether the current GPU computes bf16 itself (Ampere and later), not by emulation."""
    try:
        return bool(torch.cuda.is_bf16_supported(including_emulation=False))
    except TypeError:  # a PyTorch without the argument
        return bool(torch.cuda.is_bf16_supported())
