"""The Python API's leftovers after a researcher's journey (session 45, hK): training refusals and warnings name
the TrainConfig fields a script sets, not flags it has none of (and `t2i train` still names its flags); numpy's
numbers and arrays inside TrainConfig.model are plain ones, as the top-level fields' are; a TrainConfig value of the
wrong type says which type is wanted; and every world eval entry point checks its seed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from t2i_cli.errors import UsageError
from t2i_cli.models.classifier import JudgeConfig, ObjectClassifier
from t2i_cli.models.dvae import DVAE, DVAEConfig
from t2i_cli.world import evaluate as ev
from t2i_cli.world import judge as jd


@pytest.mark.parametrize("seed", [-1, 1.5, True, 2 ** 63, "3"])
def test_every_world_eval_entry_point_refuses_a_seed_eval_refuses(seed):
    """validate_judge(judge, 2, -1, 16) was taken (and dvae_metrics' seed likewise), where evaluate_model refuses
    -1, 1.5, True and 2**63 as `t2i eval --seed` does."""
    judge = jd.Judge(ObjectClassifier(JudgeConfig(crop=16, widths=(4, 4))))
    with pytest.raises(ValueError, match=r"^seed must be a whole number in 0\.\.2\*\*63-1, got "):
        ev.validate_judge(judge, 1, seed, 16)
    with pytest.raises(ValueError, match=r"^seed must be a whole number in 0\.\.2\*\*63-1, got "):
        ev.dvae_metrics(DVAE(DVAEConfig(image_side=16, n_codes=8, n_hid=4, code_dim=4, n_res=0)), 1, seed)


def test_world_eval_seeds_take_numpy_integers_as_plain_ones():
    judge = jd.Judge(ObjectClassifier(JudgeConfig(crop=16, widths=(4, 4))))
    assert ev.validate_judge(judge, 1, np.int64(3), 16) == ev.validate_judge(judge, 1, 3, 16)


def test_numpy_numbers_and_arrays_in_a_train_config_s_model_are_plain_ones(tmp_path):
    """apply_preset("dvae", "tiny", {"model": {"fsq_levels": np.array([4, 4, 4])}}, D) raised numpy's "truth value
    of an array ... is ambiguous", and TrainConfig(model={"n_hid": np.int64(8)}) was refused at the start ("n_hid
    is "np.int64(8)", not an integer"), where steps=np.int64(75) is taken as 75."""
    from t2i_cli import stages
    from t2i_cli.train import TrainConfig

    mine = {"model": {"fsq_levels": np.array([4, 4, 4]), "n_hid": np.int64(8), "pixel_eps": np.float32(0.25)}}
    fields = stages.apply_preset("dvae", "tiny", mine, str(tmp_path))
    assert fields["model"]["n_codes"] == 64 and type(fields["model"]["n_codes"]) is int
    assert isinstance(mine["model"]["fsq_levels"], np.ndarray)  # (the caller's own dict is left as it was)
    cfg = TrainConfig(stage="dvae", data=str(tmp_path), **fields)
    assert cfg.model["fsq_levels"] == [4, 4, 4] and all(type(v) is int for v in cfg.model["fsq_levels"])
    assert type(cfg.model["n_hid"]) is int and type(cfg.model["pixel_eps"]) is float
    mcfg = stages.dvae_model_config(cfg)  # (what the dvae stage's start builds)
    assert (mcfg.fsq_levels, mcfg.n_codes, mcfg.n_hid, mcfg.pixel_eps) == ((4, 4, 4), 64, 8, 0.25)
    plain = TrainConfig(stage="dvae", data=str(tmp_path), **stages.apply_preset(
        "dvae", "tiny", {"model": {"fsq_levels": (4, 4, 4), "n_hid": 8, "pixel_eps": 0.25}}, str(tmp_path)))
    assert cfg.settled() == plain.settled()  # (train_config.json holds the same)


@pytest.mark.parametrize("field, value, wanted", [("steps", "10", "an integer"), ("lr", "1e-3", "a number"),
                                                   ("flip", 1, "True or False"), ("model", None, "a dict"),
                                                   ("data", 3, "a str")])
def test_a_train_config_value_of_the_wrong_type_says_which_type_is_wanted(tmp_path, field, value, wanted):
    """TrainConfig(steps="10") was refused as "steps must be int, got '10'; choose a value in range": no range to
    choose from, and Python's type name for what is wanted."""
    from t2i_cli import stages
    from t2i_cli.errors import UsageError
    from t2i_cli.train import TrainConfig

    cfg = TrainConfig(**{"stage": "dvae", "data": str(tmp_path), field: value})
    with pytest.raises(UsageError) as refused:
        stages.run_stage(cfg, tmp_path / "run", device="cpu")
    assert str(refused.value) == f"{field} must be {wanted}, got {value!r}"
    assert not (tmp_path / "run").exists()
    with pytest.raises(UsageError, match=r"^steps must be between 1 and .*, got 0; choose a value in range$"):
        stages.run_stage(TrainConfig(stage="dvae", data=str(tmp_path), steps=0), tmp_path / "run", device="cpu")


def _said(cli: bool, monkeypatch, make) -> str:
    """The message make() gives as the command line (cli) or a Python caller would read it."""
    from t2i_cli.errors import SPEAKING, T2IError

    monkeypatch.setitem(SPEAKING, "cli", cli)
    try:
        return str(make())
    except T2IError as e:
        return str(e)


def test_training_messages_name_the_fields_a_script_sets_and_the_flags_the_command_line_has(tmp_path, monkeypatch):
    """apply_preset("dvae", "huge", ...) said "--preset must be one of ..."; a run's patience, ema, lr, steps,
    vocab_size, model and recon_loss were named as flags (--patience 2, --sample-every, --ema 0.5, a lower --lr,
    --model pixel_eps=0, --recon-loss l1, --vocab-size 5000) to a script that has none: it reads the TrainConfig
    fields it sets; `t2i train` still names its flags (the same calls, as the command line speaks)."""
    import torch

    from t2i_cli import stages
    from t2i_cli.train import Ema, TrainConfig, Watchdog, diverged_message, patience_unused

    cfg = TrainConfig(stage="dvae", data=str(tmp_path), steps=300, patience=2, sample_every=100, ema=0.5,
                      recon_loss="logit_laplace", model={"pixel_eps": 0.0})
    calls = {
        "preset": lambda: stages.apply_preset("dvae", "huge", {}, str(tmp_path)),
        "patience": lambda: patience_unused(cfg),
        "ema": lambda: Ema(torch.nn.Linear(1, 1), 0.5).covers(3),
        "remedy": lambda: Watchdog(0).remedy,
        "overfit": lambda: Watchdog(0).check_val(9, [(1, 1.0), (2, 2.0), (3, 3.0)])[0],
        "diverged": lambda: diverged_message(tmp_path, cfg, 7, "loss nan", 5),
        "pixel_eps": lambda: stages.dvae_model_config(cfg),
        "vocab": lambda: stages.vocab_note(5000, {"vocab": 68, "captions": 19}),
    }
    python = {name: _said(False, monkeypatch, make) for name, make in calls.items()}
    cli = {name: _said(True, monkeypatch, make) for name, make in calls.items()}
    assert python["preset"] == "preset must be one of tiny, default, large, got 'huge'"
    assert cli["preset"] == "--preset must be one of tiny, default, large, got 'huge'"
    assert python["patience"].startswith("patience=2 stops after 2 validations without a new best, and a run of 300 "
                                         "steps validated every sample_every 100 steps looks at 3 validations")
    assert python["patience"].endswith("give sample_every at most 99 for it to act")
    assert cli["patience"].startswith("--patience 2 stops after")
    assert "every --sample-every 100 steps" in cli["patience"]
    assert cli["patience"].endswith("give --sample-every at most 99 for it to act")
    assert python["ema"].startswith("ema=0.5: in a run of 3 steps") and cli["ema"].startswith("--ema 0.5: in a run")
    assert python["remedy"] == "recon_loss='logit_laplace' or a lower lr"
    assert cli["remedy"] == "--recon-loss logit_laplace or a lower --lr"
    assert python["overfit"].endswith("fewer steps (or patience=2, which stops such a run) or more pictures")
    assert cli["overfit"].endswith("fewer --steps (or --patience 2, which stops such a run) or more pictures")
    assert python["diverged"].endswith("resume with a lower lr (this run's is 0.001): run_stage with lr=0.0001 and "
                                       "resume=True")
    assert cli["diverged"].endswith(f"resume with a lower --lr (this run's is 0.001): t2i train --resume {tmp_path} "
                                    f"--lr 0.0001")
    assert python["pixel_eps"].startswith("model={'pixel_eps': 0.0}: the logit_laplace loss")
    assert python["pixel_eps"].endswith("give one, or recon_loss='l1'")
    assert cli["pixel_eps"].startswith("--model pixel_eps=0: the logit_laplace loss")
    assert cli["pixel_eps"].endswith("give one, or --recon-loss l1")
    assert python["vocab"].startswith("the tokenizer has 68 tokens, not the vocab_size=5000 asked")
    assert cli["vocab"].startswith("the tokenizer has 68 tokens, not the --vocab-size 5,000 asked")
    for text in python.values():
        assert "--" not in text, text


def test_a_run_started_from_python_names_its_run_dir_and_resume_not_out(tmp_path: Path):
    """run_stage(cfg, a folder holding other files) said "--out X is a folder that holds other files", and into a
    run's folder "continue it with --resume X or pick another --out": a script passes run_dir and resume=True."""
    from t2i_cli import stages
    from t2i_cli.train import RUN_CONFIG, TrainConfig

    cfg = TrainConfig(stage="tokenizer", data=str(tmp_path / "pics"))
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    with pytest.raises(UsageError, match=r"^run_dir \S+taken is a folder that holds other files; pick a new or empty "
                                         r"folder$"):
        stages.run_stage(cfg, tmp_path / "taken", device="cpu")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / RUN_CONFIG).write_text("{}")
    with pytest.raises(UsageError, match=r"already holds a run; continue it with resume=True or pick another run_dir$"):
        stages.run_stage(cfg, tmp_path / "run", device="cpu")
    assert (tmp_path / "taken" / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("stage, model, says", [
    ("tokenizer", {"n_hid": 8}, "model does not apply to the tokenizer stage; leave it empty"),
    ("dvae", {"image_side": 32}, "model={'image_side': 32}: the dvae stage sets it (use image_side)"),
    ("transformer", {"grid": 4}, "model={'grid': 4}: the transformer stage sets it (use dvae)"),
    ("dvae", {"nope": 1}, "model={'nope': 1}: the dvae model has no setting 'nope'; its settings are code_dim, "
                          "downsample, fsq_levels, n_codes, n_hid, n_res, pixel_eps")])
def test_a_train_config_s_model_settings_are_refused_as_the_command_line_refuses_them(tmp_path, stage, model, says):
    """TrainConfig(stage="tokenizer", model={"n_hid": 8}) trained, its model settings dropped unsaid (t2i train
    refuses --model there); a dVAE's model={"nope": 1} or {"image_side": 32} was refused with the model class's
    TypeError ("got an unexpected keyword argument 'nope'"), after its data was opened."""
    from t2i_cli import stages
    from t2i_cli.train import TrainConfig

    with pytest.raises(UsageError) as refused:
        stages.run_stage(TrainConfig(stage=stage, data=str(tmp_path / "none"), model=model), tmp_path / "run",
                         device="cpu")
    assert str(refused.value) == says
    assert not (tmp_path / "run").exists()
