"""Session 45 (hC): `data caption`'s judgement calls on file names, each test failing without its fix."""

from __future__ import annotations

from pathlib import Path

from conftest import run
from t2i_cli.name_captions import _random_id, caption_of
from test_s42_caption import _captions, _pictures


def test_tinypngs_min_after_a_place_a_dish_or_words_that_begin_with_a_surname_is_dropped():
    """"hong-kong-min", "kim-chi-min", "go-to-min" kept TinyPNG's "min": a surname and any romanized syllable's shape
    were read as a Korean name. The given name's first syllable is now one that Korean given names ending in 민
    begin with ("ji", "seo", "seung", "yu"), so Korean names keep their "min" and places, dishes and words drop it."""
    names = {"hong-kong-min": "hong kong", "kim-chi-min": "kim chi", "go-to-min": "go to", "sun-hat-min": "sun hat",
             "Hong-Kong-min (1)": "hong kong", "go-up-min": "go up",
             "park-ji-min": "park ji min", "Kim Ji-min": "kim ji min", "hwang-seo-min (1)": "hwang seo min",
             "choi-yu-min": "choi yu min", "Lee-Seung-min": "lee seung min", "kang-do-min": "kang do min"}
    assert {n: caption_of(n) for n in names} == names


def test_tinypngs_min_after_a_cameras_name_leaves_no_caption():
    """"IMG_1234-min" (a phone's photo after TinyPNG) was "img 1234 min": "-min" after a number was kept as minutes.
    After a number it is TinyPNG's where the name before it is a camera's; minutes stay minutes."""
    assert caption_of("IMG_1234-min") is None
    assert caption_of("IMG_1234-min (1)") is None
    assert caption_of("DSC_0042-min") is None
    assert caption_of("Screenshot 2024-05-01 at 10.31.02-min") is None
    assert caption_of("workout-30-min") == "workout 30 min"
    assert caption_of("bus-12-min") == "bus 12 min"


def test_an_unsplash_id_of_digits_only_is_an_id():
    """"anna-shvets-12345678901-unsplash" was "anna shvets unsplash": an id of 11 digits, or 11 letters and digits
    without a capital or a small letter beside a digit, was not taken for Unsplash's photo id. Words and a counter
    before "-unsplash" (hyphens among them) are still a caption."""
    assert caption_of("anna-shvets-12345678901-unsplash") is None
    assert caption_of("nasa-00000000011-unsplash") is None
    assert caption_of("sunset-over-lake-2-unsplash") == "sunset over lake 2 unsplash"
    assert caption_of("nasa-Q1p7bh3SHj8-unsplash") is None


def test_a_short_random_id_with_three_marks_no_word_holds_is_an_id():
    """About a third of random ids of 8 to 12 letters and digits (ShareX's, YouTube's) were read as words:
    "chrome_Kpslm0lcNQ" was "chrome kpslm 0 lc nq". Three of what words seldom hold (a small letter after a digit, a
    vowelless part, four consonants in a row, a lone letter) make one an id; names of abbreviations, numeronyms and
    words in camel case keep their words, and so does a long name (more words)."""
    for piece in ("Kpslm0lcNQ", "AegAXjU9", "fqEo0hsjxZgi", "7FgtJsThJv07", "4RvFRmkxJ1", "DqhLCr41o"):
        assert _random_id(piece), piece
    assert caption_of("chrome_Kpslm0lcNQ") == "chrome"
    words = {"i18nText": "i 18n text", "k8sNodeUp": "k 8s node up", "a11yMenu2": "a 11y menu",
             "btn3dHover": "btn 3d hover", "js2tsConv": "js 2 ts conv", "CSGOSkin2kRGB": "csgo skin 2k rgb",
             "GTA5ModsPC": "gta 5 mods pc", "PS5vsXbox": "ps 5 vs xbox", "png2jpgTool": "png 2 jpg tool",
             "iPhone12ProMax": "i phone 12 pro max", "3dsMaxTuts": "3 ds max tuts", "libLLVMM68kCodeGen":
             "lib llvmm 68k code gen"}
    assert {n: caption_of(n) for n in words} == words


def test_a_colours_numbers_beside_another_colours_same_numbers_are_its_cards_values(tmp_path: Path):
    """Hanabi's cards, "blue_1" .. "blue_5" beside "red_1" .. "red_5" (bench/make_games_folder.py), were captioned
    "blue" and "red", five cards one caption each: a series from 1 is a counter's. Where another colour of the folder
    has the same numbers, they are each card's value and stay; a colour alone, colours of other numbers and names
    that are no colour ("cat_1" .. "cat_3" beside "dog_1" .. "dog_3": photos of each) are counters as before."""
    cards = _pictures(tmp_path / "hanabi", *(f"{c}_{i}" for c in ("blue", "red", "yellow") for i in range(1, 6)))
    other = _pictures(tmp_path / "other", "green_1", "green_2", "green_3", "white_1", "white_2", "cat_1", "cat_2",
                      "cat_3", "dog_1", "dog_2", "dog_3")
    alone = _pictures(tmp_path / "alone", "pink_1", "pink_2", "pink_3")
    for folder in (cards, other, alone):
        r = run("data", "caption", folder, "-q")
        assert r.exit_code == 0, r.stderr
    assert _captions(cards) == {f"{c}_{i}": f"{c} {i}" for c in ("blue", "red", "yellow") for i in range(1, 6)}
    assert _captions(other) == {"green_1": "green", "green_2": "green", "green_3": "green", "white_1": "white",
                                "white_2": "white", "cat_1": "cat", "cat_2": "cat", "cat_3": "cat", "dog_1": "dog",
                                "dog_2": "dog", "dog_3": "dog"}
    assert _captions(alone) == {"pink_1": "pink", "pink_2": "pink", "pink_3": "pink"}
