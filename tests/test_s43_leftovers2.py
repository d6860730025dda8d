"""Session 43's leftovers from the attackers (helper hL), each test failing without its fix."""

from __future__ import annotations

import pytest

from t2i_cli.name_captions import caption_of


@pytest.mark.parametrize(("name", "caption"), [
    ("red_FF0000", "red"), ("bg-1e90ff", "bg"), ("swatch #00ff00", "swatch"), ("mug_c0ffee", "mug"),
    ("report_2024_Q1", "report 2024 q1"), ("Q3_sales", "q3 sales"),
    # ShareX's ids with three letters of a case in a row
    ("chrome_hFLOv2mpbU", None), ("chrome_BuNO6n9JEC", None), ("chrome_9n4dte2et6", None),
])
def test_caption_of_colour_codes_quarters_and_random_ids(name: str, caption: str | None):
    """A colour's code is no word ("red_FF0000" was "red ff"), a quarter is one ("report 2024 q"), and a random id
    of ShareX's is dropped though three letters of a case stand in a row in it ("chrome 6n gisi wg nz")."""
    expected = caption or "chrome"
    assert caption_of(name) == expected


@pytest.mark.parametrize(("name", "caption"), [
    ("bead12", "bead"), ("abc123", "abc"), ("facade", "facade"), ("iPhone15ProMax", "i phone 15 pro max"),
    ("3DsMax2024", "3 ds max"), ("LaTeXDoc", "la te x doc"), ("F1Car2024", "f 1 car"), ("Q1", None),
    ("chrome_5gT8kLm2Qp", "chrome"),
])
def test_caption_of_keeps_words_beside_the_new_rules(name: str, caption: str | None):
    assert caption_of(name) == caption
