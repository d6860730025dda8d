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


def test_name_captions_keep_a_code_point_and_drop_a_version_and_a_cut_character():
    """glyph_U+00E9 was 'glyph u 00e' (its "U" a word, "00E9" parted into "00e" and a counter 9), u+1F600 'u grinning
    face'; v1.2 release was '2 release' (the version parted at its dot, "v1" dropped and "2" kept); caf%C3%A9%C3 (a
    UTF-8 name cut inside its last character) 'café ã', the lone lead byte read as Latin-1's Ã."""
    from t2i_cli.name_captions import caption_of

    assert caption_of("glyph_U+00E9") == "glyph é"
    assert caption_of("u+1F600") == "grinning face"
    assert caption_of("v1.2 release") == "release" == caption_of("v2 release")
    assert caption_of("app-v1.2.3") == "app"
    assert caption_of("caf%C3%A9%C3") == "café" and caption_of("caf%C3%A9%C3 bar") == "café bar"
    assert caption_of("a%E2%9C%93%E2%9C") == "a check mark"
    # unchanged: a code point of an emoji set, Latin-1's escapes, and a lone byte that may be Latin-1's "Ã"
    assert caption_of("emoji_u1f600") == "emoji grinning face"
    assert caption_of("caf%E9") == "café" and caption_of("na%C3%AFve%E9") == "naïveé"
    assert caption_of("caf%C3%A9%E9") == "caféé"  # a lone lead byte of a lowercase letter: Latin-1
    assert caption_of("IRM%C3") == "irmã"  # (a capital after a lowercase letter, "caf%C3", is cut short: s43)


def test_data_caption_says_a_metadata_file_whose_columns_do_not_pair(tmp_path: Path):
    """`t2i data caption ds` beside ds/metadata.csv of "image,text" wrote name captions unsaid (as it did for
    "filename,text" before): once its picture column is named file_name, training reads both. Said, not refused."""
    ds = pictures(tmp_path / "ds", "red_bird.png", "blue_fish.png")
    (ds / "metadata.csv").write_text("image,text\nred_bird.png,a small red bird\nblue_fish.png,a blue fish\n")
    r = run("data", "caption", ds, "--dry-run")
    assert r.exit_code == 0, r.stderr
    assert (f"warning: {ds / 'metadata.csv'} (its columns: 'image', 'text') has columns that do not pair (\"image\" "
            f"pairs with \"caption\" only") in r.stderr
    assert "name its picture column file_name" in r.stderr and "would write 2 caption files" in r.stdout
