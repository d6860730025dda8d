"""Session 43: imagefolder leftovers (a manifest above the folder, `data caption` beside one naming some of its
pictures, an image,text CSV given as the source, case-insensitive file systems) and the tokenizer's check of its
pre-tokenizer."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from conftest import TINY_CAPTIONS, one_line_failure, run
from t2i_cli import data
from t2i_cli.models import tokenizer
from test_s41_imagefolder import captions_by_name, jsonl, pictures


def _own_tokenizer_json() -> dict:
    return json.loads(tokenizer.TextTokenizer.train(TINY_CAPTIONS, vocab_size=64).to_json())


def test_the_pre_tokenizer_is_checked_by_the_fields_that_split_text():
    """check_processing compared the pre-tokenizer's JSON exactly with IDEOGRAPH_SPLIT: a later tokenizers that
    writes the same pre-tokenizer with a default field more refused t2i's own tokenizer files. Now the fields that
    decide the split are compared, extra ones and the names' order passed over; a pre-tokenizer that splits
    otherwise is still refused."""
    spec = _own_tokenizer_json()
    tokenizer.check_processing(json.dumps(spec))  # as written
    more = copy.deepcopy(spec)
    split, words = more["pre_tokenizer"]["pretokenizers"]
    split["some_new_default"] = None
    words["added_field"] = True
    more["pre_tokenizer"]["trim_offsets"] = True
    more["pre_tokenizer"]["pretokenizers"] = [dict(reversed(list(split.items()))), words]
    tokenizer.check_processing(json.dumps(more))
    without = copy.deepcopy(spec)
    del without["pre_tokenizer"]["pretokenizers"][0]["invert"]  # (its default, False)
    tokenizer.check_processing(json.dumps(without))
    for change in (lambda s: s["pretokenizers"][0].update(invert=True),
                   lambda s: s["pretokenizers"][0].update(behavior="Removed"),
                   lambda s: s["pretokenizers"][0].update(pattern={"Regex": "[a-z]"}),
                   lambda s: s["pretokenizers"][0].update(pattern={"String": tokenizer.CJK_IDEOGRAPHS}),
                   lambda s: s["pretokenizers"][1].update(type="WhitespaceSplit"),
                   lambda s: s["pretokenizers"].reverse(),
                   lambda s: s["pretokenizers"].append({"type": "Digits", "individual_digits": True})):
        bad = copy.deepcopy(spec)
        change(bad["pre_tokenizer"])
        with pytest.raises(ValueError, match="its pre_tokenizer is not the one t2i's tokenizers use"):
            tokenizer.check_processing(json.dumps(bad))
    assert tokenizer.TextTokenizer.from_json(json.dumps(more)).encode("a red bird", 8).ids == \
        tokenizer.TextTokenizer.from_json(json.dumps(spec)).encode("a red bird", 8).ids


def test_an_image_text_manifest_given_as_the_source_is_told_which_column_to_rename(tmp_path: Path):
    """`t2i data preview ds/metadata.csv` of "image,text" was refused with the general "has no columns ... name them
    so" (of columns it has), and a JSONL line {"image", "text"} counted as "without both" names; a folder holding
    that metadata.csv is told which column to rename: so are they."""
    ds = pictures(tmp_path / "ds", "a.png", "b.png")
    (ds / "metadata.csv").write_text("Image,text\na.png,a red square\n")
    line = one_line_failure(run("data", "preview", ds / "metadata.csv", "--out", tmp_path / "p.png"), 1)
    assert line == (f"error: manifest {ds / 'metadata.csv'} (its columns: 'image', 'text') is not read: its picture "
                    f"column \"image\" pairs with \"caption\" only, and \"file_name\" with \"text\", \"caption\" or "
                    f"\"prompt\": name its picture column \"file_name\" (as Hugging Face's imagefolder reads it) or "
                    f"its caption column \"caption\"")
    folder = one_line_failure(run("data", "preview", ds, "--out", tmp_path / "p.png"), 1)
    assert line.partition(" (its columns")[2] in folder  # the same words
    jsonl(ds / "captions.jsonl", [{"image": "a.png", "text": "a red square"}, {"image": "b.png", "caption": "blue"}])
    got = data.open_source(str(ds / "captions.jsonl"), 16, list_skipped=True)
    assert got.every == {data.MISPAIRED_LINE: [f"{ds / 'captions.jsonl'} line 1"]}
    assert '("image" pairs with "caption" only, "file_name" with "text", "caption" or "prompt": rename one)' in \
        data.MISPAIRED_LINE


def test_data_caption_captions_the_pictures_a_manifest_above_does_not_name(tmp_path: Path):
    """`t2i data caption ds/train` beside ds/metadata.csv naming one of its three pictures refused the whole folder
    ("move it away first"): pictures added to a Hugging Face split after its manifest was written could not be
    captioned without moving the dataset's own manifest. Now those it names are left as they are (their captions
    are there) and the others are captioned; training on ds then reads every picture, each captioned once."""
    ds = pictures(tmp_path / "ds", "train/red_bird.png", "train/blue_fish.png", "train/green_cat.png")
    (ds / "metadata.csv").write_text("file_name,text\ntrain/red_bird.png,a small red bird\n")
    warned = (f"warning: {ds / 'metadata.csv'} names 1 of the pictures here without a caption: give {ds} as the "
              f"source to read it; those pictures are left as they are (their captions are there)")
    dry = run("data", "caption", ds / "train", "--dry-run")
    assert dry.exit_code == 0 and warned in dry.stderr.splitlines(), dry.stderr
    assert dry.stdout.splitlines()[:2] == [f"{ds / 'train/blue_fish.txt'}: blue fish",
                                           f"{ds / 'train/green_cat.txt'}: green cat"]
    r = run("data", "caption", ds / "train")
    assert r.exit_code == 0 and warned in r.stderr.splitlines(), r.stderr
    assert sorted(p.name for p in (ds / "train").glob("*.txt")) == ["blue_fish.txt", "green_cat.txt"]
    assert r.stdout.strip().endswith(f"then train with: t2i train --stage all --data {ds} --out runs/ds")  # (the
    # folder that reads them all)
    got = data.open_source(str(ds), 16, val_fraction=0.0)
    assert captions_by_name(got, ds) == {"train/blue_fish.png": ["blue fish"], "train/green_cat.png": ["green cat"],
                                         "train/red_bird.png": ["a small red bird"]}
    assert got.skipped_message() is None
    again = run("data", "caption", ds / "train")  # nothing left: it says so, and where the rest's captions are
    assert again.exit_code == 0 and warned in again.stderr.splitlines(), again.stderr
    assert again.stdout.strip() == f"nothing to write: every picture under {ds / 'train'} has a caption"


def test_a_manifest_of_another_name_above_the_folder_is_looked_for_too(tmp_path: Path):
    """ds/metadata.csv naming train/a.png was said by `data preview ds/train` (give ds), but ds/captions.jsonl (or a
    captions.csv), a manifest t2i reads as the source, was not looked for: the folder said its pictures had no
    caption and offered `t2i data caption`, whose captions by name duplicate the manifest's. Now it is named, with
    itself as the source to give, and `data caption` leaves the pictures it names as they are."""
    ds = pictures(tmp_path / "ds", "train/red_bird.png", "train/blue_fish.png")
    jsonl(ds / "metrics.jsonl", [{"step": 1, "loss": 2.0}])  # (no manifest: passed over)
    jsonl(ds / "captions.jsonl", [{"image": "train/red_bird.png", "caption": "a small red bird"}])
    line = one_line_failure(run("data", "preview", ds / "train", "--out", tmp_path / "p.png"), 1)
    assert line.endswith(f"; {ds / 'captions.jsonl'} names 1 of the pictures here without a caption: give "
                         f"{ds / 'captions.jsonl'} as the source to read it"), line
    assert "data caption" not in line
    r = run("data", "caption", ds / "train")
    assert r.exit_code == 0, r.stderr
    assert f"{ds / 'captions.jsonl'} names 1 of the pictures here without a caption" in r.stderr
    assert sorted(p.name for p in (ds / "train").glob("*.txt")) == ["blue_fish.txt"]
    assert r.stdout.strip().endswith(f"then train with: t2i train --stage all --data {ds / 'train'} --out runs/train")
    (ds / "train/blue_fish.txt").unlink()
    (ds / "captions.jsonl").unlink()
    (tmp_path / "captions.csv").write_text("image;caption\nds/train/blue_fish.png;a blue fish\n")  # two folders up
    with pytest.raises(data.NothingUsable) as e:
        data.open_source(str(ds / "train"), 16)
    said = str(e.value)
    assert said.endswith(f"; {tmp_path / 'captions.csv'} names 1 of the pictures here without a caption: give "
                         f"{tmp_path / 'captions.csv'} as the source to read it"), said


def _case_insensitive(monkeypatch) -> None:
    """Path's look-ups (exists, is_file, is_dir, stat, resolve) as on macOS' or Windows' file systems, which find
    img_1.png by the name IMG_1.PNG too; listing a folder gives the names as written, as there."""
    import os
    import pathlib

    def on_disk(path: Path) -> Path:
        at = Path(path.anchor)
        for part in path.parts[1:]:
            if not os.path.lexists(at / part):
                alike = [n for n in (os.listdir(at) if os.path.isdir(at) else []) if n.casefold() == part.casefold()]
                if len(alike) != 1:
                    return path
                part = alike[0]
            at = at / part
        return at

    for name in ("exists", "is_file", "is_dir", "stat", "resolve"):
        plain = getattr(pathlib.Path, name)
        monkeypatch.setattr(pathlib.Path, name, lambda self, *a, _plain=plain, **k: _plain(
            on_disk(Path(os.path.abspath(self))), *a, **k))


def test_a_row_in_other_letter_case_is_told_alike_on_a_case_insensitive_file_system(tmp_path: Path, monkeypatch):
    """A folder's metadata.csv naming "IMG_1.PNG" for img_1.png: on Linux the row is counted as naming the file in
    other letter case, and the picture as without a caption; on macOS or Windows the row's path opened the file, so
    the picture was read through the row AND counted as without a caption (and the row's pair validated on a picture
    the folder also said was unusable). The row is now matched against the scan's own names, which do not depend on
    the file system: told the same on both."""
    ds = pictures(tmp_path / "ds", "photos/img_1.png", "b.png")
    (ds / "metadata.csv").write_text("file_name,text\nPhotos/IMG_1.PNG,a red square\nb.png,a blue square\n")

    def told() -> tuple[dict, dict]:
        got = data.open_source(str(ds), 16, list_skipped=True)
        return captions_by_name(got, ds), got.every

    linux = told()
    assert linux == ({"b.png": ["a blue square"]},
                     {data.MISCASED: [f"{ds / 'Photos/IMG_1.PNG'} (named in {ds / 'metadata.csv'} line 2; on disk: "
                                      f"{ds / 'photos/img_1.png'})"],
                      data.UNCAPTIONED: [str(ds / "photos/img_1.png")]})
    with monkeypatch.context() as m:
        _case_insensitive(m)
        assert (ds / "Photos/IMG_1.PNG").is_file()  # (the simulation holds)
        assert told() == linux


def test_a_null_caption_is_an_empty_one_and_a_url_is_said_as_such(tmp_path: Path):
    """A Hugging Face metadata.jsonl as pandas' to_json writes it: a missing caption is null, and a scraped set's rows
    may name their pictures by URL. A null caption was a line "whose caption is not a string" (so the picture that
    line names was "without a caption", the manifest said to name none of those, and `data caption` refused the
    folder over that line); now it is an empty caption, as a CSV's empty field is, and `data caption` captions it.
    A URL was a "missing image" at a path made of it (ds/https:/example.com/x.png); now counted as a URL."""
    ds = pictures(tmp_path / "ds", "red_bird.png", "blue_fish.png")
    jsonl(ds / "metadata.jsonl", [{"file_name": "red_bird.png", "text": "a red bird", "label": 3},
                                  {"file_name": "blue_fish.png", "text": None},
                                  {"file_name": "https://example.com/x.png", "text": "a green cat"}])
    got = data.open_source(str(ds), 16, list_skipped=True)
    assert captions_by_name(got, ds) == {"red_bird.png": ["a red bird"]}
    assert got.every == {"empty caption": [f"{ds / 'blue_fish.png'} (named in {ds / 'metadata.jsonl'} line 2)"],
                         data.URL_ROW: [f"{ds / 'metadata.jsonl'} line 3 (https://example.com/x.png)"]}
    assert "names none of those without a caption" not in got.skipped_message()
    r = run("data", "caption", ds)
    assert r.exit_code == 0, r.stderr
    assert sorted(p.name for p in ds.glob("*.txt")) == ["blue_fish.txt"]
    (ds / "captions.csv").write_text("image,caption\nhttp://example.com/y.png,a cat\nred_bird.png,a bird\n")
    manifest = data.open_source(str(ds / "captions.csv"), 16, list_skipped=True)
    assert manifest.every == {data.URL_ROW: [f"{ds / 'captions.csv'} line 2 (http://example.com/y.png)"]}


def test_a_csv_manifest_of_another_name_beside_the_pictures_is_named_as_a_jsonl_one_is(tmp_path: Path):
    """A captions.jsonl beside pictures without a caption is named (give it as the source), and `data caption`
    refuses to caption its pictures by name; a captions.csv of file_name,text went unsaid: the folder offered `t2i
    data caption`, which wrote captions by name over the manifest's. A .csv of other columns is no manifest."""
    ds = pictures(tmp_path / "ds", "red_bird.png", "blue_fish.png")
    (ds / "sizes.csv").write_text("width,height\n16,16\n")
    (ds / "other.csv").write_bytes(b"\xff\xfe" + "image,caption\n".encode("utf-16-le"))  # (unreadable: no manifest)
    line = one_line_failure(run("data", "preview", ds, "--out", tmp_path / "p.png"), 1)
    assert "data caption" in line and "it holds a manifest" not in line, line
    (ds / "captions.csv").write_text("file_name,text\nred_bird.png,a red bird\nblue_fish.png,a blue fish\n")
    line = one_line_failure(run("data", "preview", ds, "--out", tmp_path / "p.png"), 1)
    assert line.endswith(f"; it holds a manifest: give {ds / 'captions.csv'} as the source"), line
    line = one_line_failure(run("data", "caption", ds), 1)
    assert line.startswith(f"error: {ds / 'captions.csv'}, beside pictures without a .txt caption, is a manifest "
                           f"whose captions training reads with: t2i train --stage all --data {ds / 'captions.csv'} "
                           f"--out runs/captions"), line
    assert not list(ds.glob("*.txt"))


def test_a_windows_drive_path_is_said_as_such(tmp_path: Path):
    """A manifest written on Windows names C:\\data\\a.png: told "write /" for its backslashes, after which
    C:/data/a.png was a plain "missing image" (at the manifest's folder / "C:/data/a.png"). Both are now told that a
    drive's path means nothing here, in a folder's manifest and in one given as the source."""
    ds = pictures(tmp_path / "ds", "a.png", "b.png")
    (ds / "metadata.csv").write_text("file_name,text\nC:\\data\\a.png,a red square\nD:/data/b.png,a blue one\n"
                                     "b.png,a blue square\n")
    for source in (ds, ds / "metadata.csv"):
        got = data.open_source(str(source), 16, list_skipped=True)
        assert set(got.every) == ({data.WINDOWS_DRIVE, data.UNCAPTIONED} if source == ds else {data.WINDOWS_DRIVE})
        assert len(got.every[data.WINDOWS_DRIVE]) == 2
    assert "write it relative to the manifest's folder" in data.WINDOWS_DRIVE
