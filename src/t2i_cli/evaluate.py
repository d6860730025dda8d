"""`t2i eval`: GenEval-style tasks on the procedural world, scored by an independent judge.

The judge is neither the model under test nor the CLIP reranker. It segments an image into objects by
colour (knowing the prompt's background) and names each object with a small CNN trained on renders
(judge.ObjectClassifier, train_judge). Colour, position and count come from the segmentation, the kind
from the classifier. validate_judge measures it on real renders of the same prompts, both ways: it
must agree with the spec and must reject renders of a wrong scene.

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
What each task judges (TASK_CHECKS): single_object the kind only (GenEval's split); colours and heldout
kind and colour; position a single object's centroid in the named third or corner cell, or for
"a above/below/left of/right of b" the two objects' centroids in that order; counting exactly n regions
of the kind and colour; two_objects both kinds; colour_attribution both kinds, each in its own colour.
Known limits: same-coloured objects that truly touch (wide cars in a 2x2 count at 64 px, or any
neighbours after heavy blur) read as one region, and a house on a brown background can split in two.
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from t2i_cli import weights, world
from t2i_cli.judge import JudgeConfig, ObjectClassifier
from t2i_cli.sampling import SamplingConfig

PALETTE_NAMES: tuple[str, ...] = tuple(world.COLOURS)
_PALETTE = np.array([world.COLOURS[c] for c in PALETTE_NAMES], dtype=np.float32)  # (11, 3)
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
        nominal = [(world.BACKGROUNDS["sky"], slice(0, h // 2 - 2)), (world.BACKGROUNDS["grass"], slice(h // 2 + 2, h))]
    else:
        rgb = world.PAPER if background is None else world.COLOURS.get(background) or world.BACKGROUNDS[background]
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
    area = dict(zip(ids.tolist(), areas.tolist()))
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
    skip = PALETTE_NAMES.index(background) if background in world.COLOURS else -1
    regions = []
    ids, counts = np.unique(lab[lab >= 0], return_counts=True)
    for cid, area in zip(ids, counts):
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
    """(H, W, 3) uint8 from a PIL image, a (3, H, W) float tensor in [0, 1], or an array."""
    if isinstance(image, torch.Tensor):
        return (image.detach().float().clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()
    return np.asarray(image.convert("RGB") if hasattr(image, "convert") else image, dtype=np.uint8)


# ----------------------------------------------------------------------------- the judge
@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run a block on n torch CPU threads, then restore the previous count."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


TASK_CHECKS: dict[str, tuple[str, ...]] = {
    "single_object": ("object",), "colours": ("object", "colour"), "position": ("position",),
    "counting": ("count",), "two_objects": ("both",), "colour_attribution": ("attribution",),
    "heldout": ("object", "colour"),
}
TASKS: tuple[str, ...] = tuple(TASK_CHECKS)


@dataclass
class Detection:
    """A segmented region and the object kind the classifier sees in it."""

    region: Region  # where, how big, which colour
    kind: str  # one of world.OBJECTS
    confidence: float  # the classifier's probability for kind


def in_position(centroid: tuple[float, float], position: str) -> bool:
    """Whether a centroid lies in the third (or corner cell) a position phrase names."""
    x, y = centroid
    return (("left" not in position or x < 1 / 3) and ("right" not in position or x > 2 / 3)
            and ("top" not in position or y < 1 / 3) and ("bottom" not in position or y > 2 / 3))


_RELATION_TESTS: dict[str, Callable[[tuple[float, float], tuple[float, float]], bool]] = {
    "above": lambda a, b: a[1] < b[1], "below": lambda a, b: a[1] > b[1],
    "left of": lambda a, b: a[0] < b[0], "right of": lambda a, b: a[0] > b[0], "and": lambda a, b: True,
}


def _pair_exists(first: list[Detection], second: list[Detection], relation: str = "and") -> bool:
    """Two different detections, one from each list, placed as the relation says."""
    test = _RELATION_TESTS[relation]
    return any(a is not b and test(a.region.centroid, b.region.centroid) for a in first for b in second)


def judge_checks(detections: list[Detection], spec: world.SceneSpec) -> dict[str, bool]:
    """Every check that applies to the spec, from what was detected (see TASK_CHECKS for which count)."""
    def of_kind(o: world.ObjectSpec) -> list[Detection]:
        return [d for d in detections if d.kind == o.kind]

    def exact(o: world.ObjectSpec) -> list[Detection]:
        return [d for d in of_kind(o) if d.region.colour == o.colour]

    first = spec.objects[0]
    checks = {"object": bool(of_kind(first))}
    if spec.relation is not None:
        a, b = spec.objects
        checks["both"] = _pair_exists(of_kind(a), of_kind(b))
        checks["attribution"] = _pair_exists(exact(a), exact(b))
        if spec.relation != "and":
            checks["position"] = _pair_exists(of_kind(a), of_kind(b), spec.relation)
    elif spec.count > 1:
        checks["colour"] = checks["object"] and all(d.region.colour == first.colour for d in of_kind(first))
        checks["count"] = len(exact(first)) == spec.count
    else:
        checks["colour"] = bool(exact(first))
        if first.position is not None:
            checks["position"] = any(in_position(d.region.centroid, first.position)
                                     for d in exact(first) or of_kind(first))
    return checks


class Judge:
    """Reads an image against a scene spec: colour segmentation for colour, position and count, the
    object classifier on each region's crop for the kind. Independent of the model under test and of CLIP."""

    def __init__(self, classifier: ObjectClassifier):
        self.classifier = classifier.eval()

    @torch.inference_mode()
    def detect(self, image: Any, background: str | None) -> list[Detection]:
        """The objects of an image (uint8 array, PIL image or (3, H, W) tensor), largest first."""
        img = as_uint8(image)
        regions = segment(img, background)
        if not regions:
            return []
        plate = background_plate(img, background)
        crops = torch.stack([crop_region(img, r, plate, self.classifier.cfg.crop) for r in regions])
        device = next(self.classifier.parameters()).device
        with torch_threads(1):  # a few 32 px crops: threads only cost, most of all on shared cores
            probs = self.classifier(crops.to(device)).float().softmax(-1).cpu()  # (R, n_classes)
        conf, idx = probs.max(-1)
        return [Detection(r, world.OBJECTS[int(i)], float(c)) for r, i, c in zip(regions, idx, conf)]

    def check(self, image: Any, spec: world.SceneSpec) -> dict[str, bool]:
        """Which of the spec's checks the image satisfies."""
        return judge_checks(self.detect(image, spec.background), spec)

    def passes(self, task: str, image: Any, spec: world.SceneSpec) -> bool:
        """Whether the image passes a task: every check the task judges holds."""
        checks = self.check(image, spec)
        return all(checks.get(c, False) for c in TASK_CHECKS[task])


