"""Session 45 (hM): a review of the session's data-side changes, each test failing without its fix."""

from __future__ import annotations

from pathlib import Path

from conftest import run
from test_s42_caption import _captions, _pictures


def test_a_colour_beside_its_copies_is_a_counters_series_beside_another_colours_copies(tmp_path: Path):
    """macOS' copies of colour swatches, "red" and "red 2" beside "blue" and "blue 2", are copies: each is "red",
    "blue", as before the Hanabi rule (a colour's numbers beside another colour's same ones are its cards' values),
    which read them as cards "red 2", "blue 2". A card always has its number: Hanabi's cards stay each its value."""
    copies = _pictures(tmp_path / "copies", "red", "red 2", "blue", "blue 2")
    cards = _pictures(tmp_path / "cards", *(f"{c}_{i}" for c in ("blue", "red") for i in range(1, 4)))
    for folder in (copies, cards):
        r = run("data", "caption", folder, "-q")
        assert r.exit_code == 0, r.stderr
    assert _captions(copies) == {"red": "red", "red 2": "red", "blue": "blue", "blue 2": "blue"}
    assert _captions(cards) == {f"{c}_{i}": f"{c} {i}" for c in ("blue", "red") for i in range(1, 4)}
