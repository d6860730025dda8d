"""Session 42: `t2i data caption`'s leftovers of session 41, each test failing without its fix."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from conftest import run
from t2i_cli.name_captions import caption_of


def _pictures(folder: Path, *stems: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, stem in enumerate(stems):
        Image.new("RGB", (16, 16), (30 * i % 256, 90, 200)).save(folder / f"{stem}.png")
    return folder


def _captions(folder: Path) -> dict[str, str]:
    return {p.stem: p.read_text(encoding="utf-8").strip() for p in folder.glob("*.txt")}


@pytest.mark.parametrize("name, caption", [
    ("caf%e9", "café"), ("r%e9sum%e9", "résumé"), ("caf%e9 noir", "café noir"),  # "caf%e", "r%e 9 sum%e" before
    ("%e9t%e9", "été"),  # (None before: no word was left of "%e 9t%e 9")
    # lowercase as capitals: kept as typed where no text, and then whole, not split at its digit ("%8d%e 9" before)
    ("song%8d%e9", "song%8d%e9"), ("song%8D%E9", "song%8d%e9"), ("caf%Ea %e9t%e9", "caf%ea été"),  # mixed case
    ("30%deal caf%e9", "30%deal café"),  # a hex digit of its case after it: a percent sign in a word
    ("10%fat r%e9sum%e9", "10%fat résumé"), ("10%FAT", "10%fat"),  # after a digit: a percentage ("10út" before)
])
def test_lowercase_escapes_that_are_not_utf8_are_read_as_capitals_are_and_never_split(name, caption):
    assert caption_of(name) == caption


@pytest.mark.parametrize("name, caption", [
    ("caf%C3%A9%20%E9t%E9", "café été"),  # one run: UTF-8's "é " then Latin-1's é (all Latin-1, "Ã©": kept, split)
    ("caf%C3%A9%E9", "caféé"), ("%E9%C3%A9", "éé"),
    ("caf%C3%A9%81", "café%81"),  # a leftover that is no text stays as typed; the UTF-8 before it is read
])
def test_a_run_of_utf8_and_latin1_escapes_reads_each_part_as_it_is_written(name, caption):
    assert caption_of(name) == caption


@pytest.mark.parametrize("name, caption", [
    ("%FF%FEbird", "bird"), ("%FE%FFblue%20cat", "blue cat"), ("%ff%fered bird", "red bird"),  # "ÿþbird" before
    ("%EF%BB%BFbird", "bird"), ("bird%ef%bb%bf", "bird"), ("\ufeffbird", "bird"),  # UTF-8's BOM was in the caption
    ("so\u00adft toy", "soft toy"), ("red\u200bbird", "red bird"), ("\u200fbird", "bird"),  # other format characters
    ("%EF%BF%BDcat", "cat"), ("cat\ufffd", "cat"),  # a failed decoding's U+FFFD was "replacement character"
])
def test_a_byte_order_mark_and_other_non_text_is_dropped(name, caption):
    assert caption_of(name) == caption


def test_data_caption_writes_no_byte_order_mark_or_split_escape(tmp_path: Path):
    pics = _pictures(tmp_path / "pics", "%EF%BB%BFred bird", "%FF%FEblue fish", "caf%e9", "caf%C3%A9%20%E9t%E9")
    r = run("data", "caption", pics, "-q")
    assert r.exit_code == 0, r.stderr
    assert _captions(pics) == {"%EF%BB%BFred bird": "red bird", "%FF%FEblue fish": "blue fish", "caf%e9": "café",
                               "caf%C3%A9%20%E9t%E9": "café été"}
    assert all(not p.read_bytes().startswith(b"\xef\xbb\xbf") for p in pics.glob("*.txt"))
