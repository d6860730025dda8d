"""Build a folder of real pictures that t2i did not draw: Cartopy's maps and Qt Quick's control icons, uncaptioned.

The pictures are those that two Python wheels on this machine ship (nothing is downloaded at run time; the wheels are
read as zip files where they lie, e.g. a pip cache or a wheelhouse):
- Cartopy's maps (cartopy wheel, BSD-3-Clause): its test suite's baseline images, world and regional maps that
  Matplotlib drew in some 30 projections (`grid_labels_inline_Mollweide.png`, `igh_ocean.png`,
  `natural_earth.png`), with grid lines, labels, coastlines, contours and shaded relief, 200 x 200 to
  1000 x 1000, greyscale, palette, RGB and RGBA; Natural Earth's downsampled world raster (public domain) and a
  MODIS satellite photo of hurricane Miriam (NASA, public domain), from its sample data;
- Qt Quick Controls' designer icons (PySide6-Essentials wheel, LGPL-3): one icon per control (`button`, `dial`,
  `slider`, `tumbler`...) drawn at three sizes under three names as an app's resources hold them
  (`dial-icon16.png` 16 x 16, `dial-icon.png` 24 x 24, `dial-icon@2x.png` 48 x 48), palette PNGs with transparency.

Each picture is copied as it is (its bytes, name and sub-folder), WITHOUT a caption: the folder a user brings, for
`t2i data caption` to caption by name. The names are what such folders hold: CamelCase projection names, `@2x` and
`16` size suffixes. A map's name and folder lose the word `test` of Cartopy's test suite
(`test_gridliner/test_grid_labels_inline_Mollweide.png` -> `gridliner/grid_labels_inline_Mollweide.png`): the
pictures are real maps, and their captions ("test grid labels inline mollweide") said a word no map shows. A set
unlike the icons, emoji, games and formats folders: maps and charts on white (thin lines and text, which a small
dVAE finds hard) and tiny interface icons.

Usage: python bench/make_maps_folder.py OUT [--wheels DIR]   (default: /opt/pypi/files)
"""

from __future__ import annotations

import argparse
import sys
import zipfile
from pathlib import Path

SOURCES = [  # (wheel name prefix, folder in the wheel, folder in OUT)
    ("cartopy-", "cartopy/tests/mpl/baseline_images/mpl/", "maps"),
    ("cartopy-", "cartopy/data/raster/", "maps/raster"),
    ("pyside6_essentials-", "PySide6/Qt/qml/QtQuick/Controls/designer/images/", "controls"),
]
PICTURES = (".png", ".jpg")


def without_test(path: str) -> str:
    """A path of Cartopy's test suite with the word test left out of each part (test_gridliner/test_grid_labels.png
    -> gridliner/grid_labels.png); a part that is that word alone stays."""
    parts = []
    for part in path.split("/"):
        stem, dot, ext = part.rpartition(".") if "." in part else (part, "", "")
        words = [w for w in stem.split("_") if w.lower() != "test"]
        parts.append(("_".join(words) or stem) + dot + ext)
    return "/".join(parts)


def find_wheel(dirs: list[Path], prefix: str) -> Path | None:
    for d in dirs:
        found = sorted(p for p in d.glob(prefix + "*.whl"))
        if found:
            return found[-1]
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--wheels", type=Path, action="append", help="a folder of wheels (default /opt/pypi/files)")
    args = ap.parse_args()
    dirs = args.wheels or [Path("/opt/pypi/files")]
    if args.out.exists() and any(args.out.iterdir()):
        sys.exit(f"{args.out} is not empty: give a new folder")
    counts: dict[str, int] = {}
    for prefix, inside, folder in SOURCES:
        wheel = find_wheel(dirs, prefix)
        if wheel is None:
            sys.exit(f"no {prefix}*.whl under {', '.join(map(str, dirs))}: give --wheels DIR")
        with zipfile.ZipFile(wheel) as z:
            for name in sorted(z.namelist()):
                if not name.startswith(inside) or not name.lower().endswith(PICTURES):
                    continue
                rest = name[len(inside):]
                if folder == "maps":  # test_gridliner/test_grid_labels.png -> gridliner/grid_labels.png
                    rest = without_test(rest)
                dest = args.out / folder / rest
                if dest.exists():  # (two names one once test is left out: none in cartopy 0.26)
                    sys.exit(f"{name} and another picture would both be {dest}")
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(z.read(name))
                counts[folder] = counts.get(folder, 0) + 1
    total = sum(counts.values())
    print(f"{total} pictures in {args.out.name}, no captions: "
          + ", ".join(f"{n} in {f}" for f, n in counts.items()))


if __name__ == "__main__":
    main()
