"""Session 43, helper hI: today's new behaviour attacked as a user meets it (data caption's naming rules, a manifest
above the folder, ...)."""

from __future__ import annotations

from pathlib import Path

from conftest import run
from t2i_cli import data
from test_s41_imagefolder import pictures


def test_a_classification_metadata_csv_above_the_folder_is_no_crash(tmp_path: Path):
    """ds/metadata.csv of "file_name,label" (Hugging Face's imagefolder of classes) above ds/train: `data caption
    ds/train` and `data preview ds/train` ended in "internal error: TypeError: unsupported operand type(s) for |=:
    'set' and 'int'" (the manifest above, of no caption column, was counted as the number 0). It holds no caption:
    the pictures are captioned by their names, and the folder is read."""
    ds = pictures(tmp_path / "ds", "train/red_bird.png", "train/blue_fish.png")
    (ds / "metadata.csv").write_text("file_name,label\ntrain/red_bird.png,bird\n")
    r = run("data", "caption", ds / "train")
    assert r.exit_code == 0, (r.stdout, r.stderr, r.exception)
    assert (ds / "train" / "red_bird.txt").read_text() == "red bird\n"
    assert (ds / "train" / "blue_fish.txt").read_text() == "blue fish\n"
    got = data.open_source(str(ds / "train"), 16)
    assert sorted(got.captions_at(i)[0] for i in range(len(got))) == ["blue fish", "red bird"]
