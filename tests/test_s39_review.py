"""Session 39 review: `t2i data caption`'s and the CSV manifest's faults found in review, each pinned."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from conftest import run


def picture(path: Path, colour: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (16, 16), (colour % 256, 90, 200)).save(path)
    return path


def test_data_caption_of_pictures_whose_caption_files_training_leaves_out_is_not_no_pictures(tmp_path: Path):
    # a picture whose caption file is not UTF-8 has one all the same (never replaced): the command said "no
    # pictures under FOLDER ... give the folder that holds them" (exit 1)
    picture(tmp_path / "blue_car.png")
    (tmp_path / "blue_car.txt").write_bytes(b"caf\xe9 racer")
    r = run("data", "caption", tmp_path)
    assert r.exit_code == 0 and "no pictures" not in r.stderr
    assert "1 picture already captioned (left untouched)" in r.stderr and "nothing to write" in r.stdout
    assert (tmp_path / "blue_car.txt").read_bytes() == b"caf\xe9 racer"
