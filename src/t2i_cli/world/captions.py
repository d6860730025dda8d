"""The caption grammar: captions for a scene spec, the words it can emit, and a parser back to a spec."""

from __future__ import annotations

import random
import re
import unicodedata

from t2i_cli.world.spec import COLOURS, OBJECTS, POSITIONS, ObjectSpec, SceneSpec

_PREFIXES = ("", "a picture of ", "an image of ", "a drawing of ", "an illustration of ")
_PREFIX_WEIGHTS = (0.4, 0.15, 0.15, 0.15, 0.15)
_SIZE_WORDS = {"small": ("small", "tiny"), "medium": ("",), "big": ("big", "large")}
_COUNT_WORDS = {2: "two", 3: "three", 4: "four"}
_POSITION_PHRASES = {"left": "on the left", "right": "on the right", "top": "at the top", "bottom": "at the bottom",
                     **{p: f"in the {p} corner" for p in POSITIONS if " " in p}}
_RELATION_PHRASES = {"above": "above", "below": "below", "left of": "to the left of",
                     "right of": "to the right of", "and": "and"}
_SPECIAL_PHRASES = {"sky": "in the sky", "night": "at night", "grass": "on the grass"}
# Where each object of a relation is drawn, as halves of the picture (render._RELATION_CELLS; "and" is side by
# side in either order, so a on the left): the regions of regional guidance.
_RELATION_PLACES = {"and": ("left", "right"), "left of": ("left", "right"), "right of": ("right", "left"),
                    "above": ("top", "bottom"), "below": ("bottom", "top")}


def plural(kind: str) -> str:
    """The plural noun of an object ("fish" stays "fish")."""
    return kind if kind == "fish" else kind + "s"


def _with_article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def _noun_phrase(obj: ObjectSpec, rng: random.Random, count: int = 1) -> str:
    """ "[size] colour noun", plural when count > 1, without an article."""
    size = rng.choice(_SIZE_WORDS[obj.size])
    noun = plural(obj.kind) if count > 1 else obj.kind
    return " ".join(w for w in (size, obj.colour, noun) if w)


def caption_for(spec: SceneSpec, rng: random.Random) -> str:
    """A lowercase caption for the spec, from one of several paraphrase templates."""
    obj, bg = spec.objects[0], spec.background
    is_terse = spec.relation is None and bg in COLOURS and rng.random() < 0.3  # "red bird, blue background"
    if spec.relation is not None:
        a, b = (_with_article(_noun_phrase(o, rng)) for o in spec.objects)
        core = f"{a} {_RELATION_PHRASES[spec.relation]} {b}"
    elif spec.count > 1:
        core = f"{_COUNT_WORDS[spec.count]} {_noun_phrase(obj, rng, spec.count)}"
    else:
        core = _noun_phrase(obj, rng) + (f" {_POSITION_PHRASES[obj.position]}" if obj.position else "")
        core = core if is_terse else _with_article(core)
    if is_terse:
        return f"{core}, {bg} background"
    prefix = rng.choices(_PREFIXES, _PREFIX_WEIGHTS)[0]
    if bg in COLOURS:
        core += f" on {_with_article(bg)} background"
    elif bg is not None:
        core += f" {_SPECIAL_PHRASES[bg]}"
    return prefix + core


def vocabulary_words() -> set[str]:
    """Every word the caption grammar can emit."""
    phrases = [*_PREFIXES, *_POSITION_PHRASES.values(), *_RELATION_PHRASES.values(), *_SPECIAL_PHRASES.values(),
               *COLOURS, *OBJECTS, *map(plural, OBJECTS), *_COUNT_WORDS.values(), "a an on background"]
    phrases += [w for words in _SIZE_WORDS.values() for w in words]
    return {w for p in phrases for w in p.split()}


def region_prompts(prompt: str) -> list[tuple[str, str]] | None:
    """For a prompt of two objects in a relation ("a red bird and a small blue fish"), each object's own
    caption in the half where the world draws it, with the background: [("a red bird on the left", "left"),
    ("a small blue fish on the right", "right")] (regional guidance, sampling.Regions). None for any other
    prompt (one object, a count, or not the world's grammar)."""
    return _regions(prompt, with_place=True)


def object_prompts(prompt: str) -> list[tuple[str, str]] | None:
    """region_prompts without the place in the text (the background stays): [("a red bird", "left"),
    ("a small blue fish", "right")], what each object's half of the picture shows on its own (the reranker's
    crop scores, pipeline.TextToImage.score)."""
    return _regions(prompt, with_place=False)


