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
