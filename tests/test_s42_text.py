"""Session 42: text hygiene in prompts, captions, drawn labels and file names."""

from __future__ import annotations

import pytest

from t2i_cli.models.tokenizer import TextTokenizer

CAPTIONS = ["a red bird", "a blue fish", "a green cat on the left", "two red birds", "a family 👨\u200d👩\u200d👧",
            "three people 👨👩👧"]
# Format characters that draw nothing: soft hyphen, zero-width non-joiner and joiner, LRM, RLM, word joiner, BOM, the
# direction embeddings, overrides and isolates
INVISIBLE = ["\u00ad", "\u200c", "\u200d", "\u200e", "\u200f", "\u2060", "\ufeff", *map(chr, range(0x202A, 0x202F)),
             *map(chr, range(0x2066, 0x206A))]


@pytest.fixture(scope="module")
def tok() -> TextTokenizer:
    return TextTokenizer.train(CAPTIONS * 5, vocab_size=120)


@pytest.mark.parametrize("mark", INVISIBLE)
def test_an_invisible_format_character_in_a_prompt_is_not_read(tok, mark):
    """A prompt with a format character that draws nothing (inside a word, before one, at the end) encoded to other
    ids than the prompt without it: the mark was a word of its own ([UNK]), or split "red" into "r" and "ed"."""
    plain = tok.encode("a red bird", 8)
    for marked in (f"a r{mark}ed bird", f"{mark}a red bird", f"a red bird{mark}", f"a {mark}red bird"):
        enc = tok.encode(marked, 8)
        assert enc.ids == plain.ids and enc.unknown_words == [], (marked, enc)
        assert [w for w, _ in tok.words(marked, 8)] == ["a", "red", "bird"], marked
        assert tok.unread_words(marked) == ([], 3), marked


def test_a_zero_width_space_parts_words_as_a_space_does(tok):
    """A zero-width space marks where a word ends (Thai is written with it): it reads as a space, not as a word."""
    assert tok.encode("a red\u200bbird", 8).ids == tok.encode("a red bird", 8).ids
    assert tok.encode("a red bird\u200b", 8).unknown_words == []


def test_a_joiner_is_read_only_where_it_joins_emoji_or_letters_beyond_ascii(tok):
    """A zero-width joiner between ASCII letters is not read; between emoji it makes one emoji of several (a family,
    not three people) and is kept, as are a flag's tag characters after the black flag (Scotland's, England's)."""
    from t2i_cli.models.tokenizer import without_format

    assert tok.encode("a r\u200ded bird", 8).ids == tok.encode("a red bird", 8).ids
    assert tok.encode("👨\u200d👩\u200d👧", 8).ids != tok.encode("👨👩👧", 8).ids
    scotland = "🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f"
    assert without_format(f"a {scotland}") == f"a {scotland}"
    assert without_format("\U000e0067a\u200d") == "a"  # tags not after the flag, a joiner at the end


def test_captions_with_invisible_marks_train_the_tokenizer_their_plain_form_does():
    """A training caption with a soft hyphen or a direction mark taught the tokenizer another word (and a token for
    the mark): captions are read as prompts are, so the same captions give the same tokenizer with them or not."""
    marked = ["a re\u00add bird", "\u202ba blue fish\u202c", "a green\u2060 cat on the left", "two red birds\ufeff",
              "a family 👨\u200d👩\u200d👧", "three people 👨👩👧"]
    assert TextTokenizer.train(marked * 5, vocab_size=120).to_json() == \
        TextTokenizer.train(CAPTIONS * 5, vocab_size=120).to_json()
    # a one-shot iterator too (read twice by train)
    assert TextTokenizer.train(iter(marked * 5), vocab_size=120).to_json() == \
        TextTokenizer.train(CAPTIONS * 5, vocab_size=120).to_json()


def test_prompt_lines_alike_but_for_an_invisible_mark_are_one_prompt():
    """`--prompts`: a line that repeats an earlier one but for a soft hyphen or a direction mark draws the same
    images (the model does not read the mark) and is drawn once; regional guidance's parser reads it too."""
    from t2i_cli.prompt_file import as_read
    from t2i_cli.world.captions import parse_prompt

    assert as_read("a re\u00add bird") == as_read("a red bird") == as_read("\u200fa red bird\u200e")
    assert parse_prompt("a re\u00add bird on the left") == parse_prompt("a red bird on the left") is not None


@pytest.mark.parametrize("label", ["a \u202ered bird", "\u202ea red bird\u202c", "a \u2067red\u2069 bird",
                                   "\u202ba red bird\u202c", "a re\u00add bird\u200e"])
def test_a_label_is_drawn_without_direction_controls(label):
    """A prompt with a right-to-left override (U+202E) drew its contact sheet's, --grid's and the explain strip's
    label backwards ("a drib der"): a label is drawn without the format characters the model does not read."""
    from conftest import label_pixels

    assert label_pixels(label, 64, (255, 255, 255)) == label_pixels("a red bird", 64, (255, 255, 255))


