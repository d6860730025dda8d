"""TextTokenizer: lowercase BPE (the tokenizers library) with DALL-E's per-position padding tokens."""

from __future__ import annotations

import json
import threading
import unicodedata
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers

UNK = "[UNK]"

# Format characters (Unicode category Cf) that are seen: they stay. The prepended concatenation marks (Arabic's
# number sign, end of ayah, Syriac's abbreviation mark, Kaithi's number signs) are drawn around the digits after them.
SEEN_FORMAT = frozenset(map(chr, (*range(0x0600, 0x0606), 0x06DD, 0x070F, 0x0890, 0x0891, 0x08E2, 0x110BD, 0x110CD)))
JOINERS = frozenset({"\u200c", "\u200d"})  # zero-width non-joiner and joiner: part of an emoji sequence ("👨‍👩‍👧",
# a family, is not "👨👩👧", three people) or of a word of a script they shape (Persian, the Indic scripts)
BLACK_FLAG = "\U0001f3f4"  # a subdivision's flag is it and tag characters: "🏴" U+E0067 U+E0062 ... is Scotland's
TAGS = range(0xE0020, 0xE0080)
ZERO_WIDTH_SPACE = "\u200b"


KEYCAP = "\u20e3"  # a keycap emoji's enclosing mark after "#", "*" or a digit (and VS16): "#" VS16 U+20E3, "#️⃣"


def _glue(word: str) -> bool:
    """Whether a pre-tokenizer's word is only the glue of a sequence (a joiner, a variation selector, tags): the
    whitespace pre-tokenizer reads the joiner as a letter, so an emoji ZWJ sequence's joiners ("👨" ZWJ "👩", and
    "🏳" VS16 ZWJ "🌈") were words of their own, listed as unknown words and counted among a caption's words; and a
    keycap's enclosing mark after "#" or "*" ("#️⃣" was the words "#" and "️⃣", where "1️⃣" was one: a digit and the
    marks are one word to the pre-tokenizer, "#" and them two)."""
    return word != "" and all(ch in JOINERS or "\ufe00" <= ch <= "\ufe0f" or "\U000e0100" <= ch <= "\U000e01ef"
                              or ord(ch) in TAGS or ch == KEYCAP for ch in word)


def _joined(ch: str) -> bool:
    """Whether ch can be one side of a joiner that means something: a character beyond ASCII that is drawn (an
    emoji, its variation selector or skin tone, a letter or mark of a script written with joiners)."""
    return not ch.isascii() and not ch.isspace() and unicodedata.category(ch) not in ("Cc", "Cf", "Zs", "Zl", "Zp")


def joins(text: str, i: int) -> bool:
    """Whether a joiner at text[i] stands between two characters beyond ASCII that are drawn (and so means
    something: an emoji sequence, a Persian or Indic word's spelling)."""
    return 0 < i < len(text) - 1 and _joined(text[i - 1]) and _joined(text[i + 1])


def _kept(text: str, i: int, flagged: bool) -> bool:
    """Whether the format character text[i] carries meaning where it stands (flagged: whether the characters before
    it, back over any tags, begin with the black flag, as without_format follows it in one pass: a walk back over
    the tags at each tag took a run of n tags n * n / 2 steps, 30 s for the 16,000 of a 64 KB caption file)."""
    ch = text[i]
    if ch in SEEN_FORMAT:
        return True
    if ch in JOINERS:
        return joins(text, i)
    if ord(ch) in TAGS:  # a tag sequence after the black flag
        return flagged
    return False


