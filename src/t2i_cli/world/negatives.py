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

Negatives of train scenes never contain a held-out colour-object pair, so they stay inside the train split.
"""

from __future__ import annotations

import random
from dataclasses import replace

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
                                   "recolour")


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
    i = rng.choice([i for i, o in enumerate(objs) if _free_colours(spec, o, allow_heldout)])  # recolour
    objs[i] = replace(objs[i], colour=rng.choice(_free_colours(spec, objs[i], allow_heldout)))
    return replace(spec, objects=tuple(objs))


def any_hard_negative(spec: SceneSpec, rng: random.Random, allow_heldout: bool = False) -> tuple[str, SceneSpec]:
    """One hard negative of a scene, its kind drawn uniformly among those the scene has."""
    kind = rng.choice(negative_kinds(spec, allow_heldout))
    return kind, hard_negative(spec, kind, rng, allow_heldout)


def twin_caption(split: str, index: int) -> tuple[str, SceneSpec, str]:
    """The hard negative of scene `index` of `split`: (caption, spec, kind), without rendering. The caption is
    drawn by the same template choices as the scene's own, so the two differ only where the specs do."""
    from t2i_cli.world.captions import caption_for
    from t2i_cli.world.splits import sample_spec, scene_seed

    seed = scene_seed(split, index)
    rng = random.Random(seed)
    spec = sample_spec(rng, split)  # advances rng exactly as scene_caption does, before its caption
    kind, neg = any_hard_negative(spec, random.Random(f"t2i-negative:{seed}"), allow_heldout=split == "heldout")
    return caption_for(neg, rng), neg, kind


def twin_scene(split: str, index: int, side: int, jitter: bool = True):
    """The hard negative of scene `index` rendered with the scene's own seed (the same layout where the
    change allows): (image, caption, spec, kind)."""
    from t2i_cli.world.render import render
    from t2i_cli.world.splits import scene_seed

    caption, neg, kind = twin_caption(split, index)
    return render(neg, scene_seed(split, index), side, jitter), caption, neg, kind
