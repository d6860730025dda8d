"""Session 46 (hB): the training and data side's duplications made one; what users see of them pinned."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import one_line_failure, run


def _whole_run_in_dvae_stage(folder: Path) -> Path:
    """A --stage all run as its dVAE stage leaves it (all.json, the tokenizer and dvae folders), no weights yet."""
    from t2i_cli.files import PLAN

    folder.mkdir()
    (folder / PLAN).write_text(json.dumps({"data": "world", "preset": "tiny", "flip": None, "crop": None,
                                           "ema": None}))
    for stage in ("tokenizer", "dvae"):
        (folder / stage).mkdir()
    return folder


def test_export_and_generate_of_a_whole_run_training_now_quote_its_weights_folder_alike(tmp_path):
    """`t2i export RUN` said a whole run being trained now "exports them to /tmp/my run/weights" (unquoted) where
    `t2i generate --weights RUN` said '/tmp/my run/weights' (shell_word): each checked "training now" beside
    files.unfinished_whole_run. Both now say it from that one place, the folder quoted as a shell takes it."""
    from t2i_cli.files import folder_lock

    out = _whole_run_in_dvae_stage(tmp_path / "my run")
    weights = f"'{out / 'weights'}'"
    with folder_lock(out / "dvae", "held by the test"):  # (a flock of another open of the folder: as a process's)
        exported = one_line_failure(run("export", out, "--to", tmp_path / "w"), 2)
        drawn = one_line_failure(run("generate", "a picture", "--weights", out, "--out", tmp_path / "g"))
    for line in (exported, drawn):
        assert "being trained now by another t2i process" in line, line
        assert f"it exports them to {weights} when it finishes (t2i info '{out}' says how far it got)" in line, line
    assert exported.startswith(f"error: {out} is a --stage all run being trained now"), exported
    assert not (tmp_path / "w").exists() and not (tmp_path / "g").exists()


def test_a_new_stage_checks_what_a_new_run_must_not_train_once(tmp_path, monkeypatch):
    """`t2i train --stage dvae --out NEW` ran stages.check_new_model in the command and again in run_stage; once now
    (run_stage's, which a run started from Python goes through too). The data is an empty folder, refused after the
    checks: nothing trains."""
    import t2i_cli.stages as stages

    seen = []
    real = stages.check_new_model
    monkeypatch.setattr(stages, "check_new_model", lambda cfg: (seen.append(cfg.stage), real(cfg))[1])
    (tmp_path / "empty").mkdir()
    one_line_failure(run("train", "--stage", "dvae", "--out", tmp_path / "new", "--steps", "1", "--data",
                         tmp_path / "empty", "--preset", "tiny", "--workers", "0", "-q", "--device", "cpu"))
    assert seen == ["dvae"], seen
    assert not (tmp_path / "new").exists()
