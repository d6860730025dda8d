"""The procedural world's vocabulary and rules (WORLD.md): every colour, object, position, relation and
background, which colour-object pairs are held out, which backgrounds an object may stand on, and where a
position or relation puts an object. Every other world module, and the judge, reads the rules from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from t2i_cli.errors import said_value

Colour = tuple[int, int, int]
COLOURS: dict[str, Colour] = {
    "red": (220, 40, 40), "orange": (245, 140, 30), "yellow": (245, 215, 40), "green": (50, 170, 60),
    "blue": (40, 90, 220), "purple": (140, 60, 190), "pink": (245, 130, 190), "brown": (130, 80, 40),
    "black": (25, 25, 25), "white": (250, 250, 250), "gray": (128, 128, 128),
}
OBJECTS: tuple[str, ...] = ("circle", "square", "triangle", "star", "heart", "bird", "fish", "cat", "tree",
                            "house", "car", "flower")
# Colour-object pairs that no train or val scene contains, in any object, caption or background.
HELDOUT_PAIRS: frozenset[tuple[str, str]] = frozenset({
    ("purple", "bird"), ("orange", "fish"), ("pink", "tree"), ("green", "car"), ("yellow", "heart"),
    ("brown", "star"), ("blue", "cat"), ("gray", "house"),
})
BACKGROUNDS: dict[str, Colour] = {"sky": (150, 200, 240), "night": (20, 25, 60), "grass": (100, 180, 80)}
POSITIONS: tuple[str, ...] = ("left", "right", "top", "bottom", "top left", "top right", "bottom left", "bottom right")
SIZES: dict[str, float] = {"small": 0.30, "medium": 0.45, "big": 0.65}  # object extent as a fraction of the side
RELATIONS: tuple[str, ...] = ("above", "below", "left of", "right of", "and")
SPLITS: tuple[str, ...] = ("train", "val", "heldout")

PAPER: Colour = (245, 243, 238)  # the unspecified background
# Special backgrounds an object of these colours would vanish into.
CLASHES: dict[str, frozenset[str]] = {"night": frozenset({"black"}), "grass": frozenset({"green"})}
# Every colour-object pair in a fixed order (kind-major); the train and val splits draw from TRAIN_PAIRS.
ALL_PAIRS: tuple[tuple[str, str], ...] = tuple((c, k) for k in OBJECTS for c in COLOURS)
TRAIN_PAIRS: tuple[tuple[str, str], ...] = tuple(p for p in ALL_PAIRS if p not in HELDOUT_PAIRS)
# The relations that place two objects (all but "and", which only puts them side by side), and their opposites.
SPATIAL_RELATIONS: tuple[str, ...] = ("above", "below", "left of", "right of")
OPPOSITE: dict[str, str] = {"above": "below", "below": "above", "left of": "right of", "right of": "left of"}
# The third of the canvas (column, row; 0, 1, 2) a position names; 1 = the middle, which a position
# that names only one axis leaves free.
POSITION_CELLS: dict[str, tuple[int, int]] = {
    "left": (0, 1), "right": (2, 1), "top": (1, 0), "bottom": (1, 2), "top left": (0, 0), "top right": (2, 0),
    "bottom left": (0, 2), "bottom right": (2, 2)}


@dataclass(frozen=True)
class ObjectSpec:
    """One object phrase: what, which colour, how big, where."""

    kind: str  # one of OBJECTS
    colour: str  # one of COLOURS
    size: str  # "small" | "medium" | "big"
    position: str | None = None  # one of POSITIONS; None = centre

    def __post_init__(self) -> None:
        if self.kind not in OBJECTS or self.colour not in COLOURS or self.size not in SIZES:
            raise ValueError(f"unknown object {self.size} {self.colour} {self.kind}")
        if self.position is not None and self.position not in POSITIONS:
            raise ValueError(f"unknown position {self.position!r}")


@dataclass(frozen=True)
class SceneSpec:
    """A whole scene: one object (maybe repeated) or two objects in a relation, on a background."""

    objects: tuple[ObjectSpec, ...]  # one or two objects
    count: int = 1  # copies of objects[0] when > 1 (2-4)
    relation: str | None = None  # one of RELATIONS when there are two objects
    background: str | None = None  # a colour name, "sky", "night", "grass"; None = plain off-white

    def __post_init__(self) -> None:
        if len(self.objects) not in (1, 2) or (len(self.objects) == 2) != (self.relation in RELATIONS):
            raise ValueError("a scene has one object, or two objects and a relation")
        if isinstance(self.count, bool) or not isinstance(self.count, int):  # (True passed 1 <= count <= 4)
            raise ValueError(f"count must be an int of 1-4, got {said_value(self.count)}")
        if not 1 <= self.count <= 4 or (self.count > 1 and len(self.objects) > 1):
            raise ValueError("count must be 1-4, and 1 for two-object scenes")
        if self.background is not None and self.background not in COLOURS and self.background not in BACKGROUNDS:
            raise ValueError(f"unknown background {self.background!r}")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict."""
        return {"objects": [{"kind": o.kind, "colour": o.colour, "size": o.size, "position": o.position}
                            for o in self.objects],
                "count": self.count, "relation": self.relation, "background": self.background}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SceneSpec":
        """Inverse of to_dict; also reads the NAME.json files `t2i data world` writes ({"spec": ...})."""
        d = d.get("spec", d)
        objects = tuple(ObjectSpec(o["kind"], o["colour"], o.get("size", "medium"), o.get("position"))
                        for o in d["objects"])
        return cls(objects, int(d.get("count", 1)), d.get("relation"), d.get("background"))