def without_format(text: str) -> str:
    """text without the Unicode format characters (category Cf) that draw nothing and mean nothing where they
    stand: the direction marks and overrides (LRM, RLM, U+202A..U+202E, U+2066..U+2069), the word joiner, a
    byte-order mark, a soft hyphen, a joiner beside ASCII or a space... Each was read as a word of its own, an
    unknown one, or split the word it stood in ("a red bird" with a soft hyphen or a direction mark in "red" drew
    other images than "a red bird", and a caption trained with one taught another word), and a right-to-left
    override drew a sheet's label backwards. A zero-width space, which marks where a word ends (as Thai is written,
    without spaces), is read as a space. What means something stays: a joiner between two characters beyond ASCII
    that are drawn (an emoji sequence, a Persian or Indic word), the tags of a subdivision's flag, the marks drawn
    around digits (Arabic's number sign). Text without a format character is returned as it is (the prompts of the
    shipped weights read as before)."""
    if text.isascii() or not any(unicodedata.category(ch) == "Cf" for ch in text):
        return text
    kept, flagged = [], False  # (flagged: the last character that is no tag is the black flag)
    for i, ch in enumerate(text):
        if unicodedata.category(ch) != "Cf" or ch == ZERO_WIDTH_SPACE or _kept(text, i, flagged):
            kept.append(" " if ch == ZERO_WIDTH_SPACE else ch)
        if ord(ch) not in TAGS:
            flagged = ch == BLACK_FLAG
    return "".join(kept)


@dataclass(frozen=True)
class Encoded:
    """One prompt as text_len token ids, with what was lost on the way."""

    ids: list[int]  # text_len ids; padding position p holds id n_bpe + p
    n_dropped: int  # BPE tokens cut off because the prompt was longer than text_len
    unknown_words: list[str]  # words the tokenizer has no single token for (likely unseen in training)


# How every tokenizer t2i trains turns text into tokens (TextTokenizer.train): the kinds of its steps (the
# pre-tokenizer of one an earlier t2i trained; now, IDEOGRAPH_SPLIT's)
PROCESSING = {"normalizer": ("Sequence", ["NFKC", "Lowercase"]), "pre_tokenizer": ("Whitespace", None),
              "post_processor": None, "decoder": None}
# CJK ideographs (BERT's ranges): each a word of its own to the pre-tokenizer of a tokenizer t2i trains, as BERT's
# are. Chinese is written without spaces, so a caption was one word to the whitespace pre-tokenizer alone, and its
# tokens were chunks of whole captions ("三只红色的鸟" one token, "一只红色的" and "鸟" another caption's), which a new
# caption reads in other chunks than the captions it was trained on. Kana, Hangul and Thai are not split.
CJK_IDEOGRAPHS = ("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002a6df\U0002a700-\U0002ceaf"
                  "\U0002f800-\U0002fa1f]")
# That pre-tokenizer as a tokenizer file's JSON holds it
IDEOGRAPH_SPLIT = {"type": "Sequence", "pretokenizers": [
    {"type": "Split", "pattern": {"Regex": CJK_IDEOGRAPHS}, "behavior": "Isolated", "invert": False},
    {"type": "Whitespace"}]}


def _pre_tokenizer() -> pre_tokenizers.PreTokenizer:
    """The pre-tokenizer of the tokenizers t2i trains: each CJK ideograph a word, then words at whitespace and
    between letters and marks (pre_tokenizers.Whitespace)."""
    return pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(CJK_IDEOGRAPHS), "isolated"),
                                    pre_tokenizers.Whitespace()])


def _kinds(step: object) -> object:
    """A processing step of a tokenizer file as (its type, the types of a Sequence's steps); None for none."""
    if not isinstance(step, dict):
        return step
    inner = step.get("normalizers")
    if not isinstance(inner, list):
        return step.get("type"), None
    return step.get("type"), [x.get("type") if isinstance(x, dict) else x for x in inner]


