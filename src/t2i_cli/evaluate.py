"""`t2i eval`: GenEval-style tasks on the procedural world, scored by an independent judge.

The judge is neither the model under test nor the CLIP reranker. It segments an image into objects by
colour (knowing the prompt's background) and names each object with a small CNN trained on renders
(judge.ObjectClassifier, train_judge). Colour, position and count come from the segmentation, the kind
from the classifier. validate_judge measures it on real renders of the same prompts, both ways: it
must agree with the spec and must reject renders of a wrong scene.

Segmentation, and its decisions about hard cases, live in segment.py.
What each task judges (TASK_CHECKS): single_object the kind only (GenEval's split); colours and heldout
kind and colour; position a single object's centroid in the named third or corner cell, or for
"a above/below/left of/right of b" the two objects' centroids in that order; counting exactly n regions
of the kind and colour; two_objects both kinds; colour_attribution both kinds, each in its own colour.
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
from t2i_cli.segment import Region, as_uint8, background_plate, crop_region, segment

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
