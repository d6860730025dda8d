"""Evaluation: an independent judge (colour segmentation + a small object classifier) and the eval tasks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from t2i_cli import world

PALETTE_NAMES: tuple[str, ...] = tuple(world.COLOURS)
_PALETTE = np.array([world.COLOURS[c] for c in PALETTE_NAMES], dtype=np.float32)  # (11, 3)
_BLACK = PALETTE_NAMES.index("black")
COLOUR_TOL = 90.0  # a pixel further than this from every palette colour has no colour
BG_TOL = 36.0  # a pixel nearer than this to the (estimated) background is background
MIN_AREA = 0.006  # regions smaller than this fraction of the image are noise (smallest object: ~0.023)


@dataclass
class Region:
    """One object found in an image: a connected non-background blob and its dominant palette colour."""

    colour: str  # the palette colour with most interior pixels
    mask: np.ndarray  # (H, W) bool
    area: int  # pixels in mask
    centroid: tuple[float, float]  # (x, y) centre of mass as fractions of the side
    bbox: tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive)


def _shifts(a: np.ndarray, fill) -> list[np.ndarray]:
    """The 8 neighbours of every pixel of a 2-D array (out of bounds = fill)."""
    p = np.pad(a, 1, constant_values=fill)
    h, w = a.shape
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


def _background_refs(img: np.ndarray, background: str | None) -> list[np.ndarray]:
    """The background colour(s) as the image shows them: the median of border pixels near the nominal
    colour (robust to jitter and to a model's slightly-off backgrounds), else the nominal colour."""
    if background == "grass":
        nominal = [(world.BACKGROUNDS["sky"], slice(0, img.shape[0] // 2)),
                   (world.BACKGROUNDS["grass"], slice(img.shape[0] // 2, img.shape[0]))]
    else:
        rgb = world.PAPER if background is None else world.COLOURS.get(background) or world.BACKGROUNDS[background]
        nominal = [(rgb, slice(0, img.shape[0]))]
    refs = []
    for rgb, rows in nominal:
        part = img[rows].astype(np.float32)
        border = np.concatenate([part[:2].reshape(-1, 3), part[-2:].reshape(-1, 3),
                                 part[:, :2].reshape(-1, 3), part[:, -2:].reshape(-1, 3)])
        near = border[np.linalg.norm(border - np.float32(rgb), axis=1) < 60]
        refs.append(np.median(near, axis=0) if len(near) >= 8 else np.float32(rgb))
    return refs


def background_distance(img: np.ndarray, background: str | None) -> np.ndarray:
    """(H, W) distance of each pixel to the background (for grass: to the sky-grass colour segment)."""
    x = img.astype(np.float32)
    refs = _background_refs(img, background)
    if len(refs) == 1:
        return np.linalg.norm(x - refs[0], axis=-1)
    a, b = refs
    t = np.clip(((x - a) @ (b - a)) / max(float((b - a) @ (b - a)), 1.0), 0, 1)  # (H, W)
    return np.linalg.norm(x - (a + t[..., None] * (b - a)), axis=-1)


def palette_labels(img: np.ndarray) -> np.ndarray:
    """(H, W) index of the nearest palette colour, -1 when none is within COLOUR_TOL."""
    d = np.linalg.norm(img.astype(np.float32)[:, :, None, :] - _PALETTE, axis=-1)  # (H, W, 11)
    lab = d.argmin(-1)
    return np.where(d.min(-1) <= COLOUR_TOL, lab, -1)


def segment(image: np.ndarray, background: str | None) -> list[Region]:
    """The objects of an image (H, W, 3) uint8 on a known background, largest first."""
    h, w = image.shape[:2]
    fg = background_distance(image, background) >= BG_TOL
    comp = components(fg)
    labels = palette_labels(image)
    # Interior pixels only vote for the colour: 3x3 erosion of each colour removes the 1-pixel dark outline
    # (which is as dark as a black object) and anti-aliased fringes (outline over paper reads as gray).
    interior = np.full((h, w), -1)
    for k in np.unique(labels[fg]):
        if k >= 0:
            interior[erode(labels == k) & fg] = k
    regions = []
    ids, counts = np.unique(comp[comp >= 0], return_counts=True)
    for cid, area in zip(ids, counts):
        if area < MIN_AREA * h * w:
            continue
        mask = comp == cid
        votes = np.bincount(interior[mask & (interior >= 0)], minlength=len(PALETTE_NAMES))
        if votes.sum() == 0:  # too thin to have an interior: fall back to every pixel's colour
            votes = np.bincount(labels[mask & (labels >= 0)], minlength=len(PALETTE_NAMES))
        ys, xs = np.nonzero(mask)
        regions.append(Region(PALETTE_NAMES[int(votes.argmax())], mask, int(area),
                              ((xs.mean() + 0.5) / w, (ys.mean() + 0.5) / h),
                              (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)))
    return sorted(regions, key=lambda r: -r.area)