def test_prompts_the_model_reads_apart_get_names_of_their_own():
    """Files of "a 👍🏻" and "a 👍🏿" (and "a 👍") were all a-1b21389d-NNN: a skin tone was no part of the name's hash,
    nor a joiner ("👨‍👩‍👧", a family, was named as "👨 👩 👧") or a flag's tags (Scotland's flag as the black flag).
    A format character the model does not read is no part of the name ("re" soft-hyphen "d" was a-re-d-bird)."""
    from t2i_cli.files import safe_stem

    tones = ["a 👍", *(f"a 👍{chr(cp)}" for cp in range(0x1F3FB, 0x1F400))]
    assert len({safe_stem(p) for p in tones}) == 6
    assert safe_stem("a 👨\u200d👩\u200d👧") != safe_stem("a 👨 👩 👧")
    flags = ["🏴", "🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f",
             "🏴\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f"]
    assert len({safe_stem(p) for p in flags}) == 3
    assert safe_stem("a re\u00add bird\u200e") == safe_stem("a red bird") == "a-red-bird"
    assert safe_stem("红色\u200e的鸟") == safe_stem("红色的鸟") == "image-38ca7a50"  # (README's example, as before)


def _cjk_captions(n: int, seed: int) -> list[str]:
    """Made-up Chinese captions: a count, a colour, a thing, a place, written without spaces."""
    import random

    rng = random.Random(seed)
    parts = (["一只", "两只", "三只"], ["红色的", "蓝色的", "绿色的", "黄色的", "紫色的"],
             ["鸟", "鱼", "猫", "狗", "星星", "心形", "汽车", "房子"], ["", "在左边", "在右边", "在天空中", "在草地上"])
    return ["".join(rng.choice(p) for p in parts) for _ in range(n)]


def test_a_new_tokenizer_reads_each_cjk_ideograph_as_a_word():
    """A Chinese caption was one word to the whitespace pre-tokenizer: BPE learned chunks of whole captions (on 400
    made-up captions, 256 tokens of which 208 ran across two words; 1.4 tokens a caption), so "三只红色的鸟" was one
    token and "一只红色的鸟" the tokens "一只红色的" and "鸟", and a new caption read in chunks no training caption
    had. A tokenizer trained now splits ideographs as BERT does: "红色的鸟" reads alike in every caption (33 tokens,
    one a character; 9.2 tokens a caption, at most 11). A tokenizer file trained before (its pre-tokenizer the
    whitespace one) loads and reads as it did; a file whose pre-tokenizer splits at anything else is refused."""
    import json

    tok = TextTokenizer.train(_cjk_captions(400, 0), vocab_size=256)
    tails = {tuple(tok.tokenizer.encode(count + "红色的鸟").tokens[-4:]) for count in ("一只", "两只", "三只")}
    assert tails == {("红", "色", "的", "鸟")}
    assert tok.words("一只红色的鸟", 16)[2:] == [("红", [2]), ("色", [3]), ("的", [4]), ("鸟", [5])]
    again = TextTokenizer.from_json(tok.to_json())  # the file it writes loads, and reads as it did
    assert again.encode("两只绿色的鱼在左边", 16) == tok.encode("两只绿色的鱼在左边", 16)
    # a file of the whitespace pre-tokenizer alone (every tokenizer trained before, the shipped one) reads as before
    spec = json.loads(tok.to_json())
    old = TextTokenizer.from_json(json.dumps({**spec, "pre_tokenizer": {"type": "Whitespace"}}))
    assert [w for w, _ in old.words("一只红色的鸟 a bird", 16)] == ["一只红色的鸟", "a", "bird"]
    split = spec["pre_tokenizer"]["pretokenizers"][0]
    with pytest.raises(ValueError, match="pre_tokenizer"):
        TextTokenizer.from_json(json.dumps({**spec, "pre_tokenizer": {**spec["pre_tokenizer"], "pretokenizers": [
            {**split, "pattern": {"Regex": "."}}, {"type": "Whitespace"}]}}))


def test_a_prompts_file_line_alike_but_for_an_invisible_mark_is_drawn_once_and_said_why(tmp_path):
    """`--prompts`: "a re<soft hyphen>d bird" after "a red bird" is the same prompt to the model: drawn once, and the
    warning says that marks which draw nothing are set aside (it named case, spacing and accents alone)."""
    from t2i_cli.prompt_file import read_prompts

    path = tmp_path / "prompts.txt"
    path.write_text("a red bird\na re\u00add bird\n\u200fa red bird\n", encoding="utf-8")
    got = read_prompts(str(path))
    assert [p.prompt for p in got.prompts] == ["a red bird"] and got.repeats == ((2, 1), (3, 1))
    assert "marks that draw nothing" in got.repeats_message()
