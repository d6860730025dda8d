"""Training the judge's object classifier on renders of the world (never on the model under test)."""

from __future__ import annotations

import math
import random
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from t2i_cli.models.classifier import JudgeConfig, ObjectClassifier
from t2i_cli.world.judge import torch_threads
from t2i_cli.world.render import render_with_masks
from t2i_cli.world.segment import background_plate, crop_region, segment
from t2i_cli.world.spec import COLOURS, OBJECTS, POSITIONS, RELATIONS, SIZES, ObjectSpec, SceneSpec, pick_background


def _training_spec(rng: random.Random) -> SceneSpec:
    """A scene for the classifier: any kind in any colour (held-out pairs included: the judge is not the
    model under test), mostly single objects of every size and position, some counts and pairs."""
    kind, colour, r = rng.choice(OBJECTS), rng.choice(tuple(COLOURS)), rng.random()
    if r < 0.7:
        size = rng.choice(tuple(SIZES))
        position = rng.choice(POSITIONS) if size != "big" and rng.random() < 0.5 else None
        objects, count, relation = (ObjectSpec(kind, colour, size, position),), 1, None
    elif r < 0.85:
        objects, count, relation = (ObjectSpec(kind, colour, "medium"),), rng.choice((2, 3, 4)), None
    else:
        other = rng.choice([k for k in OBJECTS if k != kind])
        objects = (ObjectSpec(kind, colour, rng.choice(("small", "medium"))),
                   ObjectSpec(other, rng.choice(tuple(COLOURS)), rng.choice(("small", "medium"))))
        count, relation = 1, rng.choice(RELATIONS)
    return SceneSpec(objects, count, relation, pick_background(rng, objects, 0.4, False))


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
        img, masks = render_with_masks(spec, rng.randrange(2 ** 31), s, jitter=True)
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
            ys.append(OBJECTS.index(kind))
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