def check_processing(text: str) -> None:
    """ValueError unless a tokenizer file's JSON is a BPE model without dropout that processes text exactly as
    t2i's own do (PROCESSING). The library runs whatever a file describes: a post-processor that adds an id
    beyond the vocabulary failed deep in the model, a normaliser that replaces a letter with millions of spaces
    took a gigabyte per prompt, and dropout tokenizes the same prompt differently on every call. Its
    pre-tokenizer is the whitespace one alone (a file trained before CJK ideographs were split) or IDEOGRAPH_SPLIT
    (by the fields that decide how it splits: _is_ideograph_split), each file tokenizing as it was trained to."""
    try:
        spec = json.loads(text)
    except RecursionError:
        raise ValueError("its JSON is nested too deeply") from None
    if not isinstance(spec, dict) or not isinstance(spec.get("model"), dict):
        raise ValueError("it is not a JSON object with a model")
    model = spec["model"]
    if model.get("type") != "BPE" or model.get("dropout") is not None:
        raise ValueError(f"its model is {str(model.get('type'))[:20]!r} with dropout {model.get('dropout')!r}, not "
                         "BPE without dropout as t2i trains")
    for key, want in PROCESSING.items():
        if _kinds(spec.get(key)) != want and not (key == "pre_tokenizer" and _is_ideograph_split(spec.get(key))):
            raise ValueError(f"its {key} is not the one t2i's tokenizers use")


def _is_ideograph_split(step: object) -> bool:
    """Whether a tokenizer file's pre-tokenizer splits text as IDEOGRAPH_SPLIT does, by the fields that decide
    it: a Sequence of a Split by CJK_IDEOGRAPHS as a regex, isolated and not inverted, then Whitespace. Other
    fields (a later tokenizers that writes a default it adds) and the order of the names are not compared: an
    exact comparison of the JSON refused t2i's own tokenizer files written by such a version."""
    if not isinstance(step, dict) or step.get("type") != "Sequence":
        return False
    steps = step.get("pretokenizers")
    if not isinstance(steps, list) or len(steps) != 2 or not all(isinstance(s, dict) for s in steps):
        return False
    split, words = steps
    behavior = split.get("behavior")
    return (split.get("type") == "Split" and split.get("pattern") == {"Regex": CJK_IDEOGRAPHS}
            and isinstance(behavior, str) and behavior.lower() == "isolated" and split.get("invert", False) is False
            and words.get("type") == "Whitespace")


STOP_WAIT = 0.05  # seconds between the main thread's checks of a thread it waits for (_stoppable)
_LEFT: list[threading.Event] = []  # the ends (set) of trainings a stop left running (training_left)


def training_left() -> bool:
    """Whether a tokenizer training that a stop left behind still runs (its library reads the captions on threads
    of its own, calling Python): the command line then ends its process at once (os._exit, its files written),
    not through Python's teardown (1.37 s median, BENCHMARKS.md "A stop during the tokenizer stage's training";
    and a thread of the library calling into Python while the interpreter is torn down has no defined outcome)."""
    return any(not ended.is_set() for ended in _LEFT)


def _stoppable(work) -> None:
    """work() (the tokenizers library's training, which releases the GIL and checks no Python signal), run so a
    stop's handler runs at once: from the main thread, in a daemon thread that the main thread waits for in short
    waits on an Event (a KeyboardInterrupt there leaves the thread to finish alone, its result unread); elsewhere
    (no signal handler runs there) in place. What work() raised is raised again in the caller."""
    if threading.current_thread() is not threading.main_thread():
        work()
        return
    raised: list[BaseException] = []
    ended = threading.Event()  # (not Thread.join: a join that a KeyboardInterrupt cuts marks the thread stopped in
    # Python 3.11, bpo-45274's handling, though it runs on)

    def run() -> None:
        try:
            work()
        except BaseException as e:  # noqa: BLE001 (raised again in the caller, whatever it is)
            raised.append(e)
        finally:
            ended.set()

    threading.Thread(target=run, name="t2i-tokenizer-training", daemon=True).start()
    try:
        while not ended.wait(STOP_WAIT):
            pass
    except BaseException:  # a stop (KeyboardInterrupt): the thread finishes alone, its result unread
        if not _LEFT:  # a Python caller that exits meanwhile waits for it first (below)
            import atexit

            atexit.register(_wait_for_left)
        _LEFT.append(ended)
        raise
    if raised:
        raise raised[0]


