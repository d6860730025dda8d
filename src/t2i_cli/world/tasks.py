"""The GenEval-style task prompt sets of `t2i eval`, and the wrong scenes the judge must reject.

Every prompt comes from the world's caption grammar; only "heldout" holds held-out colour-object pairs
(in no other task, not even as a background). Prompt sets and image seeds are pure functions of the seed.
"""

from __future__ import annotations

import random

from t2i_cli.world.captions import caption_for
from t2i_cli.world.spec import (
    CLASHES,
    COLOURS,
    HELDOUT_PAIRS,
    OBJECTS,
    OPPOSITE,
    POSITIONS,
    SIZES,
    SPATIAL_RELATIONS,
    TRAIN_PAIRS,
    ObjectSpec,
    SceneSpec,
    in_position,
    pick_background,
    position_centre,
)

TASK_CHECKS: dict[str, tuple[str, ...]] = {
    "single_object": ("object",), "colours": ("object", "colour"), "position": ("position",),
    "counting": ("count",), "two_objects": ("both",), "colour_attribution": ("attribution",),
    "heldout": ("object", "colour"),
}
TASKS: tuple[str, ...] = tuple(TASK_CHECKS)


def _pair(rng: random.Random, kind: str | None = None, colour: str | None = None,
          exclude_kinds: tuple[str, ...] = (), exclude_colours: tuple[str, ...] = ()) -> tuple[str, str]:
    """A (colour, kind) pair that is not held out, optionally with a given kind or colour."""
    options = [(c, k) for c, k in TRAIN_PAIRS if kind in (None, k) and colour in (None, c)
               and k not in exclude_kinds and c not in exclude_colours]
    return rng.choice(options)


def _task_objects(task: str, i: int, rng: random.Random) -> tuple[tuple[ObjectSpec, ...], int, str | None]:
    """The objects, count and relation of prompt i of a task; each task cycles through what it varies."""
    o = ObjectSpec
    if task == "single_object":
        c, k = _pair(rng, kind=OBJECTS[i % len(OBJECTS)])
        return (o(k, c, rng.choice(tuple(SIZES))),), 1, None
    if task == "colours":
        c, k = _pair(rng, colour=tuple(COLOURS)[i % len(COLOURS)])
        return (o(k, c, "medium"),), 1, None
    if task == "heldout":
        c, k = sorted(HELDOUT_PAIRS)[i % len(HELDOUT_PAIRS)]
        return (o(k, c, "medium"),), 1, None
    if task == "counting":
        c, k = _pair(rng)
        return (o(k, c, "medium"),), 2 + i % 3, None
    if task == "position" and i % 2 == 0:  # single objects in a named third or corner ...
        c, k = _pair(rng)
        return (o(k, c, rng.choice(("small", "medium")), POSITIONS[i // 2 % len(POSITIONS)]),), 1, None
    # ... or two objects: in a relation (position), side by side (two_objects, colour_attribution)
    relation = SPATIAL_RELATIONS[i // 2 % len(SPATIAL_RELATIONS)] if task == "position" else "and"
    ca, ka = _pair(rng)
    cb, kb = _pair(rng, exclude_kinds=(ka,), exclude_colours=(ca,) if task == "colour_attribution" else ())
    sizes = [rng.choice(("small", "medium")) for _ in range(2)]
    return (o(ka, ca, sizes[0]), o(kb, cb, sizes[1])), 1, relation


def task_prompts(task: str, n: int, seed: int) -> list[tuple[str, SceneSpec]]:
    """n (prompt, spec) pairs of a task, a pure function of the seed. Prompts come from the world's caption
    grammar; only "heldout" holds held-out colour-object pairs (in no other task, not even as a background)."""
    if task not in TASK_CHECKS:
        raise ValueError(f"unknown task {task!r}; use one of {', '.join(TASKS)}")
    rng, out = random.Random(f"t2i-eval:{task}:{seed}"), []
    for i in range(n):
        objects, count, relation = _task_objects(task, i, rng)
        background = None if task == "heldout" else pick_background(rng, objects, 0.7, avoid_heldout=True)
        spec = SceneSpec(objects, count, relation, background)
        out.append((caption_for(spec, rng), spec))
    return out


def wrong_spec(task: str, spec: SceneSpec, rng: random.Random) -> SceneSpec:
    """A scene that differs from spec in what the task judges, for checking that the judge says no."""
    o, a, obj = spec.objects, spec.objects[0], ObjectSpec
    if task == "colour_attribution":  # the same two objects with their colours swapped
        b = o[1]
        return SceneSpec((obj(a.kind, b.colour, a.size), obj(b.kind, a.colour, b.size)), 1, spec.relation,
                         spec.background)
    if task == "two_objects":  # one of the two replaced by a third kind
        k = rng.choice([k for k in OBJECTS if k not in (a.kind, o[1].kind)])
        return SceneSpec((a, obj(k, o[1].colour, o[1].size)), 1, spec.relation, spec.background)
    if task == "position" and spec.relation is not None:  # the opposite, or the two side by side on the other axis
        if rng.random() < 0.5:
            return SceneSpec(o, 1, OPPOSITE[spec.relation], spec.background)
        across = ("above", "below") if spec.relation in ("left of", "right of") else ("left of", "right of")
        return SceneSpec(o, 1, rng.choice(across), spec.background)
    if task == "position":
        p = rng.choice([p for p in POSITIONS if not in_position(position_centre(p), a.position)])
        return SceneSpec((obj(a.kind, a.colour, a.size, p),), 1, None, spec.background)
    if task == "counting":
        return SceneSpec(o, rng.choice([c for c in (1, 2, 3, 4) if c != spec.count]), None, spec.background)
    if task in ("colours", "heldout") and (task == "colours" or rng.random() < 0.5):
        bg = spec.background
        bad = {bg, *CLASHES.get(bg or "", ()), a.colour, "white" if bg is None else ""}  # keep the scene drawable
        c = rng.choice([c for c in COLOURS if c not in bad])
        return SceneSpec((obj(a.kind, c, a.size),), 1, None, spec.background)
    k = rng.choice([k for k in OBJECTS if k != a.kind])  # single_object (and half of heldout)
    return SceneSpec((obj(k, a.colour, a.size),), 1, None, spec.background)


def image_seed(seed: int, task: str, i: int) -> int:
    """The seed of image i of a task (renders and generations alike)."""
    return random.Random(f"t2i-eval-image:{task}:{seed}:{i}").randrange(2 ** 31)

