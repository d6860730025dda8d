"""Session 38: a folder's hints: captions hard-wrapped over several lines, a Hugging Face-style metadata.jsonl
beside the pictures, and a tokenizer whose --vocab-size reads most caption words as unknown."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from conftest import run
from t2i_cli import data
from t2i_cli.errors import TrainingWarning
from t2i_cli.stages import apply_preset, run_stage
from t2i_cli.train import TrainConfig


def folder(path: Path, captions: dict[str, bytes | str | None]) -> Path:
    """A folder of 16 px pictures, each its own colour, NAME.png with NAME.txt holding its caption (bytes as they
    are; None: no caption file)."""
    path.mkdir(parents=True)
    for i, (name, caption) in enumerate(captions.items()):
        Image.new("RGB", (16, 16), (30 * i % 256, 90, 200 - 20 * i)).save(path / f"{name}.png")
        if caption is not None:
            if isinstance(caption, str):
                caption = caption.encode()
            (path / f"{name}.txt").write_bytes(caption)
    return path


WRAPPED = (b"a photo of a square that sits in\r\nthe middle of a plain coloured\r\nbackground, taken on a sunny "
           b"day\r\n")


def test_captions_wrapped_over_several_lines_are_said_once_for_the_folder(tmp_path: Path):
    """An editor's hard wrap made one caption three short ones, without a word (each line is a caption of its
    own, as documented, and still is); the folder's summary now counts such files and shows one."""
    pics = folder(tmp_path / "pics", {
        "a": WRAPPED,
        "b": "a cat sitting on a mat,\nwith a hat on its head\n",
        "c": "zoom in\nzoom out\n",  # distinct short captions, lowercase, one a line: normal
        "d": "a red bird on the left of a blue fish\na drawing of a yellow car in the bottom left corner\n",
        "e": "a lone caption that ends with\n",  # one line: nothing to join
    })
    r = run("data", "preview", pics, "--out", tmp_path / "sheet.png")
    assert r.exit_code == 0, r.stderr
    assert r.stderr == (
        "warning: using 5; 2 caption files look like one caption wrapped over several lines, their lines read as "
        f"captions of their own (e.g. {pics / 'a.txt'}, whose line 1 ends '... that sits in' and line 2 goes on "
        "'the middle of ...'): write each caption on one line\n"), r.stderr
    ds = data.open_source(str(pics), 16, list_skipped=True)
    assert ds.skipped == {data.WRAPPED: 2} and ds.every == {}  # nothing left out: --list-skipped lists none
    assert ds.captions_at(0) == ["a photo of a square that sits in", "the middle of a plain coloured",
                                 "background, taken on a sunny day"]
    # lowercase captions without a full stop, several to a file, as a folder of tags or the world's phrasing
    # writes them, are no wrap (a short line may end in a particle, "zoom in")
    several = folder(tmp_path / "several", {
        "a": "zoom in\nzoom out\nlog in\n",
        "b": "a red bird\na blue fish, with\nThe sky at night\n",  # the next line starts a sentence of its own
        "c": "three blue stars on a grass background\ntwo red circles above a house\n",
        "d": "picture 1 caption a\npicture 1 caption b\n",  # captions of one pattern start alike
        "e": "log in\nsign up\n",  # short lines: a particle ends a caption of its own
    })
    assert data.open_source(str(several), 16).skipped_message() is None


