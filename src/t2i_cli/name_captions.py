"""`t2i data caption`: captions made from pictures' file names or folder names, written as the NAME.txt files a
training folder reads, for the pictures that have none (a folder of named pictures: icons, emoji, sprites, a
class-per-folder collection). A caption file that exists is never replaced."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from t2i_cli.errors import counted
from t2i_cli.files import write_if_absent

SOURCES = ("name", "folder")  # what a caption is made from: the picture's file name, or its folder's name

# Words that say where a picture came from, not what it shows: a name of only these (and numbers) is a camera's or
# a tool's ("IMG_2041", "DSC00012", "Screenshot 2024-05-01 at 10.31.02", "untitled-3", "photo (2)"), no caption.
TOOL_WORDS = frozenset("""img image images dsc dscn dscf dcim pxl mvimg pano vid video screenshot screen shot scan
scanned photo photos pic pics picture pictures untitled unnamed copy file frame export exported edited final
sample at am pm""".split())
# camelCase and letter-digit boundaries ("RedBird2" -> Red Bird 2; "HTMLParser" -> HTML Parser)
_CASE = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])|(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])")
_SEPARATORS = re.compile(r"[\s\x00-\x1f\x7f\-_.,+=~#@&;:!?()\[\]{}<>\"|/\\]+")  # (control characters too)
_HEX_ID = re.compile(r"(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{8,}")  # a hash or UUID piece: letters and digits
# a file manager's copy: macOS' "bird copy", "bird copy 2"; Windows' "bird - Copy", "bird - Copy (2)" (not "edit-copy")
_COPY = re.compile(r"(?:\s+-)?\s+copy(?:\s*\(?\d+\)?)?\s*$", re.IGNORECASE)
_WORD = re.compile(r"[^\W\d_]{2,}")  # two letters or more in a row (in any script)


def caption_of(name: str) -> str | None:
    """A caption made of a file or folder name ("red-bird_02" -> "red bird", "BlueFish" -> "blue fish"): its
    words lowercased, without a number at its end or a file manager's "copy" ("bird copy 2", "bird - Copy"),
    numbers of 5 digits or more (dates, counters), hash-like pieces or an ImageNet-style id (n01440764); None
    where no word is left that says more than where the picture came from (TOOL_WORDS: a camera's or a
    screenshot tool's name)."""
    words = []
    name = _COPY.sub("", name)
    for piece in _SEPARATORS.split(name):
        if _HEX_ID.fullmatch(piece.lower()) or re.fullmatch(r"n\d{8}", piece):
            continue
        words += [w.lower() for w in _CASE.split(piece) if w]
    words = [w for w in words if not (w.isdigit() and len(w) >= 5)]
    while words and words[-1].isdigit():
        words.pop()
    if not any((_WORD.fullmatch(w) or (len(w) == 1 and w.isalpha() and not w.isascii())) and w not in TOOL_WORDS
               for w in words):  # (one letter of a script without spaces is a word: 猫)
        return None
    return " ".join(words)


@dataclass
class CaptionPlan:
    """What `t2i data caption` writes: caption file -> (caption, the pictures it captions), and what it leaves."""

    folder: Path
    source: str
    writes: dict[Path, tuple[str, list[Path]]] = field(default_factory=dict)
    nameless: list[Path] = field(default_factory=list)  # pictures whose name (or folder's) holds no words
    captioned: int = 0  # pictures that have a caption already (left as they are)
    taken: list[Path] = field(default_factory=list)  # caption names taken by what is no caption file (a folder, a
    # link to a missing file): never written, and not "made meanwhile by something else"


def write_captions(plan: CaptionPlan, done: Callable[[int, int], None] = lambda k, n: None) -> tuple[list[Path], int]:
    """Write each planned caption file whole (files.write_if_absent: a caption file made meanwhile is kept, not
    replaced). (the files written, the number found made meanwhile)."""
    written, existing = [], 0
    for k, (txt, (caption, _)) in enumerate(sorted(plan.writes.items())):
        done(k, len(plan.writes))
        if write_if_absent(txt, (caption + "\n").encode("utf-8")):
            written.append(txt)
        else:
            existing += 1
    done(len(plan.writes), len(plan.writes))
    return written, existing


def summary(plan: CaptionPlan) -> str:
    """What the plan leaves out, in one line (None said as ''): pictures with a caption, names without words."""
    parts = []
    if plan.captioned:
        parts.append(f"{counted(plan.captioned, 'picture')} already captioned (left untouched)")
    if plan.nameless:
        what = "folder's name" if plan.source == "folder" else "name"
        parts.append(f"{counted(len(plan.nameless), 'picture')} whose {what} holds no words to caption it by, e.g. "
                     f"{plan.nameless[0]}")
    if plan.taken:
        n = len(plan.taken)
        parts.append(f"{n} caption file name{'' if n == 1 else 's'} taken by what is not a caption file (a folder, "
                     f"a link to a missing file), e.g. {plan.taken[0]}: rename it, then run this again")
    return "; ".join(parts)
