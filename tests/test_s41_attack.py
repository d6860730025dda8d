"""Session 41, attacked: today's folder manifests, --top-k 1 and name captions as a careless user meets them; each
test fails without its fix."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from conftest import build_tiny_folder, one_line_failure, run
from t2i_cli import data
from t2i_cli.name_captions import caption_of


def _pictures(folder: Path, *names: str) -> Path:
    """16 px pictures, each its own colour, at the names (relative to folder) given."""
    for i, name in enumerate(names):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (16, 16), (40 * i % 256, 90, 200 - 30 * i % 200)).save(folder / name)
    return folder


# ---------------------------------------------------------------------------------------- folder manifests
def test_rows_left_out_are_counted_in_the_plural(tmp_path: Path):
    """Two rows of a folder's metadata.jsonl naming pictures outside it were "2 manifest row naming a pictures
    outside the folder" ("row" was no noun counted() knew, so the picture was made plural): now "2 manifest rows
    naming a picture outside the folder"."""
    _pictures(tmp_path, "outside.png", "far.png")
    ds = _pictures(tmp_path / "ds", "a.png")
    (ds / "metadata.jsonl").write_text("".join(json.dumps(row) + "\n" for row in (
        {"file_name": "a.png", "text": "a red square"}, {"file_name": "../outside.png", "text": "outside"},
        {"file_name": str(tmp_path / "far.png"), "text": "far"})))
    message = data.open_source(str(ds), 16).skipped_message()
    assert "2 manifest rows naming a picture outside the folder" in message, message


def test_a_row_naming_the_folder_itself_is_a_path_naming_a_folder(tmp_path: Path):
    """A row of a folder's metadata.jsonl whose file_name is "" or "." (a spreadsheet's empty cell) names the folder
    itself: it was "a picture outside the folder (give the manifest itself as the source ...)", which is false and
    sends the user off to read the manifest alone (where it is "image path naming a folder" all the same)."""
    ds = _pictures(tmp_path / "ds", "a.png")
    (ds / "metadata.jsonl").write_text("".join(json.dumps(row) + "\n" for row in (
        {"file_name": "a.png", "text": "a red square"}, {"file_name": "", "text": "empty"},
        {"file_name": ".", "text": "dot"})))
    got = data.open_source(str(ds), 16, list_skipped=True)
    assert data.OUTSIDE_ROW not in got.every, got.every
    m = ds / "metadata.jsonl"  # (since session 42 the folder names the manifest line of each)
    assert got.every["image path naming a folder"] == [f"{ds} (named in {m} line 2)", f"{ds} (named in {m} line 3)"]
    alone = data.open_source(str(m), 16, list_skipped=True)  # (as the manifest source says it)
    assert alone.every == {"image path naming a folder": [str(ds), str(ds)]}, alone.every


def test_a_row_finds_its_picture_through_another_path_to_its_folder(tmp_path: Path):
    """The source given as a link (~/data -> /mnt/data) beside a metadata.jsonl of absolute real paths: every row
    was "a picture outside the folder" and nothing usable; a folder linked inside the source (b -> a), walked once
    as b/, made a row naming a/y.png read y twice, once "without .txt caption" though it was used."""
    real = _pictures(tmp_path / "real", "x.png", "sub/y.png")
    (real / "link").symlink_to("sub")
    (real / "metadata.jsonl").write_text("".join(json.dumps(row) + "\n" for row in (
        {"file_name": str(real / "x.png"), "text": "a red square"},
        {"file_name": "sub/y.png", "text": "a blue square"})))
    (tmp_path / "data").symlink_to(real)
    got = data.open_source(str(tmp_path / "data"), 16, list_skipped=True)
    assert sorted(got.captions_at(i)[0] for i in range(len(got))) == ["a blue square", "a red square"]
    assert got.every == {}, got.every
    assert len({Path(got.file_of(i)).resolve() for i in range(len(got))}) == 2


