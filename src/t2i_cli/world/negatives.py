"""Hard negatives: scenes that differ from a scene in exactly one thing a caption says.

A reranker trained only against other random captions learns what is in a picture but not how the words
bind (which colour goes with which object, which one is above). Each kind below changes one such thing and
keeps everything else (objects, sizes, background, and with the same seed the same layout), so a scorer can
only tell the two apart by that binding:

- swap_colours: two objects of different colours trade colours ("a red bird and a blue car" -> blue bird, red car)
- flip_relation: a spatial relation turned round ("above" -> "below")
- count_off: a count one more or one less (one object becomes two; two may become one)
- replace_object: one object replaced by a kind the scene does not hold
- drop_object: one of two objects left out (the commonest failure of two-object prompts)
- recolour: one object gets another colour (one the scene can still show)
- smudge_object: one of two objects drawn as a plain blob of its colour, where it stood (no shape to tell
  what it is: what a generator draws when it gets an object's colour and place right and its shape wrong);
  its caption is the other object's alone, as drop_object's

Negatives of train scenes never contain a held-out colour-object pair, so they stay inside the train split.
"""

from __future__ import annotations

import random
from dataclasses import replace

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from t2i_cli.world.spec import (
    CLASHES,
    COLOURS,
    HELDOUT_PAIRS,
    OBJECTS,
    OPPOSITE,
    ObjectSpec,
    SceneSpec,
)

NEGATIVE_KINDS: tuple[str, ...] = ("swap_colours", "flip_relation", "count_off", "replace_object", "drop_object",
                                   "recolour", "smudge_object")


def _allowed(colour: str, kind: str, allow_heldout: bool) -> bool:
    return allow_heldout or (colour, kind) not in HELDOUT_PAIRS


def _free_colours(spec: SceneSpec, obj: ObjectSpec, allow_heldout: bool) -> list[str]:
    """Colours obj could take and still be seen: none of the scene's own, not the background's (nor one
    that vanishes into it), not white on plain paper, and not a held-out pair."""
    bg = spec.background
    taken = {o.colour for o in spec.objects} | {bg or ""} | set(CLASHES.get(bg or "", ()))
    if bg is None:
        taken.add("white")
    return [c for c in COLOURS if c not in taken and _allowed(c, obj.kind, allow_heldout)
            and not (bg in COLOURS and not allow_heldout and (bg, obj.kind) in HELDOUT_PAIRS)]


def negative_kinds(spec: SceneSpec, allow_heldout: bool = False) -> list[str]:
    """The kinds of hard negative that exist for a scene."""
    kinds = []
    if len(spec.objects) == 2:
        a, b = spec.objects
        if a.colour != b.colour and a.kind != b.kind and _allowed(b.colour, a.kind, allow_heldout) \
                and _allowed(a.colour, b.kind, allow_heldout):
            kinds.append("swap_colours")
        if spec.relation in OPPOSITE:
            kinds.append("flip_relation")
        kinds.append("drop_object")
        if a.kind != "circle" or b.kind != "circle":  # a circle smudged is still a circle
            kinds.append("smudge_object")
    elif spec.count > 1 or spec.objects[0].position is None:
        kinds.append("count_off")
    if any(_replacements(spec, i, allow_heldout) for i in range(len(spec.objects))):
        kinds.append("replace_object")
    if any(_free_colours(spec, o, allow_heldout) for o in spec.objects):
        kinds.append("recolour")
    return kinds


def _replacements(spec: SceneSpec, i: int, allow_heldout: bool) -> list[str]:
    obj, kinds = spec.objects[i], {o.kind for o in spec.objects}
    bg = spec.background
    return [k for k in OBJECTS if k not in kinds and _allowed(obj.colour, k, allow_heldout)
            and not (bg in COLOURS and not allow_heldout and (bg, k) in HELDOUT_PAIRS)]


def hard_negative(spec: SceneSpec, kind: str, rng: random.Random, allow_heldout: bool = False) -> SceneSpec:
    """The scene changed in one way (kind, one of negative_kinds(spec)); ValueError when it has none of that kind."""
    if kind not in negative_kinds(spec, allow_heldout):
        raise ValueError(f"a scene {spec.to_dict()} has no {kind!r} negative")
    objs = list(spec.objects)
    if kind == "swap_colours":
        a, b = objs
        return replace(spec, objects=(replace(a, colour=b.colour), replace(b, colour=a.colour)))
    if kind == "flip_relation":
        return replace(spec, relation=OPPOSITE[spec.relation])
    if kind == "count_off":
        options = [c for c in (spec.count - 1, spec.count + 1) if 1 <= c <= 4]
        return replace(spec, count=rng.choice(options))
    if kind == "replace_object":
        i = rng.choice([i for i in range(len(objs)) if _replacements(spec, i, allow_heldout)])
        objs[i] = replace(objs[i], kind=rng.choice(_replacements(spec, i, allow_heldout)))
        return replace(spec, objects=tuple(objs))
    if kind == "drop_object":
        return SceneSpec((objs[rng.randrange(2)],), 1, None, spec.background)
    if kind == "smudge_object":  # the object kept (the caption names it alone); the other one is smudged
        keep = rng.choice([i for i in range(2) if objs[1 - i].kind != "circle"])
        return SceneSpec((objs[keep],), 1, None, spec.background)
    i = rng.choice([i for i, o in enumerate(objs) if _free_colours(spec, o, allow_heldout)])  # recolour
    objs[i] = replace(objs[i], colour=rng.choice(_free_colours(spec, objs[i], allow_heldout)))
    return replace(spec, objects=tuple(objs))


