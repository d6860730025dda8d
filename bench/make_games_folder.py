"""Build a folder of real pictures that t2i did not draw: game sprites, playing cards and sample photos, captioned.

The pictures are the artwork shipped inside three Python wheels (nothing is downloaded at run time; the wheels are
read as zip files where they lie, e.g. a pip cache or a wheelhouse): PettingZoo's classic and butterfly games
(MIT: chess pieces, playing cards, poker chips, Hanabi cards, go stones, rock-paper-scissors hands, knights and
zombies), Gymnasium's toy-text games (MIT: a second, larger deck of cards, a taxi, an elf, a hotel) and
scikit-image's sample data (BSD-3 and public domain: the astronaut, the cat, coffee, a rocket, the moon...). Each
picture is copied as it is, in its own size and mode (RGBA sprites from 16 x 16 up, greyscale and RGB photos up
to 1411 x 1411, JPEGs), into a folder per game, with a caption written beside it as NAME.txt ("king of clubs
playing card", "black bishop chess piece", "blue hanabi card 3", "cup of coffee"): the layout `t2i train --data`
reads, and a set unlike the icons and emoji (bench/make_icon_folder.py, bench/make_emoji_folder.py): cards that
differ in one small symbol, pixel-art sprites, and photos.

Usage: python bench/make_games_folder.py OUT [--wheels DIR ...]   (default: /opt/pypi/files)
"""

from __future__ import annotations

import argparse
import re
import zipfile
from pathlib import Path

RANKS = {"A": "ace", "2": "two", "3": "three", "4": "four", "5": "five", "6": "six", "7": "seven", "8": "eight",
         "9": "nine", "T": "ten", "J": "jack", "Q": "queen", "K": "king"}
SUITS = {"C": "clubs", "D": "diamonds", "H": "hearts", "S": "spades"}
NAMED = {  # the pictures whose file name is not their caption
    "Card": "back of a playing card", "back": "back of a hanabi card", "chessboard": "chessboard",
    "GoBlackPiece": "black go stone", "GoWhitePiece": "white go stone", "GoBoard": "go board",
    "C4BlackPiece": "black connect four disc", "C4RedPiece": "red connect four disc",
    "Connect4Board": "connect four board", "board": "tic tac toe board", "circle": "tic tac toe circle",
    "cross": "tic tac toe cross", "left_wall": "stone wall", "right_wall": "stone wall",
    "cab_front": "taxi seen from the front", "cab_rear": "taxi seen from behind", "cab_left": "taxi facing left",
    "cab_right": "taxi facing right", "cracked_hole": "cracked hole in the ice", "hole": "hole in the ice",
    "ice": "frozen ice", "goal": "wrapped present", "stool": "small stool", "hotel": "hotel building",
    "passenger": "passenger waiting", "astronaut": "astronaut in a spacesuit", "brick": "brick wall",
    "camera": "man with a camera", "cell": "cell under a microscope", "chelsea": "tabby cat",
    "chessboard_GRAY": "grey chessboard pattern", "chessboard_RGB": "chessboard pattern",
    "clock_motion": "blurred clock", "coffee": "cup of coffee", "coins": "old coins", "color": "colour wheel",
    "grass": "grass", "gravel": "gravel", "horse": "horse silhouette", "hubble_deep_field": "galaxies in deep space",
    "ihc": "stained tissue under a microscope", "logo": "scikit image logo", "microaneurysms": "retina blood vessels",
    "moon": "surface of the moon", "motorcycle_left": "motorcycle", "motorcycle_right": "motorcycle",
    "page": "page of text", "phantom": "phantom scan", "retina": "retina of an eye",
    "rocket": "rocket on a launch pad", "text": "handwritten text", "cookie": "cookie",
}
SETS = [  # (wheel name pattern, folder in it, output folder, names left out: tiles, backgrounds, animations)
    ("pettingzoo-*.whl", "pettingzoo/classic/chess/img/", "chess", set()),
    ("pettingzoo-*.whl", "pettingzoo/classic/rlcard_envs/img/", "cards", set()),
    ("pettingzoo-*.whl", "pettingzoo/classic/hanabi/img/", "hanabi", set()),
    ("pettingzoo-*.whl", "pettingzoo/classic/go/img/", "go", {f"GO_Tile{i}" for i in range(9)}),
    ("pettingzoo-*.whl", "pettingzoo/classic/connect_four/img/", "connect-four", set()),
    ("pettingzoo-*.whl", "pettingzoo/classic/rps/img/", "hands", set()),
    ("pettingzoo-*.whl", "pettingzoo/classic/tictactoe/img/", "tic-tac-toe", set()),
    ("pettingzoo-*.whl", "pettingzoo/butterfly/knights_archers_zombies/img/", "knights",
     {"patch1", "patch2", "patch3", "patch4"}),
    ("gymnasium-*.whl", "gymnasium/envs/toy_text/img/", "toy-text",
     {"taxi_background", "mountain_bg1", "mountain_bg2", "mountain_cliff", "mountain_near-cliff1",
      "mountain_near-cliff2", "gridworld_median_bottom", "gridworld_median_horiz", "gridworld_median_left",
      "gridworld_median_right", "gridworld_median_top", "gridworld_median_vert"}),
    ("scikit_image-*.whl", "skimage/data/", "photos", {"multipage", "multipage_rgb", "no_time_for_that_tiny"}),
]
PICTURE = re.compile(r"[^/]+\.(png|jpg|gif|tif)$", re.I)


def caption(name: str, folder: str) -> str:
    """'CK' -> 'king of clubs playing card', 'bishop_black' -> 'black bishop chess piece', 'blue_3' -> 'blue
    hanabi card 3', 'ChipLightBlue' -> 'light blue poker chip', 'elf_down' -> 'elf facing down'."""
    if name in NAMED:
        return NAMED[name]
    if len(name) == 2 and name[0] in SUITS and name[1] in RANKS:
        return f"{RANKS[name[1]]} of {SUITS[name[0]]} playing card"
    if name.startswith("Chip"):
        return " ".join(w.lower() for w in re.findall(r"[A-Z][a-z]+", name[4:])) + " poker chip"
    if folder == "chess":
        piece, colour = name.split("_")
        return f"{colour} {piece} chess piece"
    if folder == "hanabi":
        colour, number = name.split("_")
        return f"{colour} hanabi card {number}"
    if folder == "hands":
        return f"{name.lower()} hand sign"
    if name.startswith("elf_"):
        return f"elf facing {name[4:]}"
    return " ".join(re.split(r"[_\-]+", name.lower()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--wheels", type=Path, nargs="+", default=[Path("/opt/pypi/files")])
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=False)
    n = 0
    for pattern, inside, folder, left_out in SETS:
        wheels = sorted(w for d in args.wheels for w in d.glob(pattern))
        if not wheels:
            raise SystemExit(f"no {pattern} in {', '.join(map(str, args.wheels))}: give --wheels DIR")
        with zipfile.ZipFile(wheels[-1]) as whl:
            for member in sorted(whl.namelist()):
                rest = member[len(inside):] if member.startswith(inside) else ""
                stem = rest.rsplit(".", 1)[0]
                if not PICTURE.fullmatch(rest) or stem in left_out:
                    continue
                (args.out / folder).mkdir(exist_ok=True)
                (args.out / folder / rest).write_bytes(whl.read(member))
                (args.out / folder / f"{stem}.txt").write_text(caption(stem, folder) + "\n", encoding="utf-8")
                n += 1
    print(f"{n} captioned pictures in {args.out}")


if __name__ == "__main__":
    main()
