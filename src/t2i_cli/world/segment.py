"""Colour segmentation of clip-art images into objects: the judge's eyes for colour, position and count.

Decisions about hard cases:
- Black objects vs the dark outline (25 vs 30, 30, 30): both label as black; a region's colour is voted
  by interior pixels only (each colour's mask eroded by 3x3), which removes the 1-pixel outline and
  anti-aliased fringes but keeps the inside of a filled black body.
- White objects vs the off-white paper (250 vs 245, 243, 238, and ±12 jitter): not separable by colour,
  so no prompt set puts a white object on the plain background; white objects always get a background.
- Dark backgrounds (black, night) swallow the outline: 1-pixel seams between parts are closed there.
- The world never draws black at night or green on grass; neither do the prompt sets.
- Objects that touch through anti-aliased fringe are split at non-solid seams; parts much smaller than
  a blob they touch (a trunk or tail cut off by its outline) are merged back into it.
Known limits: same-coloured objects that truly touch (wide cars in a 2x2 count at 64 px, or any
neighbours after heavy blur) read as one region, and a house on a brown background can split in two.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from t2i_cli.world.spec import BACKGROUNDS, COLOURS, PAPER

PALETTE_NAMES: tuple[str, ...] = tuple(COLOURS)
_PALETTE = np.array([COLOURS[c] for c in PALETTE_NAMES], dtype=np.float32)  # (11, 3)
COLOUR_TOL = 90.0  # a pixel further than this from every palette colour has no colour
BG_TOL = 36.0  # a pixel nearer than this to the (estimated) background is background ...
BG_TOL_MAX = 60.0  # ... or up to this much where the background is noisy (generated images)
BG_NEAR = 80.0  # border pixels this near the nominal background colour estimate the actual one
MERGE_RATIO = 0.3  # a blob under this fraction of a touching blob is a part of it (a trunk, a tail)
SOLID_MARGIN = 10.0  # a solid pixel is this much nearer to a palette colour than to the background
CROP_PAD = 0.12  # the classifier's crop reaches this fraction of the region's size beyond its box
COLOUR_DEPTH = 1  # erosions of a region before its colour vote (fewer when that leaves too little)
MIN_AREA = 0.006  # regions smaller than this fraction of the image are noise (smallest object: ~0.023)


# ----------------------------------------------------------------------------- segmentation
@dataclass
class Region:
    """One object found in an image: a connected non-background blob and its dominant palette colour."""

    colour: str  # the palette colour with most interior pixels ("unknown" when none)
    mask: np.ndarray  # (H, W) bool
    area: int  # pixels in mask
    centroid: tuple[float, float]  # (x, y) centre of mass as fractions of the side
    bbox: tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive)


def _shifts(a: np.ndarray, fill) -> list[np.ndarray]:
    """The 8 neighbours of every pixel of a 2-D array (out of bounds = fill)."""
    h, w = a.shape
    p = np.full((h + 2, w + 2), fill, dtype=a.dtype)
    p[1:-1, 1:-1] = a
    return [p[1 + dy:1 + dy + h, 1 + dx:1 + dx + w] for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]


def components(mask: np.ndarray) -> np.ndarray:
    """8-connected components of a bool mask: (H, W) int labels, -1 outside, else the smallest flat index
    in the component (min-label propagation with pointer jumping, so it converges in a few dozen steps)."""
    h, w = mask.shape
    none = h * w
    lab = np.where(mask, np.arange(none).reshape(h, w), none)
    while True:
        new = np.minimum.reduce([lab, *_shifts(lab, none)])
        new = np.where(mask, new, none)
        flat = np.append(new.ravel(), none)
        for _ in range(4):  # pointer jumping: a label is a pixel index whose own label is smaller still
            new = flat[new]
        if np.array_equal(new, lab):
            return np.where(mask, lab, -1)
        lab = new


def erode(mask: np.ndarray) -> np.ndarray:
    """3x3 erosion (out of bounds counts as set, so objects at the edge keep their border)."""
    return np.logical_and.reduce([mask, *_shifts(mask, True)])


def _background_refs(img: np.ndarray, background: str | None) -> tuple[list[np.ndarray], float]:
    """The background colour(s) as the image shows them, and how far from them still counts as background.
    A colour is the median of the border pixels near its nominal value (robust to jitter and to a model's
    slightly-off backgrounds), else the nominal value; the tolerance widens with the border's noise."""
    h = img.shape[0]
    if background == "grass":
        nominal = [(BACKGROUNDS["sky"], slice(0, h // 2 - 2)), (BACKGROUNDS["grass"], slice(h // 2 + 2, h))]
    else:
        rgb = PAPER if background is None else COLOURS.get(background) or BACKGROUNDS[background]
        nominal = [(rgb, slice(0, h))]
    refs, spread = [], [0.0]
    for rgb, rows in nominal:
        part = img[rows].astype(np.float32)
        border = np.concatenate([part[:2].reshape(-1, 3), part[-2:].reshape(-1, 3),
                                 part[:, :2].reshape(-1, 3), part[:, -2:].reshape(-1, 3)])
        near = border[np.linalg.norm(border - np.float32(rgb), axis=1) < BG_NEAR]
        refs.append(np.median(near, axis=0) if len(near) >= 8 else np.float32(rgb))
        if len(near) >= 8:
            spread.append(float(np.percentile(np.linalg.norm(near - refs[-1], axis=1), 80)))
    return refs, min(BG_TOL_MAX, max(BG_TOL, 2.5 * max(spread)))


def background_distance(img: np.ndarray, refs: list[np.ndarray]) -> np.ndarray:
    """(H, W) distance of each pixel to the background (for grass: to the sky-grass colour segment)."""
    x = img.astype(np.float32)
    if len(refs) == 1:
        return np.linalg.norm(x - refs[0], axis=-1)
    a, b = refs
    t = np.clip(((x - a) @ (b - a)) / max(float((b - a) @ (b - a)), 1.0), 0, 1)  # (H, W)
    return np.linalg.norm(x - (a + t[..., None] * (b - a)), axis=-1)


def palette_labels(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(H, W) index of the nearest palette colour (-1 when none is within COLOUR_TOL) and its distance."""
    x = img.astype(np.float32)
    d2 = (x * x).sum(-1, keepdims=True) - 2 * x @ _PALETTE.T + (_PALETTE * _PALETTE).sum(-1)  # (H, W, 11)
    lab, dist = d2.argmin(-1), np.sqrt(np.maximum(d2.min(-1), 0))
    return np.where(dist <= COLOUR_TOL, lab, -1), dist


def dilate(mask: np.ndarray) -> np.ndarray:
    """3x3 dilation."""
    return np.logical_or.reduce([mask, *_shifts(mask, False)])


def _grow(seeds: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Spread labels (-1 = none) into the allowed pixels they reach, one 4-neighbour step at a time."""
    lab = seeds.copy()
    while True:
        n = _shifts(lab, -1)
        near = np.maximum.reduce([n[1], n[3], n[4], n[6]])  # the 4-neighbours
        new = np.where((lab < 0) & allowed, near, lab)
        if np.array_equal(new, lab):
            return lab
        lab = new


def object_labels(fg: np.ndarray, solid: np.ndarray, is_dark_background: bool) -> np.ndarray:
    """(H, W) object ids (-1 = none). Cores are the solid pixels (palette-coloured, outline included) of
    the foreground's 3x3 erosion, so objects that touch through a thin bridge or a seam of anti-aliased
    fringe come apart; they grow back over the foreground, then parts much smaller than a blob they
    touch (a detached trunk or tail) merge into it."""
    if is_dark_background:  # the dark outline reads as background: close the 1-pixel seams between parts
        fg, solid = fg | erode(dilate(fg)), solid | erode(dilate(solid))
    lab = _grow(components(erode(fg) & solid), fg)
    ids, areas = np.unique(lab[lab >= 0], return_counts=True)
    area = dict(zip(ids.tolist(), areas.tolist(), strict=True))
    for cid in sorted(area, key=area.get):  # smallest first, so a part joins its object, not another part
        touching = np.unique(lab[dilate(lab == cid) & (lab >= 0) & (lab != cid)])
        if len(touching):
            big = max(touching.tolist(), key=area.get)
            if area[cid] < MERGE_RATIO * area[big]:
                lab[lab == cid] = big
                area[big] += area.pop(cid)
    return lab


def _dominant_colour(mask: np.ndarray, labels: np.ndarray, interior: np.ndarray, skip: int) -> str:
    """The palette colour of a region: a vote of its interior-coloured pixels, from as deep inside it as
    holds a few (blur mixes a rim with the outline and the background); "unknown" when none has one."""
    core = mask
    for _ in range(COLOUR_DEPTH):
        inner = erode(core)
        if np.count_nonzero(inner & (interior >= 0)) < 6:
            break
        core = inner
    for pool in (interior[core], labels[mask]):  # too thin to have an interior: any pixel's colour
        pool = pool[(pool >= 0) & (pool != skip)]  # never the background's own colour
        if pool.size:
            return PALETTE_NAMES[int(np.bincount(pool).argmax())]
    return "unknown"


def segment(image: np.ndarray, background: str | None) -> list[Region]:
    """The objects of an image (H, W, 3) uint8 on a known background, largest first."""
    h, w = image.shape[:2]
    refs, bg_tol = _background_refs(image, background)
    bg_dist = background_distance(image, refs)
    labels, colour_dist = palette_labels(image)
    fg = bg_dist >= bg_tol
    solid = fg & (labels >= 0) & (colour_dist + SOLID_MARGIN < bg_dist)  # more object colour than background
    lab = object_labels(fg, solid, max(float(r.mean()) for r in refs) < 70)
    # Only the inside of a colour votes: 3x3 erosion of each colour removes the 1-pixel dark outline
    # (which is as dark as a black object) and anti-aliased fringes (outline over paper reads as gray).
    interior = np.full((h, w), -1)
    for k in np.unique(labels[fg]):
        if k >= 0:
            interior[erode(labels == k) & fg] = k
    skip = PALETTE_NAMES.index(background) if background in COLOURS else -1
    regions = []
    ids, counts = np.unique(lab[lab >= 0], return_counts=True)
    for cid, area in zip(ids, counts, strict=True):
        if area < MIN_AREA * h * w:
            continue
        mask = lab == cid
        ys, xs = np.nonzero(mask)
        regions.append(Region(_dominant_colour(mask, labels, interior, skip), mask, int(area),
                              ((xs.mean() + 0.5) / w, (ys.mean() + 0.5) / h),
                              (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)))
    return sorted(regions, key=lambda r: -r.area)


def background_plate(image: np.ndarray, background: str | None) -> np.ndarray:
    """(H, W, 3) float image of the background alone (grass: sky above the middle, grass below)."""
    h, w = image.shape[:2]
    refs, _ = _background_refs(image, background)
    plate = np.empty((h, w, 3), np.float32)
    plate[:] = refs[0]
    if len(refs) == 2:
        plate[h // 2:] = refs[1]
    return plate


def crop_region(image: np.ndarray, region: Region, plate: np.ndarray, size: int) -> torch.Tensor:
    """The classifier's view of a region: (3, size, size) in [0, 1], a square around its box padded by
    CROP_PAD, with every pixel outside the (dilated) region replaced by the background plate."""
    x0, y0, x1, y1 = region.bbox
    side = max(4, math.ceil(max(x1 - x0, y1 - y0) * (1 + 2 * CROP_PAD)))
    left, top = (x0 + x1 - side) // 2, (y0 + y1 - side) // 2
    clean = np.where(dilate(region.mask)[..., None], image.astype(np.float32), plate)  # (H, W, 3)
    clean = np.pad(clean, ((side, side), (side, side), (0, 0)), mode="edge")
    box = clean[top + side:top + 2 * side, left + side:left + 2 * side]  # (side, side, 3)
    x = torch.from_numpy(np.ascontiguousarray(box)).permute(2, 0, 1)[None] / 255.0  # (1, 3, side, side)
    return F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0].clamp(0, 1)


def as_uint8(image: Any) -> np.ndarray:
    """(H, W, 3) uint8 from a PIL image, a (3, H, W) float tensor in [0, 1], or an (H, W, 3) uint8 array. Any
    other form is refused: a float array in [0, 1] was cast to 0s and 1s, and a tensor of 0..255 clamped to white,
    and the judge failed every picture without a word."""
    if isinstance(image, torch.Tensor):
        if image.dim() != 3 or image.shape[0] != 3 or not image.is_floating_point():
            raise ValueError(f"a picture tensor must be floats (3, H, W) in [0, 1] (as Generated.image), got "
                             f"{image.dtype} {tuple(image.shape)}")
        lo, hi = (float(v) for v in image.detach().float().aminmax())
        if lo < -0.5 or hi > 1.5:  # (a little outside [0, 1] is a decoder's overshoot; 0..255 is another scale)
            raise ValueError(f"a picture tensor must be in [0, 1], got values {lo:g}..{hi:g} (0..255? divide by 255)")
        return (image.detach().float().clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()
    if hasattr(image, "convert"):
        return np.asarray(image.convert("RGB"), dtype=np.uint8)
    array = np.asarray(image)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"a picture array must be uint8 (H, W, 3), got {array.dtype} {array.shape} (floats in [0, "
                         f"1]? multiply by 255 and round, or give a PIL image)")
    return array
