"""Session 42 (helper hK): manifest column pairs, rerank's note on a manifest without captions, and name captions."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from conftest import one_line_failure, run
from t2i_cli import data


def pictures(folder: Path, *names: str) -> Path:
    """16 px pictures, each its own colour, at the paths (relative to folder) named."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        Image.new("RGB", (16, 16), (40 * i % 256, 90, 200 - 30 * i % 200)).save(folder / name)
    return folder


def test_manifest_keys_pick_the_first_pair_a_line_or_header_has():
    """One helper chooses a row's picture and caption columns for every reader (it was written out three times)."""
    assert data._manifest_keys({"image": "a.png", "caption": "x", "file_name": "b.png", "text": "y"}) == \
        ("image", "caption")
    assert data._manifest_keys(["file_name", "prompt", "caption"]) == ("file_name", "caption")
    assert data._manifest_keys({"image": "a.png", "text": "x"}) is None
    assert data._manifest_keys(["a.png", "x"]) is None and data._manifest_keys("image caption") is None


def test_image_and_text_columns_are_said_not_to_pair(tmp_path: Path):
    """A metadata.csv of image,text was told it "has no caption column t2i reads", though it has "text": the
    columns are there but "image" pairs with "caption" only. Said so, with what to rename."""
    ds = pictures(tmp_path / "ds", "a.png", "b.png")
    (ds / "metadata.csv").write_text("image,text\na.png,a red square\nb.png,a blue square\n")
    line = one_line_failure(run("data", "preview", ds))
    assert "has no caption column" not in line
    assert "its picture column \"image\" pairs with \"caption\" only" in line
    assert "name its picture column \"file_name\"" in line and "'image', 'text'" in line
    assert "t2i data caption" not in line  # renaming a column reads its captions
    (ds / "metadata.csv").write_text("file_name,label\na.png,cat\n")  # a classification's: no caption column
    line = one_line_failure(run("data", "preview", ds))
    assert "has no caption column t2i reads" in line and "pairs with" not in line


def test_rerank_names_a_manifest_without_captions_as_such(tmp_path: Path):
    """rerank DIR counted a classification folder's metadata.csv (file_name,label) among its "text files", as if
    captions; it is a manifest without captions, named as data preview names it (and a captioned one is read)."""
    from t2i_cli import rerank

    ds = pictures(tmp_path / "ds", "a.png", "b.png")
    (ds / "metadata.csv").write_text("file_name,label\na.png,cat\nb.png,dog\n")
    (ds / "notes.txt").write_text("a note\n")
    items, skipped = rerank.collect(ds, None)
    assert items == [] and skipped[rerank.NO_CAPTIONS] == 1 and skipped["text file"] == 1
    (ds / "metadata.csv").write_text("file_name,text\na.png,a red square\n")
    items, skipped = rerank.collect(ds, None)
    assert items == [(ds / "a.png", "a red square")] and rerank.NO_CAPTIONS not in skipped
