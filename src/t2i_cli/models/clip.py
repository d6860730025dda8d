"""A small CLIP: an image encoder and a text encoder trained with a symmetric contrastive loss.

With `word_region` (DAMSM-style, after AttnGAN), the image encoder also keeps a map of region features (its
feature map at 1/8 of the side) and the text encoder its per-token features; each token attends over the
regions, and the cosine between the token and what it attended to, averaged over the prompt's tokens, is
added to the sentence-level cosine. A sentence embedding can say "red, blue, bird, car" and still not
know which colour is whose; a word that must find its own region cannot."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

MIN_SIDE = 16  # the image encoder's four 2x2 poolings need a side of at least 16 pixels


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
    word_region: bool = False  # add the DAMSM-style word-region score (region and word projections)
    attn_sharpness: float = 5.0  # word-region: inverse temperature (DAMSM's gamma_1) of a word's attention over regions

    def __post_init__(self):
        if type(self.image_side) is int and 0 < self.image_side < MIN_SIDE:  # (check_budget names a wrong type, 0)
            raise ValueError(f"image_side must be at least {MIN_SIDE} (the image encoder halves it four times), "
                             f"got {self.image_side}")

    def state_numel(self) -> int:
        """Elements of the model's state_dict, computed without building it (tested against the model)."""
        w, d = self.n_hid, self.n_embd
        chans = [3, w, 2 * w, 4 * w, 4 * w]
        image = sum(a * b * 9 + b + 2 * b for a, b in zip(chans, chans[1:], strict=False))  # conv + GroupNorm
        image += 8 * w * self.embed_dim + self.embed_dim
        text = (self.text_vocab + self.text_len) * d + self.n_layer * (12 * d * d + 13 * d) + 2 * d
        heads = (4 * w + 1) * self.embed_dim + (d + 1) * self.embed_dim if self.word_region else 0
        return image + text + d * self.embed_dim + self.embed_dim + 1 + heads  # text projection, logit scale

    def regions(self) -> int:
        """Region features per image of the word-region score (its feature map at 1/8 of the side)."""
        return (self.image_side // 8) ** 2

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
        self.region_proj = nn.Conv2d(chans[-2], cfg.embed_dim, 1) if cfg.word_region else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)[0]

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(embedding (B, D), region features (B, R, D) or None): regions are the map at 1/8 of the side."""
        h = self.net[:12](x * 2 - 1)  # three blocks: (B, 4w, H/8, W/8)
        regions = self.region_proj(h).flatten(2).transpose(1, 2) if self.region_proj is not None else None
        h = self.net[12:](h)  # (B, C, H/16, W/16)
        # Mean and max pooling: mean sees colour mass, max sees a small object anywhere.
        return self.proj(torch.cat([h.mean(dim=(2, 3)), h.amax(dim=(2, 3))], dim=1)), regions


class TextEncoder(nn.Module):
    """Text ids (B, T) -> embedding (B, embed_dim): a bidirectional transformer, mean-pooled over real tokens."""

    def __init__(self, cfg: ClipConfig):
        super().__init__()
        if cfg.n_head < 1 or cfg.n_embd % cfg.n_head:  # PyTorch's own check is an assert (gone under python -O)
            raise ValueError(f"n_embd {cfg.n_embd} must be a multiple of n_head {cfg.n_head}")
        self.cfg = cfg
        self.tok = nn.Embedding(cfg.text_vocab, cfg.n_embd)
        self.pos = nn.Embedding(cfg.text_len, cfg.n_embd)
        layer = nn.TransformerEncoderLayer(cfg.n_embd, cfg.n_head, 4 * cfg.n_embd, dropout=0.0,
                                           batch_first=True, norm_first=True)
        self.layers = nn.TransformerEncoder(layer, cfg.n_layer, enable_nested_tensor=False)
        self.ln = nn.LayerNorm(cfg.n_embd)
        self.proj = nn.Linear(cfg.n_embd, cfg.embed_dim)
        self.word_proj = nn.Linear(cfg.n_embd, cfg.embed_dim) if cfg.word_region else None

    def forward(self, text: torch.Tensor) -> torch.Tensor:
        return self.features(text)[0]

    def features(self, text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """(embedding (B, D), word features (B, T, D) or None, real-token mask (B, T))."""
        is_pad = text >= self.cfg.n_pad_start  # (B, T)
        is_pad[:, 0] = False  # an empty caption still pools over one position
        pos = torch.arange(text.shape[1], device=text.device)
        h = self.layers(self.tok(text) + self.pos(pos), src_key_padding_mask=is_pad)  # (B, T, C)
        keep = (~is_pad).unsqueeze(-1).float()
        words = self.word_proj(self.ln(h)) if self.word_proj is not None else None
        pooled = ((h * keep).sum(1) / keep.sum(1)).to(self.ln.weight.dtype)  # (a no-op unless cast to bf16)
        return self.proj(self.ln(pooled)), words, ~is_pad


class Clip(nn.Module):
    """Contrastive image-text model: score() is the cosine similarity of the two embeddings, plus the
    word-region score when the model has one (TextToImage.score reranks by it, with crops and a second CLIP)."""

    def __init__(self, cfg: ClipConfig):
        super().__init__()
        self.cfg = cfg
        self.image_encoder = ImageEncoder(cfg)
        self.text_encoder = TextEncoder(cfg)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def fit_side(self, images: torch.Tensor) -> torch.Tensor:
        """Images at another side than the model's are resized to it (area average when shrinking)."""
        side = self.cfg.image_side
        if images.shape[-1] == side and images.shape[-2] == side:
            return images
        return F.interpolate(images, size=(side, side), mode="area" if images.shape[-1] > side else "bilinear")

    def embed(self, images: torch.Tensor, text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Unit-length embeddings (B, D) for images and texts."""
        txt = self.text_encoder(text)
        if self.logit_scale.dtype != torch.float32:  # compared in float32, as in pair_scores
            txt = txt.float()
        return self.embed_images(images), F.normalize(txt, dim=-1)

    def embed_images(self, images: torch.Tensor) -> torch.Tensor:
        """Unit-length embeddings (B, D) for images alone (embed's, without encoding a text)."""
        img = self.image_encoder(self.fit_side(images))
        if self.logit_scale.dtype != torch.float32:
            img = img.float()
        return F.normalize(img, dim=-1)

    def features(self, images: torch.Tensor, text: torch.Tensor) -> tuple[tuple, tuple]:
        """What pair_scores compares: ((embedding (Bi, D), regions (Bi, R, D) or None), (embedding (Bt, D),
        words (Bt, T, D) or None, real-token mask (Bt, T)))."""
        img, regions = self.image_encoder.features(self.fit_side(images))
        txt, words, real = self.text_encoder.features(text)
        if self.logit_scale.dtype != torch.float32:  # a CLIP cast to bf16 (rerank --precision): its features
            # are compared in float32, or close scores round to ties (training's autocast is left as it was)
            img, txt = img.float(), txt.float()
            regions, words = (None if t is None else t.float() for t in (regions, words))
        return (img, regions), (txt, words, real)

    def scores(self, image_features: tuple, text_features: tuple) -> torch.Tensor:
        """Scores (Bi, Bt) of features (as features() gives them) of every image against every text."""
        (img, regions), (txt, words, real) = image_features, text_features
        scores = F.normalize(img, dim=-1) @ F.normalize(txt, dim=-1).t()
        if regions is not None and words is not None:
            scores = scores + word_region_scores(regions, words, real, self.cfg.attn_sharpness)
        return scores

    def pair_scores(self, images: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """Scores (Bi, Bt) of every image against every text: the sentence cosine, plus (word_region) the
        word-region score; each lies in [-1, 1], so the sum lies in [-2, 2]."""
        return self.scores(*self.features(images, text))

    def forward(self, images: torch.Tensor, text: torch.Tensor, gather: Callable | None = None,
                offset: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """Images (B, 3, H, W) and their captions (B, T) -> (logits (B, B), symmetric contrastive loss).

        Under torchrun, gather (a tensor -> every process's tensors concatenated, its gradient flowing back to
        each) makes the negatives the whole global batch: this process's images are scored against every
        process's captions and its captions against every image, the targets at `offset` (this process's
        first row in the global batch); logits are then (B, N * B). Averaged over processes (DDP), the
        gradient is a single process's over the global batch."""
        scale = self.logit_scale.exp().clamp(max=100)
        if gather is None:
            logits = scale * self.pair_scores(images, text)  # image i vs text j
            target = torch.arange(len(images), device=images.device)
            loss = (F.cross_entropy(logits.float(), target) + F.cross_entropy(logits.float().t(), target)) / 2
            return logits, loss
        mine_i, mine_t = self.features(images, text)
        every_i = tuple(None if t is None else gather(t) for t in mine_i)
        every_t = tuple(None if t is None else gather(t) for t in mine_t)
        logits = scale * self.scores(mine_i, every_t)  # (B, N * B): my images against every caption
        by_text = scale * self.scores(every_i, mine_t).t()  # (B, N * B): my captions against every image
        target = offset + torch.arange(len(images), device=images.device)
        loss = (F.cross_entropy(logits.float(), target) + F.cross_entropy(by_text.float(), target)) / 2
        return logits, loss

    def score(self, images: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """Score (B,) of each image with its own text (text may be (1, T), broadcast): the cosine similarity
        of the embeddings, plus the word-region score when the model has one. A model cast to bf16 scores
        bf16 images (the images are cast to its dtype); scores are float32."""
        return self._score(images.to(self.logit_scale.dtype), text).float()

    def _score(self, images: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        if not self.cfg.word_region:
            img, txt = self.embed(images, text)
            return (img * txt).sum(-1)
        if len(text) == 1:
            return self.pair_scores(images, text)[:, 0]
        return torch.stack([self.pair_scores(images[i:i + 1], text[i:i + 1])[0, 0] for i in range(len(images))])

    @torch.no_grad()
    def word_attention(self, image: torch.Tensor, text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One image (3, H, W) and one text (T,): each token's attention over the regions (T, h, w) and its
        word-region cosine (T,) (padding tokens included; the caller keeps the real ones)."""
        if not self.cfg.word_region:
            raise ValueError("this CLIP has no word-region head (train it with --model word_region=true)")
        _, regions = self.image_encoder.features(self.fit_side(image[None].to(self.logit_scale.dtype)))
        _, words, _ = self.text_encoder.features(text[None])
        r, w = F.normalize(regions[0], dim=-1), F.normalize(words[0], dim=-1)  # (R, D), (T, D)
        attn = torch.softmax(self.cfg.attn_sharpness * w @ r.t(), dim=-1)  # (T, R)
        side = math.isqrt(self.cfg.regions())  # (the map at 1/8 of the model's side: fit_side resized the image)
        return attn.float().view(-1, side, side), F.cosine_similarity(attn @ r, w, dim=-1).float()


def word_region_scores(regions: torch.Tensor, words: torch.Tensor, real: torch.Tensor,
                       sharpness: float) -> torch.Tensor:
    """DAMSM's word-region match for every image-text pair: regions (Bi, R, D), words (Bt, T, D), real
    (Bt, T) -> (Bi, Bt). Each word attends over an image's regions (softmax of sharpness x cosine); its
    score is the cosine between the word and the attention-weighted region; a pair's score is the mean over
    the text's real tokens (a mean, not DAMSM's soft maximum, so that one unmatched word counts)."""
    r, w = F.normalize(regions, dim=-1), F.normalize(words, dim=-1)
    sim = torch.einsum("jtd,ird->ijtr", w, r)  # (Bi, Bt, T, R)
    context = torch.einsum("ijtr,ird->ijtd", torch.softmax(sharpness * sim, dim=-1), r)  # (Bi, Bt, T, D)
    cos = F.cosine_similarity(context, w.unsqueeze(0), dim=-1)  # (Bi, Bt, T)
    keep = real.float().unsqueeze(0)  # (1, Bt, T)
    return (cos * keep).sum(-1) / keep.sum(-1).clamp(min=1)
