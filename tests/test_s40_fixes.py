"""Fixes of the fortieth session, each with the defect it mends."""

from __future__ import annotations

from pathlib import Path

import pytest

from t2i_cli import data
from t2i_cli.errors import DataError
from t2i_cli.images import save_png


def picture(path: Path, shade: int = 90) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    save_png(Image.new("RGB", (16, 16), (shade, 30, 200)), path)
    return path


@pytest.mark.parametrize("header, says", [
    ("file_name,text,text", "names the column \"text\" 2 times in its header row, line 1 (columns 2, 3)"),
    ("Text;file_name;TEXT ", "names the column \"text\" 2 times in its header row, line 1 (columns 1, 3)"),
    ("file_name,file_name,text", "names the column \"file_name\" 2 times"),
])
def test_a_csv_header_naming_a_column_twice_is_refused_not_guessed(tmp_path: Path, header: str, says: str):
    """A spreadsheet's two "text" columns (a caption and its translation, say): the first was read, unsaid."""
    picture(tmp_path / "a.png")
    sep = ";" if ";" in header else ","
    (tmp_path / "m.csv").write_text(f"{header}\n" + sep.join(["a.png", "one", "two"]) + "\n")
    with pytest.raises(DataError) as e:
        data.open_source(str(tmp_path / "m.csv"), 16)
    assert says in str(e.value) and "rename all but the one to read" in str(e.value) and "\n" not in str(e.value)
    (tmp_path / "ok.csv").write_text("file_name,text,score\na.png,one,two\n")
    assert data.open_source(str(tmp_path / "ok.csv"), 16).captions_at(0) == ["one"]


@pytest.mark.parametrize("name", ["WhatsApp Image 2024-01-02 at 10.11.12", "WhatsApp Image 2024-01-02 at 10.11.12 (1)",
                                  "FB_IMG_1580000000000", "received_123456789012345", "Snapchat-1234567890"])
def test_a_messaging_apps_picture_name_is_no_caption(name: str):
    """data caption wrote "whats app image at" for every picture WhatsApp saved (its name split at the capital)."""
    from t2i_cli.name_captions import caption_of

    assert caption_of(name) is None
    assert caption_of(name + " red bird") is not None and caption_of("app-store") == "app store"  # words still count


def test_a_whole_name_caption_is_found_in_any_letter_case_among_many_uncaptioned_pictures(tmp_path: Path):
    """The whole-name caption (PIC.jpg.txt) is now looked up in a table made once (each uncaptioned picture
    searched every caption file: a folder of 6,000 files, half without a caption, took 29 s to read, 0.96 s now;
    bench/scan_uncaptioned.sh): the first caption file of its folded name, in any letter case, still names it."""
    for i in range(6):
        picture(tmp_path / f"p{i}.png", 20 * i)
    (tmp_path / "p1.txt").write_text("a red bird")
    (tmp_path / "P2.PNG.TXT").write_text("a blue fish")  # p2's caption, named after its whole name
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "p3.png.txt").write_text("not p3's: another folder")
    pairs, skipped = data._scan_folder(tmp_path, list_skipped=True)
    assert [p.name for p, _ in pairs] == ["p1.png"]
    assert skipped.every[data.WHOLE_NAME_CAPTION] == [str(tmp_path / "p2.png")]
    assert str(tmp_path / "p3.png") in skipped.every[data.UNCAPTIONED]


def test_write_new_takes_the_first_free_name_and_goes_on_from_its_last(tmp_path: Path, monkeypatch):
    """write_new starts its search after the last name it took in this folder (a run of --n 256 into a folder
    of 5,000 such files tried every taken name again for each file): the names are those of the first free
    name still, gaps included, on either way of writing (hard links, or a name reserved with O_EXCL)."""
    import os

    from t2i_cli import files

    for way in ("link", "claim"):
        folder = tmp_path / way
        folder.mkdir()
        if way == "claim":  # a file system without hard links
            monkeypatch.setattr(os, "link", lambda *a: (_ for _ in ()).throw(PermissionError(1, "no links")))
        for i in (0, 1, 3, 4, 7):
            (folder / f"s-{i:03d}.png").write_bytes(b"mine")
        got = [files.write_new(folder, "s", ".png", lambda t: t.write_bytes(b"new")).name for _ in range(4)]
        assert got == ["s-002.png", "s-005.png", "s-006.png", "s-008.png"]  # the gaps first, as before
        assert all((folder / f"s-{i:03d}.png").read_bytes() == b"mine" for i in (0, 1, 3, 4, 7))  # nothing replaced
        (folder / "s-008.png").unlink()  # the last one it wrote is gone: the search starts at 0 again
        (folder / "s-001.png").unlink()
        assert files.write_new(folder, "s", ".png", lambda t: t.write_bytes(b"new")).name == "s-001.png"
        monkeypatch.undo()


