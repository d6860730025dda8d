"""Session 44, helper hQ: crash-safety leftovers; each test fails without its fix."""

from __future__ import annotations

import os
import time
from pathlib import Path

from conftest import run


def _temporary(folder: Path, name: str, age: float = 120.0) -> Path:
    """A temporary as a kill -9 of t2i's atomic write of folder/name leaves it (.NAME.XXXX.tmp), age seconds old."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{name}.{'k1ll3d_0' if age else 'wr1t1ng0'}.tmp"
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


def _journal(weights: Path, **extra) -> Path:
    import json

    from t2i_cli.weights import EXPORT_JOURNAL

    journal = weights / EXPORT_JOURNAL
    journal.write_text(json.dumps({"renames": [[".dvae.safetensors.t2i-1.tmp", "dvae.safetensors"]], **extra}))
    return journal


def test_a_weights_folder_an_export_renames_into_now_is_said_to_be_written_now(tmp_path: Path):
    """While an export renames its files (its journal written, the folder locked), `t2i info` on the folder said
    "an export into it was killed while it renamed its files" and told the user to remove the journal; now it says
    the folder is being written by an export now, to wait for it."""
    from conftest import build_tiny_folder, one_line_failure
    from t2i_cli.files import folder_lock

    weights = build_tiny_folder(tmp_path / "w", seed=0)
    _journal(weights)
    with folder_lock(weights, "busy"):
        # (another open file description of the same folder: flock tells it apart, as it would another process's)
        line = one_line_failure(run("info", weights))
    assert "being written by a t2i export now" in line and "wait for it" in line, line
    assert "killed" not in line and "remove" not in line, line


def test_an_export_whose_later_rename_failed_is_not_said_killed(tmp_path: Path, monkeypatch):
    """An OSError (a full disk) at an export's third rename leaves its journal, as a kill does; the refusal said
    the export "was killed". Now the journal records the failure, and the refusal names it."""
    from conftest import build_tiny_folder, one_line_failure
    from t2i_cli import files
    from t2i_cli.errors import OutputError
    from t2i_cli.weights import EXPORT_JOURNAL, FILES

    old, new = build_tiny_folder(tmp_path / "old", seed=0), build_tiny_folder(tmp_path / "new", seed=1)
    real, done = os.replace, []

    def replace(src, dst):
        if Path(dst).name in FILES:
            done.append(dst)
            if len(done) == 3:
                raise OSError(28, "No space left on device")
        real(src, dst)

    monkeypatch.setattr(files.os, "replace", replace)
    try:
        files.atomic_write_set([(old / name, (new / name).read_bytes()) for name in FILES], old / EXPORT_JOURNAL)
    except (OSError, OutputError):
        pass
    monkeypatch.setattr(files.os, "replace", real)
    assert (old / EXPORT_JOURNAL).is_file()
    line = one_line_failure(run("info", old))
    assert "a rename failed (No space left on device)" in line and "once that is fixed" in line, line
    assert "killed" not in line, line
    assert files.finish_set(old / EXPORT_JOURNAL, FILES) == [old / name for name in FILES[2:]]  # still finishable


def test_a_whole_runs_own_weights_cut_by_a_kill_names_train_resume(tmp_path: Path):
    """A whole run's RUN/weights, cut by a kill between its export's renames: the refusal told the user to run
    `t2i export ... --to RUN/weights`, which no user ran (`train --stage all` exported it); now it names
    `t2i train --resume RUN`. A weights folder of its own still names the export."""
    import json

    from conftest import build_tiny_folder, one_line_failure
    from t2i_cli.files import PLAN

    run_dir = tmp_path / "run"
    weights = build_tiny_folder(run_dir / "weights", seed=0)
    (run_dir / PLAN).write_text(json.dumps({"data": "pictures", "preset": "tiny"}))
    _journal(weights)
    line = one_line_failure(run("info", weights))
    assert "was killed while it renamed its files" in line and f"t2i train --resume {run_dir}" in line, line
    assert "t2i export" not in line, line
    (run_dir / PLAN).unlink()
    line = one_line_failure(run("info", weights))
    assert f"t2i export ... --to {weights}" in line, line
