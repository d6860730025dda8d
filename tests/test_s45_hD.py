"""Session 45, helper hD: manifest and whole-run leftovers, each test failing without its fix."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from PIL import Image

from conftest import run


def _picture(path: Path, shade: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (16, 16), (shade % 256, 90, 200)).save(path)
    return path


def _folder(tmp_path: Path) -> Path:
    """ds/train: red-bird.png captioned, blue-fish.png and green-cat.png without a caption (names of words)."""
    ds = tmp_path / "ds"
    for i, name in enumerate(["red-bird", "blue-fish", "green-cat"]):
        _picture(ds / "train" / f"{name}.png", 60 * i)
    (ds / "train" / "red-bird.txt").write_text("a red bird\n", encoding="utf-8")
    return ds


def test_preview_says_a_manifest_above_whose_lines_left_out_may_caption_its_pictures(tmp_path: Path):
    """ds/metadata.jsonl with a line left out naming train/blue-fish.png: `data caption ds/train` refuses (a dry run
    warns), but `data preview ds/train` (and training, which says the same summary) was silent about it and
    suggested `t2i data caption`, which then refused. Now the summary says it in data caption's words, once, and
    does not send the user to that refusal."""
    ds = _folder(tmp_path)
    (ds / "metadata.jsonl").write_bytes(b'{"file_name": "train/blue-fish.png", "text": "a blue fish"\n')
    r = run("data", "preview", ds / "train", "--out", tmp_path / "p.png")
    said = " ".join(r.stderr.split())
    assert r.exit_code == 0, said
    assert said.count(f"{ds / 'metadata.jsonl'}, above the folder, has lines left out that may caption pictures "
                      f"here (1 manifest line not JSON in UTF-8: {ds / 'metadata.jsonl'} line 1") == 1, said
    assert f"t2i data preview {ds} --list-skipped lists them" in said, said
    # (it refuses until the line is fixed: said only for once they are, hL)
    assert said.count("t2i data caption") == said.count("once the manifest lines left out are fixed, t2i data caption")
    r = run("data", "caption", ds / "train")
    assert r.exit_code != 0 and "has lines left out" in r.stderr, r.stderr
    # ... and where nothing is usable, the error says it too
    (ds / "train" / "red-bird.txt").unlink()
    r = run("data", "preview", ds / "train", "--out", tmp_path / "q.png")
    said = " ".join(r.stderr.split())
    assert r.exit_code != 0 and "no usable image-caption pairs" in said and "has lines left out" in said, said
    # ... and beside a folder's own manifest's lines left out, data caption (which refuses there) is not suggested
    (ds / "metadata.jsonl").unlink()
    (ds / "train" / "red-bird.txt").write_text("a red bird\n", encoding="utf-8")
    (ds / "train" / "metadata.jsonl").write_bytes(b'{"file_name": "blue-fish.png", "text": "a blue fish"\n')
    r = run("data", "preview", ds / "train", "--out", tmp_path / "s.png")
    said = " ".join(r.stderr.split())
    assert r.exit_code == 0 and "1 manifest line not JSON" in said and said.count("t2i data caption") == said.count(
        "once the manifest lines left out are fixed, t2i data caption"), said
    r = run("data", "caption", ds / "train")
    assert r.exit_code != 0 and "have lines left out" in r.stderr, r.stderr


def test_a_manifest_above_whose_lines_hold_the_folders_name_in_a_caption_alone_is_no_reason_to_refuse(
        tmp_path: Path):
    """ds/metadata.jsonl's lines left out that held the folder's name "train" only in a caption ("a red train"),
    naming pictures of another folder, were counted as lines that may caption the folder's pictures: `data caption
    ds/train` refused. Now only a name as a path's part (train/...) counts in a line that is not JSON, and in a
    parsed row one of its strings naming a picture of the folder without a caption."""
    ds = _folder(tmp_path)
    manifest = ds / "metadata.jsonl"
    manifest.write_bytes(b'{"file_name": "other/b.png", "txt": "a red train"}\n'  # a row of other names
                         b'{"image": "other/c.png", "text": "a train/tram"}\n'  # names that do not pair
                         b'not json: a red train\n'
                         b'{"file_name": "mytrain/d.png", "text": "x"\n')  # another folder's name ending so
    r = run("data", "caption", ds / "train", "--dry-run")
    assert r.exit_code == 0 and "lines left out" not in r.stderr, r.stderr
    assert "blue-fish.txt: blue fish" in r.stdout and "green-cat.txt: green cat" in r.stdout, r.stdout
    # ... but such lines naming one of its pictures as a path still do
    for bad, why in [(b'{"file_name": "train/blue-fish.png", "txt": "a blue fish"}\n', 'without both "image"'),
                     (b'{"image": "train/blue-fish.png", "text": "a blue fish"}\n', "do not pair"),
                     (b'{"file_name": "train/blue-fish.png", "text": "a blue fish"\n', "not JSON"),
                     (b'{"file_name": "train\\\\blue-fish.png", "text": "a blue fish"\n', "not JSON")]:
        manifest.write_bytes(b'not json: a red train\n' + bad)
        r = run("data", "caption", ds / "train")
        said = " ".join(r.stderr.split())
        assert r.exit_code != 0 and "has lines left out" in said and f"{manifest} line 2" in said, (bad, said)
        assert why in said and "line 1" not in said, (bad, said)
    # ... and a CSV's short row holding the name in its only cell that is no path of it is no reason either
    manifest.unlink()
    (ds / "metadata.csv").write_text("file_name,text\n,a red train\n", encoding="utf-8")
    r = run("data", "caption", ds / "train", "--dry-run")
    assert r.exit_code == 0 and "lines left out" not in r.stderr, r.stderr
    (ds / "metadata.csv").write_text("file_name,text\ntrain/blue-fish.png\n", encoding="utf-8")
    r = run("data", "caption", ds / "train")
    assert r.exit_code != 0 and "line 2" in r.stderr, r.stderr


def test_a_t2i_sheet_among_pictures_without_a_caption_is_named_wherever_it_sorts(tmp_path: Path):
    """A contact sheet t2i wrote under another name (`data preview --out zz-sheet.png` inside the folder) was named
    in training's warning only where it sorted before every picture `data caption` could caption; after one
    ("a-red-bird.png"), it went unsaid, trained as an image without a caption."""
    pics = tmp_path / "pics"
    _picture(pics / "a-red-bird.png")
    _picture(pics / "blue-fish.png", 90)
    (pics / "blue-fish.txt").write_text("a blue fish\n", encoding="utf-8")
    _picture(pics / "green-cat.png", 30)
    (pics / "green-cat.txt").write_text("a green cat\n", encoding="utf-8")
    r = run("data", "preview", pics, "--out", pics / "zz-sheet.png")
    assert r.exit_code == 0, r.stderr
    r = run("data", "preview", pics, "--out", tmp_path / "p.png")
    said = " ".join(r.stderr.split())
    assert r.exit_code == 0 and f"{pics / 'zz-sheet.png'} is a contact sheet t2i wrote" in said, said
    assert f"t2i data caption {pics}" in said, said  # (a-red-bird.png: its name captions it)


def _record(tmp_path: Path, pairs: list[tuple[str, list[str]]]) -> dict:
    from t2i_cli.data import source_record

    digests = [hashlib.sha256(name.encode()).hexdigest() for name, _ in pairs]  # a picture's bytes: its name's
    return source_record([(tmp_path / name, lines) for name, lines in pairs], digests, tmp_path)


def test_a_resume_names_a_new_word_longer_than_the_sketch_keeps_cut(tmp_path: Path):
    """A caption's new word over 32 characters was left out of the data record's words, so a resume's "data changed"
    warning never named it. Now it is kept cut (31 characters and an ellipsis), and named so; against a record of
    0.18.0 (without the mark of a record that keeps such words) it is not named as new, since that one left them
    out whether its captions held them or not."""
    from t2i_cli.data import MAX_DATA_RECORD, WORD_CUT, data_change, is_record

    long = "pneumonoultramicroscopicsilicovolcanoconiosis"  # 45 letters
    then = [(f"p{i}.png", [f"a red bird number {i}"]) for i in range(4)]
    now = then[:3] + [("p3.png", [f"a red {long}"])]
    path = tmp_path / "data_record.json"
    path.write_text(json.dumps(_record(tmp_path, then)))
    said = data_change(path, _record(tmp_path, now))
    assert f"1 new word (in no caption then): '{long[:31]}{WORD_CUT}'" in said, said
    record = _record(tmp_path, now)
    assert len(max(record["words"].split(), key=len)) == 32 and is_record(record)
    assert len(json.dumps(record, indent=2)) < MAX_DATA_RECORD
    # a record of 0.18.0: long words left out, no mark; the same long word is no news against it
    old = _record(tmp_path, then[:3] + [("p3.png", [f"a red bird {long}"])])
    old["words"] = " ".join(w for w in old["words"].split() if WORD_CUT not in w)
    path.write_text(json.dumps(old))
    said = data_change(path, _record(tmp_path, now))
    assert said is not None and "new word" not in said and "captions of 1 picture edited" in said, said
    # ... while a short new word is still named against it
    said = data_change(path, _record(tmp_path, then[:3] + [("p3.png", [f"a quokka {long}"])]))
    assert "1 new word (in no caption then): 'quokka'" in said, said


def test_a_data_record_with_keys_this_t2i_does_not_know_is_read(tmp_path: Path):
    """A data record written by a newer t2i, with keys this one does not know, was "not a record of the data as t2i
    writes it": a resume said it "cannot tell whether the data changed". Now unknown keys are passed over: the
    record is read for the keys it knows (a record missing one of them, or with one of the wrong type, is still
    refused)."""
    from t2i_cli.data import data_change, is_record

    pairs = [(f"p{i}.png", [f"a red bird number {i}"]) for i in range(4)]
    record = {**_record(tmp_path, pairs), "future": {"anything": [1, 2]}, "format_note": "x"}
    assert is_record(record)
    path = tmp_path / "data_record.json"
    path.write_text(json.dumps(record))
    assert data_change(path, _record(tmp_path, pairs)) is None
    said = data_change(path, _record(tmp_path, pairs[:3]))
    assert said.startswith("the data changed since this run started: 4 usable pictures then, 3 now"), said
    assert not is_record({k: v for k, v in record.items() if k != "captions"})
    assert not is_record({**record, "words": 7})


def test_a_manifest_or_parquet_above_is_looked_at_for_pictures_whose_only_row_has_an_empty_caption(tmp_path: Path):
    """The manifests above a folder (ds/metadata.jsonl, ds/metadata.parquet) were looked at only where it had
    pictures without a .txt or a manifest row; a picture whose only row (in ds/train/metadata.jsonl) has an empty
    caption has none either, and `t2i data caption ds/train` captioned it by its name beside ds/metadata.jsonl's
    caption of it (trained under both once ds was given), and a Parquet file above went unsaid. Now both are
    looked at for it, as for a picture without any row."""
    ds = tmp_path / "ds"
    _picture(ds / "train" / "red-bird.png")
    _picture(ds / "train" / "blue-fish.png", 90)
    (ds / "train" / "red-bird.txt").write_text("a red bird\n", encoding="utf-8")
    (ds / "train" / "metadata.jsonl").write_text('{"file_name": "blue-fish.png", "text": ""}\n', encoding="utf-8")
    (ds / "metadata.jsonl").write_text('{"file_name": "train/blue-fish.png", "text": "a blue fish"}\n',
                                       encoding="utf-8")
    r = run("data", "preview", ds / "train", "--out", tmp_path / "p.png")
    said = " ".join(r.stderr.split())
    assert r.exit_code == 0 and f"{ds / 'metadata.jsonl'} names 1 of the pictures here without a caption" in said, said
    r = run("data", "caption", ds / "train")
    assert r.exit_code == 0 and "those pictures are left as they are" in r.stderr, r.stderr
    assert not (ds / "train" / "blue-fish.txt").exists()
    (ds / "metadata.jsonl").unlink()
    (ds / "metadata.parquet").write_bytes(b"PAR1" + bytes(16) + b"PAR1")
    r = run("data", "preview", ds / "train", "--out", tmp_path / "q.png")
    said = " ".join(r.stderr.split())
    assert r.exit_code == 0 and said.count("metadata.parquet is a Parquet manifest") == 1, said
    assert f"then give {ds} as the source" in said, said
    r = run("data", "caption", ds / "train")
    assert r.exit_code != 0 and "Parquet manifest" in r.stderr, r.stderr
    assert not (ds / "train" / "blue-fish.txt").exists()
