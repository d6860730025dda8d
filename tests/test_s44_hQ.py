"""Session 44, helper hQ: crash-safety leftovers; each test fails without its fix."""

from __future__ import annotations

import os
import time
from pathlib import Path

from conftest import run


def _temporary(folder: Path, name: str, age: float = 120.0) -> Path:
    """A temporary as a kill -9 of t2i's atomic write of folder/name leaves it (.NAME.XXXX.tmp), age seconds old."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{name}.{'k1ll3d' if age else 'wr1t1ng'}.tmp"
    tmp.write_bytes(b"half")
    os.utime(tmp, (time.time() - age, time.time() - age))
    return tmp


def test_data_caption_removes_a_killed_runs_temporaries(tmp_path: Path):
    """kill -9 of `t2i data caption` while it wrote a caption left its temporary (.red-bird.txt.XXXX.tmp) beside
    the pictures forever; the next run removes it once a minute old, and leaves one newer (another write in
    progress) and a temporary of a name that is no caption of a picture there."""
    from PIL import Image

    folder = tmp_path / "pictures"
    folder.mkdir()
    for name in ("red-bird", "blue-car"):
        Image.new("RGB", (8, 8), (200, 30, 30)).save(folder / f"{name}.png")
    killed = _temporary(folder, "red-bird.txt")
    fresh = _temporary(folder, "blue-car.txt", age=0.0)
    other = _temporary(folder, "notes.txt")
    r = run("data", "caption", folder, "-q")
    assert r.exit_code == 0, r.stderr
    assert (folder / "red-bird.txt").read_text() == "red bird\n"
    assert not killed.exists()
    assert fresh.exists() and other.exists()


def test_rerank_removes_a_killed_reranks_temporaries(tmp_path: Path):
    """kill -9 of `t2i rerank --top 2 --link-best` left the temporaries of ranking.json, its sheet, a copy in
    best/ and best/t2i-copies.json for good; the next rerank removes them once a minute old, and nothing else."""
    from PIL import Image

    from conftest import build_tiny_folder

    weights = build_tiny_folder(tmp_path / "weights")
    folder = tmp_path / "pictures"
    folder.mkdir()
    for i, rgb in enumerate([(230, 20, 20), (20, 20, 230), (20, 230, 20)]):
        Image.new("RGB", (16, 16), rgb).save(folder / f"img-{i}.png")
    best = folder / "best"
    killed = [_temporary(folder, "ranking.json"), _temporary(folder, "ranking-top-NNN.png"),
              _temporary(best, "img-0-NNN.png"), _temporary(best, "t2i-copies.json")]
    kept = [_temporary(folder, "ranking.json", age=0.0), _temporary(folder, "notes.txt"),
            _temporary(best, "notes.txt")]
    r = run("rerank", folder, "--prompt", "a red bird", "--top", "2", "--link-best", "--weights", weights, "-q")
    assert r.exit_code == 0, r.stderr
    assert [p.name for p in killed if p.exists()] == []
    assert all(p.exists() for p in kept)
    assert (folder / "ranking.json").is_file()


def test_eval_images_removes_a_killed_evals_temporaries(tmp_path: Path):
    """kill -9 of `t2i eval --images DIR` left a picture's temporary (.seed0-val-001-real-NNN.png.XXXX.tmp) in DIR
    for good; the next eval into DIR removes it once a minute old (as generate's and vary's), not a newer one."""
    from t2i_cli.cli import _eval_images

    folder = tmp_path / "eval-images"
    killed = _temporary(folder, "seed0-val-001-real-NNN.png")
    fresh = _temporary(folder, "seed0-val-002-real-NNN.png", age=0.0)
    other = _temporary(folder, "notes.txt")
    with _eval_images(folder) as made:
        assert made == folder
    assert not killed.exists()
    assert fresh.exists() and other.exists()
