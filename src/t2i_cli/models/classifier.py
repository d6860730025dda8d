"""The evaluation judge's object classifier: a tiny CNN that names the object in a square crop.

It is trained on crops of procedural-world renders (world.judge_training.train_judge), never on the model
under test or on CLIP, so `t2i eval` scores generations with an independent detector.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn


@dataclass(frozen=True)
class JudgeConfig:
    """Shape of the object classifier."""

    crop: int = 32  # side of the square crop fed to the network, in pixels
    widths: tuple[int, ...] = (16, 32, 64, 64)  # channels of each stage; each stage halves the resolution
    n_classes: int = 12  # object kinds (world.spec.OBJECTS, in order)

    def __post_init__(self) -> None:
        widths = self.widths
        if not isinstance(widths, (list, tuple)) or not widths or any(type(w) is not int for w in widths):
            raise ValueError(f"widths takes a non-empty list of integers (channels per stage), got {widths!r}")
        # weights.load_model rebuilds the config from JSON, which turns the tuple into a list.
        object.__setattr__(self, "widths", tuple(widths))

    def state_numel(self) -> int:
        """Elements of the model's state_dict, computed without building it (tested against the model)."""
        chans = (3, *self.widths)
        stages = sum(a * b * 9 + 4 * b + 1 for a, b in zip(chans, chans[1:], strict=False))  # conv, BatchNorm
        return stages + self.widths[-1] * self.n_classes + self.n_classes

    def activation_bytes(self) -> int:
        """A bound on the fp32 activations of classifying one crop."""
        return 4 * 4 * (self.widths[0] if self.widths else 3) * self.crop**2


def _stage(c_in: int, c_out: int) -> nn.Sequential:
    """conv-BN-ReLU, then 2x2 max-pool."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                         nn.ReLU(inplace=True), nn.MaxPool2d(2))


class ObjectClassifier(nn.Module):
    """Crops (B, 3, S, S) in [0, 1] -> logits (B, n_classes)."""

    def __init__(self, cfg: JudgeConfig):
        super().__init__()
        if cfg.crop % 2 ** len(cfg.widths):
            raise ValueError(f"crop {cfg.crop} must be divisible by 2 ** len(widths) = {2 ** len(cfg.widths)}")
        self.cfg = cfg
        chans = (3, *cfg.widths)
        self.features = nn.Sequential(*[_stage(a, b) for a, b in zip(chans, chans[1:], strict=False)])
        self.head = nn.Linear(cfg.widths[-1], cfg.n_classes)

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        """Logits (B, n_classes) for crops (B, 3, S, S)."""
        x = self.features(crops * 2 - 1)  # (B, C, S / 2**n, S / 2**n)
        return self.head(x.mean(dim=(2, 3)))  # global average pool: (B, C) -> (B, n_classes)