def any_hard_negative(spec: SceneSpec, rng: random.Random, allow_heldout: bool = False) -> tuple[str, SceneSpec]:
    """One hard negative of a scene, its kind drawn uniformly among those the scene has."""
    kind = rng.choice(negative_kinds(spec, allow_heldout))
    return kind, hard_negative(spec, kind, rng, allow_heldout)


def _twin(split: str, index: int) -> tuple[str, SceneSpec, SceneSpec, str]:
    """(the twin's caption, the scene's spec, the twin's spec, kind) of scene `index` of `split`."""
    from t2i_cli.world.captions import caption_for
    from t2i_cli.world.splits import sample_spec, scene_seed

    seed = scene_seed(split, index)
    rng = random.Random(seed)
    spec = sample_spec(rng, split)  # advances rng exactly as scene_caption does, before its caption
    kind, neg = any_hard_negative(spec, random.Random(f"t2i-negative:{seed}"), allow_heldout=split == "heldout")
    return caption_for(neg, rng), spec, neg, kind


def twin_caption(split: str, index: int) -> tuple[str, SceneSpec, str]:
    """The hard negative of scene `index` of `split`: (caption, spec, kind), without rendering. The caption is
    drawn by the same template choices as the scene's own, so the two differ only where the specs do."""
    caption, _, neg, kind = _twin(split, index)
    return caption, neg, kind


def twin_scene(split: str, index: int, side: int, jitter: bool = True):
    """The hard negative of scene `index` rendered with the scene's own seed (the same layout where the
    change allows; a smudge is the scene's own picture with one object smudged): (image, caption, spec, kind)."""
    from t2i_cli.world.render import render, render_with_masks
    from t2i_cli.world.splits import scene_seed

    caption, spec, neg, kind = _twin(split, index)
    if kind == "smudge_object":
        image, masks = render_with_masks(spec, scene_seed(split, index), side, jitter)
        gone = 1 if spec.objects[0] == neg.objects[0] and spec.objects[1].kind != "circle" else 0
        return smudged(image, masks, gone), caption, neg, kind
    return render(neg, scene_seed(split, index), side, jitter), caption, neg, kind


def smudged(image: Image.Image, masks: list[np.ndarray], i: int) -> Image.Image:
    """The picture with object i (masks: one per object, render_with_masks) drawn as a blob: its pixels (and a
    pixel around them) filled with the background (each row's median of the pixels no object covers, which
    holds for the plain, split and coloured backgrounds), then the ellipse of the object's second moments
    filled with its median colour, its edge softened, no outline."""
    a = np.asarray(image.convert("RGB")).astype(np.float32)
    side = a.shape[0]
    obj = masks[i]
    if not obj.any():
        raise ValueError(f"object {i} has no pixels to smudge")
    grow = np.asarray(Image.fromarray(obj.astype(np.uint8) * 255).filter(ImageFilter.MaxFilter(3))) > 0
    covered = grow.copy()
    for m in masks:
        covered |= np.asarray(Image.fromarray(m.astype(np.uint8) * 255).filter(ImageFilter.MaxFilter(3))) > 0
    out = a.copy()
    rest = a[~covered]
    fallback = np.median(rest, axis=0) if len(rest) else a.reshape(-1, 3).mean(0)
    for y in np.nonzero(grow.any(1))[0]:
        free = a[y][~covered[y]]
        out[y][grow[y]] = np.median(free, axis=0) if len(free) >= 4 else fallback
    colour = np.median(a[obj], axis=0)
    ys, xs = np.nonzero(obj)
    cy, cx = ys.mean() + 0.5, xs.mean() + 0.5
    cov = np.cov(np.stack([xs, ys]).astype(np.float64)) if len(xs) > 1 else np.eye(2)
    vals, vecs = np.linalg.eigh(cov + 0.25 * np.eye(2))  # + a pixel's own spread
    rx, ry = 2 * np.sqrt(vals)  # a uniform ellipse of semi-axes r has variance r^2 / 4 along each
    degrees = float(np.degrees(np.arctan2(vecs[1, 0], vecs[0, 0])))
    big = 4 * side
    layer = Image.new("L", (big, big), 0)
    ca, sa = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    pts = [(4 * (cx + rx * np.cos(t) * ca - ry * np.sin(t) * sa), 4 * (cy + rx * np.cos(t) * sa + ry * np.sin(t) * ca))
           for t in np.linspace(0, 2 * np.pi, 32, endpoint=False)]
    ImageDraw.Draw(layer).polygon(pts, fill=255)
    alpha = np.asarray(layer.resize((side, side), Image.BOX).filter(ImageFilter.GaussianBlur(0.6))).astype(np.float32)
    alpha = alpha[..., None] / 255
    out = out * (1 - alpha) + colour * alpha
    return Image.fromarray(out.round().clip(0, 255).astype(np.uint8))
