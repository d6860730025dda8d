"""`t2i generate --prompts FILE`: a file of prompts, one per line, read with bounds (torch-free)."""

from __future__ import annotations

import re
import sys
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from t2i_cli.errors import DataError, UsageError, counted, option

if TYPE_CHECKING:
    from t2i_cli.sampling_config import SamplingConfig

MAX_PROMPT_FILE = 4 << 20  # bytes of a prompt file read (10,000 prompts of 400 characters)
MAX_PROMPTS = 10_000  # prompts one `generate --prompts` draws
MAX_PROMPT_CHARS = 1_000  # characters of one prompt line (the model reads its first few dozen tokens; the
# tokenizer's time grows with the square of a line's length: a 1 MiB line took 36 s and 517 MB)
STDIN = "-"  # --prompts - reads standard input


INVISIBLE = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp"})  # Unicode categories that draw nothing: controls, format
# characters (a zero-width space, a byte-order mark), spaces and separators. Not "Cn", a code point unassigned in
# this Python's Unicode tables: an emoji newer than they are ("🪿", Unicode 15, is Cn to Python 3.11) is one, so a
# caption of it was empty on one Python and trained on another, and such a prompt was refused as blank.
# Characters of other categories that draw nothing either (Unicode's default ignorables): variation selectors (the
# emoji and text forms' U+FE0F, U+FE0E, and those of ideographs), the combining grapheme joiner, Mongolian's free
# variation selectors, Hangul's fillers; a prompt of one U+FE0F was drawn as an unknown word, under a hashed name
DRAWS_NOTHING = frozenset(map(chr, (*range(0xFE00, 0xFE10), *range(0xE0100, 0xE01F0), 0x034F, 0x180B, 0x180C,
                                    0x180D, 0x180F, 0x115F, 0x1160, 0x3164, 0xFFA0)))


def blank(text: str) -> bool:
    """Whether text has nothing to read: empty, spaces, or only characters that draw nothing (a prompt of one
    zero-width space was drawn as if it were one)."""
    return all(ch.isspace() or unicodedata.category(ch) in INVISIBLE or ch in DRAWS_NOTHING for ch in text)


