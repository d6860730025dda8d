"""Session 41: a folder source reads Hugging Face's imagefolder layout, the metadata.jsonl and metadata.csv in it and
its sub-folders, for the pictures they name (it read .txt captions only, and named such a manifest in a warning)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from conftest import one_line_failure, run
from t2i_cli import data
from t2i_cli.errors import DataError


def pictures(folder: Path, *names: str) -> Path:
    """16 px pictures, each its own colour, at the paths (relative to folder) named."""
    for i, name in enumerate(names):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (16, 16), (40 * i % 256, 90, 200 - 30 * i % 200)).save(folder / name)
    return folder


def jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def captions_by_name(ds: data.CaptionDataset, folder: Path) -> dict[str, list[str]]:
    return {Path(ds.file_of(i)).relative_to(folder).as_posix(): ds.captions_at(i) for i in range(len(ds))}


def test_a_folder_reads_the_metadata_jsonl_and_csv_of_its_splits(tmp_path: Path):
    """An imagefolder with train/metadata.jsonl and val/metadata.csv (its name in other letter case): `data preview
    ds/` was "no usable image-caption pairs ... it holds a manifest"; now every picture has its caption."""
    ds = pictures(tmp_path / "ds", "train/a.png", "train/sub/b.png", "val/c.png")
    jsonl(ds / "train" / "metadata.jsonl", [{"file_name": "a.png", "text": "a red square"},
                                            {"file_name": "sub/b.png", "text": ["a blue one", "blue"]}])
    (ds / "val" / "Metadata.CSV").write_text('file_name,text\nc.png,"a green square, small"\n')
    got = data.open_source(str(ds), 16)
    assert captions_by_name(got, ds) == {"train/a.png": ["a red square"], "train/sub/b.png": ["a blue one", "blue"],
                                         "val/c.png": ["a green square, small"]}
    assert got.skipped_message() is None
    r = run("data", "preview", ds, "--n", "3", "--out", tmp_path / "sheet.png")
    assert r.exit_code == 0 and r.stderr == "", r.stderr
    assert (tmp_path / "sheet.png").is_file()


def test_a_picture_with_a_txt_and_a_manifest_row_has_both_captions_each_once(tmp_path: Path):
    """Both kept: the .txt lines first, then the manifest's, a caption already there not added again; the
    picture is one item, and the warning counts it."""
    ds = pictures(tmp_path / "ds", "a.png", "b.png")
    (ds / "a.txt").write_text("a red square\nred\n")
    jsonl(ds / "metadata.jsonl", [{"file_name": "a.png", "text": "a red square"},
                                  {"file_name": "a.png", "text": "a crimson tile"},
                                  {"file_name": "b.png", "text": "a blue square"}])
    got = data.open_source(str(ds), 16, val_fraction=0.0)
    assert captions_by_name(got, ds) == {"a.png": ["a red square", "red", "a crimson tile"], "b.png": ["a blue square"]}
    assert got.skipped_message() == (
        f"using 2; 1 picture is captioned in more than one place (a .txt caption and a manifest, or two manifests): "
        f"its captions from every place are used, each once ({ds / 'a.png'} (captions in {ds / 'a.txt'}, "
        f"{ds / 'metadata.jsonl'}))")
    assert data.caption_count(got) == 4


def test_two_manifests_covering_one_picture_give_it_both_captions(tmp_path: Path):
    """A metadata.csv at the top naming train/a.png, and train/metadata.jsonl naming a.png: one picture, both
    captions (manifests in path order), counted; a caption both give, once."""
    ds = pictures(tmp_path / "ds", "train/a.png", "train/b.png")
    (ds / "metadata.csv").write_text("file_name,text\ntrain/a.png,a red square\ntrain/b.png,a blue square\n")
    jsonl(ds / "train" / "metadata.jsonl", [{"file_name": "a.png", "text": "a red tile"},
                                            {"file_name": "b.png", "text": "a blue square"}])
    got = data.open_source(str(ds), 16, val_fraction=0.0)
    assert captions_by_name(got, ds) == {"train/a.png": ["a red square", "a red tile"],
                                         "train/b.png": ["a blue square"]}
    assert got.skipped == {data.SEVERAL_PLACES: 2}
    assert got.first[data.SEVERAL_PLACES] == (f"{ds / 'train' / 'a.png'} (captions in {ds / 'metadata.csv'}, "
                                              f"{ds / 'train' / 'metadata.jsonl'})")


def test_rows_the_folder_cannot_use_are_counted_and_listed(tmp_path: Path):
    """A row naming a missing picture (counted as the manifest source counts it), a picture outside the folder, one
    in a t2i run folder below it, a file that is no picture; a manifest inside the run folder is not read; and
    `data preview --list-skipped` lists every one."""
    pictures(tmp_path, "outside.png")
    ds = pictures(tmp_path / "ds", "a.png", "b.png", "run/samples/s.png")
    (ds / "run" / "train_config.json").write_text(json.dumps({"stage": "dvae", "data": str(ds)}))
    jsonl(ds / "run" / "metadata.jsonl", [{"file_name": "../b.png", "text": "read from the run"}])
    (ds / "notes.heic").write_bytes(b"not read")
    jsonl(ds / "metadata.jsonl", [{"file_name": "a.png", "text": "a red square"},
                                  {"file_name": "gone.png", "text": "a missing one"},
                                  {"file_name": "../outside.png", "text": "outside"},
                                  {"file_name": "run/samples/s.png", "text": "a sample"},
                                  {"file_name": "notes.heic", "text": "a HEIC"}])
    got = data.open_source(str(ds), 16, list_skipped=True)
    assert captions_by_name(got, ds) == {"a.png": ["a red square"]}  # (b.png: only the run's manifest names it)
    m = ds / "metadata.jsonl"
    assert got.every == {
        "missing image": [f"{ds / 'gone.png'} (named in {m} line 2)"],  # (since session 42: the manifest line)
        data.OUTSIDE_ROW: [f"{ds / '../outside.png'} (named in {m} line 3)"],
        data.RUN_ROW: [f"{ds / 'run/samples/s.png'} (named in {m} line 4)"],
        data.NOT_PICTURE_ROW: [f"{ds / 'notes.heic'} (named in {m} line 5)"],
        "t2i run folder (its samples are not data)": [str(ds / "run")],
        data.UNCAPTIONED: [str(ds / "b.png")],
        next(why for why in got.every if "HEIC" in why): [str(ds / "notes.heic")]}
    assert got.skipped_message().startswith("skipped 7 items (")
    r = run("data", "preview", ds, "--list-skipped", "--out", tmp_path / "sheet.png")
    assert r.exit_code == 0, r.stderr
    assert f"{data.OUTSIDE_ROW}: {ds / '../outside.png'} (named in {m} line 3)" in r.stdout.splitlines()
    assert f"missing image: {ds / 'gone.png'} (named in {m} line 2)" in r.stdout.splitlines()
    # the manifest reads it as given: the picture outside its folder is a manifest source's to read
    assert [c for _, c in data.open_source(str(m), 16).pairs] == [["a red square"], ["outside"], ["a sample"]]


def test_data_caption_leaves_the_pictures_a_manifest_names_and_captions_the_others(tmp_path: Path):
    """data caption refused every picture beside a metadata.csv; now those it names have their caption, and the
    ones it does not name (named in the warning) are captioned by their names; its rows naming missing pictures
    are no pictures already captioned."""
    ds = pictures(tmp_path / "ds", "red_bird.png", "blue_fish.png")
    (ds / "metadata.csv").write_text("file_name,text\nred_bird.png,a small red bird\ngone.png,a missing one\n")
    got = data.open_source(str(ds), 16, list_skipped=True)
    assert got.skipped_message() == (
        f"skipped 2 items (1 image without .txt caption: {ds / 'blue_fish.png'}; 1 missing image: "
        f"{ds / 'gone.png'} (named in {ds / 'metadata.csv'} line 3)); using 1; {ds / 'metadata.csv'}, read for the "
        f"pictures it names, names none of those "
        f"without a caption beside or below it (a row's path is relative to the manifest's folder); to caption those "
        f"without one by their names: t2i data caption {ds} (--dry-run shows the captions first)")
    r = run("data", "caption", ds, "--dry-run")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.splitlines()[0] == f"{ds / 'blue_fish.txt'}: blue fish"
    assert r.stderr == "warning: 1 picture already captioned (left untouched)\n"


def test_a_classification_manifest_is_not_read(tmp_path: Path):
    """A metadata.csv of file_name,label or a metadata.jsonl of {"file_name", "label"} holds no captions: not read
    (their pictures are without a caption), beside a caption manifest that is read; since session 42 the first such
    is named in the warning with its columns (tests/test_s42_imagefolder.py)."""
    ds = pictures(tmp_path / "ds", "red_bird.png", "cls/blue_car.png", "cls2/green_cat.png")
    (ds / "metadata.csv").write_text("file_name,text\nred_bird.png,a small red bird\n")
    jsonl(ds / "cls" / "metadata.jsonl", [{"file_name": "blue_car.png", "label": 1}])
    (ds / "cls2" / "metadata.csv").write_text("file_name,label\ngreen_cat.png,0\n")
    got = data.open_source(str(ds), 16, list_skipped=True)
    assert captions_by_name(got, ds) == {"red_bird.png": ["a small red bird"]}
    assert got.every == {data.UNCAPTIONED: [str(ds / "cls" / "blue_car.png"), str(ds / "cls2" / "green_cat.png")]}
    said = got.skipped_message()
    assert f"{ds / 'cls' / 'metadata.jsonl'} (its columns: 'file_name', 'label') has no caption column" in said
    assert "cls2/metadata" not in said and f"; {ds / 'metadata.csv'}, read" in said


def test_a_folder_manifest_keeps_its_readers_bounds_and_refusals(tmp_path: Path):
    """A bad line of a metadata.jsonl is counted naming its line, as the manifest source counts it; a metadata.csv
    its reader refuses (UTF-16, a quote left open) refuses the folder in one line naming it."""
    ds = pictures(tmp_path / "ds", "a.png", "b.png")
    (ds / "metadata.jsonl").write_text('{"file_name": "a.png", "text": "a red square"}\nnot json\n'
                                       + json.dumps({"file_name": "b.png", "text": [f"x{i}" for i in range(70)]})
                                       + "\n")
    got = data.open_source(str(ds), 16, val_fraction=0.0)
    assert captions_by_name(got, ds) == {"a.png": ["a red square"], "b.png": [f"x{i}" for i in range(64)]}
    assert got.skipped == {"manifest line not JSON in UTF-8": 1, data.TOO_MANY_CAPTIONS: 1}
    assert got.first["manifest line not JSON in UTF-8"] == f"{ds / 'metadata.jsonl'} line 2"
    (ds / "metadata.jsonl").unlink()
    (ds / "metadata.csv").write_bytes("file_name,text\na.png,a red square\n".encode("utf-16"))
    line = one_line_failure(run("data", "preview", ds, "--out", tmp_path / "sheet.png"), 1)
    assert line.startswith(f"error: manifest {ds / 'metadata.csv'} is saved as UTF-16 or UTF-32; save it as UTF-8")
    (ds / "metadata.csv").write_text('file_name,text\na.png,"a red square\n' + "b.png,x\n" * 20)
    with pytest.raises(DataError, match=r"metadata.csv line 2 is not CSV as t2i reads it .*; check its quotes"):
        data.open_source(str(ds), 16)


def test_a_txt_and_manifest_captions_past_the_first_64_are_counted_once(tmp_path: Path):
    """60 .txt lines and 10 manifest captions: 64 kept, the picture counted once among those with too many."""
    ds = pictures(tmp_path / "ds", "a.png")
    (ds / "a.txt").write_text("".join(f"line {i}\n" for i in range(60)))
    jsonl(ds / "metadata.jsonl", [{"file_name": "a.png", "text": [f"row {i}" for i in range(10)]}])
    got = data.open_source(str(ds), 16)
    assert got.captions_at(0) == [f"line {i}" for i in range(60)] + [f"row {i}" for i in range(4)]
    assert got.skipped[data.TOO_MANY_CAPTIONS] == 1 and got.first[data.TOO_MANY_CAPTIONS] == str(ds / "a.png")


def test_training_a_tokenizer_on_an_imagefolder_reads_its_captions(tmp_path: Path):
    ds = pictures(tmp_path / "ds", *(f"train/p{i}.png" for i in range(4)))
    jsonl(ds / "train" / "metadata.jsonl", [{"file_name": f"p{i}.png", "text": c} for i, c in
                                            enumerate(["a red bird", "a blue fish", "a red cat", "a red hat"])])
    r = run("train", "--stage", "tokenizer", "--data", ds, "--out", tmp_path / "run", "-q")
    assert r.exit_code == 0 and r.stderr == "", r.stderr
    assert '"captions": 3' in r.stdout  # (the fourth picture held out for validation)
    assert "red" in json.loads((tmp_path / "run" / "tokenizer.json").read_text())["model"]["vocab"]
