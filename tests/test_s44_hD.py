"""Session 44 (hD): `t2i data caption`'s name rules left undone by session 43, each test failing without its fix."""

from __future__ import annotations

from pathlib import Path

from conftest import run
from t2i_cli.name_captions import _random_id, caption_of
from test_s42_caption import _captions, _pictures


def test_a_korean_given_names_min_is_no_tinypng_suffix():
    """TinyPNG's "-min" was dropped after any letter: "park-ji-min" was "park ji", "Kim Ji-min" "kim ji". A name of
    two romanized syllables before "-min" is a Korean name and keeps it; after a word that is no syllable ("image",
    "logo", "bird", "sky") it is still TinyPNG's, and so is it with a browser's copy counter after it."""
    names = {"park-ji-min": "park ji min", "Kim Ji-min": "kim ji min", "hwang-seo-min (1)": "hwang seo min",
             "hero-image-min": "hero image", "logo-min": "logo", "red-bird-min": "red bird",
             "blue-sky-min": "blue sky", "hero-image-min (2)": "hero image", "workout-30-min": "workout 30 min"}
    assert {name: caption_of(name) for name in names} == names


def test_a_phrase_that_begins_as_a_copys_name_is_no_copy():
    """"copia de seguridad" (Spanish: a backup) was "seguridad", its "copia de" taken for Google Drive's copy prefix;
    so were "cópia de segurança", "copie de sauvegarde", "kopia zapasowa". Those phrases stay whole; a copy's name
    ("Copia de foto", "Copia de bird", "Copy of bird", "Kopie von bird", a copy of a backup) is read as before."""
    names = {"copia de seguridad": "copia de seguridad", "Copia de seguridad (1)": "copia de seguridad",
             "cópia de segurança": "cópia de segurança", "Copie de sauvegarde": "copie de sauvegarde",
             "kopia zapasowa": "kopia zapasowa", "Copia de foto": None, "Copia de bird": "bird",
             "Copy of bird": "bird", "Kopie von bird": "bird", "Kopia bird": "bird",
             "Copia de copia de seguridad": "copia de seguridad"}
    assert {name: caption_of(name) for name in names} == names


def test_words_and_a_counter_before_unsplash_are_no_photo_id():
    """"sunset-over-lake-2-unsplash" was no caption: "over-lake-2", 11 characters with a digit, read as Unsplash's
    photo id after its photographer's name. An id holds a capital or a digit glued to a letter; words and a counter
    apart are a name. Photographers' downloads are still no caption."""
    names = {"sunset-over-lake-2-unsplash": "sunset over lake 2 unsplash",
             "sunset-over-lake-2-unsplash (1)": "sunset over lake 2 unsplash",
             "markus-spiske-iar-afB0QQw-unsplash": None, "anna-Q1p7bh3SHj8-unsplash": None,
             "john-doe-9n4dte2et6x-unsplash": None}
    assert {name: caption_of(name) for name in names} == names


def test_a_random_id_of_both_cases_with_vowelless_parts_is_no_word():
    """ShareX's "6nGisiWgNZ" was captioned "6n gisi wg nz" (and "Rk2kvHqh", "3em6KpZq" alike): a small letter after
    a digit, and two parts of it in camel case of small letters without a vowel, no syllable of any word. Names in
    camel case with a number stay words, one vowelless part among them at most ("3DsMax2024", "MrBean2Movie")."""
    for piece in ("6nGisiWgNZ", "Rk2kvHqh", "3em6KpZq"):
        assert _random_id(piece), piece
    assert caption_of("chrome_6nGisiWgNZ") == "chrome"
    assert caption_of("6nGisiWgNZ") is None
    words = {"TicTacToe2": "tic tac toe", "HoHoHo2023": "ho ho ho", "R2D2Robot": "r 2d 2 robot",
             "3DsMax2024": "3 ds max", "MrBean2Movie": "mr bean 2 movie", "mp3Player": "mp 3 player",
             "iPhone15ProMax": "i phone 15 pro max", "NaNoWriMo2023": "na no wri mo", "4kVideoHD": "4k video hd"}
    assert {name: caption_of(name) for name in words} == words


def test_a_counter_counts_from_its_start_and_a_products_versions_keep_their_numbers(tmp_path: Path):
    """"iphone 12" .. "iphone 14" and "windows 7", "windows 8", "windows 10" were captioned "iphone", "windows" (two
    numbers in a row made a counter's series), while a counter with gaps, "bird 1", "bird 4", "bird 12", "bird 19",
    kept its numbers. A counter counts from its start (1, or the name alone) and numbers one picture in five at
    least up to its largest; a series without its start is a counter's only where it is long (10 names or more,
    two in a row: "walk 10" .. "walk 21"); names' numbers far apart keep theirs ("route 1", "route 66", "route 101")."""
    pics = _pictures(tmp_path / "pics", "iphone 12", "iphone 13", "iphone 14", "windows 7", "windows 8",
                     "windows 10", "bird 1", "bird 4", "bird 12", "bird 19", "route 1", "route 66", "route 101",
                     *(f"walk {i}" for i in range(10, 22)))
    r = run("data", "caption", pics, "-q")
    assert r.exit_code == 0, r.stderr
    assert _captions(pics) == {
        "iphone 12": "iphone 12", "iphone 13": "iphone 13", "iphone 14": "iphone 14", "windows 7": "windows 7",
        "windows 8": "windows 8", "windows 10": "windows 10", "bird 1": "bird", "bird 4": "bird", "bird 12": "bird",
        "bird 19": "bird", "route 1": "route 1", "route 66": "route 66", "route 101": "route 101",
        **{f"walk {i}": "walk" for i in range(10, 22)}}


def test_an_emoji_sequence_is_one_unknown_word_not_its_members():
    """A family emoji ("👨" ZWJ "👩" ZWJ "👧") in a caption was three unknown words to unread_words (the tokenizer
    stage's share of unknown caption words) and to a prompt's unknown words, and three words among a caption's:
    it is one word, as TextTokenizer.words reads it, unknown where a member is. A sequence the vocabulary learned
    is no unknown word; one of its members it lacks makes the whole unknown; two keycaps are two words."""
    from t2i_cli.models.tokenizer import TextTokenizer

    family, boy = "\U0001f468\u200d\U0001f469\u200d\U0001f467", "\U0001f468\u200d\U0001f466"
    tok = TextTokenizer.train(["a red bird", "a blue fish"] * 4, vocab_size=64)
    assert tok.unread_words(f"a red bird {family}") == ([family], 4)
    assert tok.encode(f"a red bird {family}", 16).unknown_words == [family]
    assert tok.unread_words("#\ufe0f\u20e3#\ufe0f\u20e3 bird") == (["#\ufe0f\u20e3", "#\ufe0f\u20e3"], 3)
    learned = TextTokenizer.train([f"a red bird {family}", "a blue fish"] * 4, vocab_size=200)
    assert learned.unread_words(f"a red bird {family}") == ([], 4)
    assert learned.encode(f"a {family}", 16).unknown_words == []
    assert learned.unread_words(boy) == ([boy], 1)
