"""The procedural clip-art renderer: a scene spec drawn at any side, with per-object masks on demand."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from t2i_cli.world.spec import BACKGROUNDS, COLOURS, PAPER, POSITION_CELLS, SIZES, Colour, ObjectSpec, SceneSpec

OUTLINE = (30, 30, 30)
# Secondary parts: fixed dark or neutral colours, none of them a palette colour except brown (the trunk).
DARK, LIGHT, GLASS = (45, 45, 45), (212, 212, 204), (170, 196, 214)
BEAK, NOSE, DOOR = (92, 82, 72), (96, 64, 64), (92, 62, 42)
TRUNK, CENTRE, STEM = COLOURS["brown"], (104, 70, 36), (78, 98, 64)


@dataclass(frozen=True)
class _Placed:
    """One object instance laid out on the canvas (coordinates as fractions of the side)."""

    kind: str  # one of OBJECTS
    colour: str  # one of COLOURS
    x: float  # centre x
    y: float  # centre y
    s: float  # extent of the object's unit box
    is_flipped: bool  # mirrored left-right (birds, fish, cats and cars face either way)


def render(spec: SceneSpec, seed: int, side: int, jitter: bool = True) -> Image.Image:
    """Draw the scene at side x side pixels: a pure function of (spec, seed, side, jitter)."""
    return _draw_scene(spec, seed, side, jitter, with_masks=False)[0]


def render_with_masks(spec: SceneSpec, seed: int, side: int,
                      jitter: bool = True) -> tuple[Image.Image, list[np.ndarray]]:
    """The image of render() and one boolean (side, side) mask per drawn object instance."""
    return _draw_scene(spec, seed, side, jitter, with_masks=True)


def _jittered(rgb: Colour, rng: random.Random | None) -> Colour:
    """rgb with each channel moved by up to ±12 (training renders), or unchanged."""
    if rng is None:
        return rgb
    return tuple(min(255, max(0, v + rng.randint(-12, 12))) for v in rgb)  # type: ignore[return-value]


def _draw_scene(spec: SceneSpec, seed: int, side: int, jitter: bool,
                with_masks: bool) -> tuple[Image.Image, list[np.ndarray]]:
    """Lay the scene out, draw it at 4x and downsample; optionally also each instance's mask."""
    big = 4 * side
    placed = _layout(spec, random.Random(f"layout:{seed}"))
    colour_rng = random.Random(f"colour:{seed}") if jitter else None  # a separate stream: layout ignores jitter
    bg = spec.background
    base = PAPER if bg is None else _jittered(COLOURS.get(bg) or BACKGROUNDS[bg], colour_rng)
    canvas = Image.new("RGB", (big, big), base if bg != "grass" else _jittered(BACKGROUNDS["sky"], colour_rng))
    draw = ImageDraw.Draw(canvas)
    if bg == "grass":
        draw.rectangle([0, big // 2, big, big], fill=base)
    ow = 4 * max(1, side // 128)  # outline width on the 4x canvas: one output pixel up to 128 px
    for p in placed:
        _DRAWERS[p.kind](_Pen(draw, p, big, ow, False), _jittered(COLOURS[p.colour], colour_rng))
    image = canvas.resize((side, side), Image.LANCZOS)
    masks: list[np.ndarray] = []
    for p in placed if with_masks else ():
        layer = Image.new("L", (big, big), 0)
        _DRAWERS[p.kind](_Pen(ImageDraw.Draw(layer), p, big, ow, True), (255, 255, 255))
        masks.append(np.asarray(layer.resize((side, side), Image.BOX)) >= 128)
    for i in range(len(masks)):  # later objects hide earlier ones
        for later in masks[i + 1:]:
            masks[i] = masks[i] & ~later
    return image, masks


def _layout(spec: SceneSpec, rng: random.Random) -> list[_Placed]:
    """Where each object instance goes, as unit-box placements."""
    if spec.relation is not None:
        cells = _RELATION_CELLS[spec.relation]
        if spec.relation == "and" and rng.random() < 0.5:  # "a and b" is side by side, either order
            cells = cells[::-1]
        return [_in_box(o, cell, rng) for o, cell in zip(spec.objects, cells, strict=True)]
    obj = spec.objects[0]
    if spec.count > 1:
        return [_in_box(obj, cell, rng) for cell in rng.choice(_COUNT_CELLS[spec.count])]
    s = SIZES[obj.size]
    col, row = POSITION_CELLS.get(obj.position, (1, 1))
    return [_Placed(obj.kind, obj.colour, _in_third(col, s / 2, rng), _in_third(row, s / 2, rng), s,
                    rng.random() < 0.5)]


def _in_third(cell: int, half: float, rng: random.Random) -> float:
    """A centre coordinate inside third `cell` (0, 1, 2), keeping the object on the canvas when it fits."""
    if cell == 1:
        return rng.uniform(0.45, 0.55)
    lo, hi = max(0.06, half + 0.01), 1 / 3 - 0.06  # 0.06 margin: the centroid of odd shapes stays in the third
    v = rng.uniform(lo, hi) if lo < hi else hi  # a big object may clip rather than leave its third
    return v if cell == 0 else 1 - v


def _in_box(obj: ObjectSpec, box: tuple[float, float, float, float], rng: random.Random) -> _Placed:
    """Place obj inside box (x0, y0, x1, y1), shrunk to fit with a gap, so boxes never overlap."""
    x0, y0, x1, y1 = box
    pad = 0.03
    s = min(SIZES[obj.size], min(x1 - x0, y1 - y0) - 2 * pad)
    x = rng.uniform(x0 + pad + s / 2, x1 - pad - s / 2)
    y = rng.uniform(y0 + pad + s / 2, y1 - pad - s / 2)
    return _Placed(obj.kind, obj.colour, x, y, s, rng.random() < 0.5)


# Boxes (x0, y0, x1, y1) that relations and counts place objects in.
_TOP, _BOTTOM = (0.15, 0.0, 0.85, 0.5), (0.15, 0.5, 0.85, 1.0)
_LEFT, _RIGHT = (0.0, 0.15, 0.5, 0.85), (0.5, 0.15, 1.0, 0.85)
PLACE_BOXES = {"left": _LEFT, "right": _RIGHT, "top": _TOP, "bottom": _BOTTOM}  # region_prompts' places
_RELATION_CELLS = {"above": (_TOP, _BOTTOM), "below": (_BOTTOM, _TOP), "left of": (_LEFT, _RIGHT),
                   "right of": (_RIGHT, _LEFT), "and": (_LEFT, _RIGHT)}
_QUADS = ((0.0, 0.0, 0.5, 0.5), (0.5, 0.0, 1.0, 0.5), (0.0, 0.5, 0.5, 1.0), (0.5, 0.5, 1.0, 1.0))
_COUNT_CELLS = {
    2: ((_LEFT, _RIGHT), (_TOP, _BOTTOM), (_QUADS[0], _QUADS[3]), (_QUADS[1], _QUADS[2])),
    3: (tuple((i / 3, 0.2, (i + 1) / 3, 0.8) for i in range(3)),
        *(tuple(q for q in _QUADS if q != skip) for skip in _QUADS)),
    4: (_QUADS,),
}


# ----------------------------------------------------------------------------- drawing
class _Pen:
    """Draws shapes given in the object's unit box (x, y in [-0.5, 0.5], y down) onto the 4x canvas;
    in mask mode every fill and outline is 255, so the same drawing code yields the object's mask."""

    def __init__(self, draw: ImageDraw.ImageDraw, p: _Placed, big: int, ow: int, is_mask: bool):
        self.draw, self.ow, self.is_mask = draw, ow, is_mask
        self.x, self.y, self.s, self.sign = p.x * big, p.y * big, p.s * big, -1.0 if p.is_flipped else 1.0

    def _ink(self, colour: Colour) -> Any:
        return 255 if self.is_mask else colour

    def _xy(self, pts: list[tuple[float, float]]) -> list[tuple[float, float]]:
        return [(self.x + self.sign * px * self.s, self.y + py * self.s) for px, py in pts]

    def poly(self, pts: list[tuple[float, float]], fill: Colour, outline: bool = True) -> None:
        """A filled polygon, outlined inside its edge."""
        self.draw.polygon(self._xy(pts), fill=self._ink(fill), outline=self._ink(OUTLINE) if outline else None,
                          width=self.ow)

    def oval(self, x: float, y: float, rx: float, ry: float, fill: Colour, outline: bool = True) -> None:
        """A filled axis-aligned ellipse centred at (x, y)."""
        (cx, cy), = self._xy([(x, y)])
        box = [cx - rx * self.s, cy - ry * self.s, cx + rx * self.s, cy + ry * self.s]
        self.draw.ellipse(box, fill=self._ink(fill), outline=self._ink(OUTLINE) if outline else None, width=self.ow)

    def line(self, pts: list[tuple[float, float]], fill: Colour, width: float,
             outline: bool = False) -> None:
        """A polyline `width` (unit) thick, at least about one output pixel; outlined when asked."""
        w = max(self.ow, round(width * self.s))
        if outline:
            self.draw.line(self._xy(pts), fill=self._ink(OUTLINE), width=w + 2 * self.ow, joint="curve")
        self.draw.line(self._xy(pts), fill=self._ink(fill), width=w, joint="curve")

    def union(self, parts: list[Any], fill: Colour) -> None:
        """Overlapping parts as one silhouette: an outline band drawn just outside every part first, then
        all the fills, so the outer edge is outlined and the inner edges vanish."""
        ink, r = self._ink(OUTLINE), self.ow
        for part in parts:
            if isinstance(part[0], tuple):
                xy = self._xy(part)
                self.draw.polygon(xy, fill=ink)
                self.draw.line(xy + xy[:1], fill=ink, width=2 * r)
                for x, y in xy:  # round the corners of the band
                    self.draw.ellipse([x - r, y - r, x + r, y + r], fill=ink)
            else:
                x, y, rx, ry = part
                (cx, cy), = self._xy([(x, y)])
                self.draw.ellipse([cx - rx * self.s - r, cy - ry * self.s - r, cx + rx * self.s + r,
                                   cy + ry * self.s + r], fill=ink)
        for part in parts:
            if isinstance(part[0], tuple):
                self.poly(part, fill, outline=False)
            else:
                self.oval(*part, fill, outline=False)


def _ellipse_pts(x: float, y: float, rx: float, ry: float, degrees: float = 0.0,
                 n: int = 20) -> list[tuple[float, float]]:
    """A rotated ellipse as a polygon (ImageDraw only draws axis-aligned ones)."""
    ca, sa = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    pts = [(rx * math.cos(t), ry * math.sin(t)) for t in (2 * math.pi * k / n for k in range(n))]
    return [(x + u * ca - v * sa, y + u * sa + v * ca) for u, v in pts]


def _bezier(a: tuple[float, float], b: tuple[float, float], c: tuple[float, float],
            n: int = 10) -> list[tuple[float, float]]:
    """Points along the quadratic Bezier curve a -> c pulled towards b."""
    ts = [k / (n - 1) for k in range(n)]
    return [((1 - t) ** 2 * a[0] + 2 * t * (1 - t) * b[0] + t * t * c[0],
             (1 - t) ** 2 * a[1] + 2 * t * (1 - t) * b[1] + t * t * c[1]) for t in ts]


def _band(pts: list[tuple[float, float]], w0: float, w1: float) -> list[tuple[float, float]]:
    """A polygon around a polyline, w0 wide at its start tapering to w1, so it can be filled and outlined."""
    left, right = [], []
    for i, (x, y) in enumerate(pts):
        (ax, ay), (bx, by) = pts[max(0, i - 1)], pts[min(len(pts) - 1, i + 1)]
        dx, dy = bx - ax, by - ay
        norm = math.hypot(dx, dy) or 1.0
        h = (w0 + (w1 - w0) * i / (len(pts) - 1)) / 2
        left.append((x - dy / norm * h, y + dx / norm * h))
        right.append((x + dy / norm * h, y - dx / norm * h))
    return left + right[::-1]


def _rect(x0: float, y0: float, x1: float, y1: float) -> list[tuple[float, float]]:
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


def _star_pts() -> list[tuple[float, float]]:
    """Five points, outer radius 0.5, centred on its bounding box."""
    pts = [(r * math.sin(math.pi * k / 5), -r * math.cos(math.pi * k / 5))
           for k, r in zip(range(10), [0.5, 0.21] * 5, strict=True)]
    dy = (0.5 - 0.5 * math.cos(math.pi / 5)) / 2
    return [(x, y + dy) for x, y in pts]


def _heart_pts() -> list[tuple[float, float]]:
    """The classic parametric heart, scaled into the unit box."""
    ts = [2 * math.pi * k / 48 for k in range(48)]
    pts = [(16 * math.sin(t) ** 3, -(13 * math.cos(t) - 5 * math.cos(2 * t) - 2 * math.cos(3 * t) - math.cos(4 * t)))
           for t in ts]
    ys = [y for _, y in pts]
    mid, scale = (max(ys) + min(ys)) / 2, 0.98 / 32
    return [(x * scale, (y - mid) * scale) for x, y in pts]


_STAR, _HEART = _star_pts(), _heart_pts()


def _circle(p: _Pen, c: Colour) -> None:
    p.oval(0, 0, 0.47, 0.47, c)


def _square(p: _Pen, c: Colour) -> None:
    p.poly(_rect(-0.42, -0.42, 0.42, 0.42), c)


def _triangle(p: _Pen, c: Colour) -> None:
    p.poly([(0, -0.46), (0.5, 0.42), (-0.5, 0.42)], c)


def _star(p: _Pen, c: Colour) -> None:
    p.poly(_STAR, c)


def _heart(p: _Pen, c: Colour) -> None:
    p.poly(_HEART, c)


def _bird(p: _Pen, c: Colour) -> None:
    """Side view facing right: tail, round body, head, wing, beak, eye and legs."""
    for lx in (-0.04, 0.07):
        p.line([(lx, 0.26), (lx - 0.02, 0.44)], DARK, 0.03)
    tail = [(-0.26, 0.0), (-0.5, -0.16), (-0.46, 0.12), (-0.22, 0.2)]
    p.union([tail, (-0.04, 0.06, 0.32, 0.24), (0.22, -0.16, 0.17, 0.17)], c)
    p.poly(_ellipse_pts(-0.08, 0.07, 0.17, 0.085, -18), c)
    p.poly([(0.35, -0.22), (0.5, -0.13), (0.35, -0.07)], BEAK)
    p.oval(0.26, -0.19, 0.055, 0.055, LIGHT, outline=False)
    p.oval(0.27, -0.19, 0.035, 0.035, DARK, outline=False)


def _fish(p: _Pen, c: Colour) -> None:
    """Side view facing right: body, forked tail, fins, gill line and eye."""
    tail = [(-0.24, 0.0), (-0.5, -0.24), (-0.42, 0.0), (-0.5, 0.24)]
    fin, belly = [(-0.1, -0.2), (0.0, -0.36), (0.18, -0.22)], [(-0.04, 0.2), (0.04, 0.32), (0.14, 0.2)]
    p.union([tail, fin, belly, (0.06, 0.0, 0.38, 0.25)], c)
    p.line([(0.22, -0.15), (0.17, 0.0), (0.22, 0.15)], DARK, 0.025)
    p.oval(0.3, -0.06, 0.06, 0.06, LIGHT)
    p.oval(0.31, -0.06, 0.03, 0.03, DARK, outline=False)


def _cat(p: _Pen, c: Colour) -> None:
    """Sitting, face forward: tail, body, head with pointed ears, eyes, nose and whiskers."""
    p.poly(_band(_bezier((0.1, 0.42), (0.5, 0.46), (0.4, 0.0)), 0.1, 0.06), c)
    ears = [[(sx * 0.21, -0.22), (sx * 0.19, -0.48), (sx * 0.03, -0.34)] for sx in (-1, 1)]
    p.union([(0.0, 0.2, 0.24, 0.28), (0.0, -0.17, 0.22, 0.19), *ears], c)
    for sx in (-1, 1):
        p.oval(sx * 0.085, -0.2, 0.045, 0.05, LIGHT)
        p.oval(sx * 0.085, -0.2, 0.018, 0.045, DARK, outline=False)
        p.line([(sx * 0.08, -0.1), (sx * 0.3, -0.13)], DARK, 0.0)
        p.line([(sx * 0.08, -0.08), (sx * 0.3, -0.05)], DARK, 0.0)
    p.poly([(-0.035, -0.12), (0.035, -0.12), (0.0, -0.085)], NOSE, outline=False)


def _tree(p: _Pen, c: Colour) -> None:
    """A brown trunk under a round crown of the named colour."""
    p.poly([(-0.08, 0.1), (0.08, 0.1), (0.1, 0.5), (-0.1, 0.5)], TRUNK)
    p.union([(0.0, -0.22, 0.28, 0.26), (-0.21, -0.02, 0.22, 0.2), (0.21, -0.02, 0.22, 0.2), (0.0, 0.06, 0.22, 0.15)], c)


def _house(p: _Pen, c: Colour) -> None:
    """Walls and roof in the named colour, a chimney, a door and two windows."""
    p.poly(_rect(0.17, -0.4, 0.28, -0.16), c)
    p.poly(_rect(-0.38, -0.06, 0.38, 0.48), c)
    p.poly([(-0.5, -0.02), (0.0, -0.46), (0.5, -0.02)], c)
    p.poly(_rect(-0.07, 0.23, 0.07, 0.48), DOOR)
    for x0 in (-0.29, 0.16):
        p.poly(_rect(x0, 0.08, x0 + 0.13, 0.2), GLASS)


def _car(p: _Pen, c: Colour) -> None:
    """Side view facing right: body and cabin, two windows, wheels with hubs, a headlight."""
    body = [(-0.5, -0.06), (-0.44, -0.12), (0.36, -0.12), (0.5, -0.04), (0.5, 0.22), (-0.5, 0.22)]
    p.union([body, [(-0.3, -0.1), (-0.18, -0.36), (0.14, -0.36), (0.3, -0.1)]], c)
    p.poly([(-0.21, -0.16), (-0.15, -0.3), (-0.05, -0.3), (-0.05, -0.16)], GLASS)
    p.poly([(0.01, -0.16), (0.01, -0.3), (0.1, -0.3), (0.19, -0.16)], GLASS)
    for wx in (-0.28, 0.28):
        p.oval(wx, 0.27, 0.1, 0.1, DARK)
        p.oval(wx, 0.27, 0.035, 0.035, LIGHT, outline=False)
    p.oval(0.45, 0.02, 0.03, 0.03, LIGHT, outline=False)


def _flower(p: _Pen, c: Colour) -> None:
    """Six petals of the named colour round a brown centre, on a stem with a leaf."""
    p.line([(0.0, 0.1), (0.0, 0.48)], STEM, 0.035, outline=True)
    p.poly(_ellipse_pts(0.09, 0.34, 0.09, 0.035, -35), STEM)
    petals = [_ellipse_pts(0.19 * math.cos(a), -0.15 + 0.19 * math.sin(a), 0.16, 0.12, math.degrees(a))
              for a in (math.radians(90 + 60 * k) for k in range(6))]
    p.union(petals, c)
    p.oval(0.0, -0.15, 0.08, 0.08, CENTRE)


_DRAWERS = {"circle": _circle, "square": _square, "triangle": _triangle, "star": _star, "heart": _heart,
            "bird": _bird, "fish": _fish, "cat": _cat, "tree": _tree, "house": _house, "car": _car,
            "flower": _flower}