def test_a_metadata_jsonl_whose_names_are_in_other_letter_case_is_said(tmp_path: Path):
    """A folder's metadata.jsonl of "File_Name" and "Text" (a metadata.csv's "File_Name,Text" header is read) was
    passed over unsaid: its pictures were "without .txt caption", and the advice was to caption them by their names
    (the manifest's captions lost). Now its lines are counted as the manifest source counts them, naming the
    manifest and that names are case-sensitive."""
    ds = _pictures(tmp_path / "ds", "a.png", "b.png", "c.png")
    (ds / "c.txt").write_text("a green square\n")
    (ds / "metadata.jsonl").write_text("".join(json.dumps(row) + "\n" for row in (
        {"File_Name": "a.png", "Text": "a red square"}, {"File_Name": "b.png", "Text": "a blue square"})))
    got = data.open_source(str(ds), 16, list_skipped=True)
    bad = next(why for why in got.every if "case-sensitive" in why)
    assert got.every[bad] == [f"{ds / 'metadata.jsonl'} line 1", f"{ds / 'metadata.jsonl'} line 2"], got.every
    assert "case-sensitive" in got.skipped_message()


def test_data_caption_refuses_beside_manifest_lines_it_cannot_read(tmp_path: Path):
    """A folder's metadata.jsonl with a line that is not JSON (a stray NUL, Latin-1 text) or without its names:
    `data caption` wrote captions from the file names for the pictures that line names, unsaid (once the line was
    fixed, each picture trained on its name beside its caption). Now it refuses in one line naming the line and
    what lists them, nothing written; --dry-run says it as a warning."""
    ds = _pictures(tmp_path / "ds", "red-square.png", "blue-square.png")
    (ds / "metadata.jsonl").write_bytes(json.dumps({"file_name": "red-square.png", "text": "a red square"}).encode()
                                        + b"\n" + json.dumps({"file_name": "blue-square.png", "text": "caf\u00e9"})
                                        .encode().replace(b"\\u00e9", b"\xe9") + b"\n")
    line = one_line_failure(run("data", "caption", ds, "-q"))
    assert f"{ds / 'metadata.jsonl'} line 2" in line and "not JSON in UTF-8" in line and "--list-skipped" in line, line
    assert sorted(p.name for p in ds.iterdir()) == ["blue-square.png", "metadata.jsonl", "red-square.png"]
    r = run("data", "caption", ds, "--dry-run")
    # (since session 46 it says it would write none, as the run: "would write 1 caption file", of the line's picture)
    assert r.exit_code == 0 and "line 2" in r.stderr and "would write no caption file" in r.stdout, (r.stdout, r.stderr)
    assert not (ds / "blue-square.txt").exists()


# --------------------------------------------------------------------------------------------- name captions
def test_a_counter_in_parentheses_keeps_the_names_number():
    """A browser's second download of "apollo 11.png" is "apollo 11 (1).png": its caption was "apollo" (the counter
    taken off, then the name's own number as if it were one), the first's "apollo 11"."""
    assert caption_of("apollo 11 (1)") == caption_of("apollo 11") == "apollo 11"
    assert caption_of("route 66 (12)") == "route 66"
    assert caption_of("bird (2)") == "bird"  # (a counter alone is still no word)


def test_a_copys_one_digit_counter_keeps_the_names_number():
    """macOS names a copy of "route 66.png" kept beside it "route 66 2.png": its caption was "route" (the counter
    and the name's number both taken off), the original's "route 66"."""
    assert caption_of("route 66 2") == caption_of("route 66") == "route 66"
    assert caption_of("apollo 11 3") == "apollo 11"
    assert caption_of("bird (2)") == "bird" and caption_of("cat 5 2") == "cat 5"  # (s42: one digit is the name's too)


