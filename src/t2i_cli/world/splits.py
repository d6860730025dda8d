"""The world's splits: scene seeds, the scene distribution, and the held-out split.

Train and val scenes never show a held-out colour-object pair (spec.HELDOUT_PAIRS), in any object, caption or
background; every heldout scene shows one. A scene is a pure function of (split, index).
"""

from __future__ import annotations

import hashlib
import random

from PIL import Image

from t2i_cli.world.captions import caption_for
from t2i_cli.world.render import render
from t2i_cli.world.spec import (
    ALL_PAIRS,
    HELDOUT_PAIRS,
    POSITIONS,
    RELATIONS,
    SPLITS,
    TRAIN_PAIRS,
    ObjectSpec,
    SceneSpec,
    background_colours,
    special_backgrounds,
)

# Scene mix: 55% one object (sizes 30/40/30 small/medium/big; 45% of the non-big ones get a position),
# 15% counts of 2-4 copies, 30% two objects in a relation. Backgrounds: 55% plain, 30% a colour,
# 15% sky/night/grass (70/20/10 in count and two-object scenes, which are busier already).
_HELDOUT_LIST = tuple(sorted(HELDOUT_PAIRS))
_SPLIT_IDS = {"train": 0, "val": 1, "heldout": 2}


def scene_seed(split: str, index: int) -> int:
    """The seed of scene `index` of `split`: a hash of "split:index" whose low two bits name the split,
    so the seed streams of train, val and heldout are disjoint by construction."""
    if split not in _SPLIT_IDS:
        raise ValueError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    digest = hashlib.sha256(f"{split}:{index}".encode()).digest()
    return (int.from_bytes(digest[:8], "big") >> 2 << 2) | _SPLIT_IDS[split]


def sample_spec(rng: random.Random, split: str) -> SceneSpec:
    """Draw a scene spec for a split: train/val never hold a held-out pair, heldout always does."""
    if split not in _SPLIT_IDS:
        raise ValueError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    first = rng.choice(_HELDOUT_LIST) if split == "heldout" else rng.choice(TRAIN_PAIRS)
    r = rng.random()
    if r < 0.55:
        size = rng.choices(("small", "medium", "big"), (0.3, 0.4, 0.3))[0]
        position = rng.choice(POSITIONS) if size != "big" and rng.random() < 0.45 else None
        objects, count, relation, plain = (ObjectSpec(first[1], first[0], size, position),), 1, None, 0.55
    elif r < 0.70:
        objects, count, relation, plain = (ObjectSpec(first[1], first[0], "medium"),), rng.choice((2, 3, 4)), None, 0.7
    else:
        pool = ALL_PAIRS if split == "heldout" else TRAIN_PAIRS
        second = rng.choice([p for p in pool if p[1] != first[1]])
        a, b = (first, second) if rng.random() < 0.5 else (second, first)
        sizes = [rng.choices(("small", "medium"), (0.35, 0.65))[0] for _ in range(2)]
        objects = (ObjectSpec(a[1], a[0], sizes[0]), ObjectSpec(b[1], b[0], sizes[1]))
        count, relation, plain = 1, rng.choice(RELATIONS), 0.7
    return SceneSpec(objects, count, relation, _sample_background(rng, objects, split, plain))


def _sample_background(rng: random.Random, objects: tuple[ObjectSpec, ...], split: str, plain: float) -> str | None:
    """None, a colour no object has (and, outside heldout, none that pairs with an object as held out), or a special."""
    r = rng.random()
    if r < plain:
        return None
    if r < plain + (1 - plain) * 2 / 3:
        options = background_colours(objects, avoid_heldout=split != "heldout")
    else:
        options = special_backgrounds(objects)
    return rng.choice(options) if options else None


def scene_caption(split: str, index: int) -> tuple[str, SceneSpec]:
    """The caption and spec of scene `index` of `split`, without rendering it."""
    rng = random.Random(scene_seed(split, index))
    spec = sample_spec(rng, split)
    return caption_for(spec, rng), spec


def scene(split: str, index: int, side: int, jitter: bool = True) -> tuple[Image.Image, str, SceneSpec]:
    """Scene `index` of `split` at `side` pixels: (image, caption, spec), a pure function of the inputs."""
    caption, spec = scene_caption(split, index)
    return render(spec, scene_seed(split, index), side, jitter), caption, spec
