"""Session 42: the Hugging Face imagefolder leftovers of session 41 (a folder's metadata.jsonl and metadata.csv)."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import one_line_failure, run
from t2i_cli import data
from test_s41_imagefolder import captions_by_name, jsonl, pictures


def test_a_caption_or_prompt_column_beside_file_name_is_read(tmp_path: Path):
    """file_name,caption (a common layout) and {"file_name", "prompt"} (diffusers' convert_to_imagefolder) were
    neither read nor named: the folder said its pictures had no caption. Read in a folder and given as the source."""
    ds = pictures(tmp_path / "ds", "a/x.png", "b/y.png")
    (ds / "a" / "metadata.csv").write_text("file_name,caption\nx.png,a red square\n")
    jsonl(ds / "b" / "metadata.jsonl", [{"file_name": "y.png", "prompt": "a blue square"}])
    got = data.open_source(str(ds), 16, val_fraction=0.0)
    assert captions_by_name(got, ds) == {"a/x.png": ["a red square"], "b/y.png": ["a blue square"]}
    assert got.skipped_message() is None
    assert data.open_source(str(ds / "a" / "metadata.csv"), 16).captions_at(0) == ["a red square"]
    assert data.open_source(str(ds / "b" / "metadata.jsonl"), 16).captions_at(0) == ["a blue square"]


def test_a_manifest_without_a_caption_column_is_named_with_its_columns(tmp_path: Path):
    """A metadata.csv of file_name,description or a classification's file_name,label beside pictures without a
    caption was passed over unsaid; now the warning (or the refusal) names it, its columns and the ones t2i reads."""
    ds = pictures(tmp_path / "ds", "red_bird.png", "blue_fish.png")
    (ds / "red_bird.txt").write_text("a red bird\n")
    (ds / "metadata.csv").write_text("file_name,description\nblue_fish.png,a blue fish\n")
    said = data.open_source(str(ds), 16).skipped_message()
    assert (f"; {ds / 'metadata.csv'} (its columns: 'file_name', 'description') has no caption column t2i reads, "
            f"so it is not read: a manifest's columns are \"file_name\" and \"text\", \"caption\" or "
            f"\"prompt\"") in said
    (ds / "red_bird.txt").unlink()
    jsonl(ds / "metadata.jsonl", [{"file_name": "red_bird.png", "label": 3}])
    (ds / "metadata.csv").unlink()
    line = one_line_failure(run("data", "preview", ds, "--out", tmp_path / "sheet.png"), 1)
    assert f"{ds / 'metadata.jsonl'} (its columns: 'file_name', 'label') has no caption column t2i reads" in line
    assert line.endswith(f"; to caption them by their names: t2i data caption {ds} (--dry-run shows the captions "
                         f"first)")


def test_a_row_naming_a_picture_in_other_letter_case_says_the_file_on_disk(tmp_path: Path):
    """A manifest written on macOS or Windows names "Photos/IMG_1.PNG" where Linux holds photos/img_1.png: it was a
    "missing image" beside the picture; still not read (names are case-sensitive here, as Hugging Face reads them),
    but counted as such naming the file on disk, in a folder and in a manifest given as the source; two files of
    that name in other letter cases are not guessed between."""
    ds = pictures(tmp_path / "ds", "photos/img_1.png", "b.png", "twin/c.png", "twin/C.png")
    (ds / "metadata.csv").write_text("file_name,text\nPhotos/IMG_1.PNG,a red square\nb.png,a blue square\n"
                                     "twin/c.PNG,which one\n")
    got = data.open_source(str(ds), 16, list_skipped=True)
    assert captions_by_name(got, ds) == {"b.png": ["a blue square"]}
    assert got.every[data.MISCASED] == [f"{ds / 'Photos/IMG_1.PNG'} (named in {ds / 'metadata.csv'} line 2; on disk: "
                                        f"{ds / 'photos/img_1.png'})"]
    assert got.skipped[data.MISCASED] == 1 and got.skipped["missing image"] == 1  # (twin/c.PNG)
    manifest = data.open_source(str(ds / "metadata.csv"), 16)
    assert manifest.skipped == {data.MISCASED: 1, "missing image": 1}
    assert f"{data.MISCASED}: {ds / 'Photos/IMG_1.PNG'} (on disk: {ds / 'photos/img_1.png'})" in \
        manifest.skipped_message()


def test_a_manifest_above_the_folder_given_is_named_with_the_folder_to_give(tmp_path: Path):
    """ds/metadata.csv naming train/a.png, the folder given ds/train: its pictures were "without a caption" (and
    `data caption ds/train` was suggested); now the warning, or the refusal, names the manifest, how many of the
    pictures it names and the folder to give, which reads them."""
    ds = pictures(tmp_path / "ds", "train/a.png", "train/b.png", "train/c.png")
    (ds / "Metadata.csv").write_text("file_name,text\ntrain/a.png,a red square\ntrain/b.png,a green one\n"
                                     "val/z.png,another split\n")
    line = one_line_failure(run("data", "preview", ds / "train", "--out", tmp_path / "sheet.png"), 1)
    assert line.endswith(f"(found only: 3 images without .txt caption, e.g. {ds / 'train' / 'a.png'}); "
                         f"{ds / 'Metadata.csv'} names 2 of the pictures here without a caption: give {ds} as the "
                         f"source to read it")
    (ds / "train" / "c.txt").write_text("a blue square\n")
    said = data.open_source(str(ds / "train"), 16).skipped_message()
    assert f"; {ds / 'Metadata.csv'} names 2 of the pictures here without a caption: give {ds} as the source" in said
    assert "data caption" not in said  # (not those the manifest captions)
    assert len(data.open_source(str(ds), 16, val_fraction=0.0)) == 3


def test_list_skipped_names_the_manifest_line_naming_a_missing_picture(tmp_path: Path):
    """A folder's manifest rows naming a missing picture (or a folder, or with an empty caption) were listed by the
    picture alone, in a folder of many manifests; now with the manifest and line (a CSV row's first line)."""
    ds = pictures(tmp_path / "ds", "a/x.png", "b/y.png")
    (ds / "a" / "metadata.csv").write_text('file_name,text\nx.png,a red square\n"gone.png","two\nlines"\n')
    jsonl(ds / "b" / "metadata.jsonl", [{"file_name": "y.png", "text": "a blue square"},
                                        {"file_name": "lost.png", "text": "a missing one"},
                                        {"file_name": ".", "text": "a folder"},
                                        {"file_name": "none.png", "text": " "}])
    got = data.open_source(str(ds), 16, list_skipped=True)
    assert got.every == {
        "missing image": [f"{ds / 'a' / 'gone.png'} (named in {ds / 'a' / 'metadata.csv'} line 3)",
                          f"{ds / 'b' / 'lost.png'} (named in {ds / 'b' / 'metadata.jsonl'} line 2)"],
        "image path naming a folder": [f"{ds / 'b'} (named in {ds / 'b' / 'metadata.jsonl'} line 3)"],
        "empty caption": [f"{ds / 'b' / 'none.png'} (named in {ds / 'b' / 'metadata.jsonl'} line 4)"]}
    r = run("data", "preview", ds, "--list-skipped", "--out", tmp_path / "sheet.png")
    assert f"missing image: {ds / 'b' / 'lost.png'} (named in {ds / 'b' / 'metadata.jsonl'} line 2)" in \
        r.stdout.splitlines(), r.stdout


def test_rerank_reads_a_pictures_prompt_from_the_folders_metadata(tiny_weights, tmp_path: Path):
    """`t2i rerank DIR` read a prompt from PNG text or a NAME.txt only: an imagefolder's pictures, captioned in its
    metadata.csv (file_name,caption) and train/metadata.jsonl, were "pictures without a prompt" (and the manifests
    "text files"); now each is ranked against its first caption there, as training reads it."""
    ds = pictures(tmp_path / "ds", "a.png", "train/b.png", "c.png")
    (ds / "metadata.csv").write_text("file_name,caption\na.png,a red bird\n")
    jsonl(ds / "train" / "metadata.jsonl", [{"file_name": "b.png", "text": ["a blue fish", "blue"]}])
    (ds / "c.txt").write_text("two green cats\n")
    r = run("rerank", ds, "--weights", tiny_weights, "--bits", "--device", "cpu")
    assert r.exit_code == 0, (r.stderr, r.exception)
    assert r.stderr == "", r.stderr
    rows = json.loads((ds / "ranking.json").read_text())
    assert sorted((row["file"], row["prompt"]) for row in rows) == [
        ("a.png", "a red bird"), ("c.png", "two green cats"), ("train/b.png", "a blue fish")]
    assert all(isinstance(row["bits_per_code"], float) for row in rows)


def test_two_pictures_whose_names_differ_in_accent_form_alone_each_take_their_own_row(tmp_path: Path):
    """café.png composed (NFC) and café.png decomposed (NFD), two files Linux holds apart, each named by a row in its
    own form: they shared one lookup entry, so one took both captions and the other was "without a caption" (and
    the manifest was said to name none of those); now each has its own. One form alone is still found by either."""
    import unicodedata

    nfc, nfd = unicodedata.normalize("NFC", "café"), unicodedata.normalize("NFD", "café")
    ds = pictures(tmp_path / "ds", f"{nfc}.png", f"{nfd}.png", f"{nfd}2.png")
    jsonl(ds / "metadata.jsonl", [{"file_name": f"{nfc}.png", "text": "a composed one"},
                                  {"file_name": f"{nfd}.png", "text": "a decomposed one"},
                                  {"file_name": f"{nfc}2.png", "text": "found by the other form"}])
    got = data.open_source(str(ds), 16, val_fraction=0.0)
    assert captions_by_name(got, ds) == {f"{nfc}.png": ["a composed one"], f"{nfd}.png": ["a decomposed one"],
                                         f"{nfd}2.png": ["found by the other form"]}
    assert got.skipped_message() is None


def test_a_row_naming_a_picture_outside_the_folder_names_its_manifest_line(tmp_path: Path):
    """Rows naming a picture outside the folder were named "(named in M)", one manifest of many lines: now its line."""
    pictures(tmp_path, "outside.png")
    ds = pictures(tmp_path / "ds", "a.png")
    (ds / "metadata.csv").write_text("file_name,text\na.png,a red square\n../outside.png,outside\n")
    got = data.open_source(str(ds), 16, list_skipped=True)
    assert got.every == {data.OUTSIDE_ROW: [f"{ds / '../outside.png'} (named in {ds / 'metadata.csv'} line 3)"]}


def test_data_caption_of_a_split_folder_refuses_where_a_manifest_above_captions_it(tmp_path: Path):
    """`t2i data caption ds/train` beside ds/metadata.csv naming train/red_bird.png wrote red_bird.txt "red bird",
    which training on ds/ then read beside the manifest's caption; now that picture is left as it is, naming the
    manifest (it was refused, the whole folder, until session 43)."""
    ds = pictures(tmp_path / "ds", "train/red_bird.png", "train/blue_fish.png")
    (ds / "metadata.csv").write_text("file_name,text\ntrain/red_bird.png,a small red bird\n")
    # (since session 43 the pictures it does not name are captioned, those it names left as they are)
    said = (f"warning: {ds / 'metadata.csv'} names 1 of the pictures here without a caption: give {ds} as the source "
            f"to read it; those pictures are left as they are (their captions are there)")
    dry = run("data", "caption", ds / "train", "--dry-run")
    assert dry.exit_code == 0 and said in dry.stderr.splitlines(), dry.stderr
    assert sorted(p.name for p in (ds / "train").iterdir()) == ["blue_fish.png", "red_bird.png"]
    r = run("data", "caption", ds / "train")
    assert r.exit_code == 0 and said in r.stderr.splitlines(), r.stderr
    assert sorted(p.name for p in (ds / "train").iterdir()) == ["blue_fish.png", "blue_fish.txt", "red_bird.png"]