def as_read(prompt: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A prompt as the model reads it: the words of t2i's tokenizers (models.tokenizer.PROCESSING: NFKC, lower case,
    split at whitespace and between words and marks, by the tokenizers library itself), and those the world's
    prompt parser (regional guidance) reads, in NFKC as it reads them, lower case. Two lines alike in both draw
    the same images from one seed ("A red bird" and "a red  bird" drew one picture twice; so did a line in composed
    and one in decomposed form, "café" and "cafe" with a combining accent, which no editor shows apart), without
    the format characters neither reads (models.tokenizer.without_format: a zero-width space, a direction mark).
    CJK ideographs are not split into words here, as a tokenizer an earlier t2i trained does not split them: two
    lines that only a newer tokenizer reads alike ("红色的鸟", "红色 的鸟") are drawn each, never two that differ."""
    from tokenizers import normalizers, pre_tokenizers

    from t2i_cli.models.tokenizer import without_format

    prompt = without_format(prompt)
    text = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()]).normalize_str(prompt)
    return (tuple(w for w, _ in pre_tokenizers.Whitespace().pre_tokenize_str(text)),
            tuple(re.findall(r"\w+|[^\w\s]+", unicodedata.normalize("NFKC", prompt).lower())))


@dataclass(frozen=True)
class PromptLine:
    line: int  # 1-based line of the file
    prompt: str


@dataclass(frozen=True)
class Prompts:
    prompts: tuple[PromptLine, ...]  # each distinct prompt once, in the file's order
    repeats: tuple[tuple[int, int], ...]  # (line, the earlier line whose prompt it repeats), left out of prompts

    def repeats_message(self) -> str:
        """The one warning for lines that repeat an earlier prompt ('' when none do)."""
        if not self.repeats:
            return ""
        shown = ", ".join(f"line {a} (line {b})" for a, b in self.repeats[:5])
        more = f" and {len(self.repeats) - 5} more" if len(self.repeats) > 5 else ""
        n = len(self.repeats)
        return (f"{counted(n, 'line')} {'repeats' if n == 1 else 'repeat'} an earlier prompt (letter case and spacing "
                f"aside, an accent composed or not, and marks that draw nothing, as the model reads it) and "
                f"{'is' if n == 1 else 'are'} drawn "
                f"once, since the same seed draws the same images: {shown}{more}")


def read_prompts(path: str | Path, source: str = "--prompts") -> Prompts:
    """The prompts of a UTF-8 text file (or standard input for '-'): one per line, surrounding spaces removed;
    blank lines and lines starting with '#' are skipped; a prompt repeated (as_read: case, spacing and Unicode form
    aside) is kept at its first line. Refuses a file over MAX_PROMPT_FILE bytes, over MAX_PROMPTS prompts or with a
    line over MAX_PROMPT_CHARS, not UTF-8, with a NUL or without a prompt, and standard input that is closed or a
    terminal. path as the user typed it (a str): './-' is a file named '-' (a Path cannot tell them apart:
    Path('./-') is Path('-'), standard input)."""
    stdin = str(path) == STDIN if isinstance(path, Path) else path == STDIN
    shown = str(path)
    if not shown:
        raise UsageError(f"{source} is given an empty file name; give a text file, or - for standard input")
    path = Path(path)
    name = "standard input" if stdin else shown
    if stdin:
        if sys.stdin is None or sys.stdin.closed:
            raise DataError(f"{source} - reads standard input, which is closed; pipe the prompts in "
                            "(... | t2i generate --prompts -) or give a file")
        if sys.stdin.isatty():
            raise DataError(f"{source} - reads standard input, which is a terminal: pipe the prompts in "
                            "(... | t2i generate --prompts -) or give a file")
        raw = sys.stdin.buffer.read(MAX_PROMPT_FILE + 1)
    else:
        if path.is_dir():
            raise DataError(f"{source} {shown} is a folder; give a text file with one prompt per line")
        try:
            with open(path, "rb") as f:
                raw = f.read(MAX_PROMPT_FILE + 1)
        except FileNotFoundError:
            raise DataError(f"{source} {shown} does not exist; check the path (a text file, one prompt per line)") \
                from None
        except OSError as e:
            raise DataError(f"{source} {shown} cannot be read ({e.strerror or e}); check its permissions") from None
    if len(raw) > MAX_PROMPT_FILE:
        raise DataError(f"{name} is over {MAX_PROMPT_FILE >> 20} MiB; split it into several prompt files")
    try:
        text = raw.decode("utf-8-sig")  # a byte-order mark, as some editors write, is not part of the first prompt
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise DataError(f"{name} is not UTF-8 text (line {line}); save it as UTF-8") from None
    if "\x00" in text:
        line = text[:text.index("\x00")].count("\n") + 1
        raise DataError(f"{name} has a NUL character on line {line}; is it a text file?")
    kept: list[PromptLine] = []
    first: dict[tuple[tuple[str, ...], tuple[str, ...]], int] = {}
    repeats: list[tuple[int, int]] = []
    # Lines end at \n, \r\n or \r alone (str.splitlines also breaks at form feeds and Unicode separators, which
    # would number the lines otherwise than an editor does).
    for i, line in enumerate(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"), start=1):
        prompt = line.strip()
        if blank(prompt) or prompt.startswith("#"):
            continue
        if len(prompt) > MAX_PROMPT_CHARS:
            raise DataError(f"{name}: line {i} is {len(prompt):,} characters long; a prompt is at most "
                            f"{MAX_PROMPT_CHARS:,} (the model reads only its first few dozen words)")
        if (key := as_read(prompt)) in first:
            repeats.append((i, first[key]))
            continue
        if len(kept) == MAX_PROMPTS:
            raise DataError(f"{name} has over {MAX_PROMPTS:,} prompts; split it into several prompt files")
        first[key] = i
        kept.append(PromptLine(i, prompt))
    if not kept:
        raise DataError(f"{name} has no prompt: write one per line, e.g. \"a red bird\" (blank lines and lines "
                        "starting with # are skipped)")
    return Prompts(tuple(kept), tuple(repeats))


def check_negative(negative: str | None, sampling: SamplingConfig, asked: bool = False) -> None:
    """A negative prompt is text, and works through guidance (generate and vary check it before any model
    loads, asked: from the command line; TextToImage.request again). Asked for now, a guidance below 1 is refused
    too: logits = neg + g (cond - neg) then draw toward the negative (at 0, the negative alone: a blue bird for
    "a red bird" --negative "a blue bird"); a PNG that recorded one (t2i 0.12.4 drew it) still redraws."""
    if negative is not None:
        if blank(negative):
            raise UsageError(f"{option('negative')} is empty; give the text to steer away from, or leave it out")
        if not sampling.guided:
            raise UsageError(f"{option('negative')} works through guidance, which {option('guidance', 1)} turns "
                             f"off; use a guidance above 1 (default 3)")
        low = min(sampling.guidance, sampling.guidance if sampling.guidance_start is None else sampling.guidance_start)
        if asked and low < 1:
            which = "guidance_start" if low != sampling.guidance else "guidance"
            raise UsageError(f"{option(which, low)} is below 1, where guidance draws toward the {option('negative')} "
                             f"text, not away from it; use a guidance above 1 (default 3)")
