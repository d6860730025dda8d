"""The few exception types t2i raises; the CLI turns each into one line and an exit code; and how those lines
count things."""

from __future__ import annotations

from typing import Iterator


class T2IError(Exception):
    """A problem the user can act on; the message says what went wrong and what to do."""

    exit_code = 1


class UsageError(T2IError):
    """A bad command-line value (exit code 2)."""

    exit_code = 2


class WeightsError(T2IError):
    """A weights file or folder that is missing, corrupt or does not match its model."""


class DataError(T2IError):
    """A data source with nothing usable in it, or a file that cannot be read."""


class OutputError(T2IError):
    """An output path that cannot be written."""


def raised_while(e: BaseException) -> Iterator[BaseException]:
    """What e was raised while handling, and what that was raised while handling, and so on (its __context__
    chain, e itself left out): a chain that loops back (an exception re-raised inside its own handling) ends
    there. The command line looks in it for what a stop cut into (cli._in_context); a whole run gives each the
    run's own note (recipe.train_all)."""
    seen, chain = e.__context__, set()
    while seen is not None and id(seen) not in chain:
        yield seen
        chain.add(id(seen))
        seen = seen.__context__


# Whether a refusal is said to the command line (cli.user_errors sets it while a command runs): shared checks name
# the option a user typed there (--top-k 1) and, called from Python, the keyword the caller passed (top_k=1).
SPEAKING = {"cli": False}
_UNSET = object()


def option(name: str, value: object = _UNSET, cli: str | None = None) -> str:
    """How a refusal names a setting (and its value): "--top-k" / "--top-k 1" from the command line (cli: the flag
    where it is not the keyword's, `rerank --precision` for clip_precision), "top_k" / "top_k=1" from Python."""
    if SPEAKING["cli"]:
        shown = cli or "--" + name.replace("_", "-")
        if value is _UNSET:
            return shown
        return f"{shown} {said_float(value) if isinstance(value, float) else said_value(value, plain=True)}"
    return name if value is _UNSET else f"{name}={said_value(value)}"


def said_float(value: float) -> str:
    """A number as a message says it: its shortest form ("0.5", "1e-09"; format's g), or all its digits where that
    form is another number ("--temperature 0.99999999" was said as "--temperature 1", the value that changes
    nothing, and "--top-p 0.0019531249" as "0.00195312"); a whole number as said_value says it."""
    if isinstance(value, int) and not isinstance(value, bool):
        return said_value(value, plain=True)
    text = f"{value:g}"
    return text if float(text) == value else repr(float(value))


SAID_DIGITS = 40  # digits of a whole number a message shows; a longer one is said by its length


def said_value(value: object, plain: bool = False) -> str:
    """A user's value as a refusal shows it: repr(value) (str(value) where plain), but a whole number of more than
    SAID_DIGITS digits by its length ("a whole number of 5,001 digits"): Python will not write one of more than
    4,300 digits, and `got {n!r}` of n=10**5000 raised "Exceeds the limit (4300 digits) for integer string
    conversion" instead of the refusal."""
    if isinstance(value, int) and not isinstance(value, bool):
        size = abs(value)
        if size >= 10 ** SAID_DIGITS:
            digits = int(size.bit_length() * 0.30102999566398120)  # (log10(2): a floor of the digits, or one less)
            digits += size >= 10 ** digits
            return f"a {'negative ' if value < 0 else ''}whole number of {digits:,} digits"
    return str(value) if plain else repr(value)


def spoken(cli: str, python: str) -> str:
    """Words a message says differently to the command line and to a Python caller, where option's one setting
    is not enough ("--resume RUN" / "resume=True", "--model pixel_eps=0" / "model={'pixel_eps': 0}")."""
    return cli if SPEAKING["cli"] else python


def model_option(key: str, value: object) -> str:
    """How a message names one model setting: "--model n_head=3" (--model KEY=VALUE) to the command line,
    "model={'n_head': 3}" (TrainConfig.model) from Python."""
    shown = said_float(value) if isinstance(value, float) else said_value(value, plain=True)
    return spoken(f"--model {key}={shown}", f"model={{{key!r}: {said_value(value)}}}")


class PromptWarning(UserWarning):
    """The Python API's word that a prompt loses words (past the text length, or unknown to the tokenizer); the
    commands say it in their own line instead."""


class TrainingWarning(UserWarning):
    """What a training run from Python (stages.run_stage without a warn callback) would have the user know: data
    changed since a resume's start, captions cut, fewer pictures than a batch, no validation, the watchdog's."""


def warn_caller(message: str, category: type[Warning]) -> None:
    """warnings.warn pointing at the first line outside t2i (the script's call, whatever t2i calls lie between:
    pipe(...) -> request, run_stage -> a stage's start)."""
    import os
    import sys
    import warnings

    package = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frame, level = sys._getframe(1), 2
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)


# The head nouns of what t2i's messages count, each said of one item ("unreadable image", "link to a missing file")
PLURALS = {"image": "images", "caption": "captions", "file": "files", "folder": "folders", "line": "lines",
           "copy": "copies", "path": "paths", "picture": "pictures", "item": "items", "link": "links",
           "sheet": "sheets", "prompt": "prompts", "row": "rows", "code": "codes", "tensor": "tensors",
           "validation": "validations", "loop": "loops", "scene": "scenes"}


def counted(n: int, what: str) -> str:
    """A count and what it counts: "1 unreadable image", "2 unreadable images" (the head noun of the first noun
    phrase made plural: "2 .txt captions without image", "3 links to a missing file")."""
    words = what.split(" ")
    if n != 1:
        for i, word in enumerate(words):
            if word in PLURALS and (i + 1 == len(words) or words[i + 1] not in PLURALS):
                words[i] = PLURALS[word]
                break
    return f"{n} {' '.join(words)}"


WORD_SHOWN = 40  # characters of a word a message names (a word without spaces can be a paragraph of Chinese)


def brief(text: str, room: int = WORD_SHOWN) -> str:
    """text, or its first `room` characters and how long it is where it is longer."""
    return text if len(text) <= room else f"{text[:room]}... ({len(text):,} characters)"


def ascii_number_words(text: str) -> str:
    """How a refusal of a number given in other characters than ASCII (text) says what to write: "written in the
    digits 0-9" where each such character is a digit (`٣`, an Arabic-Indic 3), else naming the first of them
    (`3e−4`, a minus sign U+2212: "written in ASCII ('−', U+2212, is not)"; it was told of digits it had right)."""
    other = [ch for ch in text if not ch.isascii()]
    if all(ch.isdigit() for ch in other):
        return "written in the digits 0-9"
    return f"written in ASCII ({other[0]!r}, U+{ord(other[0]):04X}, is not)"
