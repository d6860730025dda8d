"""s45, helper hP: training's --threads, the whole run's export warning said only when that export happens,
ClipConfig.regions() in use, and FSQ's level counts."""

from __future__ import annotations

import torch

from conftest import one_line_failure, run
from t2i_cli.models.dvae import FSQ
from test_reliability import TINY


# ---------------------------------------------------------------------------------------------- fsq levels
def test_a_new_dvae_run_refuses_an_fsq_channel_of_two_levels(tmp_path):
    """FSQ's shifted tanh puts a two-level channel's one boundary at z = -3.8: nearly every value rounds to one
    level (the channel is wasted), so a new run refuses it in one line, before a folder is made; 3 levels split
    evenly and train."""
    z = torch.linspace(-10, 10, 2001).view(1, 1, 1, -1)
    assert torch.bincount(FSQ((2,)).codes(z).flatten()).tolist() == [620, 1381]  # lopsided: the boundary at -3.8
    three = torch.bincount(FSQ((3,)).codes(z).flatten()).tolist()
    assert three[0] == three[2]  # symmetric about z = 0
    line = one_line_failure(run("train", "--stage", "dvae", "--out", tmp_path / "two", "--steps", "1", "--model",
                                "fsq_levels=4,2,4", *TINY), 2)
    assert "fsq_levels=4,2,4: FSQ needs 3 or more levels per channel" in line
    assert not (tmp_path / "two").exists()
    r = run("train", "--stage", "dvae", "--out", tmp_path / "three", "--steps", "1", "--model", "fsq_levels=4,3,4",
            *TINY)
    assert r.exit_code == 0, r.output + r.stderr