def _wait_for_left() -> None:
    """At the interpreter's exit (an atexit callback, before its teardown), wait for the trainings a stop left: the
    library's threads call into Python, and one that did while the interpreter was torn down aborted the process
    (SIGABRT, once in 4 stops of bench/tokenizer_stop.py before that exit). The command line ends its process
    with os._exit then, which runs no atexit callback (training_left)."""
    for ended in _LEFT:
        ended.wait()


class TextTokenizer:
    """BPE over lowercased text; padding position p gets its own id (n_bpe + p) so the model knows where text ends."""

    def __init__(self, tokenizer: Tokenizer):
        self.tokenizer = tokenizer
        self.n_bpe = tokenizer.get_vocab_size()
        self.unk_id = tokenizer.token_to_id(UNK)

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int = 1024, min_frequency: int = 1) -> "TextTokenizer":
        """Train a BPE tokenizer of at most vocab_size tokens on an iterable of captions. The library keeps every
        character it sees, whatever the vocabulary size (captions of 400 distinct CJK characters made 419 tokens
        of a --vocab-size 128): where the captions hold more characters than fit beside [UNK], the most frequent
        are kept (ties by character, so the same captions give the same tokenizer: the library's own
        limit_alphabet breaks ties in a random order) and the rest read as unknown. Where the alphabet fits,
        nothing changes. Format characters that draw nothing are taken out of each caption first (without_format),
        as they are out of a prompt. Each CJK ideograph is a word of its own (IDEOGRAPH_SPLIT).

        Called from the main thread, the library's training runs in a daemon thread while the main thread waits
        (_stoppable), so a Ctrl-C, SIGTERM or SIGHUP raises KeyboardInterrupt here at once (the library's Rust trainer
        checks no signal, and reads the captions on threads of its own: it came 0.62 s late, median, BENCHMARKS.md).
        A caller that catches it gets no tokenizer; the thread goes on until the library's training ends and its
        result is discarded (the interpreter's exit waits for it: _wait_for_left). An error the training raises (a
        caption file that cannot be read) is raised here as it was."""
        if iter(texts) is texts:  # a one-shot iterator: read twice below (a list or a re-iterable is not copied)
            texts = list(texts)
        tok = Tokenizer(models.BPE(unk_token=UNK))
        tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
        tok.pre_tokenizer = _pre_tokenizer()
        counts: Counter[str] = Counter()
        for text in texts:  # the characters the library will see: normalised, in the pre-tokenizer's pieces
            for piece, _ in tok.pre_tokenizer.pre_tokenize_str(tok.normalizer.normalize_str(without_format(text))):
                counts.update(piece)
        room = max(1, vocab_size - 1)
        alphabet = {}
        if len(counts) > room:  # given as the initial alphabet, exactly these are kept
            kept = sorted(counts, key=lambda ch: (-counts[ch], ch))[:room]
            alphabet = {"initial_alphabet": kept, "limit_alphabet": len(kept)}
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=[UNK],
                                      show_progress=False, **alphabet)
        _stoppable(lambda: tok.train_from_iterator((without_format(text) for text in texts), trainer=trainer))
        return cls(tok)

    @classmethod
    def from_json(cls, text: str) -> "TextTokenizer":
        """Load from the tokenizers library's own JSON string. Padding and truncation that a file may carry
        are turned off: t2i pads and cuts to its own text length (and a fixed padding length read from a
        file would allocate that many ids per prompt). ValueError unless the file processes text as t2i's own
        tokenizers do (check_processing)."""
        check_processing(text)
        tok = Tokenizer.from_str(text)
        tok.no_padding()
        tok.no_truncation()
        return cls(tok)

    @classmethod
    def from_file(cls, path: Path) -> "TextTokenizer":
        """Load a tokenizer.json file."""
        return cls.from_json(Path(path).read_text(encoding="utf-8"))

    def to_json(self) -> str:
        """The tokenizers library's own JSON for this tokenizer."""
        return self.tokenizer.to_str()

    def vocab_size(self, text_len: int) -> int:
        """Ids the transformer's text embedding needs: BPE tokens plus one padding id per position."""
        return self.n_bpe + text_len

    def encode(self, text: str, text_len: int) -> Encoded:
        """Encode text to exactly text_len ids: truncate (counting the drop), then pad per position. Format characters
        that draw nothing are not read (without_format: a zero-width space or a direction mark was a word; the
        words named in unknown_words are of the text without them)."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        if isinstance(text_len, bool) or not isinstance(text_len, int) or text_len < 1:
            raise ValueError(f"text_len must be a whole number of 1 or more, got {text_len!r}")
        text = without_format(text)
        enc = self.tokenizer.encode(text)
        ids = list(enc.ids)
        n_dropped = max(0, len(ids) - text_len)
        ids = ids[:text_len]
        ids += [self.n_bpe + p for p in range(len(ids), text_len)]
        return Encoded(ids=ids, n_dropped=n_dropped, unknown_words=self._unknown_words(text, enc))

    def words(self, text: str, text_len: int) -> list[tuple[str, list[int]]]:
        """The prompt's words, each with the positions of its tokens among the first text_len (a word cut off
        by text_len is left out), in order: the words of text without the format characters encode() does not read."""
        text = without_format(text)
        enc = self.tokenizer.encode(text)
        # by the characters of the prompt they come from: a character that normalisation makes several words
        # ("½" is "1⁄2") is one word of the prompt (it was three, and `rerank --explain` drew three "½" panels)
        spans: dict[tuple[int, int], list[int]] = {}
        for pos, word_index in enumerate(enc.word_ids[:text_len]):
            if word_index is not None:
                spans.setdefault(_whole(text, enc.word_to_chars(word_index)), []).append(pos)
        # an emoji sequence's glue and the emoji after it are one word with the emoji before it (_glue: "👨" ZWJ "👩"
        # ZWJ "👧", a family, was five words, two of them the invisible joiner, each a `rerank --explain` panel)
        merged = _sequences(text, ((start, end, positions) for (start, end), positions in spans.items()))
        return [(text[start:end], positions) for start, end, positions in merged]

    def empty(self, text_len: int) -> list[int]:
        """The ids of the empty prompt (all padding): the unconditional input for guidance."""
        return [self.n_bpe + p for p in range(text_len)]

    def decode(self, ids: list[int]) -> str:
        """Text from ids, padding ids ignored: the pieces joined by spaces. A word the tokenizer split reads as its
        pieces ("zebra" -> "e b ra"): its pieces carry no mark of where a word ends (BPE over whitespace-split
        words), so where a prompt's words begin is `words()`'s, which reads them from the text."""
        return self.tokenizer.decode([i for i in ids if i < self.n_bpe])

    def unread_words(self, text: str) -> tuple[list[str], int]:
        """(the words of text with an [UNK] token, a character the vocabulary lacks: each time met, in order; how
        many words text has). A word split into pieces is read (the tokenizer stage's check of its vocabulary). Format
        characters that draw nothing are not read, as encode() does not read them, and a sequence's glue between
        emoji is no word (_glue)."""
        text = without_format(text)
        words = self._whole_words(text, self.tokenizer.encode(text))
        return [word for word, members in words if any(self.unk_id in ids for _, ids in members)], len(words)

    def _whole_words(self, text: str, enc) -> list[tuple[str, list[tuple[str, list[int]]]]]:
        """The pre-tokenizer's words of text with an emoji sequence read whole, as words() reads it: each word, and
        the words it is made of but its glue, with their token ids ("👨" ZWJ "👩" ZWJ "👧", a family: one word of
        three, each emoji read as unknown apart, where a sequence's glue is no word; unread_words and
        unknown_words named its members as three unknown words, and counted three words). The words of one character
        of the prompt are one word of it, as words() reads them ("½", which normalisation makes "1⁄2": unread_words
        counted three words, and named "½" three times, where the prompt has one)."""
        spans: dict[tuple[int, int], list[tuple[str, list[int]]]] = {}
        for w, ids in self._pieces(enc).items():
            start, end = _whole(text, enc.word_to_chars(w))
            members = spans.setdefault((start, end), [])
            if not _glue(text[start:end]):
                members.append((text[start:end], ids))
        words = ((start, end, members) for (start, end), members in spans.items())
        return [(text[start:end], members) for start, end, members in _sequences(text, words) if members]

    @staticmethod
    def _pieces(enc) -> dict[int, list[int]]:
        """Each word's token ids, by its index among the pre-tokenizer's words, in order."""
        pieces: dict[int, list[int]] = {}
        for word_index, token_id in zip(enc.word_ids, enc.ids, strict=True):
            if word_index is not None:
                pieces.setdefault(word_index, []).append(token_id)
        return pieces

    def _unknown_words(self, text: str, enc) -> list[str]:
        """Words that became [UNK] or were split into several pieces (a trained word is one piece). A word of a
        script written without spaces (Chinese, Japanese, Thai) is a phrase, or a whole caption, to the
        pre-tokenizer, which splits at spaces: its pieces are the words the tokenizer learned, so only an [UNK]
        says it holds what the model never saw ("红色的鱼" as "红色的" and "鱼" read as unknown where "a red fish"
        did not)."""
        words: dict[str, None] = {}  # in order, each once (a list's `in` made a long prompt quadratic)
        for word, members in self._whole_words(text, enc):
            if any(self.unk_id in ids or (len(ids) > 1 and not _unspaced(member)) for member, ids in members):
                words.setdefault(word)
        return list(words)


# Scripts written without spaces between words: Thai and Lao, Myanmar, Khmer, Hiragana and Katakana, CJK ideographs
_UNSPACED = ((0x0E00, 0x0EFF), (0x1000, 0x109F), (0x1780, 0x17FF), (0x3040, 0x30FF), (0x31F0, 0x31FF),
             (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0xFF66, 0xFF9F), (0x20000, 0x3FFFF))


def _unspaced(word: str) -> bool:
    """Whether a word holds a character of a script written without spaces between words."""
    return any(lo <= ord(ch) <= hi for ch in word for lo, hi in _UNSPACED)


def _sequences(text: str, words: Iterable[tuple[int, int, list]]) -> list[tuple[int, int, list]]:
    """Words of text, (start, end, what each carries: a list) in order, with an emoji sequence's glue and the emoji
    after it made one word with the emoji before it, their lists joined (_glue; a keycap ends its emoji: "#️⃣#️⃣" is
    two)."""
    merged: list[tuple[int, int, list]] = []
    glued = False
    for start, end, items in words:
        glue = _glue(text[start:end])
        if merged and (glue or glued) and start == merged[-1][1]:
            merged[-1] = (merged[-1][0], end, merged[-1][2] + items)
        else:
            merged.append((start, end, items))
        glued = glue and not text[start:end].endswith(KEYCAP)
    return merged


def _whole(text: str, span: tuple[int, int]) -> tuple[int, int]:
    """A word's span in text taken on over the combining marks after it: the library maps a letter and its mark in
    decomposed form (NFD, "e" and U+0301), which NFKC makes one letter, to the letter alone, so a word of an NFD
    prompt was named without its last accent ("cafe" for "café")."""
    start, end = span
    if end > start and text[end - 1].isalnum():  # (a mark after punctuation is a word of its own to the library)
        while end < len(text) and unicodedata.combining(text[end]):
            end += 1
    return start, end
