"""TextToImage: the one place where tokenizer, transformer, dVAE and CLIP meet."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import torch

from t2i_cli.devices import resolve_device
from t2i_cli.errors import UsageError
from t2i_cli.models.tokenizer import Encoded
from t2i_cli.sampling import SamplingConfig, generate_codes
from t2i_cli.weights import Bundle, load_folder

MAX_BATCH = 16  # images decoded together; bounds memory whatever --n is


@dataclass
class Generated:
    """One generated image and how it was made."""

    image: torch.Tensor  # (3, H, W) in [0, 1]
    prompt: str  # the prompt as the user gave it
    index: int  # position among the images drawn for this prompt and seed
    score: float | None = None  # CLIP score, when reranked
    rank: int | None = None  # 1 = best, when reranked


@dataclass(frozen=True)
class Request:
    """A prompt encoded once and sampling settings checked once against the model (TextToImage.request)."""

    prompt: str  # the prompt as the user gave it
    encoded: Encoded  # its token ids, and what was dropped or unknown (callers warn about those)
    sampling: SamplingConfig  # valid for this model's codebook


class TextToImage:
    """Load a weights folder once, then turn prompts into images."""

    def __init__(self, bundle: Bundle, device: torch.device):
        self.bundle = bundle
        self.device = device

    @classmethod
    def from_folder(cls, folder: Path, device: str = "auto", need_clip: bool = False) -> "TextToImage":
        """Load every model of a weights folder onto a device."""
        dev = resolve_device(device)
        return cls(load_folder(folder, dev, need_clip=need_clip), dev)

    @property
    def text_len(self) -> int:
        return self.bundle.transformer.cfg.text_len

    def request(self, prompt: str, sampling: SamplingConfig = SamplingConfig()) -> Request:
        """Encode a prompt to the model's text length and check the sampling settings against the model."""
        sampling.check_vocab(self.bundle.transformer.cfg.image_vocab)
        return Request(prompt, self.bundle.tokenizer.encode(prompt, self.text_len), sampling)

    def __call__(self, prompt: str, n: int = 1, seed: int = 0, sampling: SamplingConfig = SamplingConfig(),
                 progress: Callable[[int], None] | None = None) -> list[Generated]:
        """Draw n images for one prompt; the same seed and settings give the same images."""
        return [g for batch in self.batches(self.request(prompt, sampling), n, seed, progress) for g in batch]

    def batches(self, request: Request, n: int, seed: int,
                progress: Callable[[int], None] | None = None) -> Iterator[list[Generated]]:
        """Yield the n images in batches of at most MAX_BATCH, so callers can save each batch at once."""
        cfg = self.bundle.transformer.cfg
        gen = torch.Generator(device=self.device).manual_seed(seed)
        ids = torch.tensor(request.encoded.ids, device=self.device)
        empty = torch.tensor(self.bundle.tokenizer.empty(self.text_len), device=self.device)
        for start in range(0, n, MAX_BATCH):
            b = min(MAX_BATCH, n - start)
            tick = (lambda k, d=start * cfg.n_image, b=b: progress(d + k * b)) if progress else None
            with torch.inference_mode():
                codes = generate_codes(self.bundle.transformer, ids.expand(b, -1), empty, request.sampling, gen, tick)
                images = self.bundle.dvae.image_from_codes(codes.view(b, cfg.grid, cfg.grid)).float().cpu()
            yield [Generated(images[i], request.prompt, start + i) for i in range(b)]

    @torch.inference_mode()
    def score(self, images: torch.Tensor, prompt: str) -> torch.Tensor:
        """CLIP scores (B,) of images (B, 3, H, W) against one prompt."""
        clip = self.bundle.clip
        if clip is None:
            raise UsageError(f"{self.bundle.folder} has no clip.safetensors; reranking needs a CLIP model")
        ids = torch.tensor([self.bundle.tokenizer.encode(prompt, clip.cfg.text_len).ids], device=self.device)
        return clip.score(images.to(self.device), ids).float().cpu()

    def rerank(self, results: list[Generated], keep: int) -> list[Generated]:
        """Score results against their prompt and return the best `keep`, with score and rank set."""
        scores = self.score(torch.stack([r.image for r in results]), results[0].prompt)
        order = torch.argsort(scores, descending=True).tolist()
        for rank, i in enumerate(order, start=1):
            results[i].score, results[i].rank = float(scores[i]), rank
        return [results[i] for i in order[:keep]]
