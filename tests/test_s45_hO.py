"""Session 45 (hO): an adversarial user's look at the session's new behaviour, each test failing without its fix."""

from __future__ import annotations

from pathlib import Path

from conftest import run
from test_s42_caption import _captions, _pictures


def test_a_colours_counter_past_a_cards_values_beside_another_colours_is_a_counter(tmp_path: Path):
    """Photos of each colour counted, "red_1" .. "red_40" beside "blue_1" .. "blue_40" (a colour dataset's layout),
    were captioned "red 1" .. "red 40": the rule for a set of cards (Hanabi's "blue_1" .. "blue_5" beside "red_1" ..
    "red_5") took any colours sharing their numbers. No set of a colour's cards goes past 13 (a suit's ranks);
    Hanabi's cards keep their values."""
    photos = _pictures(tmp_path / "colours", *(f"{c}_{i}" for c in ("red", "blue") for i in range(1, 41)))
    cards = _pictures(tmp_path / "rummikub", *(f"{c}_{i}" for c in ("red", "blue") for i in range(1, 14)))
    for folder in (photos, cards):
        r = run("data", "caption", folder, "-q")
        assert r.exit_code == 0, r.stderr
    assert _captions(photos) == {f"{c}_{i}": c for c in ("red", "blue") for i in range(1, 41)}
    assert _captions(cards) == {f"{c}_{i}": f"{c} {i}" for c in ("red", "blue") for i in range(1, 14)}


def test_a_trainconfigs_model_numbers_and_switches_may_be_numpys():
    """A TrainConfig's numbers may be numpy's (the README): steps=np.int64(75) was taken, but a sweep's model size,
    model={"n_codes": np.int64(64)}, was refused after the pictures' check ('n_codes is "np.int64(64)", not an
    integer') and flip=np.True_ (np.array([True, False])'s) by check ('flip must be bool'). They are plain ones now,
    as train_config.json holds them; what is no bool nor number is still refused."""
    import json

    import numpy as np
    import pytest

    from t2i_cli.stages import dvae_model_config
    from t2i_cli.train import TrainConfig

    cfg = TrainConfig(stage="dvae", data="world", flip=np.True_,
                      model={"n_codes": np.int64(64), "fsq_levels": list(np.array([8, 8])), "pixel_eps": np.float32(0)})
    cfg.check()
    assert cfg.flip is True and cfg.model == {"n_codes": 64, "fsq_levels": [8, 8], "pixel_eps": 0.0}
    assert [type(v) for v in (cfg.model["n_codes"], *cfg.model["fsq_levels"])] == [int, int, int]
    assert dvae_model_config(cfg).n_codes == 64
    assert json.loads(json.dumps(cfg.to_json()))["model"]["n_codes"] == 64
    with pytest.raises(TypeError, match="flip must be True or False"):
        TrainConfig(stage="dvae", data="world", flip="yes").check()


def test_an_image_prompts_keep_top_and_strength_may_be_numpys(tmp_path: Path):
    """image_prompt.build(dvae, src, keep_top=np.float32(0.5)) (a sweep's np.arange(..., dtype=np.float32), or
    strength=np.int64(1)) was refused, "keep_top must be a number, got float32", where SamplingConfig and the API's
    counts take numpy's numbers; it is the same prompt as the plain number's now, and True and "0.5" stay refused."""
    import numpy as np
    import pytest
    import torch
    from PIL import Image

    from t2i_cli.image_prompt import build
    from t2i_cli.models.dvae import DVAE, DVAEConfig

    torch.manual_seed(0)
    dvae = DVAE(DVAEConfig(image_side=16, downsample=4, n_codes=16, n_hid=8, code_dim=8, n_res=0)).eval()
    src = tmp_path / "src.png"
    Image.new("RGB", (16, 16), (200, 30, 30)).save(src)
    for name, numpy_value, plain in (("keep_top", np.float32(0.5), 0.5), ("strength", np.int64(1), 1.0),
                                     ("strength", np.float32(0.25), 0.25)):
        got, want = build(dvae, src, **{name: numpy_value}), build(dvae, src, **{name: plain})
        assert torch.equal(got.codes, want.codes) and got.mode == want.mode
        assert (got.keep is None and want.keep is None) or torch.equal(got.keep, want.keep)
        assert got.strength == want.strength and type(got.strength) is type(want.strength)
    for bad in (True, np.True_, "0.5"):
        with pytest.raises(TypeError, match="keep_top must be a number"):
            build(dvae, src, keep_top=bad)