def register_judge() -> None:
    """Make weights.save_model / load_model know the kind "judge" (idempotent)."""
    weights.MODELS.setdefault("judge", (ObjectClassifier, JudgeConfig))


def load_judge(path: Any, device: str | torch.device = "cpu") -> Judge:
    """A Judge around the classifier saved at path (weights.save_model(model, path, "judge"))."""
    register_judge()
    return Judge(weights.load_model(path, "judge", device))  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- training the classifier
_CLASHES = {"night": "black", "grass": "green"}  # special backgrounds an object of that colour vanishes into


def pick_background(rng: random.Random, objects: tuple[world.ObjectSpec, ...], p_plain: float,
                    avoid_heldout: bool) -> str | None:
    """A background for the objects: plain with probability p_plain (never behind a white object, which
    plain paper hides), else a colour no object has or a special one it does not vanish into."""
    colours, kinds = {o.colour for o in objects}, {o.kind for o in objects}
    if "white" not in colours and rng.random() < p_plain:
        return None
    options = [c for c in world.COLOURS if c not in colours
               and not (avoid_heldout and any((c, k) in world.HELDOUT_PAIRS for k in kinds))]
    options += [b for b in world.BACKGROUNDS if _CLASHES.get(b) not in colours]
    return rng.choice(options)


