"""Build a folder of real pictures that t2i did not draw: the Noto Color Emoji, captioned by their Unicode names.

The pictures are Google's Noto Color Emoji artwork (SIL Open Font License 1.1), from the Debian package
fonts-noto-color-emoji (`apt-get install fonts-noto-color-emoji`; nothing is downloaded at run time). Each
emoji with a Unicode name is drawn once, as the font draws it: RGBA on a transparent background, so the
folder also exercises alpha handling. Its caption is the lowercased Unicode name ("bird", "red apple",
"sunrise over mountains"), written beside it as NAME.txt: exactly the folder layout `t2i train --data` reads.

Usage: python bench/make_emoji_folder.py OUT [--side 128] [--font PATH]
"""

from __future__ import annotations

import argparse
import re
import sys
import unicodedata
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
BLOCKS = [(0x2600, 0x27BF), (0x1F300, 0x1FAFF)]  # miscellaneous symbols, dingbats, the emoji blocks
NATIVE = 109  # the only size the font's colour bitmaps come in


def emoji(font: ImageFont.FreeTypeFont) -> list[tuple[str, str]]:
    """(character, caption) for every code point in BLOCKS that has a name and a full-size colour glyph."""
    out = []
    for lo, hi in BLOCKS:
        for cp in range(lo, hi + 1):
            ch = chr(cp)
            try:
                name = unicodedata.name(ch)
            except ValueError:
                continue
            box = font.getbbox(ch)
            if box[2] - box[0] < NATIVE // 2 or not font.getmask(ch).getbbox():
                continue  # not in the font (a blank or tiny fallback box)
            out.append((ch, re.sub(r"\s+", " ", name.lower()).strip()))
    return out


def draw(font: ImageFont.FreeTypeFont, ch: str, side: int) -> Image.Image:
    """The glyph centred on a transparent square, scaled to side x side."""
    canvas = Image.new("RGBA", (NATIVE + 40, NATIVE + 40), (0, 0, 0, 0))
    ImageDraw.Draw(canvas).text((20, 20), ch, font=font, embedded_color=True)
    x0, y0, x1, y1 = canvas.getbbox()
    size = max(x1 - x0, y1 - y0) + 8
    square = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    square.paste(canvas.crop((x0, y0, x1, y1)), ((size - (x1 - x0)) // 2, (size - (y1 - y0)) // 2))
    return square.resize((side, side), Image.LANCZOS)


def folder_args(doc: str, side: int, source: str, default: Path, package: str) -> argparse.Namespace | None:
    """The arguments of a script that builds a picture folder from a system package (this one and
    make_icon_folder.py): OUT, --side and --SOURCE; None, with a line naming the package, if SOURCE is missing."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--side", type=int, default=side)
    ap.add_argument(f"--{source}", type=Path, default=default)
    args = ap.parse_args()
    if not getattr(args, source).exists():
        print(f"{getattr(args, source)} not found: apt-get install {package}", file=sys.stderr)
        return None
    return args


def main() -> int:
    args = folder_args(__doc__, 128, "font", FONT, "fonts-noto-color-emoji")
    if args is None:
        return 1
    font = ImageFont.truetype(str(args.font), NATIVE)
    args.out.mkdir(parents=True, exist_ok=True)
    items = emoji(font)
    for ch, caption in items:
        stem = f"u{ord(ch):05x}-" + re.sub(r"[^a-z0-9]+", "-", caption).strip("-")[:40]
        draw(font, ch, args.side).save(args.out / f"{stem}.png")
        (args.out / f"{stem}.txt").write_text(caption + "\n")
    print(f"wrote {len(items)} emoji (PNG + caption) to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
