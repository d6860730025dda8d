"""Session 44, helper hB: manifests and imagefolder leftovers, each test failing without its fix."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from conftest import run


def _picture(path: Path, shade: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (16, 16), (shade % 256, 90, 200)).save(path)
    return path


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_forward_slash_network_path_is_said_as_a_network_path(tmp_path: Path):
    """A row naming //server/share/b.png (a network path with forward slashes) was "a picture outside the folder" in
    a folder's metadata.jsonl, and "missing image" in a manifest given as the source; both now say it is a Windows
    network path, as \\\\server\\share is said."""
    ds = tmp_path / "ds"
    _picture(ds / "a.png")
    _picture(ds / "b.png", 80)
    rows = [{"file_name": "a.png", "text": "a red bird"}, {"file_name": "//server/share/b.png", "text": "a blue fish"}]
    _jsonl(ds / "metadata.jsonl", rows)
    r = run("data", "preview", ds, "--out", tmp_path / "p.png")
    assert r.exit_code == 0, r.stderr
    assert "a Windows network path" in r.stderr and "outside the folder" not in r.stderr, r.stderr
    _jsonl(tmp_path / "m.jsonl", [{"image": "ds/a.png", "caption": "x"}, {"image": "//server/share/b.png",
                                                                          "caption": "y"}])
    r = run("data", "preview", tmp_path / "m.jsonl", "--out", tmp_path / "q.png")
    assert r.exit_code == 0, r.stderr
    assert "a Windows network path" in r.stderr and "//server/share/b.png" in r.stderr, r.stderr
    # ... and `data caption` refuses to caption b.png by its name beside the row that may caption it
    r = run("data", "caption", ds)
    assert r.exit_code != 0 and "network path" in r.stderr and not (ds / "b.txt").exists(), r.stderr


def test_caption_from_folder_reads_a_class_folder_named_like_a_split(tmp_path: Path):
    """`data caption --from folder` left a class folder named "dev" or "test" (pictures of a dev board beside
    ds/arduino/) without a caption, as a split's folder; it is a split only beside another split's name, or where it
    holds folders (ds/train/cat/): a class among others is captioned by its name."""
    classes = tmp_path / "classes"
    for name in ("arduino", "dev", "test"):
        _picture(classes / name / "IMG_0001.png")
    r = run("data", "caption", classes, "--from", "folder", "--dry-run")
    assert r.exit_code == 0, r.stderr
    # "dev" and "test" beside one another are splits' names: the folders beside them decide ("arduino" is a class)
    assert "arduino/IMG_0001.txt: arduino" in r.stdout and "dev/IMG_0001.txt" not in r.stdout, r.stdout
    (classes / "test" / "IMG_0001.png").unlink()
    (classes / "test").rmdir()
    r = run("data", "caption", classes, "--from", "folder")
    assert r.exit_code == 0, r.stderr
    assert (classes / "dev" / "IMG_0001.txt").read_text(encoding="utf-8").strip() == "dev"
    assert (classes / "arduino" / "IMG_0001.txt").read_text(encoding="utf-8").strip() == "arduino"
    # splits stay splits: beside another split's name, or holding class folders, or the folder given itself
    ds = tmp_path / "ds"
    _picture(ds / "train" / "IMG_0001.png")
    _picture(ds / "test" / "IMG_0002.png")
    _picture(ds / "dev" / "cat" / "IMG_0003.png")
    _picture(ds / "dev" / "IMG_0004.png")
    _picture(ds / "widgets" / "IMG_0005.png")
    r = run("data", "caption", ds, "--from", "folder", "--dry-run")
    assert r.exit_code == 0, r.stderr
    assert "cat/IMG_0003.txt: cat" in r.stdout and "widgets/IMG_0005.txt: widgets" in r.stdout, r.stdout
    assert "train/IMG_0001.txt" not in r.stdout and "test/IMG_0002.txt" not in r.stdout, r.stdout
    assert "dev/IMG_0004.txt" not in r.stdout and "a split's folder" in r.stderr, (r.stdout, r.stderr)
    lone = tmp_path / "lone" / "dev"
    _picture(lone / "IMG_0001.png")
    r = run("data", "caption", lone, "--from", "folder", "--dry-run")
    assert r.exit_code != 0 and "a split's folder" in r.stderr, r.stderr


def test_metadata_parquet_is_said_with_a_way_to_convert_it(tmp_path: Path):
    """A Hugging Face imagefolder's metadata.parquet (t2i has no Parquet reader) was passed over unsaid: its pictures
    were "without a caption", `data caption` captioned them by their names and rerank counted it as "file not a
    picture". Now data preview (and so train and eval, which read a folder alike) says once that t2i cannot read it,
    what is used meanwhile and a command converting it; data caption refuses beside it; rerank counts it as such."""
    from t2i_cli.data import NothingUsable, open_source
    from t2i_cli.rerank import collect

    ds = tmp_path / "ds"
    _picture(ds / "train" / "red-bird.png")
    _picture(ds / "train" / "blue-fish.png", 90)
    (ds / "train" / "red-bird.txt").write_text("a red bird\n", encoding="utf-8")
    (ds / "train" / "metadata.parquet").write_bytes(b"PAR1" + bytes(16) + b"PAR1")
    r = run("data", "preview", ds, "--out", tmp_path / "p.png")
    assert r.exit_code == 0, r.stderr
    said = " ".join(r.stderr.split())
    assert said.count("metadata.parquet is a Parquet manifest, which t2i cannot read") == 1, said
    assert "only the pictures' .txt captions" in said and "pandas.read_parquet(" in said, said
    assert "t2i data caption" not in said, said  # (its captions are in the Parquet file, not in the names)
    r = run("data", "caption", ds)
    assert r.exit_code != 0 and "Parquet manifest" in r.stderr and "move it away first" in r.stderr, r.stderr
    assert not (ds / "train" / "blue-fish.txt").exists()
    items, skipped = collect(ds / "train", None)
    assert [why for why in skipped if "metadata.parquet t2i cannot read" in why] and \
        "file not a picture" not in skipped, skipped
    # ... above the folder given (ds/metadata.parquet, `ds/train` given): said, with the folder to give once converted
    (ds / "train" / "metadata.parquet").rename(ds / "metadata.parquet")
    val = open_source(str(ds / "train"), 16, part="val")
    assert f"then give {ds} as the source" in val.skipped_message(), val.skipped_message()
    # ... and where nothing else is usable, it is the fix said
    (ds / "train" / "red-bird.txt").unlink()
    try:
        open_source(str(ds / "train"), 16)
    except NothingUsable as e:
        assert "Parquet manifest" in str(e) and "t2i data caption" not in str(e), str(e)
    else:
        raise AssertionError("a folder without a usable pair opened")
    # ... but not beside a metadata.jsonl, which is read (Hugging Face's loader reads one format)
    _jsonl(ds / "metadata.jsonl", [{"file_name": "train/blue-fish.png", "text": "a blue fish"}])
    r = run("data", "preview", ds, "--out", tmp_path / "q.png")
    assert r.exit_code == 0 and "Parquet" not in r.stderr, r.stderr


def test_caption_refuses_beside_a_manifest_above_whose_lines_left_out_may_caption_its_pictures(tmp_path: Path):
    """A manifest inside the folder whose lines are left out (not JSON, bad UTF-8, without the names) makes `data
    caption` refuse, as those lines may caption the pictures it would caption by name; one in the folder above
    (ds/metadata.jsonl, `ds/train` given) was passed over unsaid and its pictures captioned. Now refused alike where
    such a line holds the folder's name (or its reader refuses it whole), and said with what is wrong in it; wrong
    columns above (a "filename,text" metadata.csv) are warned of as they are inside, with the folder to train on."""
    ds = tmp_path / "ds"
    for i, name in enumerate(["red-bird", "blue-fish", "green-cat"]):
        _picture(ds / "train" / f"{name}.png", 60 * i)
    good = json.dumps({"file_name": "train/red-bird.png", "text": "a red bird"}) + "\n"
    other = json.dumps({"file_name": "elsewhere/x.png", "text": "a thing"}) + "\n"
    manifest = ds / "metadata.jsonl"
    # a bad line naming no picture of train/ (another folder's) is no reason to refuse
    manifest.write_text(good + other[:-3] + "\n" + other, encoding="utf-8")
    r = run("data", "caption", ds / "train", "--dry-run")
    assert r.exit_code == 0 and "green-cat.txt: green cat" in r.stdout and "lines left out" not in r.stderr, r.stderr
    for bad, said in [(b'{"file_name": "train/blue-fish.png", "text": "a blue fish"\n', "1 manifest line not JSON"),
                      (b'{"file_name": "train/blue-fish.png", "text": "caf\xe9"}\n', "1 manifest line not JSON"),
                      (b'{"image": "train/blue-fish.png", "text": "a blue fish"}\n',
                       "1 manifest line whose picture and caption names do not pair")]:
        manifest.write_bytes(good.encode() + bad + other.encode())
        r = run("data", "caption", ds / "train")
        said_all = " ".join(r.stderr.split())
        assert r.exit_code != 0 and f"{manifest}, above the folder, has lines left out" in said_all, said_all
        assert said in said_all and f"{manifest} line 2" in said_all, said_all
        assert f"t2i data preview {ds} --list-skipped" in said_all, said_all
        assert not (ds / "train" / "green-cat.txt").exists() and not (ds / "train" / "blue-fish.txt").exists()
        r = run("data", "caption", ds / "train", "--dry-run")  # (a dry run warns what a write refuses)
        assert r.exit_code == 0 and "lines left out" in r.stderr, r.stderr
    # ... a manifest above its reader refuses whole (UTF-16) is said in its reader's words
    manifest.write_bytes(b"\xff\xfe" + (good + other).encode("utf-16-le"))
    r = run("data", "caption", ds / "train")
    assert r.exit_code != 0 and "UTF-16" in r.stderr and "above the folder" in r.stderr, r.stderr
    # ... and a metadata.csv above whose columns t2i does not read is warned of, with the folder to train on
    manifest.unlink()
    (ds / "metadata.csv").write_text("filename,text\ntrain/blue-fish.png,a blue fish\n", encoding="utf-8")
    r = run("data", "caption", ds / "train", "--dry-run")
    said_all = " ".join(r.stderr.split())
    assert r.exit_code == 0 and "has no picture column t2i reads" in said_all, said_all
    assert f"train on {ds} instead" in said_all, said_all
    # ... and a CSV row above naming one of them without its caption column is a line left out, as inside
    (ds / "metadata.csv").write_text("file_name,text\ntrain/red-bird.png,a red bird\ntrain/blue-fish.png\n",
                                     encoding="utf-8")
    r = run("data", "caption", ds / "train")
    said_all = " ".join(r.stderr.split())
    assert r.exit_code != 0 and f"{ds / 'metadata.csv'} line 3" in said_all, said_all
    assert "without a picture or a caption column" in said_all and "move the manifest away" in said_all, said_all


def _rows_above_line_by_line(data, manifest: Path, wanted: set[str], needles: tuple[str, ...]):
    """0.17's reading of a JSONL manifest above a folder (ef68581), a line at a time: the reference the byte search
    must agree with."""
    import io

    f = io.BytesIO(manifest.read_bytes())
    n = set()
    raw_needles = tuple(needle.encode("utf-8") for needle in needles)
    for raw in iter(lambda: f.readline(data.MAX_MANIFEST_LINE), b""):
        try:
            row = json.loads(raw) if raw.strip() and (not raw_needles or b"\\u" in raw or any(
                needle in raw for needle in raw_needles)) else None
        except (ValueError, RecursionError):
            row = None
        keys = data._manifest_keys(row)
        if keys is not None and isinstance(row[keys[0]], str) and data._holds_caption(row[keys[1]]) and \
                (k := data._above_key(manifest, row[keys[0]])) in wanted:
            n.add(k)
        if f.tell() > data.MAX_ABOVE:
            return n, bool(f.read(1))
    return n, False


def test_manifest_above_byte_search_finds_what_reading_every_line_found(tmp_path: Path, monkeypatch):
    """_rows_above finds the lines that may name the folder's pictures by a byte search (four 20 MB parts above a
    folder cost 4 s of `data preview`: bench/manifest_above_cost.py); what it finds is what reading a line at a time
    found, whatever the limits cut (the bytes read, a line over the longest parsed), with JSON escapes, blank lines
    and rows of other folders among them."""
    import random

    from t2i_cli import data

    monkeypatch.setattr(data, "MAX_MANIFEST_LINE", 96)
    ds = tmp_path / "ds"
    folder = ds / "café"
    names = [f"p{i}.png" for i in range(12)]
    wanted = {data._key(folder / name) for name in names}
    rng = random.Random(0)
    for trial in range(60):
        lines = []
        for _ in range(rng.randint(0, 40)):
            kind = rng.random()
            name = rng.choice(names)
            if kind < 0.3:
                lines.append(json.dumps({"file_name": f"café/{name}", "text": "a cat"}, ensure_ascii=rng.random() < .5))
            elif kind < 0.4:
                lines.append(json.dumps({"file_name": f"café/{name}", "text": "x" * rng.randint(60, 250)}))
            elif kind < 0.5:
                lines.append("")
            elif kind < 0.6:
                lines.append('{"file_name": "caf' + "é" + f'/{name}", "text": ')  # cut short
            else:
                lines.append(json.dumps({"file_name": f"other/{name}", "text": "a dog é"}))
        manifest = ds / "parts.jsonl"
        manifest.parent.mkdir(parents=True, exist_ok=True)
        manifest.write_bytes(("\n".join(lines) + rng.choice(["", "\n"])).encode("utf-8"))
        size = manifest.stat().st_size
        ends = {size - k for k in range(1, 4)} | {rng.randint(0, size) for _ in range(6)}
        for limit in sorted({0, 1, max(size // 3, 1), size, size + 5} | {k for k in ends if k >= 0}):
            monkeypatch.setattr(data, "MAX_ABOVE", limit)
            for needles in (data._row_needles(folder), ()):
                expected = _rows_above_line_by_line(data, manifest, wanted, needles)
                rows, more, _ = data._rows_above(manifest, wanted, needles)
                assert (rows, more) == expected, (trial, limit, needles, manifest.read_text(encoding="utf-8"))
