"""Session 45 (hO): an adversarial user's look at the session's new behaviour, each test failing without its fix."""

from __future__ import annotations

from pathlib import Path

from conftest import run
from test_s42_caption import _captions, _pictures


def test_a_colours_counter_past_a_cards_values_beside_another_colours_is_a_counter(tmp_path: Path):
    """Photos of each colour counted, "red_1" .. "red_40" beside "blue_1" .. "blue_40" (a colour dataset's layout),
    were captioned "red 1" .. "red 40": the rule for a set of cards (Hanabi's "blue_1" .. "blue_5" beside "red_1" ..
    "red_5") took any colours sharing their numbers. No set of a colour's cards goes past 13 (a suit's ranks);
    Hanabi's cards keep their values."""
    photos = _pictures(tmp_path / "colours", *(f"{c}_{i}" for c in ("red", "blue") for i in range(1, 41)))
    cards = _pictures(tmp_path / "rummikub", *(f"{c}_{i}" for c in ("red", "blue") for i in range(1, 14)))
    for folder in (photos, cards):
        r = run("data", "caption", folder, "-q")
        assert r.exit_code == 0, r.stderr
    assert _captions(photos) == {f"{c}_{i}": c for c in ("red", "blue") for i in range(1, 41)}
    assert _captions(cards) == {f"{c}_{i}": f"{c} {i}" for c in ("red", "blue") for i in range(1, 14)}