def _caption(folder: Path) -> dict[str, str]:
    """`t2i data caption FOLDER -q`, which must succeed: every caption file's name and caption."""
    r = run("data", "caption", folder, "-q")
    assert r.exit_code == 0, (r.stdout, r.stderr)
    return {p.name: p.read_text().strip() for p in folder.glob("*.txt")}


def test_copies_of_one_numbered_name_are_no_series(tmp_path: Path):
    """"route 66.png", "route 66 copy.png" and "route 66 - Copy (2).png" (a file manager's copies) are one caption
    three times, not a series "route 66", "route 67", "route 68": `data caption` captioned all three "route"; a
    series of three numbers still loses them."""
    folder = _pictures(tmp_path / "pics", "route 66.png", "route 66 copy.png", "route 66 - Copy (2).png",
                       "beach 1.png", "beach 2.png", "beach 3.png")
    got = _caption(folder)
    assert got == {"route 66.txt": "route 66", "route 66 copy.txt": "route 66", "route 66 - Copy (2).txt": "route 66",
                   "beach 1.txt": "beach", "beach 2.txt": "beach", "beach 3.txt": "beach"}, got


def test_a_picture_added_to_a_captioned_series_is_captioned_as_the_series(tmp_path: Path):
    """`data caption` on "beach 1" .. "beach 3" wrote "beach" each; "beach 4.png" added later, and `data caption`
    run again, wrote "beach 4" (only the pictures without a caption made the series, and one is none): now
    "beach", as its series; one new "apollo 11" beside a captioned "route 66" keeps its number."""
    folder = _pictures(tmp_path / "pics", "beach 1.png", "beach 2.png", "beach 3.png", "route 66.png")
    _caption(folder)
    _pictures(folder, "beach 4.png", "apollo 11.png")
    got = _caption(folder)
    assert got == {"beach 1.txt": "beach", "beach 2.txt": "beach", "beach 3.txt": "beach",
                   "beach 4.txt": "beach", "route 66.txt": "route 66", "apollo 11.txt": "apollo 11"}, got


# ------------------------------------------------------------------------------------------------- --top-k 1
def test_keep_above_the_default_candidates_with_top_k_1_is_the_greedy_refusal(tmp_path: Path):
    """`generate --top-k 1 --keep 5` said "--keep 5 alone keeps the best of the 4 candidates drawn by default; give
    --keep 1..4", but --top-k 1 draws one by default and refuses --keep 2..4 in turn: now the one refusal that
    holds (--keep K with --top-k 1 draws K copies), nothing written."""
    for keep in ("5", "9"):
        line = one_line_failure(run("generate", "--weights", tmp_path / "w", "--out", tmp_path / "out", "--device",
                                    "cpu", "-q", "--top-k", "1", "--keep", keep, "a red bird"), 2)
        assert f"--keep {keep} with --top-k 1" in line and "1..4" not in line, line
    assert not (tmp_path / "out").exists()


def test_vary_with_top_k_1_at_a_strength_that_redraws_every_cell_draws_one(tmp_path: Path):
    """`vary --top-k 1 --strength 0.9999 --n 4` redraws every cell (round(0.9999 x cells) is all of them), as
    --strength 1 does, which --top-k 1 refuses with --n 4: it wrote 4 copies of one image. Now the same refusal,
    nothing written; without --n it draws one (vary's default is 4)."""
    weights = build_tiny_folder(tmp_path / "w")
    source = _pictures(tmp_path, "src.png") / "src.png"
    args = ("vary", source, "--weights", weights, "--device", "cpu", "-q", "--top-k", "1", "--strength", "0.9999")
    line = one_line_failure(run(*args, "--n", "4", "--out", tmp_path / "a"), 2)
    assert "--n 4 with --top-k 1 and --strength 0.9999" in line, line
    assert not (tmp_path / "a").exists()
    r = run(*args, "--out", tmp_path / "b")
    assert r.exit_code == 0, (r.stdout, r.stderr)
    assert len(list((tmp_path / "b").glob("*.png"))) == 1
