"""TextTokenizer: fixed-length encoding, per-position padding, truncation, unknown words, JSON round trip."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from t2i_cli.models.tokenizer import TextTokenizer

CAPTIONS = ["a red bird", "a blue fish on the left", "two green cats", "a big yellow star at night",
            "a small purple heart on a white background", "a red car above a blue house"]
TEXT_LEN = 12


@pytest.fixture(scope="module")
def tok() -> TextTokenizer:
    return TextTokenizer.train(CAPTIONS * 5, vocab_size=120)


def n_real(tok: TextTokenizer, ids: list[int]) -> int:
    return sum(i < tok.n_bpe for i in ids)


def test_encode_gives_exactly_text_len_ids(tok):
    for text in CAPTIONS + ["", "a", " ".join(CAPTIONS)]:
        for text_len in (1, 5, TEXT_LEN, 40):
            assert len(tok.encode(text, text_len).ids) == text_len


def test_padding_position_p_gets_id_n_bpe_plus_p(tok):
    enc = tok.encode("a red bird", TEXT_LEN)
    k = n_real(tok, enc.ids)
    assert k == 3  # "a", "red", "bird" are each one trained token
    assert enc.ids[k:] == [tok.n_bpe + p for p in range(k, TEXT_LEN)]
    assert len(set(enc.ids[k:])) == TEXT_LEN - k  # one distinct id per position
    assert all(i < tok.vocab_size(TEXT_LEN) for i in enc.ids)
    assert tok.vocab_size(TEXT_LEN) == tok.n_bpe + TEXT_LEN


def test_empty_prompt_is_all_padding_and_matches_empty(tok):
    assert tok.encode("", TEXT_LEN).ids == tok.empty(TEXT_LEN) == [tok.n_bpe + p for p in range(TEXT_LEN)]


def test_truncation_counts_dropped_tokens(tok):
    text = " ".join(["a red bird"] * 6)  # 18 single-token words
    enc = tok.encode(text, TEXT_LEN)
    assert enc.n_dropped == 18 - TEXT_LEN
    assert n_real(tok, enc.ids) == TEXT_LEN
    assert enc.ids == tok.encode(text, 40).ids[:TEXT_LEN]
    assert tok.encode("a red bird", TEXT_LEN).n_dropped == 0
    assert tok.encode(text, 18).n_dropped == 0


def test_lowercasing(tok):
    assert tok.encode("A RED Bird", TEXT_LEN).ids == tok.encode("a red bird", TEXT_LEN).ids
    assert tok.encode("A RED Bird", TEXT_LEN).unknown_words == []


@pytest.mark.parametrize("caption", CAPTIONS)
def test_decode_round_trip_of_trained_captions(tok, caption):
    enc = tok.encode(caption, 40)
    assert enc.n_dropped == 0
    assert tok.decode(enc.ids) == caption


def test_unknown_words_are_reported(tok):
    enc = tok.encode("a zebra bird", TEXT_LEN)
    assert enc.unknown_words == ["zebra"]
    enc = tok.encode("a \U0001F426 bird", TEXT_LEN)
    assert enc.unknown_words == ["\U0001F426"]
    # the word is reported as the user typed it, not lowercased
    assert tok.encode("a red Zebra", TEXT_LEN).unknown_words == ["Zebra"]


def test_known_words_are_not_reported(tok):
    for caption in CAPTIONS:
        assert tok.encode(caption, 40).unknown_words == []


def test_json_round_trip_gives_identical_ids(tok):
    again = TextTokenizer.from_json(tok.to_json())
    assert again.n_bpe == tok.n_bpe
    for text in CAPTIONS + ["A zebra \U0001F426 ON the LEFT", ""]:
        a, b = tok.encode(text, TEXT_LEN), again.encode(text, TEXT_LEN)
        assert a == b


def test_padding_and_truncation_in_a_file_are_turned_off(tok):
    """A tokenizer.json may carry the library's padding (a fixed length of N ids would be allocated per
    prompt, whatever N the file says) and truncation (which would hide dropped tokens): loading ignores both."""
    import json

    spec = json.loads(tok.to_json())
    spec["padding"] = {"strategy": {"Fixed": 1000}, "direction": "Right", "pad_to_multiple_of": None,
                       "pad_id": 0, "pad_type_id": 0, "pad_token": "[UNK]"}
    spec["truncation"] = {"direction": "Right", "max_length": 2, "strategy": "LongestFirst", "stride": 0}
    hostile = TextTokenizer.from_json(json.dumps(spec))
    for text in CAPTIONS[:3] + ["a very long caption " * 10]:
        assert hostile.encode(text, TEXT_LEN) == tok.encode(text, TEXT_LEN)
    assert len(hostile.tokenizer.encode("a red bird").ids) < 10


@pytest.mark.parametrize("key, value, named", [
    # an added id far beyond the vocabulary: IndexError deep in the model
    ("post_processor", {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "[X]", "type_id": 0}},
                                                                 {"Sequence": {"id": "A", "type_id": 0}}],
                        "pair": [{"Sequence": {"id": "A", "type_id": 0}}],
                        "special_tokens": {"[X]": {"id": "[X]", "ids": [999999], "tokens": ["[X]"]}}},
     "post_processor"),
    # one letter into two million spaces: a gigabyte per prompt
    ("normalizer", {"type": "Sequence", "normalizers": [
        {"type": "NFKC"}, {"type": "Lowercase"},
        {"type": "Replace", "pattern": {"String": "e"}, "content": " " * 2_000_000}]}, "normalizer"),
    ("pre_tokenizer", {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
     "pre_tokenizer"),
    ("decoder", {"type": "Replace", "pattern": {"String": "a"}, "content": "b" * 1000}, "decoder"),
    ("model.dropout", 0.5, "dropout"),  # a different tokenization of the same prompt on every call
])
def test_a_file_that_processes_text_otherwise_than_t2i_is_refused(tok, key, value, named):
    import json

    spec = json.loads(tok.to_json())
    if key == "model.dropout":
        spec["model"]["dropout"] = value
    else:
        spec[key] = value
    text = json.dumps(spec)
    with pytest.raises(ValueError, match=named):
        TextTokenizer.from_json(text)
    from tokenizers import Tokenizer

    Tokenizer.from_str(text)  # what the library itself accepts (so the refusal is t2i's)


def test_from_file(tok, tmp_path):
    path = tmp_path / "tokenizer.json"
    path.write_text(tok.to_json(), encoding="utf-8")
    assert TextTokenizer.from_file(path).encode("two green cats", TEXT_LEN) == tok.encode("two green cats", TEXT_LEN)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(), text_len=st.integers(min_value=1, max_value=16))
def test_arbitrary_text_never_crashes(tok, text, text_len):
    enc = tok.encode(text, text_len)
    assert len(enc.ids) == text_len
    assert all(0 <= i < tok.vocab_size(text_len) for i in enc.ids)
    assert enc.n_dropped >= 0
    assert all(isinstance(w, str) and w for w in enc.unknown_words)


def test_the_vocabulary_is_never_larger_than_asked_for():
    """BPE training keeps every character it sees: captions of a few hundred distinct characters gave 419 tokens
    of a vocabulary of 128. The most frequent characters are kept; the rest read as [UNK]."""
    import random

    rng = random.Random(0)
    captions = ["".join(chr(0x4E00 + rng.randrange(2000)) for _ in range(12)) + " a bird" for _ in range(40)]
    tok = TextTokenizer.train(captions, vocab_size=128)
    assert tok.n_bpe == 128
    # the same captions, the same tokenizer (the library's limit_alphabet breaks ties at its cut at random)
    assert all(TextTokenizer.train(captions, vocab_size=128).to_json() == tok.to_json() for _ in range(4))
    assert all(tok.tokenizer.token_to_id(ch) is not None for ch in "abird")  # frequent characters are kept
    rare = next(ch for ch in "".join(captions) if tok.tokenizer.token_to_id(ch) is None)
    assert tok.encode(rare, 4).ids[0] == tok.unk_id
    # characters counted as the library sees them: U+001F is space to Python, not to the pre-tokenizer
    assert TextTokenizer.train(["abc def", "ghi\x1fjk"], vocab_size=12).n_bpe == 12
    assert TextTokenizer.train(iter(["abc def", "ghi jk"]), vocab_size=100).n_bpe > 10  # a one-shot iterator too


def test_a_character_that_normalisation_splits_into_several_words_is_one_word_of_the_prompt(tok):
    """NFKC makes "½" three words ("1⁄2"): words() gave ("½", [0]), ("½", [1]), ("½", [2]), and `rerank --explain`
    drew three "½" panels; it is one word of the prompt, read by all three tokens."""
    words = tok.words("½ red bird", 24)
    assert [w for w, _ in words] == ["½", "red", "bird"]
    first = words[0][1]
    assert len(first) >= 2 and first == list(range(len(first)))  # every token it became, in order
    assert [p for _, ps in words for p in ps] == list(range(len(first) + 2))  # each token in one word
    # words the prompt repeats stay apart (their places differ)
    assert [w for w, _ in tok.words("a red bird and a red fish", 24)] == ["a", "red", "bird", "and", "a", "red", "fish"]
