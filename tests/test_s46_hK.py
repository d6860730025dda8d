"""Session 46, hK: leftovers of the session's first helpers (each test fails without its fix)."""

from __future__ import annotations

from pathlib import Path

from conftest import one_line_failure, run
from test_reliability import TINY


def test_an_unknown_model_key_of_a_whole_run_is_said_as_a_single_stage_says_it(tmp_path: Path):
    """`t2i train --stage all --model dvae.bogus=2` said "the dvae stage's model has no setting 'bogus'; its KEYs
    are ..." (and `dvae.image_side=2`, a setting the stage sets itself, the same), where a single stage says
    "--model nope=1: the dvae model has no setting 'nope'; its settings are ...": one wording, the prefix kept."""
    settings = "its settings are code_dim, downsample, fsq_levels, n_codes, n_hid, n_res, pixel_eps"
    whole = ["train", "--stage", "all", "--out", tmp_path / "r", *TINY]
    line = one_line_failure(run(*whole, "--model", "dvae.bogus=2"), 2)
    assert line == f"error: --model dvae.bogus=2: the dvae model has no setting 'bogus'; {settings}", line
    single = one_line_failure(run("train", "--stage", "dvae", "--out", tmp_path / "d", *TINY, "--model", "bogus=2"), 2)
    assert single == f"error: --model bogus=2: the dvae model has no setting 'bogus'; {settings}", single
    line = one_line_failure(run(*whole, "--model", "dvae.image_side=2"), 2)
    assert line == "error: --model dvae.image_side=2: the dvae stage sets it (use --image-side)", line
    assert not (tmp_path / "r").exists() and not (tmp_path / "d").exists()
