"""Session 45 (hA): tidies of a closing read, each test failing without its fix."""

from __future__ import annotations


def test_a_character_normalised_to_several_words_is_one_unread_word():
    """"½", which NFKC makes "1⁄2" (three words to the pre-tokenizer, each an [UNK] where the vocabulary lacks
    them), was three unread words of three to unread_words: the tokenizer stage's share of unknown caption words
    counted it thrice and named it thrice. It is one word of the caption, as TextTokenizer.words reads it."""
    from t2i_cli.models.tokenizer import TextTokenizer
    from t2i_cli.stages import unknown_share

    tok = TextTokenizer.train(["a red apple", "a blue bird"] * 4, vocab_size=64)
    assert tok.unread_words("½ apple") == (["½"], 2)
    assert [word for word, _ in tok.words("½ apple", 16)] == ["½", "apple"]
    assert tok.encode("½ apple", 16).unknown_words == ["½"]
    assert unknown_share(tok, ["½ apple", "a red bird"]) == (1, 5, "½")
    learned = TextTokenizer.train(["½ apple", "a blue bird"] * 4, vocab_size=64)
    assert learned.unread_words("½ apple") == ([], 2)
