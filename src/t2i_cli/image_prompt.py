"""Image prompts: a set of dVAE codes that the sampler keeps instead of drawing.

Three kinds, all drawn by the same raster-order decoder (sampling.draw_codes):
- complete (`generate --image SRC --keep-top F`): the top rows of SRC's codes are kept, the rest drawn;
- inpaint (`generate --image SRC --mask MASK`): cells marked by MASK are drawn, the others kept; with
  `--redraws K` each image is drawn K times and the one under which the model finds the kept codes after
  the redrawn region most likely is kept (a raster-order model cannot see those codes while it draws);
- vary (`t2i vary SRC --strength S`): a share S of the cells, chosen at random per image, is redrawn.

Every output records what it was made from (source and mask hashes, F, S, K) in its PNG text, so
`generate --from PNG --image SRC` can redraw it.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from t2i_cli.errors import DataError, UsageError, option, said_value
from t2i_cli.files import sha256_of
from t2i_cli.images import (
    image_from_tensor,
    image_size,
    load_mask_cells,
    load_rgb,
    mask_light_outside,
    read_png,
    read_png_text,
    rgb_of,
    tensor_from_image,
)
from t2i_cli.sampling_config import MAX_REDRAWS, plain_number, whole  # (torch-free: checked before a pipe is read)

MODES = ("complete", "inpaint", "vary")


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes (how outputs name their source image and mask). Only a regular file: a device
    (/dev/zero) would never end, and a pipe (/dev/stdin) would be used up before the picture is decoded."""
    p = Path(path)
    if p.exists() and not p.is_dir() and not p.is_file():
        raise DataError(f"{path} is not a regular file (a device, pipe or socket); save the picture to a file "
                        f"and give that")
    try:
        return sha256_of(path).hexdigest()
    except OSError as e:
        if Path(path).is_dir():
            raise DataError(f"{path} is a folder; give an image file") from e
        raise DataError(f"cannot read {path}: {e.strerror}; check the path") from e


