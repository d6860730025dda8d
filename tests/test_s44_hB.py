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
