"""Session 38: a whole run's resume takes its own settings said again, and its refusals say what differs."""

from __future__ import annotations

from pathlib import Path

from conftest import one_line_failure, run

ALL = ["train", "--stage", "all", "--preset", "tiny", "--workers", "0", "-q", "--steps", "dvae=2,transformer=2,clip=2"]


def test_the_command_that_started_a_whole_run_with_resume_added_continues_it(tmp_path: Path):
    """The walkthrough's dead end: the same command again said "other settings (steps ...); continue it with
    --resume RUN"; `--resume RUN --steps N` said --steps cannot change a whole run; and the command that started
    it with --resume RUN added was refused although nothing changed (a stage's own resume takes its settings
    said again)."""
    out = tmp_path / "run"
    first = run(*ALL, "--data", "world:train", "--out", out)
    assert first.exit_code == 0, first.stderr
    again = run(*ALL, "--data", "world:train", "--out", out, "--resume", out)
    assert again.exit_code == 0 and again.stdout.count("done before") == 4, again.stderr
    reordered = run("train", "--resume", out, "-q", "--steps", "clip=2,transformer=2,dvae=2")  # the same, said
    assert reordered.exit_code == 0 and reordered.stdout.count("done before") == 4, reordered.stderr  # otherwise
    line = one_line_failure(run("train", "--resume", out, "-q", "--steps", "dvae=3,transformer=2,clip=2"), 2)
    assert line == (f"error: --steps cannot change a whole run that has started (steps dvae=2,transformer=2,clip=2 "
                    f"in the run, dvae=3,transformer=2,clip=2 here); --resume keeps its settings (to extend or "
                    f"change one stage, resume its folder: t2i train --resume {out}/STAGE --steps N)"), line
    line = one_line_failure(run(*ALL, "--out", tmp_path / "elsewhere", "--resume", out), 2)
    assert line == (f"error: --out cannot change a whole run that has started; --resume keeps "
                    f"its settings (to extend or change one stage, resume its folder: t2i train --resume "
                    f"{out}/STAGE --steps N)"), line
    line = one_line_failure(run(*ALL[:-1], "dvae=3,transformer=2,clip=2", "--out", out), 2)
    assert line == (f"error: {out} holds a --stage all run with other settings (steps dvae=2,transformer=2,clip=2 in "
                    f"the run, dvae=3,transformer=2,clip=2 here); continue it as it is with --resume {out}, extend "
                    f"one stage with t2i train --resume {out}/STAGE --steps N, or pick another --out"), line
    more = run("train", "--resume", out / "transformer", "--steps", "3", "-q")  # what both refusals advise
    assert more.exit_code == 0, more.stderr


def test_a_typo_on_a_whole_runs_folder_is_said_as_the_typo(tmp_path: Path):
    """On a folder holding a whole run, `--model nope=1` or `--batch-size transformer=4,dvae=x` said the run had
    "other settings; continue it with --resume" (of a command that could never run); a fresh folder said the typo.
    And `--model dvae.bogus=2` was named 'bogus=2', its stage prefix dropped."""
    out = tmp_path / "run"
    assert run(*ALL, "--out", out).exit_code == 0
    for extra, said in (
            (["--model", "nope=1"], "error: --model nope: no stage's model has that setting; see `t2i train --help`"),
            (["--batch-size", "transformer=4,dvae=x"],
             "error: --batch-size 'transformer=4,dvae=x': 'x' is not a number"),
            (["--model", "dvae.bogus=2"], "error: --model dvae.bogus=2: the dvae model has no setting "
                                          "'bogus'; its settings are code_dim, downsample, fsq_levels, n_codes, n_hid, "
                                          "n_res, pixel_eps")):
        for where in (out, tmp_path / "fresh"):
            line = one_line_failure(run(*ALL, *extra, "--out", where), 2)
            assert line == said, line
    assert not (tmp_path / "fresh").exists()


def test_a_whole_runs_settings_said_again_in_another_form_continue_it(tmp_path: Path, monkeypatch):
    """Settings are compared as they act: --lr 1e-3 is 0.001, --model's items in another order are the same model,
    and --out naming the run another way (relative, where it was started absolute) is the run."""
    out = tmp_path / "run"
    model = ["--model", "dvae.n_hid=16", "--model", "dvae.n_res=1"]
    first = run(*ALL, "--lr", "dvae=1e-3", *model, "--out", out)
    assert first.exit_code == 0, first.stderr
    monkeypatch.chdir(tmp_path)
    again = run(*ALL, "--lr", "dvae=0.001", "--model", "dvae.n_res=1", "--model", "dvae.n_hid=16", "--out", "run",
                "--resume", out)
    assert again.exit_code == 0 and again.stdout.count("done before") == 4, again.stderr
    line = one_line_failure(run(*ALL, "--lr", "dvae=0.002", *model, "--resume", out), 2)
    assert line.startswith("error: --lr cannot change a whole run that has started (lr dvae=1e-3 in the run, "
                           "dvae=0.002 here)"), line