@dataclass(frozen=True)
class ImagePrompt:
    """What the sampler keeps of a source image, and how it was chosen."""

    mode: str  # complete, inpaint or vary
    codes: torch.Tensor  # (N,) the source image's dVAE codes, raster order
    image_sha256: str  # of the source file's bytes
    keep: torch.Tensor | None = None  # (N,) bools, True = kept (complete, inpaint); vary draws its own per image
    keep_top: float | None = None  # complete: the share of code rows kept
    mask_sha256: str | None = None  # inpaint: of the mask file's bytes
    strength: float | None = None  # vary: the share of cells redrawn
    redraws: int = 1  # draws per image; the best fit to the kept codes is kept

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if (self.keep is None) != (self.mode == "vary"):
            raise ValueError("complete and inpaint keep a fixed set of cells; vary draws them per image")
        if (redraws := whole(self.redraws)) is None:  # (numpy's np.int64 too)
            raise TypeError(f"redraws must be an int, got {type(self.redraws).__name__}")
        object.__setattr__(self, "redraws", redraws)
        if not 1 <= self.redraws <= MAX_REDRAWS:
            raise UsageError(f"{option('redraws')} must be in 1..{MAX_REDRAWS}, got "
                             f"{said_value(self.redraws, plain=True)}")
        # (built by hand from Python, a wrong kind of tensor drew silently wrong images: a keep of 0/1 integers
        # was negated bitwise, a strength of 2 redrew every cell, float codes failed deep in sampling)
        if not isinstance(self.codes, torch.Tensor) or self.codes.dim() != 1 or self.codes.dtype.is_floating_point \
                or self.codes.dtype in (torch.bool, torch.complex64, torch.complex128) or self.codes.numel() < 1:
            raise TypeError(f"codes must be a 1-D tensor of integer codes (N,) in raster order, as "
                            f"dvae.codes_from_image(x).flatten() gives them; got {_kind(self.codes)}")
        if self.keep is not None:
            if not isinstance(self.keep, torch.Tensor) or self.keep.dtype != torch.bool \
                    or tuple(self.keep.shape) != tuple(self.codes.shape):
                raise TypeError(f"keep must be a bool tensor of the codes' shape ({self.codes.numel()},), True where "
                                f"a code is kept; got {_kind(self.keep)}")
            if bool(self.keep.all()) or not bool(self.keep.any()):
                raise UsageError(f"keep marks {'every' if bool(self.keep.all()) else 'no'} cell as kept: an image "
                                 f"prompt keeps some cells and draws the others")
        for name in ("keep_top", "strength"):  # (plain numbers, as build gives them: np.float64(0.5)'s repr in the
            # provenance was "np.float64(0.5)")
            if (value := getattr(self, name)) is not None:
                object.__setattr__(self, name, plain_number(value, name, TypeError))
        if self.mode == "vary":
            if self.strength is None:
                raise ValueError("vary needs a strength: the share of cells redrawn, in (0, 1]")
            check_strength(self.strength)
        if self.keep_top is not None:
            check_keep_top(self.keep_top)

    @property
    def n_redrawn(self) -> int:
        """Cells drawn per image."""
        if self.keep is not None:
            return int((~self.keep).sum())
        return redrawn_cells(self.codes.numel(), self.strength)

    def keep_masks(self, b: int, generator: torch.Generator) -> torch.Tensor:
        """(b, N) bools for b images: the fixed set, or for vary n_redrawn random cells per image drawn
        from the batch's generator (so the same seed redraws the same cells)."""
        n = self.codes.numel()
        if self.keep is not None:
            return self.keep.view(1, n).expand(b, n).to(generator.device)
        keep = torch.ones(b, n, dtype=torch.bool, device=generator.device)
        for row in keep:
            row[torch.randperm(n, generator=generator, device=generator.device)[: self.n_redrawn]] = False
        return keep

    def provenance(self) -> dict[str, str]:
        """The PNG text that names what an output was made from."""
        meta = {"image_mode": self.mode, "image_sha256": self.image_sha256}
        if self.keep_top is not None:
            meta["keep_top"] = repr(self.keep_top)
        if self.mask_sha256 is not None:
            meta["mask_sha256"] = self.mask_sha256
        if self.strength is not None:
            meta["strength"] = repr(self.strength)
        if self.mode == "inpaint":
            meta["redraws"] = str(self.redraws)
        return meta


def _kind(x) -> str:
    if isinstance(x, torch.Tensor):
        return f"a {x.dtype} tensor of shape {tuple(x.shape)}"
    return f"a {type(x).__name__}"


def redrawn_cells(n: int, strength: float) -> int:
    """Cells a variation of strength S redraws: round(S * N), at least one."""
    return max(1, min(n, round(strength * n)))


def check_keep_top(keep_top: float) -> None:
    if not 0 < keep_top < 1:
        raise UsageError(f"{option('keep_top')} must be in (0, 1), above 0 and below 1 (the share of rows kept), got "
                         f"{said_value(keep_top, plain=True)}")


def check_strength(strength: float) -> None:
    if not 0 < strength <= 1:
        raise UsageError(f"{option('strength')} must be in (0, 1] (1 redraws every cell), got "
                         f"{said_value(strength, plain=True)}")


def keep_top_cells(grid: int, keep_top: float) -> torch.Tensor:
    """(grid * grid,) bools keeping the top round(F * grid) rows, at least 1 and at most grid - 1."""
    check_keep_top(keep_top)
    rows = max(1, min(grid - 1, round(keep_top * grid)))
    keep = torch.zeros(grid, grid, dtype=torch.bool)
    keep[:rows] = True
    return keep.flatten()


