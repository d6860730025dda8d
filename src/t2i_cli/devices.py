"""One device resolution for every command: `--device auto|cpu|cuda`."""

from __future__ import annotations

import torch

from t2i_cli.errors import UsageError

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA when present; asking for CUDA without one is a usage error, never a silent CPU run."""
    if name not in DEVICES:
        raise UsageError(f"--device must be auto, cpu or cuda, got {name!r}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda was asked for but no CUDA GPU is available; use --device cpu or auto")
    return torch.device(name)
