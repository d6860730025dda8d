"""How often the folder hints of session 38 fire: captions wrapped over several lines (data._wrapped_at) and a
tokenizer that reads many caption words as unknown (stages.unknown_share).

Wrapped captions, on real folders of one caption a line (the icons, `t2i data world` folders of each split), on
files of several distinct captions a line drawn from the icons, the world and the Unicode names of emoji (what
must not fire), and on captions hard-wrapped by textwrap at an editor's widths (what should). Unknown words, by
--vocab-size, on the icons' and the world's training captions, as the tokenizer stage trains and measures them.

Usage: python bench/caption_hints.py ICONS WORLD_FOLDER... (ICONS: bench/make_icon_folder.py's; WORLD_FOLDER:
`t2i data world --split S --n 1000 --side 16 --out DIR`'s)
"""

from __future__ import annotations

import random
import sys
import textwrap
import unicodedata
from pathlib import Path

from t2i_cli import data, world
from t2i_cli.models.tokenizer import TextTokenizer
from t2i_cli.stages import UNKNOWN_SAMPLE, UNKNOWN_WARN, unknown_share


def wrapped(caption_file: Path) -> bool:
    return data._wrapped_at(data._caption_lines(data._caption_text(caption_file.read_bytes()))) is not None


def main(icons: Path, worlds: list[Path]) -> None:
    print("## wrapped captions")
    for folder in [icons, *worlds]:
        files = sorted(folder.rglob("*.txt"))
        print(f"{folder}: fires on {sum(map(wrapped, files))} of {len(files)} caption files; summary: "
              f"{data.open_source(str(folder), 16, val_fraction=0.0).skipped_message()}")
    icon_captions = [p.read_text().strip() for p in sorted(icons.glob("*.txt"))]
    world_captions = [world.scene_caption(split, i)[0] for split in world.SPLITS for i in range(3000)]
    emoji = sorted({unicodedata.name(chr(c)).lower() for lo, hi in [(0x2600, 0x27BF), (0x1F300, 0x1FAFF)]
                    for c in range(lo, hi + 1) if unicodedata.name(chr(c), "")})
    rng = random.Random(0)
    for name, captions in [("icons", icon_captions), ("world", world_captions), ("emoji names", emoji)]:
        for k in (2, 4, 8):
            files = [rng.sample(captions, k) for _ in range(3000)]
            print(f"{name}, files of {k} distinct captions a line: fires on "
                  f"{sum(data._wrapped_at(f) is not None for f in files)} of {len(files)}")
    for width in (30, 40, 60, 80):
        joined = [textwrap.wrap(f"{a}, beside {b}", width) for a, b in (rng.sample(world_captions, 2)
                                                                         for _ in range(3000))]
        joined = [lines for lines in joined if len(lines) > 1]
        print(f"two world captions as one sentence, wrapped at {width}: fires on "
              f"{sum(data._wrapped_at(lines) is not None for lines in joined)} of {len(joined)} that wrapped")
    print(f"## unknown words (warning above {UNKNOWN_WARN:.0%})")
    for name, source in [("icons", str(icons)), ("world", "world")]:
        ds = data.open_source(source, 16, part="train")
        captions = list(data.captions(ds, limit=2000))
        for vocab in (3, 8, 16, 24, 32, 128, 512):
            tok = TextTokenizer.train(captions, vocab_size=vocab)
            lost, words, example = unknown_share(tok, data.captions(ds, limit=min(2000, UNKNOWN_SAMPLE)))
            print(f"{name} ({len(captions)} captions), --vocab-size {vocab}: {lost:,} of {words:,} words unknown "
                  f"({lost / words:.1%}){', e.g. ' + repr(example) if lost else ''}"
                  f"{'  -> warns' if lost / words > UNKNOWN_WARN else ''}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(Path(sys.argv[1]), [Path(a) for a in sys.argv[2:]])
