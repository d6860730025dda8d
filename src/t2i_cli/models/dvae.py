"""The DALL-E discrete VAE at small scale: images <-> a grid of codes.

Two bottlenecks choose a cell's code. DALL-E's: the encoder scores all K codes, training relaxes the choice
with Gumbel-softmax (temperature annealed, KL to the uniform prior) and inference takes the argmax, whose
code indexes a learned codebook. Finite scalar quantisation (FSQ, Mentzer et al. 2023; `fsq_levels`): the
encoder emits one number per level count, each is bounded and rounded to one of its levels (the gradient
passes the rounding straight through), and the code is their mixed-radix index; training and inference
decode the same rounded values, and every code is reachable by construction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


def _finite(value: float) -> bool:
    """math.isfinite, False for a whole number past a float's range (10**400: isfinite raised OverflowError, not the
    setting's refusal), and for what is not a number (pixel_eps='x' was refused as "must be real number, not str",
    naming no setting: check_budget names it). (A model file stands alone: sampling_config.finite's twin.)"""
    try:
        return math.isfinite(value)
    except (OverflowError, TypeError):
        return False


@dataclass(frozen=True)
class DVAEConfig:
    """Shape of a dVAE; the code grid is image_side // downsample cells on a side."""

    image_side: int = 64  # pixels on a side of the square RGB input
    downsample: int = 4  # pixels per code cell on a side; a power of two
    n_codes: int = 512  # K, the codebook size
    n_hid: int = 32  # channels at full resolution; doubled at each halving, up to 4x
    code_dim: int = 128  # width of a code's embedding fed to the decoder
    n_res: int = 2  # residual blocks per resolution level below full resolution
    pixel_eps: float = 0.0  # > 0: the decoder's logits model pixels mapped into [eps, 1 - eps] (logit-Laplace)
    fsq_levels: tuple[int, ...] = ()  # non-empty: FSQ with these levels per channel; n_codes is their product

    def __post_init__(self):
        eps = self.pixel_eps
        finite = _finite(eps)
        if (finite or isinstance(eps, int)) and not 0 <= eps < 0.5:  # [eps, 1 - eps] is empty otherwise (NaN and
            # infinities are check_budget's to name, as for every setting)
            said = eps if finite else f"a {'negative ' if eps < 0 else ''}whole number past a float's range"
            raise ValueError(f"pixel_eps must be at least 0 and below 0.5, got {said}")
        levels = self.fsq_levels
        if not isinstance(levels, (list, tuple)) or any(type(v) is not int for v in levels):
            raise ValueError(f"fsq_levels takes a list of integers, got {levels!r}")
        object.__setattr__(self, "fsq_levels", tuple(levels))  # a JSON file gives a list
        if levels:
            if not 1 <= len(levels) <= 8 or any(not 2 <= v <= 64 for v in levels):
                # (a new run is refused a 2 too, stages.check_new_model: "each 2 to 64" alone led a run given 1,4
                # to 2,4, refused next)
                raise ValueError(f"fsq_levels takes 1 to 8 level counts, each 2 to 64 (3 or more for a new run), got "
                                 f"{tuple(levels)}")
            if math.prod(levels) != self.n_codes:
                raise ValueError(f"n_codes must be the product of fsq_levels {tuple(levels)}, "
                                 f"{math.prod(levels)}; got {self.n_codes}")

    @property
    def code_channels(self) -> int:
        """Channels the encoder emits per cell: one score per code (Gumbel), one value per level count (FSQ)."""
        return len(self.fsq_levels) if self.fsq_levels else self.n_codes

    @property
    def grid(self) -> int:
        """Codes on a side of the grid."""
        return self.image_side // self.downsample

    def state_numel(self) -> int:
        """Elements of the model's state_dict, computed without building it (tested against the model)."""
        w = _widths(self)
        enc = _conv(3, w[0], 3) + sum(self.n_res * _res(c) for c in w[1:]) \
            + sum(_conv(a, b, 4) for a, b in zip(w, w[1:], strict=False)) + _conv(w[-1], self.code_channels, 1)
        r = w[::-1]
        dec = _conv(self.code_dim, r[0], 1) + sum(self.n_res * _res(c) for c in r[:-1]) \
            + sum(_conv(a, b, 3) for a, b in zip(r, r[1:], strict=False)) + _conv(r[-1], 3, 3)
        book = _conv(len(self.fsq_levels), self.code_dim, 1) if self.fsq_levels else self.n_codes * self.code_dim
        return enc + book + dec

    def activation_bytes(self) -> int:
        """A bound on the fp32 activations of decoding one image (the widest full-resolution maps)."""
        return 4 * 4 * _widths(self)[0] * self.image_side**2


def psnr(recon: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """PSNR in dB (B,) of reconstructions against images, both (B, 3, H, W) in [0, 1]."""
    mse = ((recon.float() - images.float()) ** 2).mean(dim=(1, 2, 3)).clamp_min(1e-10)
    return 10 * torch.log10(1 / mse)


def code_usage(codes: torch.Tensor, n_codes: int) -> tuple[float, int]:
    """(Perplexity of the code histogram, distinct codes used) of any tensor of codes."""
    counts = torch.bincount(codes.flatten().cpu(), minlength=n_codes).float()
    p = counts / counts.sum().clamp_min(1)
    entropy = -(p[p > 0] * p[p > 0].log()).sum()
    return float(entropy.exp()), int((counts > 0).sum())


def _dtype(module: nn.Module) -> torch.dtype:
    """The dtype of a module's parameters (the first one's)."""
    return next(module.parameters()).dtype


def _conv(c_in: int, c_out: int, k: int) -> int:
    """Parameters of a k x k convolution with bias."""
    return c_in * c_out * k * k + c_out


def _res(ch: int) -> int:
    """Parameters of a ResBlock."""
    return 2 * _conv(ch, ch, 3)


class ResBlock(nn.Module):
    """Pre-activation residual block with two 3x3 convolutions."""

    def __init__(self, ch: int):
        super().__init__()
        self.conv1 = nn.Conv2d(ch, ch, 3, padding=1)
        self.conv2 = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.silu(self.conv1(F.silu(x))))


def _widths(cfg: DVAEConfig) -> list[int]:
    """Channel width at each resolution level, full resolution first."""
    n_levels = max(0, int(math.log2(max(1, cfg.downsample))))
    return [cfg.n_hid * min(2**i, 4) for i in range(n_levels + 1)]


class Encoder(nn.Module):
    """Image (B, 3, H, W) in [0, 1] -> per cell, logits over K codes (B, K, h, w), or FSQ's values (B, d, h, w)."""

    def __init__(self, cfg: DVAEConfig):
        super().__init__()
        w = _widths(cfg)
        layers: list[nn.Module] = [nn.Conv2d(3, w[0], 3, padding=1)]
        for i in range(len(w)):
            # No residual blocks at full resolution: they would cost most of the compute for little gain.
            layers += [ResBlock(w[i]) for _ in range(cfg.n_res if i > 0 else 0)]
            if i + 1 < len(w):
                layers.append(nn.Conv2d(w[i], w[i + 1], 4, stride=2, padding=1))
        layers += [nn.SiLU(), nn.Conv2d(w[-1], cfg.code_channels, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x * 2 - 1)


class Decoder(nn.Module):
    """Code embeddings (B, code_dim, h, w) -> pixel logits (B, 3, H, W); DVAE.pixels maps them to [0, 1]."""

    def __init__(self, cfg: DVAEConfig):
        super().__init__()
        w = _widths(cfg)[::-1]
        layers: list[nn.Module] = [nn.Conv2d(cfg.code_dim, w[0], 1)]
        for i in range(len(w)):
            layers += [ResBlock(w[i]) for _ in range(cfg.n_res if i + 1 < len(w) else 0)]
            if i + 1 < len(w):
                layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(w[i], w[i + 1], 3, padding=1)]
        layers += [nn.SiLU(), nn.Conv2d(w[-1], 3, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


RECON_LOSSES = ("l1", "mse", "logit_laplace")


class FSQ(nn.Module):
    """Finite scalar quantisation: values (B, d, h, w) -> one of levels[i] values per channel, and code indices.

    Channel i is bounded by a shifted tanh to about (-L/2, L/2), rounded to an integer (L values: -L//2 ..
    (L-1)//2) and scaled by 1/(L//2) into [-1, 1]; the rounding passes gradients straight through. The code of
    a cell is the mixed-radix number of its digits (integer + L//2), so K = prod(levels) codes.
    """

    def __init__(self, levels: tuple[int, ...]):
        super().__init__()
        lv = torch.tensor(levels, dtype=torch.float64)
        basis = torch.cumprod(torch.tensor((1, *levels[:-1]), dtype=torch.long), 0)
        half_l = (lv - 1) * (1 + 1e-3) / 2
        offset = (lv % 2 == 0).double() * 0.5
        # Buffers, not parameters, and not saved: everything follows from the config's levels.
        for name, value in (("levels", lv.long()), ("basis", basis), ("half_l", half_l.float()),
                            ("offset", offset.float()), ("shift", torch.atanh(offset / half_l).float()),
                            ("half_width", (lv.long() // 2).float())):
            self.register_buffer(name, value.view(1, -1, 1, 1), persistent=False)

    def _integers(self, z: torch.Tensor) -> torch.Tensor:
        bounded = torch.tanh(z.float() + self.shift) * self.half_l - self.offset
        return bounded + (bounded.round() - bounded).detach()  # round, gradient straight through

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Encoder values (B, d, h, w) -> quantised values in [-1, 1], differentiable (straight through)."""
        return self._integers(z) / self.half_width

    def codes(self, z: torch.Tensor) -> torch.Tensor:
        """Encoder values (B, d, h, w) -> code indices (B, h, w)."""
        digits = self._integers(z).detach().round().long() + self.half_width.long()
        return (digits * self.basis).sum(dim=1)

    def values(self, codes: torch.Tensor) -> torch.Tensor:
        """Code indices (B, h, w) -> quantised values (B, d, h, w) in [-1, 1]: the inverse of codes()."""
        digits = (codes.unsqueeze(1) // self.basis) % self.levels
        return (digits - self.half_width.long()).float() / self.half_width


def check_images(images: torch.Tensor) -> None:
    """Refuse what is not a batch of RGB pictures (B, 3, H, W) of floats in [0, 1]: 0..255 pixels, a uint8
    tensor or one picture without its batch dimension was encoded without a word into other codes (or a grid
    of channels). A little outside [0, 1] (a resampling's overshoot) is let through."""
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        hint = "; add the batch dimension: images[None]" if isinstance(images, torch.Tensor) and images.dim() == 3 \
            else ""
        raise ValueError(f"images must be a tensor (B, 3, H, W); got {shape}{hint}")
    if not images.dtype.is_floating_point:
        raise ValueError(f"images must be floats in [0, 1]; got {images.dtype} (for 0..255 pixels: images.float() "
                         f"/ 255)")
    if images.numel():
        low, high = (float(v) for v in torch.aminmax(images.detach()))  # (one pass, one sync on a GPU)
        if not (-0.5 <= low and high <= 1.5):  # (NaN fails both)
            raise ValueError(f"images must be in [0, 1]; these reach {low:g}..{high:g}"
                             + (" (0..255 pixels? divide by 255)" if high > 1.5 else ""))


class DVAE(nn.Module):
    """Encoder, bottleneck (Gumbel-softmax over a codebook, or FSQ) and decoder."""

    def __init__(self, cfg: DVAEConfig):
        super().__init__()
        if cfg.downsample < 2 or cfg.downsample & (cfg.downsample - 1):
            raise ValueError(f"downsample must be a power of two, at least 2, got {cfg.downsample}")
        if cfg.image_side % cfg.downsample:
            raise ValueError(f"image_side {cfg.image_side} must be a multiple of downsample {cfg.downsample}")
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        # Gumbel: a learned embedding per code. FSQ: the quantised values, projected to code_dim.
        self.fsq = FSQ(cfg.fsq_levels) if cfg.fsq_levels else None
        self.codebook = (nn.Conv2d(len(cfg.fsq_levels), cfg.code_dim, 1) if cfg.fsq_levels
                         else nn.Embedding(cfg.n_codes, cfg.code_dim))
        self.decoder = Decoder(cfg)

    def pixels(self, logits: torch.Tensor) -> torch.Tensor:
        """Decoder logits -> image in [0, 1]: a sigmoid, undoing the [eps, 1 - eps] mapping when there is one."""
        x = torch.sigmoid(logits)
        eps = self.cfg.pixel_eps
        return x if eps <= 0 else ((x - eps) / (1 - 2 * eps)).clamp(0, 1)

    def forward(self, images: torch.Tensor, tau: float = 1.0, kl_weight: float = 0.0, hard: bool = False,
                loss: str = "l1") -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """Reconstruct images through a Gumbel-softmax relaxed code choice (or FSQ); returns (recon, loss, parts).

        FSQ ignores tau and kl_weight (its codes are always hard) and reports no KL.

        hard=True decodes the argmax codes (FSQ's rounded values), exactly as at inference: gradients then reach
        only the decoder (and codebook), which is how a trained decoder is fine-tuned without changing any code.
        loss is the reconstruction term (RECON_LOSSES):
        - "l1": |x - sigmoid(logits)|, a Laplace likelihood on pixels. Sharp on flat clip-art, but on pictures
          that are mostly one saturated colour (white backgrounds) L1 pushes the logits of those pixels
          without bound, the sigmoid saturates, its gradient vanishes and the decoder's output freezes into
          a constant image (posterior collapse; measured in docs/own-data.md).
        - "mse": (x - sigmoid(logits))^2, whose gradient fades as a pixel nears its target: no runaway logits.
        - "logit_laplace": DALL-E's logit-Laplace with a fixed scale, |logit(eps + (1 - 2 eps) x) - logits|:
          targets are finite logits, so nothing saturates, and the L1 keeps edges sharp. Needs pixel_eps > 0.
        """
        if loss not in RECON_LOSSES:
            raise ValueError(f"unknown reconstruction loss {loss!r}; use one of {', '.join(RECON_LOSSES)}")
        if loss == "logit_laplace" and self.cfg.pixel_eps <= 0:
            raise ValueError("the logit_laplace loss needs a dVAE with pixel_eps > 0")
        # (B, K, h, w), or FSQ's values (B, d, h, w); a frozen encoder's as codes_from_image reads them
        logits = self._encode_as_stored(images) if hard else self.encoder(images)
        if self.fsq is not None:  # (hard: the rounding's straight-through gradient stops here, as argmax's does)
            values = self.fsq(logits)
            z = self.codebook(values.detach() if hard else values)  # (B, code_dim, h, w)
        elif hard:
            z = self.codebook(logits.argmax(dim=1)).permute(0, 3, 1, 2)  # (B, code_dim, h, w)
        else:
            soft = F.gumbel_softmax(logits, tau=tau, dim=1)  # (B, K, h, w), rows sum to 1
            z = torch.einsum("bkhw,kd->bdhw", soft, self.codebook.weight)  # (B, code_dim, h, w)
        out = self.decoder(z).float()  # (B, 3, H, W) logits
        recon, x = self.pixels(out), images.float()
        l1 = (recon - x).abs().mean()
        if loss == "l1":
            rec = l1
        elif loss == "mse":
            rec = ((recon - x) ** 2).mean()
        else:
            eps = self.cfg.pixel_eps
            rec = (torch.logit(eps + (1 - 2 * eps) * x) - out).abs().mean()
        parts = {"recon_l1": l1.detach(), "recon": rec.detach()}
        if len(recon) > 1:  # the spread across the batch (0: one constant image for every input); none in a batch of 1
            parts["out_std"] = recon.detach().std(dim=0).mean()
        if self.fsq is not None:
            return recon, rec, parts
        log_q = F.log_softmax(logits.float(), dim=1)
        # KL(q || uniform) per cell = sum q log q + log K, averaged over cells and batch.
        kl = (log_q.exp() * log_q).sum(dim=1).mean() + math.log(self.cfg.n_codes)
        return recon, rec + kl_weight * kl, parts | {"kl": kl.detach()}

    def codes_from_image(self, images: torch.Tensor) -> torch.Tensor:
        """Images (B, 3, H, W) in [0, 1] -> most likely codes (B, h, w), from the encoder in its own dtype with
        autocast off: the transformer trains (under bf16 autocast) on the codes that validation, image prompts
        and the decoder fine-tune read (in bf16 the Gumbel encoder's argmax moved 12.6% of a world scene's codes;
        before t2i 0.9.0 training used those)."""
        check_images(images)
        out = self._encode_as_stored(images)
        return self.fsq.codes(out) if self.fsq is not None else out.argmax(dim=1)

    def _encode_as_stored(self, images: torch.Tensor) -> torch.Tensor:
        """The encoder's output in the dtype of its own weights, with any caller's autocast off."""
        with torch.autocast(images.device.type, enabled=False):
            return self.encoder(images.to(_dtype(self.encoder)))

    def image_from_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes (B, h, w), or (B, grid * grid) in raster order as Generated.codes and the transformer hold them ->
        images (B, 3, H, W) in [0, 1], float32 (whatever dtype the decoder runs in)."""
        g = self.cfg.grid
        if not isinstance(codes, torch.Tensor):  # (a list: "'list' object has no attribute 'dtype'")
            raise ValueError(f"codes must be a tensor (B, {g}, {g}) or (B, {g * g}), got {type(codes).__name__} "
                             f"(torch.tensor(codes))")
        if codes.dtype.is_floating_point or codes.dtype.is_complex or codes.dtype == torch.bool \
                or codes.dim() not in (2, 3) or codes.shape[1:] not in ((g * g,), (g, g)):
            raise ValueError(f"codes must be integers of shape (B, {g}, {g}) or (B, {g * g}), this dVAE's grid; got "
                             f"{codes.dtype} of shape {tuple(codes.shape)}")
        codes = codes.long().reshape(len(codes), g, g)
        if codes.numel():
            low, high = (int(v) for v in torch.aminmax(codes))
            if low < 0 or high >= self.cfg.n_codes:  # (an FSQ code past its levels wrapped into another)
                raise ValueError(f"codes must be in 0..{self.cfg.n_codes - 1}, this dVAE's codebook; got "
                                 f"{low}..{high}")
        if self.fsq is not None:
            z = self.codebook(self.fsq.values(codes).to(self.codebook.weight.dtype))
        else:
            z = self.codebook(codes).permute(0, 3, 1, 2)  # (B, code_dim, h, w)
        return self.pixels(self.decoder(z).float())  # .float() is the tensor itself when it already is

    def decode_in(self, dtype: torch.dtype) -> "DVAE":
        """Cast the half that turns codes into pixels (codebook and decoder) to dtype, for inference; the
        encoder keeps its own (image prompts' codes do not move). The last sigmoid stays float32, so a bf16
        decoder's pixels are not rounded to bf16's 8 bits on top of its own error."""
        self.codebook.to(dtype)
        self.decoder.to(dtype)
        return self
