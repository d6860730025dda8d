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


def test_fsq_levels_out_of_range_are_refused_with_a_new_runs_range(tmp_path: Path):
    """`--model fsq_levels=65,8` said "each 2 to 64", but a new run refuses 2 ("needs 3 or more"), and the README
    says 3 to 64: a new run's refusal says its own range (an older run's dVAE of 2 levels still loads: the config
    takes 2)."""
    from t2i_cli.models.dvae import DVAEConfig

    for levels in ("65,8", "1,8", "3,3,3,3,3,3,3,3,3"):
        for args in (["--stage", "dvae", "--model", f"fsq_levels={levels}"],
                     ["--stage", "all", "--model", f"dvae.fsq_levels={levels}"]):
            line = one_line_failure(run("train", *args, "--steps", "1", "--out", tmp_path / "zr", *TINY), 2)
            assert line == (f"error: the dVAE's fsq_levels {levels}: a new run takes 1 to 8 level counts, each 3 to "
                            f"64 (e.g. 8,5,5,5)"), line
            assert "2 to 64" not in line and not (tmp_path / "zr").exists()
    assert DVAEConfig(n_codes=16, fsq_levels=(2, 8)).fsq_levels == (2, 8)  # (an older run's, still read)


def test_the_readmes_numpy_row_names_every_module_that_imports_numpy():
    """The Dependencies table's numpy row left out world/evaluate.py, world/judge_training.py and cli.py's early
    import: every module of src that imports numpy is named in it."""
    import re

    root = Path(__file__).resolve().parents[1]
    row = next(line for line in (root / "README.md").read_text().splitlines() if line.startswith("| numpy |"))
    src = root / "src" / "t2i_cli"
    users = sorted(str(p.relative_to(src)) for p in src.rglob("*.py")
                   if re.search(r"^\s*(import numpy|from numpy)", p.read_text(), re.M))
    assert users and "cli.py" in users and "world/evaluate.py" in users
    assert [u for u in users if f"`{u}`" not in row] == []
