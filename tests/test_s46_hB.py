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


def test_an_unknown_model_setting_is_refused_in_one_wording_from_the_command_line_and_python(tmp_path):
    """`--model nope=1` said "--model 'nope=1': expected KEY=VALUE with KEY one of ..." (as if the "=" were missing)
    where a TrainConfig made in Python was told "model={'nope': 1}: the dvae model has no setting 'nope'; its
    settings are ..." (stages.check_run_config, a loop of its own beside parse_model_overrides). One check now
    (stages.refuse_model_key), in the latter wording, named as each caller names it; a missing "=" is still said."""
    import pytest

    from t2i_cli.errors import UsageError
    from t2i_cli.stages import check_run_config
    from t2i_cli.train import TrainConfig

    out = tmp_path / "run"
    settings = "its settings are code_dim, downsample, fsq_levels, n_codes, n_hid, n_res, pixel_eps"
    line = one_line_failure(run("train", "--stage", "dvae", "--out", out, "--model", "nope=1", "--preset", "tiny"), 2)
    assert line == f"error: --model nope=1: the dvae model has no setting 'nope'; {settings}", line
    with pytest.raises(UsageError) as e:
        check_run_config(TrainConfig(stage="dvae", data="world", model={"nope": 1}))
    assert str(e.value) == f"model={{'nope': 1}}: the dvae model has no setting 'nope'; {settings}"
    line = one_line_failure(run("train", "--stage", "dvae", "--out", out, "--model", "image_side=32", "--preset",
                                "tiny"), 2)
    assert line == "error: --model image_side=32: the dvae stage sets it (use --image-side)", line
    line = one_line_failure(run("train", "--stage", "dvae", "--out", out, "--model", "n_hid", "--preset", "tiny"), 2)
    assert line.startswith("error: --model 'n_hid': expected KEY=VALUE with KEY one of code_dim,"), line
    assert not out.exists()


def test_a_train_configs_numbers_from_numpy_or_torch_are_made_plain_by_one_rule():
    """TrainConfig's __post_init__ made numpy's scalars plain by a rule of its own beside train.plain (which its
    bool fields and model settings used): a 0-d array or tensor was plain for flip (True) and for a model setting
    but refused as steps ("steps must be int, got array(5)"). plain is the one rule now; what is not the field's
    kind (np.float64(2.5) as steps) is still refused."""
    import numpy as np
    import pytest
    import torch

    from t2i_cli.train import TrainConfig

    cfg = TrainConfig(stage="dvae", data="world", steps=np.array(5), lr=torch.tensor(0.5), seed=np.int64(3),
                      crop=np.int64(1), flip=np.array(True), model={"n_hid": np.array(8)})
    assert (cfg.steps, cfg.lr, cfg.seed, cfg.crop, cfg.flip, cfg.model) == (5, 0.5, 3, 1.0, True, {"n_hid": 8})
    assert [type(v) for v in (cfg.steps, cfg.lr, cfg.seed, cfg.crop, cfg.flip)] == [int, float, int, float, bool]
    cfg.check()
    with pytest.raises(TypeError, match="steps"):
        TrainConfig(stage="dvae", data="world", steps=np.float64(2.5)).check()
    with pytest.raises(TypeError, match="steps"):
        TrainConfig(stage="dvae", data="world", steps=np.bool_(True)).check()


def test_a_stop_only_this_process_had_says_so_itself_in_a_whole_run_too(tmp_path):
    """Interrupted.every_rank (rank 0 alone says a stop every torchrun process had) was set after construction in
    three places; it is the constructor's argument now, and a whole run's stop line (recipe._interrupted) keeps a
    stop this process alone had (its loader's worker's; rank 1's once rank 0 was killed) as its own to say."""
    from t2i_cli.recipe import _interrupted
    from t2i_cli.train import Interrupted

    assert Interrupted("stopped", step=3).every_rank
    alone = Interrupted("stopped", step=3, every_rank=False)
    assert not alone.every_rank and alone.step == 3
    assert not _interrupted(tmp_path, alone).every_rank
    assert _interrupted(tmp_path, Interrupted("stopped", step=3)).every_rank
    assert _interrupted(tmp_path, KeyboardInterrupt()).every_rank
