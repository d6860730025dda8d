"""A small CLIP: an image encoder and a text encoder trained with a symmetric contrastive loss."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass(frozen=True)
class ClipConfig:
    """Shape of the CLIP scorer."""

    image_side: int = 64  # pixels on a side of the input image
    text_vocab: int = 1024  # BPE tokens plus one padding id per text position
    text_len: int = 24  # text tokens per caption
    n_pad_start: int = 1000  # ids at or above this are padding (the tokenizer's n_bpe)
    n_hid: int = 48  # image encoder width at full resolution (doubled twice)
    n_embd: int = 128  # text encoder width
    n_layer: int = 2  # text encoder transformer layers
    n_head: int = 4  # text encoder attention heads
    embed_dim: int = 128  # shared embedding space

    def state_numel(self) -> int:
        """Elements of the model's state_dict, computed without building it (tested against the model)."""
        w, d = self.n_hid, self.n_embd
        chans = [3, w, 2 * w, 4 * w, 4 * w]
        image = sum(a * b * 9 + b + 2 * b for a, b in zip(chans, chans[1:], strict=False))  # conv + GroupNorm
        image += 8 * w * self.embed_dim + self.embed_dim
        text = (self.text_vocab + self.text_len) * d + self.n_layer * (12 * d * d + 13 * d) + 2 * d
        return image + text + d * self.embed_dim + self.embed_dim + 1  # text projection, logit scale

    def activation_bytes(self) -> int:
        """A bound on the fp32 activations of scoring one image (the widest full-resolution maps)."""
        return 4 * 4 * self.n_hid * self.image_side**2


class ImageEncoder(nn.Module):
    """Image (B, 3, H, W) in [0, 1] -> embedding (B, embed_dim)."""

    def __init__(self, cfg: ClipConfig):
        super().__init__()
        w = cfg.n_hid
        chans = [3, w, 2 * w, 4 * w, 4 * w]
        layers: list[nn.Module] = []
        for cin, cout in zip(chans[:-1], chans[1:], strict=True):
            layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.GroupNorm(8, cout), nn.SiLU(), nn.MaxPool2d(2)]
        self.net = nn.Sequential(*layers)
        self.proj = nn.Linear(chans[-1] * 2, cfg.embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.net(x * 2 - 1)  # (B, C, H/16, W/16)
        # Mean and max pooling: mean sees colour mass, max sees a small object anywhere.
        return self.proj(torch.cat([h.mean(dim=(2, 3)), h.amax(dim=(2, 3))], dim=1))


class TextEncoder(nn.Module):
    """Text ids (B, T) -> embedding (B, embed_dim): a bidirectional transformer, mean-pooled over real tokens."""

    def __init__(self, cfg: ClipConfig):
        super().__init__()
        self.cfg = cfg
        self.tok = nn.Embedding(cfg.text_vocab, cfg.n_embd)
        self.pos = nn.Embedding(cfg.text_len, cfg.n_embd)
        layer = nn.TransformerEncoderLayer(cfg.n_embd, cfg.n_head, 4 * cfg.n_embd, dropout=0.0,
                                           batch_first=True, norm_first=True)
        self.layers = nn.TransformerEncoder(layer, cfg.n_layer, enable_nested_tensor=False)
        self.ln = nn.LayerNorm(cfg.n_embd)
        self.proj = nn.Linear(cfg.n_embd, cfg.embed_dim)

    def forward(self, text: torch.Tensor) -> torch.Tensor:
        is_pad = text >= self.cfg.n_pad_start  # (B, T)
        is_pad[:, 0] = False  # an empty caption still pools over one position
        pos = torch.arange(text.shape[1], device=text.device)
        h = self.layers(self.tok(text) + self.pos(pos), src_key_padding_mask=is_pad)  # (B, T, C)
        keep = (~is_pad).unsqueeze(-1).float()
        return self.proj(self.ln((h * keep).sum(1) / keep.sum(1)))


class Clip(nn.Module):
    """Contrastive image-text model; score() is the cosine similarity of the two embeddings."""

    def __init__(self, cfg: ClipConfig):
        super().__init__()
        self.cfg = cfg
        self.image_encoder = ImageEncoder(cfg)
        self.text_encoder = TextEncoder(cfg)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def embed(self, images: torch.Tensor, text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Unit-length embeddings (B, D) for images and texts."""
        return F.normalize(self.image_encoder(images), dim=-1), F.normalize(self.text_encoder(text), dim=-1)

    def forward(self, images: torch.Tensor, text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images (B, 3, H, W) and their captions (B, T) -> (logits (B, B), symmetric contrastive loss)."""
        img, txt = self.embed(images, text)
        logits = self.logit_scale.exp().clamp(max=100) * img @ txt.t()  # (B, B): image i vs text j
        target = torch.arange(len(images), device=images.device)
        loss = (F.cross_entropy(logits.float(), target) + F.cross_entropy(logits.float().t(), target)) / 2
        return logits, loss

    def score(self, images: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """Cosine similarity (B,) of each image with its own text (text may be (1, T), broadcast)."""
        img, txt = self.embed(images, text)
        return (img * txt).sum(-1)
