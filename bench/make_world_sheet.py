"""Draw docs/world.png: a contact sheet of world scenes (every object, counts, relations, backgrounds).

Usage: PYTHONPATH=src python bench/make_world_sheet.py [--side 128] [--out docs/world.png] [--split train --n 24]
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from t2i_cli import images, world
from t2i_cli.world import ObjectSpec as O
from t2i_cli.world import SceneSpec as S

# One scene per object, then counts, relations and the backgrounds, so the sheet shows the whole world.
SHOWCASE = [
    S((O("circle", "red", "medium"),)), S((O("square", "blue", "small", "top left"),)),
    S((O("triangle", "green", "big"),)), S((O("star", "yellow", "medium"),), background="night"),
    S((O("heart", "pink", "medium", "right"),)), S((O("bird", "red", "medium"),), background="sky"),
    S((O("fish", "blue", "medium"),), background="yellow"), S((O("cat", "orange", "big"),)),
    S((O("tree", "green", "medium"),), background="grass"), S((O("house", "white", "medium"),), background="sky"),
    S((O("car", "red", "medium"),)), S((O("flower", "purple", "medium", "bottom"),)),
    S((O("bird", "black", "medium"),), count=2), S((O("fish", "orange", "medium"),), count=3, background="blue"),
    S((O("star", "white", "medium"),), count=4, background="night"), S((O("cat", "gray", "small", "bottom right"),)),
    S((O("bird", "yellow", "small"), O("house", "red", "medium")), relation="above"),
    S((O("cat", "black", "medium"), O("tree", "green", "medium")), relation="left of"),
    S((O("car", "blue", "medium"), O("flower", "pink", "small")), relation="and", background="grass"),
    S((O("heart", "red", "small"), O("square", "brown", "medium")), relation="below"),
    S((O("tree", "pink", "medium"),)), S((O("house", "gray", "medium"),)),
    S((O("car", "green", "medium"),), background="gray"), S((O("bird", "purple", "medium"),), count=2),
]


def main() -> None:
    """Render the showcase (or the first n scenes of a split) and save the labelled sheet."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--side", type=int, default=128)
    ap.add_argument("--out", type=Path, default=Path("docs/world.png"))
    ap.add_argument("--split", default=None, help="show scenes 0..n-1 of this split instead of the showcase")
    ap.add_argument("--n", type=int, default=24)
    ap.add_argument("--scale", type=int, default=1, help="upscale small renders for viewing")
    args = ap.parse_args()
    if args.split:
        items = [world.scene(args.split, i, args.side) for i in range(args.n)]
        pics, labels = [im for im, _, _ in items], [cap for _, cap, _ in items]
    else:
        pics = [world.render(spec, i, args.side) for i, spec in enumerate(SHOWCASE)]
        labels = [world.caption_for(spec, random.Random(i)) for i, spec in enumerate(SHOWCASE)]
    if args.scale > 1:
        pics = [p.resize((args.side * args.scale,) * 2, 0) for p in pics]
    images.save_png(images.contact_sheet(pics, labels, columns=6), args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