# ----------------------------------------------------------------------------- backgrounds
def background_colours(objects: tuple[ObjectSpec, ...], avoid_heldout: bool) -> list[str]:
    """Colour backgrounds the objects can stand on: none of their own colours and, when avoid_heldout, none
    that forms a held-out pair with one of their kinds (a held-out pair never appears, even as background)."""
    colours, kinds = {o.colour for o in objects}, {o.kind for o in objects}
    return [c for c in COLOURS if c not in colours
            and not (avoid_heldout and any((c, k) in HELDOUT_PAIRS for k in kinds))]


def special_backgrounds(objects: tuple[ObjectSpec, ...]) -> list[str]:
    """The special backgrounds (sky, night, grass) none of the objects vanishes into."""
    colours = {o.colour for o in objects}
    return [b for b in BACKGROUNDS if not colours & CLASHES.get(b, frozenset())]


def pick_background(rng: Any, objects: tuple[ObjectSpec, ...], p_plain: float, avoid_heldout: bool) -> str | None:
    """The evaluation's and the judge's background draw: plain with probability p_plain (never behind a white
    object, which plain paper hides), else any colour or special background the objects can stand on.
    (Training scenes draw theirs in splits.sample_spec, from the same options in other proportions.)"""
    if "white" not in {o.colour for o in objects} and rng.random() < p_plain:
        return None
    return rng.choice(background_colours(objects, avoid_heldout) + special_backgrounds(objects))


# ----------------------------------------------------------------------------- geometry
def position_centre(position: str) -> tuple[float, float]:
    """The centre (x, y), as fractions of the side, of the cell a position names."""
    col, row = POSITION_CELLS[position]
    return (2 * col + 1) / 6, (2 * row + 1) / 6


def in_position(centroid: tuple[float, float], position: str) -> bool:
    """Whether a centroid (x, y as fractions of the side) lies in the third or corner cell a position names."""
    col, row = POSITION_CELLS[position]
    return all(cell == 1 or (v < 1 / 3 if cell == 0 else v > 2 / 3)
               for cell, v in ((col, centroid[0]), (row, centroid[1])))


RELATION_DIRECTIONS = {"above": (0, -1), "below": (0, 1), "left of": (-1, 0), "right of": (1, 0)}  # a from b


def in_relation(a: tuple[float, float], b: tuple[float, float], relation: str) -> bool:
    """Whether centroid a stands in the relation to centroid b ("and" holds for any placement): the offset
    from b to a points within 60 degrees of the named direction (its component along it is more than half
    its length, GenEval's rule without its size margin). The sign alone passed two objects side by side for
    "above" half the time."""
    if relation == "and":
        return True
    ux, uy = RELATION_DIRECTIONS[relation]
    dx, dy = a[0] - b[0], a[1] - b[1]
    return dx * ux + dy * uy > 0.5 * (dx * dx + dy * dy) ** 0.5