def test_a_metadata_jsonl_beside_the_pictures_is_named_and_reads_as_a_manifest(tmp_path: Path):
    """A Hugging Face-style metadata.jsonl ({"file_name", "text"}) beside pictures without .txt: the folder said
    "2 images without .txt caption" and nothing of the file; given as the source, each of its lines was a
    'manifest line without both "image" and "caption"'. Now it reads, and since session 41 the folder reads it."""
    pics = folder(tmp_path / "pics", {"one": "a red square", "two": None, "three": None})
    lines = [{"file_name": "two.png", "text": "a green square"}, {"file_name": "three.png", "text": ["a blue one",
                                                                                                  "blue"]},
             {"image": "one.png", "text": "mixed names"}]
    (pics / "metadata.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    r = run("data", "preview", pics, "--out", tmp_path / "sheet.png")
    assert r.exit_code == 0, r.stderr
    # (since session 43 a line of "image" and "text" is told which name to change)
    assert r.stderr == (f'warning: skipped 1 item (1 {data.MISPAIRED_LINE}: {pics / "metadata.jsonl"} line 3); '
                        f'using 3\n'), r.stderr
    ds = data.open_source(str(pics / "metadata.jsonl"), 16)
    assert [(Path(p).name, c) for p, c in ds.pairs] == [("two.png", ["a green square"]),
                                                        ("three.png", ["a blue one", "blue"])]
    assert ds.skipped_message() == (f'skipped 1 item (1 {data.MISPAIRED_LINE}: {pics / "metadata.jsonl"} line 3); '
                                    f'using 2')


def test_a_folder_of_pictures_and_only_a_metadata_jsonl_says_to_give_it(tmp_path: Path):
    # (since session 41 a folder reads its metadata.jsonl; a manifest of another name is still only named)
    pics = folder(tmp_path / "pics", {"a": None, "b": None})
    (pics / "captions.jsonl").write_text('{"file_name": "a.png", "text": "a"}\n{"file_name": "b.png", "text": "b"}\n')
    r = run("data", "preview", pics, "--out", tmp_path / "sheet.png")
    assert r.exit_code == 1
    assert r.stderr == (
        f"error: no usable image-caption pairs: looked for images ({', '.join(data.images.IMAGE_SUFFIXES)}) with a "
        f"same-name .txt caption, or a row in a metadata.jsonl or metadata.csv, under {pics} (found only: 2 images "
        f"without .txt caption, e.g. {pics / 'a.png'}); it holds a manifest: give {pics / 'captions.jsonl'} as the "
        f"source\n"), r.stderr


def test_a_metadata_csv_beside_the_pictures_is_named(tmp_path: Path):
    """(Since 0.13.2 a CSV manifest is a source of its own; since session 41 the folder reads it for b.png.)"""
    pics = folder(tmp_path / "pics", {"a": "a red square", "b": None, "c": "a green square"})
    (pics / "metadata.csv").write_text("file_name,text\nb.png,a blue square\n")
    ds = data.open_source(str(pics), 16)
    assert ds.skipped_message() is None and ds.captions_at(1) == ["a blue square"]
    assert data.open_source(str(pics / "metadata.csv"), 16).captions_at(0) == ["a blue square"]


def test_a_tokenizer_that_reads_most_caption_words_as_unknown_says_so(tmp_path: Path):
    """--vocab-size 3 was taken without a word: "a red bird" read "red" and "bird" as unknown."""
    pics = folder(tmp_path / "pics", {f"p{i}": c for i, c in enumerate(["a red bird", "a blue fish", "a red cat",
                                                                         "a red hat"])})
    common = ["train", "--stage", "tokenizer", "--data", pics, "-q"]
    r = run(*common, "--vocab-size", "3", "--out", tmp_path / "small")
    assert r.exit_code == 0, r.stderr
    assert r.stderr == (
        "warning: the tokenizer of 3 tokens reads 67% of the caption words it learned from as unknown (6 of 9, "
        "e.g. 'red'): its --vocab-size 3 holds too few of their characters; a larger --vocab-size keeps them\n"), \
        r.stderr
    r = run(*common, "--vocab-size", "64", "--out", tmp_path / "enough")
    assert r.exit_code == 0 and r.stderr == "", r.stderr
    cfg = TrainConfig(stage="tokenizer", data=str(pics), **apply_preset("tokenizer", "tiny", {"vocab_size": 3},
                                                                          str(pics)))
    with pytest.warns(TrainingWarning) as said:  # from Python, a TrainingWarning
        run_stage(cfg, tmp_path / "api", device="cpu")
    assert [str(w.message) for w in said] == [r"the tokenizer of 3 tokens reads 67% of the caption words it learned "
                                              "from as unknown (6 of 9, e.g. 'red'): its vocab_size=3 holds too "
                                              "few of their characters; a larger vocab_size keeps them"]  # (the field)


def test_a_caption_file_read_by_two_pictures_is_counted_once(tmp_path: Path):
    """a.png and a.jpg both read a.txt: one wrapped file, said as one."""
    pics = folder(tmp_path / "pics", {"a": WRAPPED, "b": "a plain caption"})
    Image.new("RGB", (16, 16), (1, 2, 3)).save(pics / "a.jpg")
    ds = data.open_source(str(pics), 16)
    assert len(ds) == 3 and ds.skipped.get(data.WRAPPED) == 1, ds.skipped


def test_a_csv_or_jsonl_that_is_no_caption_manifest_is_not_named(tmp_path: Path):
    """Beside pictures without a caption, only metadata.csv and a .jsonl whose first line is a manifest's are
    named as captions to give: another tool's scores.csv or a log's .jsonl are not."""
    pics = folder(tmp_path / "pics", {"a": "a red square", "b": None, "c": "a green square"})
    (pics / "scores.csv").write_text("file_name,score\nb.png,0.5\n")
    (pics / "log.jsonl").write_text('{"step": 1, "loss": 0.5}\n')
    assert data.open_source(str(pics), 16).skipped_message() == (
        f"skipped 1 item (1 image without .txt caption: {pics / 'b.png'}); using 2")


def test_a_tokenizer_that_reads_a_tenth_of_the_words_as_unknown_says_so_and_one_of_two_percent_does_not(
        tmp_path: Path):
    """The warning is for over 5% of the caption words: 15% is said, 2% (one rare word) is not. (Of the 15
    captions, 14 are learned from: one picture is held for validation.)"""
    captions = ["a red bird"] * 9 + ["a zq"] + ["a red cat"] * 5
    pics = folder(tmp_path / "pics", {f"p{i:02d}": c for i, c in enumerate(captions)})
    common = ["train", "--stage", "tokenizer", "--data", pics, "-q"]
    r = run(*common, "--vocab-size", "7", "--out", tmp_path / "seven")
    assert r.exit_code == 0, r.stderr
    assert r.stderr == (
        "warning: the tokenizer of 7 tokens reads 15% of the caption words it learned from as unknown (6 of 41, "
        "e.g. 'cat'): its --vocab-size 7 holds too few of their characters; a larger --vocab-size keeps them\n"), \
        r.stderr
    r = run(*common, "--vocab-size", "9", "--out", tmp_path / "nine")
    assert r.exit_code == 0 and r.stderr == "", r.stderr
