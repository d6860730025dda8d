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
    ("so\u00adft toy", "soft toy"), ("red\u200b bird", "red bird"), ("\u200fbird", "bird"),  # other format characters
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


@pytest.mark.parametrize("name, caption", [
    ("route_66", "route 66"), ("route-66", "route 66"), ("openjdk-17", "openjdk 17"),  # "route", "openjdk" before
    ("windows 7", "windows 7"), ("formula 1", "formula 1"), ("apollo-9", "apollo 9"),  # one digit: "windows" before
    ("formula 1 (1)", "formula 1"), ("formula 1 2", "formula 1"),  # a download's, macOS' copy of it
])
def test_a_number_after_a_word_and_an_underscore_or_hyphen_or_of_one_digit_is_the_names(name, caption):
    assert caption_of(name) == caption


def test_counters_still_go_a_lone_one_digit_name_keeps_its_number(tmp_path: Path):
    """A number of one digit, or after _ or -, was dropped as a counter: "route_66", "windows 7" -> "route",
    "windows". It is kept where it is no counter: not of a series in the folder ("cat_1" .. "cat_3"; "cat_1" and
    "cat_2"; "bird" and macOS' copy "bird 2", "edit-redo" and "edit-redo-2" as an icon theme has them), those
    captioned already among them, not a camera's (IMG_0001, photo-1), nor an icon's size in pixels (icon-192)."""
    pics = _pictures(tmp_path / "pics", "route_66", "windows 7", "formula 1", "cat_1", "cat_2", "cat_3", "dog_1",
                     "dog_2", "bird", "bird 2", "edit-redo", "edit-redo-2", "beach-1", "beach-10", "beach-11",
                     "IMG_0001", "photo-1", "icon-192", "fish", "fish 2")
    (pics / "fish.txt").write_text("a fish\n", encoding="utf-8")  # captioned by an earlier run (or by hand)
    r = run("data", "caption", pics, "-q")
    assert r.exit_code == 0, r.stderr
    got = _captions(pics)
    assert got == {"route_66": "route 66", "windows 7": "windows 7", "formula 1": "formula 1", "cat_1": "cat",
                   "cat_2": "cat", "cat_3": "cat", "dog_1": "dog", "dog_2": "dog", "bird": "bird", "bird 2": "bird",
                   "edit-redo": "edit redo", "edit-redo-2": "edit redo", "beach-1": "beach", "beach-10": "beach",
                   "beach-11": "beach", "icon-192": "icon", "fish": "a fish", "fish 2": "fish"}
    # one name alone, of 2 to 4 digits after _ or -, is the name's ("cat_12" beside no other cat)
    assert caption_of("cat_12") == "cat 12" and caption_of("IMG_0001") is None and caption_of("photo-1") is None


def test_a_whole_runs_tokenizer_note_is_said_as_its_stage_ends_not_lost_with_a_later_stop(tmp_path, monkeypatch):
    """`train --stage all --vocab-size 5000` said its tokenizer's note (fewer tokens than asked) only beside the
    final summary: a Ctrl-C (or an error) in a later stage lost it, and the resume found the tokenizer "done
    before" and said nothing of it. It is said as the tokenizer stage ends, once."""
    from t2i_cli import recipe

    data = tmp_path / "d"
    data.mkdir()
    words = "red blue green bird fish cat star tree".split()
    for i in range(19):
        Image.new("RGB", (16, 16), (i * 13 % 256, 90, 7)).save(data / f"p{i}.png")
        (data / f"p{i}.txt").write_text(f"a {words[i % 8]} {words[i * 3 % 8]}\n")
    real = recipe.run_stage

    def stopped(cfg, sub, **kw):  # Ctrl-C as the dVAE stage starts
        if cfg.stage != "tokenizer":
            raise KeyboardInterrupt
        return real(cfg, sub, **kw)

    monkeypatch.setattr(recipe, "run_stage", stopped)
    r = run("train", "--stage", "all", "--preset", "tiny", "--data", data, "--vocab-size", "5000", "--steps", "1",
            "--out", tmp_path / "run", "-q")
    assert r.exit_code == 130 and "interrupted" in r.stderr, (r.exit_code, r.stderr)
    notes = [line for line in r.stdout.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "not the --vocab-size 5,000 asked" in notes[0], r.stdout
    monkeypatch.setattr(recipe, "run_stage", real)
    r = run("train", "--resume", tmp_path / "run", "-q")  # (the tokenizer done before: said then, not again)
    assert r.exit_code == 0 and "note:" not in r.stdout and "all stages finished" in r.stdout, r.stdout


def test_two_names_of_one_base_are_a_counter_only_where_each_number_is_one_digit(tmp_path: Path):
    """"route 1" beside "route 66" (and "windows 7" beside "windows 95") were both captioned "route" ("windows"):
    two names made a counter's series where one number was one digit. Two make one only where each is ("bird" and
    "bird 2", "walk_1" and "walk_5"); one of two or more digits needs three names, as before."""
    pics = _pictures(tmp_path / "pics", "route 1", "route 66", "windows 7", "windows-95", "walk_1", "walk_5")
    assert run("data", "caption", pics, "-q").exit_code == 0
    assert _captions(pics) == {"route 1": "route 1", "route 66": "route 66", "windows 7": "windows 7",
                               "windows-95": "windows 95", "walk_1": "walk", "walk_5": "walk"}


def test_data_caption_from_folder_keeps_a_class_folders_number(tmp_path: Path):
    """`data caption --from folder` of the class folders type_1/ and type_2/ captioned both "type": two classes
    one caption. A folder's number after _ or - is its name's, as a file's is; no series is looked for among
    folders (each folder's pictures share its one caption)."""
    _pictures(tmp_path / "ds" / "type_1", "IMG_0001", "IMG_0002")
    _pictures(tmp_path / "ds" / "type_2", "IMG_0003")
    assert run("data", "caption", tmp_path / "ds", "--from", "folder", "-q").exit_code == 0
    got = {p.relative_to(tmp_path / "ds").as_posix(): p.read_text(encoding="utf-8").strip()
           for p in (tmp_path / "ds").rglob("*.txt")}
    assert got == {"type_1/IMG_0001.txt": "type 1", "type_1/IMG_0002.txt": "type 1", "type_2/IMG_0003.txt": "type 2"}
