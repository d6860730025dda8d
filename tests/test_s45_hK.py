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
