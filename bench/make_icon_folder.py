"""Build a folder of real pictures that t2i did not draw: GNOME's Adwaita full-colour icons, captioned by name.

The pictures are the GNOME Project's Adwaita icon theme (CC-BY-SA 3.0 or LGPL 3), from the Debian package
adwaita-icon-theme, which many Linux machines have (nothing is downloaded at run time). Each full-colour icon
(not the one-colour "symbolic" ones) is taken once, at the largest size the theme draws it, as RGBA on a
transparent background, and scaled to side x side. Its caption is its name made words: "folder-pictures" ->
"folder pictures", "x-office-document" -> "office document", "face-smile-big" -> "face smile big"; written
beside it as NAME.txt, the folder layout `t2i train --data` reads. A second real-picture folder beside
bench/make_emoji_folder.py, for machines without the emoji font.

Usage: python bench/make_icon_folder.py OUT [--side 64] [--theme /usr/share/icons/Adwaita]
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_emoji_folder import folder_args  # noqa: E402  (the shared command line)

THEME = Path("/usr/share/icons/Adwaita")
DROP = {"x", "rtl", "ltr"}  # MIME-style "x-" prefixes and direction variants say nothing about the picture


def caption(name: str) -> str:
    """'application-x-executable' -> 'application executable'."""
    words = [w for w in re.split(r"[-_.]+", name.lower()) if w and w not in DROP]
    return " ".join(words)


def icons(theme: Path) -> dict[str, Path]:
    """name -> the PNG of the largest size the theme draws it at, full-colour icons only."""
    best: dict[str, tuple[int, Path]] = {}
    for png in sorted(theme.glob("*x*/*/*.png")):
        if "symbolic" in png.name:
            continue
        try:
            size = int(png.parts[-3].split("x")[0])
        except ValueError:
            continue
        name = png.stem
        if name not in best or size > best[name][0]:
            best[name] = (size, png)
    return {name: path for name, (_, path) in sorted(best.items())}


def main() -> int:
    args = folder_args(__doc__, 64, "theme", THEME, "adwaita-icon-theme")
    if args is None:
        return 1
    found = icons(args.theme)
    if not found:
        print(f"no full-colour PNG icons under {args.theme}", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    seen: dict[str, int] = {}
    for name, path in found.items():
        text = caption(name)
        if not text:
            continue
        seen[text] = seen.get(text, 0) + 1
        stem = re.sub(r"[^a-z0-9]+", "-", text)[:48] + ("" if seen[text] == 1 else f"-{seen[text]}")
        with Image.open(path) as im:
            im.convert("RGBA").resize((args.side, args.side), Image.LANCZOS).save(args.out / f"{stem}.png")
        (args.out / f"{stem}.txt").write_text(text + "\n")
    print(f"wrote {sum(seen.values())} icons (PNG + caption, {len(seen)} distinct captions) to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