def _training_spec(rng: random.Random) -> world.SceneSpec:
    """A scene for the classifier: any kind in any colour (held-out pairs included: the judge is not the
    model under test), mostly single objects of every size and position, some counts and pairs."""
    kind, colour, r = rng.choice(world.OBJECTS), rng.choice(tuple(world.COLOURS)), rng.random()
    if r < 0.7:
        size = rng.choice(tuple(world.SIZES))
        position = rng.choice(world.POSITIONS) if size != "big" and rng.random() < 0.5 else None
        objects, count, relation = (world.ObjectSpec(kind, colour, size, position),), 1, None
    elif r < 0.85:
        objects, count, relation = (world.ObjectSpec(kind, colour, "medium"),), rng.choice((2, 3, 4)), None
    else:
        other = rng.choice([k for k in world.OBJECTS if k != kind])
        objects = (world.ObjectSpec(kind, colour, rng.choice(("small", "medium"))),
                   world.ObjectSpec(other, rng.choice(tuple(world.COLOURS)), rng.choice(("small", "medium"))))
        count, relation = 1, rng.choice(world.RELATIONS)
    return world.SceneSpec(objects, count, relation, pick_background(rng, objects, 0.4, False))


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable gaussian blur of (B, C, H, W) with reflected borders."""
    r = max(1, math.ceil(2.5 * sigma))
    k = torch.exp(-(torch.arange(-r, r + 1, dtype=torch.float32) / sigma) ** 2 / 2)
    k = (k / k.sum()).to(x)
    c = x.shape[1]
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="reflect"), k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(F.pad(x, (0, 0, r, r), mode="reflect"), k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def degrade(image: np.ndarray, rng: random.Random) -> np.ndarray:
    """A render made to look decoded: some of gaussian blur, a down-up resample (blocky, soft) and noise."""
    x = torch.from_numpy(image.copy()).permute(2, 0, 1)[None].float() / 255.0  # (1, 3, H, W)
    h, w = x.shape[2:]
    if rng.random() < 0.6:
        x = _blur(x, rng.uniform(0.4, 1.1))
    if rng.random() < 0.5:
        f = rng.choice((2, 2, 3))
        x = F.interpolate(F.interpolate(x, size=(h // f, w // f), mode="area"), size=(h, w),
                          mode=rng.choice(("bilinear", "nearest")))
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(rng.randrange(2 ** 31)))
    x = x + noise * rng.uniform(0.0, 0.03)
    return (x[0].clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()


def training_crops(n_images: int, seed: int, side: int, crop: int = 32,
                   degraded: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Crops (N, 3, crop, crop) uint8 and kinds (N,) of the regions the judge's own segmentation finds in
    random renders (this fraction of them degraded), each labelled by the drawn object its region covers."""
    rng, xs, ys = random.Random(f"judge-data:{seed}"), [], []
    for _ in range(n_images):
        spec = _training_spec(rng)
        s = rng.choice((side, side, side * 3 // 2, side * 2))
        img, masks = world.render_with_masks(spec, rng.randrange(2 ** 31), s, jitter=True)
        arr = np.asarray(img)
        arr = degrade(arr, rng) if rng.random() < degraded else arr
        plate = background_plate(arr, spec.background)
        for region in segment(arr, spec.background):
            overlaps = [int((region.mask & m).sum()) for m in masks]
            best = int(np.argmax(overlaps))
            if overlaps[best] < 0.5 * region.area:  # a region the segmentation got wrong: no label
                continue
            kind = spec.objects[min(best, len(spec.objects) - 1)].kind
            xs.append((crop_region(arr, region, plate, crop) * 255).round().byte())
            ys.append(world.OBJECTS.index(kind))
    return torch.stack(xs), torch.tensor(ys)


def augment(x: torch.Tensor, g: torch.Generator, is_robust: bool = True) -> torch.Tensor:
    """Random flips, and unless just a quick judge is wanted: channel swaps, contrast, shifts and zooms,
    blur and noise on crops (B, 3, S, S)."""
    b = x.shape[0]
    flip = torch.rand(b, generator=g) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    if not is_robust:
        return x
    perm = torch.stack([torch.randperm(3, generator=g) for _ in range(b)])  # colour is not the class
    x = torch.where((torch.rand(b, generator=g) < 0.5)[:, None, None, None],
                    x.gather(1, perm[:, :, None, None].expand_as(x)), x)
    contrast = torch.empty(b, 1, 1, 1).uniform_(0.8, 1.2, generator=g)
    x = (x - 0.5) * contrast + 0.5 + torch.empty(b, 1, 1, 1).uniform_(-0.08, 0.08, generator=g)
    scale = torch.empty(b).uniform_(0.9, 1.12, generator=g)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0], theta[:, 1, 1] = scale, scale
    theta[:, :, 2] = torch.empty(b, 2).uniform_(-0.07, 0.07, generator=g)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    blurred = _blur(x, float(torch.empty(1).uniform_(0.5, 1.0, generator=g)))
    x = torch.where((torch.rand(b, generator=g) < 0.3)[:, None, None, None], blurred, x)
    x = x + torch.randn(x.shape, generator=g) * torch.empty(b, 1, 1, 1).uniform_(0, 0.04, generator=g)
    return x.clamp(0, 1)


def train_judge(steps: int = 1000, seed: int = 0, side: int = 64, n_images: int = 2000, batch: int = 64,
                cfg: JudgeConfig = JudgeConfig(), is_robust: bool = True, threads: int = 1,
                progress: Callable[[int, float], None] | None = None) -> ObjectClassifier:
    """Train the object classifier from scratch on world renders; a pure function of its arguments.
    is_robust=False skips the degraded renders and most augmentation: a judge for clean renders, quick to
    train (tests), not for judging generated images. Runs on `threads` CPU threads (restored after):
    convolutions this small gain little from more and lose much when the cores are shared."""
    with torch_threads(threads):
        return _train_judge(steps, seed, side, n_images, batch, cfg, is_robust, progress)


def _train_judge(steps: int, seed: int, side: int, n_images: int, batch: int, cfg: JudgeConfig, is_robust: bool,
                 progress: Callable[[int, float], None] | None) -> ObjectClassifier:
    crops, kinds = training_crops(n_images, seed, side, cfg.crop, degraded=0.5 if is_robust else 0.0)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = ObjectClassifier(cfg)
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    model.train()
    for step in range(steps):
        for group in opt.param_groups:  # short warm-up, then cosine decay to zero
            group["lr"] = 3e-3 * min(1.0, (step + 1) / 50) * 0.5 * (1 + math.cos(math.pi * step / steps))
        idx = torch.randint(len(kinds), (batch,), generator=g)
        logits = model(augment(crops[idx].float() / 255.0, g, is_robust))  # (batch, n_classes)
        loss = F.cross_entropy(logits, kinds[idx], label_smoothing=0.05)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if progress is not None:
            progress(step + 1, float(loss))
    return model.eval()


# ----------------------------------------------------------------------------- task prompt sets
_TRAIN_PAIRS = tuple((c, k) for k in world.OBJECTS for c in world.COLOURS if (c, k) not in world.HELDOUT_PAIRS)
_RELATIONS = ("above", "below", "left of", "right of")
_SWAP = {"above": "below", "below": "above", "left of": "right of", "right of": "left of"}


def _pair(rng: random.Random, kind: str | None = None, colour: str | None = None,
          exclude_kinds: tuple[str, ...] = (), exclude_colours: tuple[str, ...] = ()) -> tuple[str, str]:
    """A (colour, kind) pair that is not held out, optionally with a given kind or colour."""
    options = [(c, k) for c, k in _TRAIN_PAIRS if kind in (None, k) and colour in (None, c)
               and k not in exclude_kinds and c not in exclude_colours]
    return rng.choice(options)


def _task_objects(task: str, i: int, rng: random.Random) -> tuple[tuple[world.ObjectSpec, ...], int, str | None]:
    """The objects, count and relation of prompt i of a task; each task cycles through what it varies."""
    o = world.ObjectSpec
    if task == "single_object":
        c, k = _pair(rng, kind=world.OBJECTS[i % len(world.OBJECTS)])
        return (o(k, c, rng.choice(tuple(world.SIZES))),), 1, None
    if task == "colours":
        c, k = _pair(rng, colour=tuple(world.COLOURS)[i % len(world.COLOURS)])
        return (o(k, c, "medium"),), 1, None
    if task == "heldout":
        c, k = sorted(world.HELDOUT_PAIRS)[i % len(world.HELDOUT_PAIRS)]
        return (o(k, c, "medium"),), 1, None
    if task == "counting":
        c, k = _pair(rng)
        return (o(k, c, "medium"),), 2 + i % 3, None
    if task == "position" and i % 2 == 0:  # single objects in a named third or corner ...
        c, k = _pair(rng)
        return (o(k, c, rng.choice(("small", "medium")), world.POSITIONS[i // 2 % len(world.POSITIONS)]),), 1, None
    # ... or two objects: in a relation (position), side by side (two_objects, colour_attribution)
    relation = _RELATIONS[i // 2 % len(_RELATIONS)] if task == "position" else "and"
    ca, ka = _pair(rng)
    cb, kb = _pair(rng, exclude_kinds=(ka,), exclude_colours=(ca,) if task == "colour_attribution" else ())
    sizes = [rng.choice(("small", "medium")) for _ in range(2)]
    return (o(ka, ca, sizes[0]), o(kb, cb, sizes[1])), 1, relation


def task_prompts(task: str, n: int, seed: int) -> list[tuple[str, world.SceneSpec]]:
    """n (prompt, spec) pairs of a task, a pure function of the seed. Prompts come from the world's caption
    grammar; only "heldout" holds held-out colour-object pairs (in no other task, not even as a background)."""
    if task not in TASK_CHECKS:
        raise ValueError(f"unknown task {task!r}; use one of {', '.join(TASKS)}")
    rng, out = random.Random(f"t2i-eval:{task}:{seed}"), []
    for i in range(n):
        objects, count, relation = _task_objects(task, i, rng)
        background = None if task == "heldout" else pick_background(rng, objects, 0.7, avoid_heldout=True)
        spec = world.SceneSpec(objects, count, relation, background)
        out.append((world.caption_for(spec, rng), spec))
    return out


def wrong_spec(task: str, spec: world.SceneSpec, rng: random.Random) -> world.SceneSpec:
    """A scene that differs from spec in what the task judges, for checking that the judge says no."""
    o, a, obj = spec.objects, spec.objects[0], world.ObjectSpec
    if task == "colour_attribution":  # the same two objects with their colours swapped
        b = o[1]
        return world.SceneSpec((obj(a.kind, b.colour, a.size), obj(b.kind, a.colour, b.size)), 1, spec.relation,
                               spec.background)
    if task == "two_objects":  # one of the two replaced by a third kind
        k = rng.choice([k for k in world.OBJECTS if k not in (a.kind, o[1].kind)])
        return world.SceneSpec((a, obj(k, o[1].colour, o[1].size)), 1, spec.relation, spec.background)
    if task == "position" and spec.relation is not None:
        return world.SceneSpec(o, 1, _SWAP[spec.relation], spec.background)
    if task == "position":
        cells = {"left": (1 / 6, .5), "right": (5 / 6, .5), "top": (.5, 1 / 6), "bottom": (.5, 5 / 6),
                 "top left": (1 / 6, 1 / 6), "top right": (5 / 6, 1 / 6), "bottom left": (1 / 6, 5 / 6),
                 "bottom right": (5 / 6, 5 / 6)}
        p = rng.choice([p for p in world.POSITIONS if not in_position(cells[p], a.position)])
        return world.SceneSpec((obj(a.kind, a.colour, a.size, p),), 1, None, spec.background)
    if task == "counting":
        return world.SceneSpec(o, rng.choice([c for c in (1, 2, 3, 4) if c != spec.count]), None, spec.background)
    if task in ("colours", "heldout") and (task == "colours" or rng.random() < 0.5):
        bg = spec.background
        bad = {bg, _CLASHES.get(bg or ""), a.colour, "white" if bg is None else ""}  # keep the scene drawable
        c = rng.choice([c for c in world.COLOURS if c not in bad])
        return world.SceneSpec((obj(a.kind, c, a.size),), 1, None, spec.background)
    k = rng.choice([k for k in world.OBJECTS if k != a.kind])  # single_object (and half of heldout)
    return world.SceneSpec((obj(k, a.colour, a.size),), 1, None, spec.background)


def _image_seed(seed: int, task: str, i: int) -> int:
    """The seed of image i of a task (renders and generations alike)."""
    return random.Random(f"t2i-eval-image:{task}:{seed}:{i}").randrange(2 ** 31)


def validate_judge(judge: Judge, n_per_task: int, seed: int, side: int, is_degraded: bool = False,
                   progress: Callable[[str, int, int], None] | None = None) -> dict[str, dict[str, float]]:
    """On real renders of each task's prompts (degraded like decoded images when asked): how often the judge
    agrees with the spec ("agreement"), and how often it says no to a render of a scene that differs in
    what the task judges ("rejects_wrong"); a judge that always says yes scores 0 on the second."""
    def draw(spec: world.SceneSpec, s: int) -> np.ndarray:
        img = np.asarray(world.render(spec, s, side, jitter=True))
        return degrade(img, random.Random(s)) if is_degraded else img

    out = {}
    for task in TASKS:
        rng, agree, reject = random.Random(f"t2i-eval-wrong:{task}:{seed}"), 0, 0
        for i, (_, spec) in enumerate(task_prompts(task, n_per_task, seed)):
            s = _image_seed(seed, task, i)
            agree += judge.passes(task, draw(spec, s), spec)
            reject += not judge.passes(task, draw(wrong_spec(task, spec, rng), s), spec)
            if progress is not None:
                progress(task, i + 1, n_per_task)
        out[task] = {"agreement": agree / max(1, n_per_task), "rejects_wrong": reject / max(1, n_per_task)}
    return out


# ----------------------------------------------------------------------------- scoring a model
def evaluate_model(pipe: Any, judge: Judge, n_per_task: int, seed: int, sampling: SamplingConfig = SamplingConfig(),
                   candidates: int = 1, progress: Callable[[str, int, int], None] | None = None,
                   tasks: tuple[str, ...] = TASKS) -> dict[str, Any]:
    """Generate each task's prompts with a TextToImage pipeline (with candidates > 1, draw that many per
    prompt and keep CLIP's favourite) and score them with the judge: per-task accuracy, counts, timing."""
    if candidates < 1:
        raise ValueError(f"candidates must be 1 or more, got {candidates}")
    start, results = time.perf_counter(), {}
    for task in tasks:
        t0, passed, checks = time.perf_counter(), 0, {c: 0 for c in TASK_CHECKS[task]}
        prompts = task_prompts(task, n_per_task, seed)
        for i, (prompt, spec) in enumerate(prompts):
            drawn = pipe(prompt, n=candidates, seed=_image_seed(seed, task, i), sampling=sampling)
            best = pipe.rerank(drawn, 1)[0] if candidates > 1 else drawn[0]
            got = judge.check(best.image, spec)
            for c in checks:
                checks[c] += got.get(c, False)
            passed += all(got.get(c, False) for c in checks)
            if progress is not None:
                progress(task, i + 1, len(prompts))
        n = max(1, len(prompts))
        results[task] = {"accuracy": passed / n, "passed": passed, "n": len(prompts),
                         "checks": {c: k / n for c, k in checks.items()}, "seconds": time.perf_counter() - t0}
    seconds = time.perf_counter() - start
    images = sum(r["n"] for r in results.values()) * candidates
    return {"tasks": results, "overall": sum(r["accuracy"] for r in results.values()) / max(1, len(results)),
            "n_per_task": n_per_task, "seed": seed, "candidates": candidates, "seconds": seconds,
            "images_per_second": images / seconds if seconds > 0 else 0.0}


@torch.inference_mode()
def dvae_metrics(dvae: Any, n: int, seed: int, batch: int = 32) -> dict[str, float]:
    """Reconstruction PSNR (dB, images in [0, 1]) and codebook use (perplexity of the code histogram,
    distinct codes) of a dVAE on n world `val` scenes at its own image size."""
    side, device = dvae.cfg.image_size, next(dvae.parameters()).device
    counts = torch.zeros(dvae.cfg.n_codes, dtype=torch.long)
    psnrs: list[torch.Tensor] = []
    for lo in range(0, n, batch):
        imgs = [world.scene("val", seed * 1_000_003 + i, side)[0] for i in range(lo, min(n, lo + batch))]
        x = torch.stack([torch.from_numpy(as_uint8(im).copy()).permute(2, 0, 1) for im in imgs]).float() / 255
        codes = dvae.codes_from_image(x.to(device))  # (B, h, w)
        recon = dvae.image_from_codes(codes).float().clamp(0, 1).cpu()  # (B, 3, H, W)
        mse = ((recon - x) ** 2).mean(dim=(1, 2, 3)).clamp_min(1e-10)
        psnrs.append(10 * torch.log10(1 / mse))
        counts += torch.bincount(codes.flatten().cpu(), minlength=dvae.cfg.n_codes)
    p = counts.float() / counts.sum().clamp_min(1)
    entropy = -(p[p > 0] * p[p > 0].log()).sum()
    return {"psnr": float(torch.cat(psnrs).mean()) if psnrs else float("nan"), "perplexity": float(entropy.exp()),
            "codes_used": int((counts > 0).sum()), "n": n}
