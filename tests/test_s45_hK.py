"""The Python API's leftovers after a researcher's journey (session 45, hK): training refusals and warnings name
the TrainConfig fields a script sets, not flags it has none of (and `t2i train` still names its flags); numpy's
numbers and arrays inside TrainConfig.model are plain ones, as the top-level fields' are; a TrainConfig value of the
wrong type says which type is wanted; and every world eval entry point checks its seed."""

from __future__ import annotations

import numpy as np
import pytest

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
