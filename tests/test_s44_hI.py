"""Session 44 (hI): defects found reviewing the session's data-side changes, each test failing without its fix."""

from __future__ import annotations

from pathlib import Path

from conftest import run
from t2i_cli.name_captions import caption_of
from test_s42_caption import _captions, _pictures


def test_a_long_series_without_its_start_is_a_counter_wherever_it_starts(tmp_path: Path):
    """"walk 10" .. "walk 21" was a counter's series ("walk"), but "walk 100" .. "walk 121", 22 names in a row, kept
    their numbers: one number in five was measured from 1, not from where the series starts. Measured from its
    smallest number, both are counters; a short one without its start ("beach 10" .. "beach 12") and a sparse long
    one still keep their numbers."""
    pics = _pictures(tmp_path / "pics", *(f"walk {i}" for i in range(100, 122)), "beach 10", "beach 11", "beach 12",
                     *(f"step {i}" for i in (100, 101, *range(150, 1100, 100))))
    r = run("data", "caption", pics, "-q")
    assert r.exit_code == 0, r.stderr
    got = _captions(pics)
    assert {k: v for k, v in got.items() if k.startswith("walk")} == {f"walk {i}": "walk" for i in range(100, 122)}
    assert {k: v for k, v in got.items() if not k.startswith("walk")} == {
        "beach 10": "beach 10", "beach 11": "beach 11", "beach 12": "beach 12",
        **{f"step {i}": f"step {i}" for i in (100, 101, *range(150, 1100, 100))}}


def test_tinypngs_min_after_two_short_words_is_dropped_unless_a_korean_surname_begins_them():
    """"map-pin-min", "top-hat-min" (a web page's icons after TinyPNG) were "map pin min", "top hat min": any two
    words of a romanized syllable's shape were read as a Korean name. A Korean name begins with its surname."""
    names = {"map-pin-min": "map pin", "top-hat-min": "top hat", "hot-pot-min": "hot pot", "ten-pin-min": "ten pin",
             "park-ji-min": "park ji min", "Kim Ji-min": "kim ji min", "lee_seung_min": "lee seung min",
             "choi-yu-min (1)": "choi yu min"}
    assert {name: caption_of(name) for name in names} == names


def test_a_name_beginning_with_an_abbreviation_is_no_random_id():
    """ShareX's id rule (a small letter after a digit, two camel-case parts without a vowel) took a web page's
    picture names that begin with an abbreviation for ids: "btn3dHover", "bg2xDark", "js2tsConv" had no caption
    at all (they were "btn 3d hover", "bg dark": its 2x a size, "js 2 ts conv"). The part a name begins with is
    no sign of an id; ShareX's are still ids."""
    names = {"btn3dHover": "btn 3d hover", "bg2xDark": "bg dark", "js2tsConv": "js 2 ts conv",
             "chrome_6nGisiWgNZ": "chrome", "6nGisiWgNZ": None, "Rk2kvHqh": None, "3em6KpZq": None}
    assert {name: caption_of(name) for name in names} == names


def test_a_manifest_above_of_many_lines_naming_the_folder_is_searched_in_bounded_memory():
    """The byte search of a manifest above a folder held the start of every line holding the folder's name in a set
    (and each line counted as left out in another) before it parsed any: several dozen bytes a line for 16 MiB of
    two-byte lines naming a folder "a", where reading a line at a time held one. The lines are found in order,
    each needle's next place kept: memory of the bytes read, whatever the number of lines; every line found,
    numbered, as before."""
    import io
    import tracemalloc

    from t2i_cli import data

    body = b"a\n" * 100_000
    lines = 0
    tracemalloc.start()
    try:
        for line, raw in data._pieces_above(io.BytesIO(body), (b"a",), [None]):
            lines += 1
            assert (line, raw) == (lines, b"a\n")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert lines == 100_000
    assert peak < 2 * len(body) + (1 << 20), peak  # (the bytes read, and little more)