CODES_KEY = "t2i_codes"  # (outputs.CODES_KEY: the PNG text key of the codes an image was decoded from)
# How far a decode of a PNG's recorded codes may be from its pixels and still be that picture: the same machine
# kind decodes them to the same bytes; a dVAE decoder in another precision (bf16 where the CPU has it) moves
# pixels by up to 5 levels, a cell's by 0.7 on average (4 shipped-weights pictures). An edit moves more: a painted
# dot its pixels, a tint of any patch the cells under it.
MAX_LEVELS_OFF, CELL_LEVELS_OFF = 8, 1.5


def codes_text(codes: torch.Tensor) -> str | None:
    """An image's codes (N,) as PNG text: base64 of little-endian uint16 (None past 65,536 codes a cell)."""
    if codes.numel() == 0 or int(codes.max()) > 0xFFFF or int(codes.min()) < 0:
        return None
    return base64.b64encode(codes.detach().cpu().to(torch.int32).numpy().astype("<u2").tobytes()).decode("ascii")


def codes_text_length(n: int) -> int:
    """The length of the text a t2i PNG records n codes in (codes_text): base64 of exactly 2n bytes."""
    return 4 * ((2 * n + 2) // 3)


def recorded_codes(text: dict[str, str], n: int, n_codes: int) -> torch.Tensor | None:
    """The codes (n,) a t2i PNG records (codes_text), or None when it records none or not n codes under n_codes
    (another model's, or edited text): never more than n are read."""
    raw = text.get(CODES_KEY)
    if raw is None or len(raw) != codes_text_length(n):
        return None
    try:
        data = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(data) != 2 * n:
        return None
    import numpy as np

    codes = torch.from_numpy(np.frombuffer(data, dtype="<u2").astype(np.int64))
    return codes if int(codes.max()) < n_codes else None


@torch.inference_mode()
def source_codes(dvae, path: Path, picture=None, text: dict[str, str] | None = None) -> torch.Tensor:
    """SRC's codes (N,): those a t2i PNG records when they decode to its pixels (its own picture, not edited
    since), else SRC encoded by the dVAE, resized and cropped like training data (the encoding of a generated
    picture agrees with its codes on about 7 cells in 10: vary's --strength redrew far more than its share).
    picture: load_rgb(path, the dVAE's side) where it was read already; text: the codes the PNG records where they
    were read already (its text chunks, or {} for a picture of another format or side; rerank --bits: the decode
    that read its text for its prompt)."""
    grid, side = dvae.cfg.grid, dvae.cfg.image_side
    if picture is None and text is None:  # a PNG: its picture and its text from one decode (a t2i PNG of the dVAE's
        chunks, png = read_png(path)  # side, vary's SRC, was decoded again for its recorded codes)
        text = {}  # (a picture of another format records no codes: it was opened twice more to find none)
        if png is not None:
            picture, text = rgb_of(png, side), chunks if png.size == (side, side) else {}
        del png
    img = load_rgb(path, side) if picture is None else picture
    x = tensor_from_image(img).unsqueeze(0)
    device = next(dvae.parameters()).device
    # (a picture t2i drew is its model's side: any other is read no further, not decoded twice)
    if text is None:
        text = read_png_text(path) if image_size(path) == (side, side) else {}
    recorded = recorded_codes(text, grid * grid, dvae.cfg.n_codes)
    if recorded is not None:
        import numpy as np

        drawn = np.asarray(image_from_tensor(dvae.image_from_codes(recorded.view(1, grid, grid).to(device))[0]),
                           dtype=np.int16)
        given = np.asarray(img, dtype=np.int16)
        if drawn.shape == given.shape:
            off = np.abs(drawn - given)
            cell = side // grid
            by_cell = off[:grid * cell, :grid * cell].reshape(grid, cell, grid, cell, -1).mean(axis=(1, 3, 4))
            if int(off.max()) <= MAX_LEVELS_OFF and float(by_cell.max()) <= CELL_LEVELS_OFF:
                return recorded
    return dvae.codes_from_image(x.to(device)).flatten().cpu()


def build(dvae, image: Path, keep_top: float | None = None, mask: Path | None = None,
          strength: float | None = None, redraws: int = 1, redraws_given: bool = True) -> ImagePrompt:
    """The image prompt for SRC and one of keep_top, mask or strength (checked here, once). Redraws are
    compared by the kept codes that follow the region: when none does, a default is dropped to 1 and a
    redraws_given one is refused."""
    from t2i_cli.models.dvae import DVAE

    if sum(x is not None for x in (keep_top, mask, strength)) != 1:
        raise UsageError(f"an image prompt takes one of {option('keep_top')}, {option('mask')} or "
                         f"{option('strength')}")
    if not isinstance(dvae, DVAE):  # (the pipeline or its bundle: an AttributeError deep in the encoding)
        raise TypeError(f"build takes the dVAE (pipe.bundle.dvae), got {type(dvae).__name__}")
    for name, value in (("image", image), ("mask", mask)):  # (a PIL image or tensor: os.fspath's TypeError)
        if name == "image" or value is not None:
            if not isinstance(value, (str, os.PathLike)):
                raise TypeError(f"build takes the {name}'s file, a Path or str, got {type(value).__name__}; save the "
                                f"picture as a PNG first (images.image_from_tensor(x).save(path))")
    # (True was taken as 1.0, "0.5" failed; numpy's as plain ones, as SamplingConfig takes them: np.float32(0.5) and
    # np.int64(1) were "must be a number")
    keep_top, strength = (None if v is None else plain_number(v, name, TypeError)
                          for name, v in (("keep_top", keep_top), ("strength", strength)))
    if keep_top is not None:
        check_keep_top(keep_top)
    if strength is not None:
        check_strength(strength)
    if mask is None and redraws != 1:
        raise UsageError(f"{option('redraws')} belongs to {option('mask')} (it picks the redrawn region that fits the "
                         f"kept codes)")
    digest = file_sha256(image)
    grid = dvae.cfg.grid
    keep = None
    if mask is not None:
        mask_digest = file_sha256(mask)
        (w, h), (mw, mh) = image_size(image), image_size(mask, "mask")
        if abs(w * mh - h * mw) > 0.01 * max(w * mh, h * mw):
            raise UsageError(f"the mask {mask} is {mw}x{mh} and the image {image} is {w}x{h}: their shapes differ, "
                             "so the mask would not cover the same picture; draw the mask at the image's size")
        keep = ~load_mask_cells(mask, grid).flatten()
        if bool(keep.all()):
            if mask_light_outside(mask):  # a tall or wide mask whose white is where t2i's square crop cuts
                s = min(mw, mh)
                raise UsageError(f"the mask {mask} marks only pixels outside the centre {s}x{s} square that t2i "
                                 f"draws from (of its {mw}x{mh}, as of the image); paint the region to redraw "
                                 "white inside that square")
            raise UsageError(f"the mask {mask} marks nothing to redraw (no pixel above 127); "
                             "paint the region to redraw white")
        if not bool(keep.any()):
            raise UsageError(f"the mask {mask} marks the whole image; leave out {option('image')} and "
                             f"{option('mask')} to draw a new one, or paint only the region to redraw white")
    if mask is not None and redraws > 1 and not bool(keep[int((~keep).int().argmax()):].any()):
        if redraws_given:
            raise UsageError(f"{option('redraws')} compares how well each draw fits the kept cells after the masked "
                             f"region, and this mask keeps none after it; use {option('redraws', 1)}")
        redraws = 1
    codes = source_codes(dvae, image).clone()  # (out of inference mode: a script may edit them, as Generated.codes)
    if mask is not None:
        return ImagePrompt("inpaint", codes, digest, keep=keep, mask_sha256=mask_digest, redraws=redraws)
    if keep_top is not None:
        return ImagePrompt("complete", codes, digest, keep=keep_top_cells(grid, keep_top), keep_top=keep_top)
    return ImagePrompt("vary", codes, digest, strength=strength)
