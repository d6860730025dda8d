"""Session 41, attacked: today's folder manifests, --top-k 1 and name captions as a careless user meets them; each
test fails without its fix."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from t2i_cli import data


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