def _regions(prompt: str, with_place: bool) -> list[tuple[str, str]] | None:
    spec = parse_prompt(prompt)
    if spec is None or spec.relation is None:
        return None
    out = []
    for obj, place in zip(spec.objects, _RELATION_PLACES[spec.relation], strict=True):
        words = " ".join(w for w in ({"small": "small", "big": "big"}.get(obj.size, ""), obj.colour, obj.kind) if w)
        text = _with_article(words) + (f" {_POSITION_PHRASES[place]}" if with_place else "")
        if spec.background in COLOURS:
            text += f" on {_with_article(spec.background)} background"
        elif spec.background is not None:
            text += f" {_SPECIAL_PHRASES[spec.background]}"
        out.append((text, place))
    return out


# ----------------------------------------------------------------------------- parsing
_NOUNS = {**{k: (k, False) for k in OBJECTS}, **{plural(k): (k, True) for k in OBJECTS}, "fishes": ("fish", True)}
_SIZE_OF = {"small": "small", "tiny": "small", "little": "small", "big": "big", "large": "big", "huge": "big",
            "medium": "medium"}
_COUNT_OF = {"a": 1, "an": 1, "one": 1, "1": 1, "two": 2, "2": 2, "three": 3, "3": 3, "four": 4, "4": 4}
_PREFIX_RE = re.compile(r"^(?:(?:a|an|the)\s+)?(?:picture|image|drawing|illustration|photo|painting|cartoon|sketch"
                        r"|render|rendering)\s+of\s+")
_BG_RE = re.compile(r"(?:,\s*|\s+(?:on|with|against)\s+(?:an?\s+|the\s+)?|\s+)(\w+)\s+background$")
_SPECIAL_RE = re.compile(r"\s+(in the sky|at night|on (?:the )?grass)$")
_POS_RE = re.compile(r"\s+(?:on the (left|right)|(?:at|on) the (top|bottom)"
                     r"|in the (top|bottom) (left|right)(?: corner)?)$")
_REL_RE = re.compile(r"\s+(above|below|to the left of|to the right of|left of|right of|and|next to|beside)\s+")
_REL_OF = {"to the left of": "left of", "to the right of": "right of", "next to": "and", "beside": "and"}


def parse_prompt(text: str) -> SceneSpec | None:
    """Best-effort parse of a caption or simple prompt into a spec; None when it is not understood. The text is read
    as the tokenizer reads it (NFKC, models.tokenizer.PROCESSING): in decomposed form (NFD: "blue" and a combining
    accent, which the tokenizer reads as "blué") it was read as "blue", and drew regional guidance its composed form
    did not; in full-width letters ("ａ ｒｅｄ ｂｉｒｄ ａｎｄ ...", a Japanese keyboard's), or with a ligature ("ﬁsh"),
    which the tokenizer reads as the ASCII prompt, it was no pair, and drew none. Without the format characters the
    tokenizer does not read (models.tokenizer.without_format: "red" with a soft hyphen in it is "red"; a zero-width
    space parts words, as a space does)."""
    from t2i_cli.models.tokenizer import without_format

    text = unicodedata.normalize("NFKC", without_format(text))
    t = re.sub(r"[^a-z0-9, ]+", " ", text.lower().replace("grey", "gray").replace("-", " "))
    t = re.sub(r"\s*,\s*", ", ", re.sub(r"\s+", " ", t)).strip(" ,")
    t = _PREFIX_RE.sub("", t)
    background = None
    if m := _SPECIAL_RE.search(t):
        background, t = {"in the sky": "sky", "at night": "night"}.get(m.group(1), "grass"), t[:m.start()]
    elif (m := _BG_RE.search(t)) and m.group(1) in COLOURS:
        background, t = m.group(1), t[:m.start()]
    position = None
    if m := _POS_RE.search(t):
        position, t = " ".join(g for g in m.groups() if g), t[:m.start()]
    parts = _REL_RE.split(t, maxsplit=1)
    try:
        if len(parts) == 3:
            (a, ca), (b, cb) = _parse_object(parts[0]), _parse_object(parts[2])
            if ca != 1 or cb != 1:
                return None
            return SceneSpec((a, b), 1, _REL_OF.get(parts[1], parts[1]), background)
        obj, count = _parse_object(parts[0], position)
        return SceneSpec((obj,), count, None, background)
    except ValueError:
        return None


def _parse_object(phrase: str, position: str | None = None) -> tuple[ObjectSpec, int]:
    """ "[a|two] [size] colour noun" -> (ObjectSpec, count); ValueError when it is not that."""
    words = phrase.replace(",", " ").split()
    count = _COUNT_OF.get(words[0], 0) if words else 0
    words = words[1:] if count else words
    size = "medium"
    if words and words[0] in _SIZE_OF:
        size, words = _SIZE_OF[words[0]], words[1:]
    if len(words) != 2 or words[0] not in COLOURS or words[1] not in _NOUNS:
        raise ValueError(phrase)
    kind, is_plural = _NOUNS[words[1]]
    if is_plural and kind != "fish" and count < 2:  # "red birds" says neither how many nor one
        raise ValueError(phrase)
    count = count or 1
    return ObjectSpec(kind, words[0], size, position), count