def test_write_new_does_not_try_every_taken_name_again_for_each_file(tmp_path: Path, monkeypatch):
    import os

    from t2i_cli import files

    for i in range(300):
        (tmp_path / f"s-{i:03d}.png").write_bytes(b"mine")
    tries, real_link = [], os.link
    monkeypatch.setattr(os, "link", lambda a, b: tries.append(b) or real_link(a, b))
    got = [files.write_new(tmp_path, "s", ".png", lambda t: t.write_bytes(b"new")).name for _ in range(5)]
    assert got == [f"s-{i:03d}.png" for i in range(300, 305)]
    assert len(tries) == 305  # 301 for the first (every name up to the first free one), 1 for each after (was 1,510)


def test_a_label_in_another_script_is_drawn_in_a_system_font_not_as_boxes(monkeypatch):
    """Pillow's built-in font draws ASCII alone: a caption in Cyrillic, Greek or Arabic was a row of identical
    boxes on data preview, --grid and rerank sheets. A system font that has the glyphs draws it (label_font)."""
    from conftest import label_pixels as band
    from t2i_cli import images

    if images.label_font("жщ") is None:
        pytest.skip("none of images.LABEL_FONTS is installed here")

    def label_pixels(label: str) -> bytes:
        return band(label, 48, (200, 40, 40))

    blank = label_pixels(" ")
    assert label_pixels("ж") != label_pixels("щ") != blank  # two letters, two glyphs (were the same box)
    assert label_pixels("λ") != label_pixels("π")
    monkeypatch.setattr(images, "label_font", lambda text: None)  # as where no such font is installed
    assert label_pixels("ж") == label_pixels("щ") != blank  # the built-in font's box for both
    ascii_label = label_pixels("a red bird")
    monkeypatch.undo()
    assert label_pixels("a red bird") == ascii_label  # an ASCII label is drawn as before, in the built-in font


def test_the_training_summary_names_a_run_folder_in_another_script_as_it_is(tmp_path: Path):
    """`all stages finished: {...}` wrote a run folder in Cyrillic as JSON's \\u escapes (the next line showed it
    plainly)."""
    import json

    from conftest import run

    r = run("train", "--stage", "all", "--preset", "tiny", "--steps", "2", "--out", tmp_path / "прогон", "-q")
    assert r.exit_code == 0, r.stderr
    line = next(x for x in r.stdout.splitlines() if x.startswith("all stages finished: "))
    assert "прогон/weights" in line
    assert json.loads(line.removeprefix("all stages finished: "))["weights"] == str(tmp_path / "прогон" / "weights")


def test_a_run_folder_whose_name_is_not_utf8_trains_and_draws(tmp_path: Path):
    """A folder named in bytes that are not UTF-8 (a Latin-1 name on Linux): the transformer stage could not read
    the dVAE it had just written ("... is not a readable safetensors file (... is not valid UTF-8)"): safetensors
    opens UTF-8 paths alone; t2i opens such a file itself and gives it the open file."""
    import os

    from conftest import run

    out = tmp_path / os.fsdecode(b"run\xe9")
    r = run("train", "--stage", "all", "--preset", "tiny", "--steps", "2", "--out", out, "-q")
    assert r.exit_code == 0, r.stderr
    assert "run\\udce9/weights" in r.stdout  # (a name a terminal cannot show is escaped)
    r = run("generate", "a red bird", "--weights", out / "weights", "--out", tmp_path / "o", "-q")
    assert r.exit_code == 0 and (tmp_path / "o" / "a-red-bird-000.png").is_file(), r.stderr


def test_write_new_remembers_a_bounded_number_of_stems(tmp_path: Path, monkeypatch):
    """A long-lived process (the Python API, a --prompts file of 10,000 lines) kept one entry per stem for life."""
    from t2i_cli import files

    monkeypatch.setattr(files, "MAX_NEXT_NAMES", 3)
    monkeypatch.setattr(files, "_NEXT_NAME", {})
    for k in range(7):
        files.write_new(tmp_path, f"s{k}", ".png", lambda t: t.write_bytes(b"x"))
        assert len(files._NEXT_NAME) <= 3
    assert files.write_new(tmp_path, "s6", ".png", lambda t: t.write_bytes(b"x")).name == "s6-001.png"
