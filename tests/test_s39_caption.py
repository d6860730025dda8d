"""Session 39: `t2i data caption` (captions made of pictures' file names or folder names, for a folder of named
pictures without .txt files) and a CSV manifest (a Hugging Face-style metadata.csv) as a data source."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image

from conftest import one_line_failure, run
from t2i_cli import data
from t2i_cli.errors import DataError
from t2i_cli.files import write_if_absent
from t2i_cli.name_captions import caption_of


def picture(path: Path, colour: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (16, 16), (colour % 256, 90, 200)).save(path)
    return path


@pytest.mark.parametrize("name, caption", [
    ("red-bird_02", "red bird"),  # separators, a counter at the end
    ("BlueFish", "blue fish"),  # camelCase
    ("HTMLParser", "html parser"),
    ("bird copy 2", "bird"), ("bird - Copy (2)", "bird"), ("bird copy", "bird"),  # a file manager's copies ...
    ("edit-copy", "edit copy"),  # ... not an icon of copying
    ("3-cats", "3 cats"),  # a number that says something stays
    ("golden_retriever", "golden retriever"),
    ("20230412_beach", "beach"),  # a date
    ("beach_2023-04-12", "beach"),
    ("a5f3c9e1-77b2-4c1e-9a3b-2f1e0d9c8b7a", None),  # a UUID
    ("IMG_2041", None), ("DSC00012", None), ("PXL_20240501_103102", None),  # cameras
    ("Screenshot 2024-05-01 at 10.31.02", None), ("untitled-3", None), ("photo (2)", None),
    ("n01440764", None),  # an ImageNet class id
    ("x", None),  # one Latin letter is no word ...
    ("猫", "猫"),  # ... one of a script written without spaces is
    ("Café au lait", "café au lait"),
    ("bell\x07ring\nnew", "bell ring new"),  # control characters in a name are no part of a caption
    # a number's unit is not split off as a letter ("car 3 d model"), a version, size or scale is no word ("my
    # photo v", "icon 16 x", "icon 2 x"), a date or time with separators no words ("party 2024 05 01 10 31 02 ...")
    ("car 3D model", "car 3d model"), ("4k wallpaper", "4k wallpaper"), ("3cats", "3 cats"),
    ("my.photo.v2", "my photo"), ("icon-16x16", "icon"), ("icon@2x", "icon"), ("logo_v2", "logo"),
    ("party 2024-05-01 10.31.02 guests", "party guests"), ("IMG-20240501-WA0001", None),  # WhatsApp's
    # an emoji set's code points are the characters' names ("emoji u 1 f", or no caption, before)
    ("emoji_u1f600", "emoji grinning face"), ("1F600", "grinning face"), ("2764-fe0f", "heavy black heart"),
    ("1f468-200d-1f469-200d-1f467", "man woman girl"),
    ("🐱_sleeping", "cat face sleeping"), ("😀", "grinning face"), ("❤️", "heavy black heart"),  # emoji in a name
    ("bed1", "bed"), ("cafe", "cafe"), ("2764", None),  # hex letters and digits that are no code point's
    # a phone's names with its suffixes ("img hdr", "pxl mp", "resized", before); a time written with dashes
    ("IMG_20240501_103102_HDR", None), ("PXL_20240501_103102123.MP", None), ("20240501_103102_resized", None),
    ("kite 2024-05-01-10-31-02 beach", "kite beach"),
    ("red%20bird", "red bird"), ("caf%C3%A9", "café"),  # a download's URL-encoded name ("red%20 bird", before)
    ("rock'n'roll", "rock'n'roll"),  # a word with an apostrophe is a word (no caption, before)
    ("001_cat", "cat"), ("01 - sunset", "sunset"), ("track 01 cover", "track cover"),  # a counter leading
])
def test_caption_of_a_name(name: str, caption: str | None):
    assert caption_of(name) == caption


def test_data_caption_writes_a_caption_beside_each_picture_without_one(tmp_path: Path):
    pics = tmp_path / "pics"
    picture(pics / "red-bird_02.png", 10)
    picture(pics / "BlueFish.jpg", 20)
    picture(pics / "BlueFish.png", 30)  # one name, two pictures: one BlueFish.txt reads for both
    picture(pics / "mine.png", 40)
    (pics / "mine.txt").write_text("my own words\n")  # the user's: never replaced
    picture(pics / "IMG_2041.png", 50)  # a camera's name: no caption made
    picture(pics / "sub" / "green_frog.png", 60)  # sub-folders too, as training reads them
    before = sorted(p.name for p in pics.rglob("*"))

    dry = run("data", "caption", pics, "--dry-run")
    assert dry.exit_code == 0, dry.stderr
    assert dry.stdout.splitlines() == [f"{pics / 'BlueFish.txt'}: blue fish", f"{pics / 'red-bird_02.txt'}: red bird",
                                       f"{pics / 'sub' / 'green_frog.txt'}: green frog",
                                       "would write 3 caption files; nothing written (--dry-run)"]
    assert sorted(p.name for p in pics.rglob("*")) == before  # nothing written
    assert "1 picture whose name holds no words to caption it by, e.g. " + str(pics / "IMG_2041.png") in dry.stderr

    r = run("data", "caption", pics, "-q")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.startswith(f"wrote 3 caption files under {pics} (e.g. {pics / 'BlueFish.txt'}: 'blue fish')")
    assert (pics / "BlueFish.txt").read_text() == "blue fish\n"
    assert (pics / "red-bird_02.txt").read_text() == "red bird\n"
    assert (pics / "sub" / "green_frog.txt").read_text() == "green frog\n"
    assert (pics / "mine.txt").read_text() == "my own words\n"
    assert not (pics / "IMG_2041.txt").exists()
    assert not [p for p in pics.rglob("*") if p.name.endswith(".tmp")]  # no temporary left behind

    # training reads them: each picture with the caption written for it (both BlueFish pictures)
    ds = data.open_source(str(pics), 16, val_fraction=0.0)
    got = sorted((Path(ds.file_of(i)).name, tuple(ds.captions_at(i))) for i in range(len(ds)))
    assert got == [("BlueFish.jpg", ("blue fish",)), ("BlueFish.png", ("blue fish",)),
                   ("green_frog.png", ("green frog",)), ("mine.png", ("my own words",)),
                   ("red-bird_02.png", ("red bird",))]

    again = run("data", "caption", pics)  # nothing left that a name captions: said, exit 0, nothing changed
    assert again.exit_code == 0, again.stderr
    assert again.stdout == f"nothing to write: every picture under {pics} that --from name can caption has a caption\n"
    # (its folder, "pics", is a tool's word: --from folder would caption none of them, and is not said to try)
    assert "; write their NAME.txt files yourself" in again.stderr and "try --from" not in again.stderr


def test_data_caption_from_folder_names_a_folder_per_class(tmp_path: Path):
    pics = tmp_path / "pets"
    picture(pics / "golden_retriever" / "IMG_0001.jpg", 1)
    picture(pics / "golden_retriever" / "IMG_0002.jpg", 2)
    picture(pics / "TabbyCat" / "0001.png", 3)
    picture(pics / "n02123045" / "x.png", 4)  # an id, no words
    by_name = run("data", "caption", pics)  # no name holds words: refused, naming --from folder
    assert by_name.exit_code == 1
    assert by_name.stderr.startswith("error: no caption to write under") and "try --from folder" in by_name.stderr
    r = run("data", "caption", pics, "--from", "folder", "-q")
    assert r.exit_code == 0, r.stderr
    assert (pics / "golden_retriever" / "IMG_0001.txt").read_text() == "golden retriever\n"
    assert (pics / "golden_retriever" / "IMG_0002.txt").read_text() == "golden retriever\n"
    assert (pics / "TabbyCat" / "0001.txt").read_text() == "tabby cat\n"
    assert not (pics / "n02123045" / "x.txt").exists()
    assert "1 picture whose folder's name holds no words" in r.stderr


@pytest.mark.parametrize("args, code, says", [
    (["--from", "words"], 2, "--from must be name"),
])
def test_data_caption_refusals(tmp_path: Path, args: list[str], code: int, says: str):
    picture(tmp_path / "pics" / "a-cat.png")
    r = run("data", "caption", tmp_path / "pics", *args)
    assert r.exit_code == code and says in r.stderr and not (tmp_path / "pics" / "a-cat.txt").exists()
    missing = run("data", "caption", tmp_path / "nope")
    assert missing.exit_code == 1 and missing.stderr == (
        f"error: {tmp_path / 'nope'} is not a folder (it does not exist); give the folder of pictures to caption\n")


def test_write_if_absent_never_replaces_a_file_made_before_it(tmp_path: Path):
    target = tmp_path / "a.txt"
    assert write_if_absent(target, b"new\n") and target.read_bytes() == b"new\n"
    assert not write_if_absent(target, b"other\n") and target.read_bytes() == b"new\n"
    os.symlink(tmp_path / "missing", tmp_path / "dangling.txt")  # a link to nothing is a name taken too
    assert not write_if_absent(tmp_path / "dangling.txt", b"x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "dangling.txt"]  # no temporaries


def test_a_folder_of_named_pictures_without_captions_names_the_command(tmp_path: Path):
    """Training on a folder of named pictures said only "images without .txt caption"; it now names the command
    that captions them (with --from folder where only the folders' names hold words)."""
    pics = tmp_path / "pics"
    picture(pics / "red-bird.png", 1)
    picture(pics / "blue-fish.png", 2)
    (pics / "blue-fish.txt").write_text("a blue fish\n")
    assert data.open_source(str(pics), 16).skipped_message() == (
        f"skipped 1 item (1 image without .txt caption: {pics / 'red-bird.png'}); using 1; to caption those "
        f"without one by their names: t2i data caption {pics} (--dry-run shows the captions first)")
    classes = tmp_path / "classes"
    picture(classes / "robin" / "IMG_1.png")
    with pytest.raises(data.NothingUsable) as e:
        data.open_source(str(classes), 16)
    assert str(e.value).endswith(f"; to caption them by their names: t2i data caption {classes} --from folder "
                                 f"(--dry-run shows the captions first)")
    cameras = tmp_path / "cameras"  # no words anywhere: the old advice
    picture(cameras / "IMG_1.png")
    with pytest.raises(data.NothingUsable, match="add some, or use the procedural world"):
        data.open_source(str(cameras), 16)


def test_a_csv_manifest_is_a_source(tmp_path: Path):
    """A Hugging Face-style metadata.csv: a header naming file_name and text (other columns not read), quoted
    fields with commas and line breaks, a byte-order mark and CR LF as a spreadsheet writes them."""
    pics = tmp_path / "train"
    for i, name in enumerate("abcde"):
        picture(pics / f"{name}.png", 40 * i)
    (pics / "metadata.csv").write_bytes(
        b'\xef\xbb\xbffile_name,text,score\r\na.png,"a red, round bird",1\r\nb.png,"two\nlines",2\r\nc.png,,3\r\n'
        b',orphan,4\r\nd.png,a blue fish\r\nmissing.png,gone\r\n\r\n')
    ds = data.open_source(str(pics / "metadata.csv"), 16, val_fraction=0.0, list_skipped=True)
    got = [(Path(ds.file_of(i)).name, ds.captions_at(i)) for i in range(len(ds))]
    assert sorted(got) == [("a.png", ["a red, round bird"]), ("b.png", ["two\nlines"]), ("d.png", ["a blue fish"])]
    assert ds.every == {"empty caption": [str(pics / "c.png")],
                        "manifest row without a picture or a caption column": [f"{pics / 'metadata.csv'} line 6"],
                        "missing image": [str(pics / "missing.png")]}
    # a spreadsheet's semicolons, and image/caption as the JSONL manifest names them
    (pics / "semi.csv").write_text("image;caption\ne.png;a green frog\n")
    assert data.open_source(str(pics / "semi.csv"), 16).captions_at(0) == ["a green frog"]
    r = run("data", "preview", pics / "metadata.csv", "--out", tmp_path / "sheet.png", "-q")
    assert r.exit_code == 0, r.stderr


@pytest.mark.parametrize("content, says", [
    (b"name,caption\na.png,x\n",
     "has no columns \"file_name\" and \"text\", \"caption\" or \"prompt\" (or \"image\" and \"caption\") in its "
     "header row, line 1 (found: "
     "'name', 'caption')"),
    (b"file_name,text\na.png,caf\xe9\n", "line 2 is not UTF-8"),
    (b"\xff\xfef\x00", "saved as UTF-16 or UTF-32"),
    (b"file_name,text\na.png,\"" + b"x" * 70_000 + b"\"\n", "line 2 has a field over 64 KB"),  # a quote left open
    (b"file_name,text\na.png," + (b"\"" + b"y\n" * 1000 + b"\",") * 600, "row over 1 MiB"),  # fields, each < 64 KB
    (b"file_name,text\na.png,\"ok\"x\"\n", "line 2 is not CSV as t2i reads it"),
    (b"file_name,text\n" + b"z" * (2 << 20) + b"\n", "line 2 is over 1 MiB"),
    (b"file_name,text\ra.png,ok\r", "ends its lines with a carriage return alone"),  # Excel for Mac's (was internal)
    # UTF-16 without its byte-order mark ("has no columns ... found: 'f\x00i\x00...'"), a NUL in a caption (kept)
    ("file_name,text\na.png,x\n".encode("utf-16-le"), "line 1 holds a NUL character (UTF-16 without"),
    (b"file_name,text\na.png,o\x00k\n", "line 2 holds a NUL character"),
])
def test_a_bad_csv_manifest_is_refused_in_one_line(tmp_path: Path, content: bytes, says: str):
    picture(tmp_path / "a.png")
    (tmp_path / "m.csv").write_bytes(content)
    with pytest.raises(DataError) as e:
        data.open_source(str(tmp_path / "m.csv"), 16)
    assert says in str(e.value) and "\n" not in str(e.value)


def test_write_if_absent_stopped_after_its_temporary_is_made_leaves_none_behind(tmp_path: Path, monkeypatch):
    # a stop arriving just after the temporary was made (data caption writes thousands): the file is written
    # whole, then the stop is raised, and no temporary stays beside it
    import signal
    import tempfile

    made = tempfile.mkstemp

    def then_stopped(*args, **kwargs):
        got = made(*args, **kwargs)
        signal.raise_signal(signal.SIGINT)
        return got

    monkeypatch.setattr(tempfile, "mkstemp", then_stopped)
    with pytest.raises(KeyboardInterrupt):
        write_if_absent(tmp_path / "bird.txt", b"bird\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bird.txt"]
    assert (tmp_path / "bird.txt").read_bytes() == b"bird\n"


def test_data_caption_leaves_a_caption_name_taken_by_a_folder_or_a_dangling_link(tmp_path: Path):
    # a folder or a link to nothing holding NAME.txt: not planned (--dry-run listed it), and not called "made
    # meanwhile by something else" once the write found the name taken
    pics = tmp_path / "pics"
    picture(pics / "red_bird.png")
    picture(pics / "blue_fish.png")
    (pics / "red_bird.txt").mkdir()
    picture(pics / "green_frog.png")
    os.symlink(tmp_path / "missing", pics / "green_frog.txt")
    plan = data.plan_captions(pics)
    assert list(plan.writes) == [pics / "blue_fish.txt"]
    assert plan.taken == [pics / "green_frog.txt", pics / "red_bird.txt"]
    r = run("data", "caption", pics)
    assert r.exit_code == 0, r.stderr
    assert "2 caption file names taken by what is not a caption file" in r.stderr and "meanwhile" not in r.stderr
    assert (pics / "blue_fish.txt").read_text() == "blue fish\n"
    assert (pics / "red_bird.txt").is_dir() and not (pics / "green_frog.txt").exists()
    again = run("data", "caption", pics)
    assert again.exit_code == 0 and "whose caption name is free has a caption" in again.stdout
    os.remove(pics / "blue_fish.png")
    os.remove(pics / "blue_fish.txt")
    none = run("data", "caption", pics)
    assert none.exit_code == 1 and "no caption to write" in none.stderr and "Traceback" not in none.stderr


def test_data_caption_refuses_pictures_whose_manifest_sits_beside_them(tmp_path: Path):
    # a Hugging Face folder (pictures and metadata.csv): their captions are the manifest's; file names were
    # written as .txt captions, which training then read instead of it
    # (since session 41 a folder reads its metadata.csv; a manifest of another name is still refused so)
    pics = tmp_path / "hf"
    picture(pics / "red_bird.png")
    (pics / "captions.jsonl").write_text('{"image": "red_bird.png", "caption": "a small red bird on a branch"}\n')
    r = run("data", "caption", pics)
    assert r.exit_code == 1
    assert "is a manifest whose captions training reads with: t2i train --stage all --data" in r.stderr
    assert sorted(p.name for p in pics.iterdir()) == ["captions.jsonl", "red_bird.png"]
    dry = run("data", "caption", pics, "--dry-run")
    # (since session 46 it says it would write none, as the run refused: it listed red_bird.txt)
    assert dry.exit_code == 0 and "captions.jsonl, beside pictures" in dry.stderr and "red_bird.txt" not in dry.stdout
    assert "would write no caption file" in dry.stdout


def test_data_caption_from_folder_names_a_linked_folder_by_its_link(tmp_path: Path):
    # a folder of links named for their classes, to folders named otherwise (a download's): the link's name is
    # the class ("dl" and none, before: the target's names)
    picture(tmp_path / "store" / "a9f3e1c2" / "1.png")
    picture(tmp_path / "store" / "dl_0001" / "2.png")
    (tmp_path / "classes").mkdir()
    os.symlink(tmp_path / "store" / "a9f3e1c2", tmp_path / "classes" / "tabby_cat")
    os.symlink(tmp_path / "store" / "dl_0001", tmp_path / "classes" / "golden_retriever")
    plan = data.plan_captions(tmp_path / "classes", "folder")
    assert {p.parent.name: c for p, (c, _) in plan.writes.items()} == {"tabby_cat": "tabby cat",
                                                                        "golden_retriever": "golden retriever"}
    os.symlink(tmp_path / "store" / "a9f3e1c2", tmp_path / "siamese_cat")  # FOLDER itself a link
    assert [c for c, _ in data.plan_captions(tmp_path / "siamese_cat", "folder").writes.values()] == ["siamese cat"]


def test_data_caption_refuses_a_run_folder_given_as_folder(tmp_path: Path):
    # its loss.png and sample grids were captioned "loss" and "step" inside the run (one below FOLDER is left out)
    run_dir = tmp_path / "run"
    picture(run_dir / "loss.png")
    picture(run_dir / "samples" / "step-000004.png")
    (run_dir / "train_config.json").write_text('{"stage": "dvae", "data": "pics"}')
    r = run("data", "caption", run_dir)
    assert r.exit_code == 1 and "is a t2i run folder" in r.stderr and "Traceback" not in r.stderr
    assert not list(run_dir.rglob("*.txt"))
    inside = run("data", "caption", run_dir / "samples")  # its samples folder given
    assert inside.exit_code == 1 and f"is in a t2i run folder ({run_dir})" in inside.stderr
    assert not list(run_dir.rglob("*.txt"))


def test_data_caption_names_a_folder_it_cannot_read(tmp_path: Path, monkeypatch):
    # a sub-folder without read permission (root reads any, so its listing fails here by hand): its pictures
    # went without a caption and unsaid
    picture(tmp_path / "pics" / "red_bird.png")
    listed = data.files_under
    monkeypatch.setattr(data, "files_under", lambda folder: (lambda f, r, u: (f, r, [folder / "locked"]))(
        *listed(folder)))
    r = run("data", "caption", tmp_path / "pics")
    assert r.exit_code == 0 and "1 folder that cannot be read (permission?) left out, e.g. " in r.stderr
    again = run("data", "caption", tmp_path / "pics")
    assert again.exit_code == 0 and "1 folder that cannot be read" in again.stderr


def test_data_caption_dry_run_with_nothing_to_write_says_what_the_run_would(tmp_path: Path):
    # a dry run said "would write 0 caption files" (exit 0) where the run refuses, naming --from folder
    picture(tmp_path / "golden_retriever" / "IMG_0001.jpg")
    dry = run("data", "caption", tmp_path, "--dry-run")
    real = run("data", "caption", tmp_path)
    assert dry.exit_code == real.exit_code == 1 and dry.stderr == real.stderr
    assert "try --from folder" in dry.stderr and not list(tmp_path.rglob("*.txt"))


def test_a_manifest_above_the_pictures_it_names_is_found(tmp_path: Path):
    # Hugging Face's imagefolder: a metadata.csv at the top naming "train/a.png"; data caption captioned the
    # pictures by their names, and training did not name the manifest
    # (since session 41 the folder reads it: the picture has its caption, nothing to write)
    picture(tmp_path / "train" / "red_bird.png")
    (tmp_path / "metadata.csv").write_text("file_name,text\ntrain/red_bird.png,a small red bird\n")
    r = run("data", "caption", tmp_path)
    assert r.exit_code == 0 and not (tmp_path / "train" / "red_bird.txt").exists(), r.stderr
    assert data.open_source(str(tmp_path), 16).captions_at(0) == ["a small red bird"]


def test_a_csv_row_with_more_fields_than_its_header_is_left_out_not_cut(tmp_path: Path):
    # "a.png,a red bird, flying": the caption was read as "a red bird", the rest dropped unsaid
    picture(tmp_path / "a.png", 1)
    picture(tmp_path / "b.png", 2)
    (tmp_path / "m.csv").write_text("file_name,text\na.png,a red bird, flying\nb.png,a blue fish,\n")
    pairs, skipped = data._scan_csv(tmp_path / "m.csv")
    assert pairs == [(tmp_path / "b.png", ["a blue fish"])]  # (an empty field after it, as Excel writes, is fine)
    assert skipped.first == {"manifest row with more fields than its header row (a caption holding a , not "
                             "quoted? quote it)": f"{tmp_path / 'm.csv'} line 2"}


def test_data_caption_a_name_not_in_utf8_is_named_not_an_internal_error(tmp_path: Path):
    # a Latin-1 name ("caf\xe9.png" from an old zip) made the caption's write an internal UnicodeEncodeError
    pics = tmp_path / "pics"
    picture(pics / "red_bird.png")
    picture(Path(os.fsdecode(bytes(pics) + b"/caf\xe9_au_lait.png")))
    r = run("data", "caption", pics)
    assert r.exit_code == 0 and "(1 of them named in another encoding than UTF-8" in r.stderr
    assert sorted(p.name for p in pics.glob("*.txt")) == ["red_bird.txt"]
    assert caption_of(os.fsdecode(b"chat_\xe9l\xe9gant")) is None  # ("chat l gant", no)


def test_a_spreadsheets_csv_header_in_other_letter_case_or_after_a_sep_line_is_read(tmp_path: Path):
    """Excel writes a "sep=;" first line where it is asked to name its separator, and a header may be typed
    "File_Name,Text": both were refused as having no file_name/text columns."""
    picture(tmp_path / "a.png")
    (tmp_path / "sep.csv").write_text("sep=;\nFile_Name;Text\na.png;a red bird\nmissing.png;gone\n")
    ds = data.open_source(str(tmp_path / "sep.csv"), 16, list_skipped=True)
    assert ds.captions_at(0) == ["a red bird"]
    assert ds.every == {"missing image": [str(tmp_path / "missing.png")]}
    (tmp_path / "bad.csv").write_text("sep=;\nname;caption\n")
    with pytest.raises(DataError, match="in its header row, line 2"):
        data.open_source(str(tmp_path / "bad.csv"), 16)


def test_data_caption_of_a_manifest_or_a_folder_without_pictures_says_what_to_do(tmp_path: Path):
    (tmp_path / "m.csv").write_text("file_name,text\na.png,a red bird\n")
    r = run("data", "caption", tmp_path / "m.csv")
    assert one_line_failure(r, 1) == (f"error: {tmp_path / 'm.csv'} is not a folder but a manifest of captions: train "
                                      f"on it with t2i train --stage all --data {tmp_path / 'm.csv'} --out runs/m")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("not a caption\n")
    r = run("data", "caption", tmp_path / "empty")  # (it said "no pictures under ...", exit 0)
    assert one_line_failure(r, 1).startswith(f"error: no pictures under {tmp_path / 'empty'} (looked for .png, ")
    assert sorted(p.name for p in (tmp_path / "empty").iterdir()) == ["notes.txt"]


def test_a_write_that_fails_midway_says_how_many_captions_were_written(tmp_path: Path, monkeypatch):
    """A full disk or a read-only sub-folder after some captions were written said only the failure; the line now
    says how many are written (each whole) and that running again writes the rest."""
    from t2i_cli import name_captions
    from t2i_cli.errors import OutputError

    pics = tmp_path / "pics"
    for i, name in enumerate(("a-cat", "b-dog", "c-fox")):
        picture(pics / f"{name}.png", 40 * i)
    real = name_captions.write_if_absent

    def full_disk_at_the_third(path: Path, data: bytes) -> bool:
        if path.name == "c-fox.txt":
            raise OutputError(f"cannot write {path}: No space left on device; free space or choose another folder")
        return real(path, data)

    monkeypatch.setattr(name_captions, "write_if_absent", full_disk_at_the_third)
    r = run("data", "caption", pics, "-q")
    assert one_line_failure(r, 1) == (
        f"error: cannot write {pics / 'c-fox.txt'}: No space left on device; free space or choose another folder (2 "
        f"caption files of 3 written before it, each whole; run the command again to write the rest)")
    assert sorted(p.name for p in pics.glob("*.txt")) == ["a-cat.txt", "b-dog.txt"]
    monkeypatch.setattr(name_captions, "write_if_absent", real)
    again = run("data", "caption", pics, "-q")
    assert again.exit_code == 0 and (pics / "c-fox.txt").read_text() == "c fox\n", again.stderr
