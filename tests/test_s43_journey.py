"""A new user's journey on their own pictures, as an attacker (session 43): the defects met, each pinned."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from conftest import one_line_failure, run


def _pictures(folder: Path, n: int = 4) -> Path:
    """n small captioned pictures, each of one colour."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.new("RGB", (20, 20), (40 * i, 200 - 50 * i, 90)).save(folder / f"pic{i}.png")
        (folder / f"pic{i}.txt").write_text(f"a picture number {i}\n")
    return folder


def test_a_whole_runs_resume_takes_its_own_default_said_again(tmp_path):
    """`t2i train --resume RUN --seed 0` of a whole run started without --seed (so at seed 0) was refused:
    "--seed cannot change a whole run that has started (seed the preset's in the run, 0 here)", though 0 is the
    very seed it trains at; so were the tiny preset's --no-flip, --crop 1 and --image-side 16 said again. A value
    that builds the run's own stages is its setting said again; another value is still refused."""
    pics = _pictures(tmp_path / "pics")
    out = tmp_path / "run"
    r = run("train", "--stage", "all", "--data", pics, "--out", out, "--preset", "tiny", "--steps", "2",
            "--workers", "0", "--quiet")
    assert r.exit_code == 0, (r.stdout, r.stderr)
    for said in (["--seed", "0"], ["--no-flip"], ["--crop", "1"], ["--image-side", "16"], ["--ema", "0"]):
        r = run("train", "--resume", out, *said, "--workers", "0", "--quiet")
        assert r.exit_code == 0, (said, r.stdout, r.stderr)
        assert '"dvae": "done before"' in r.stdout, r.stdout
    # the same command again, --seed 0 added, continues it too
    r = run("train", "--stage", "all", "--data", pics, "--out", out, "--preset", "tiny", "--steps", "2",
            "--seed", "0", "--workers", "0", "--quiet")
    assert r.exit_code == 0, (r.stdout, r.stderr)
    for other in (["--seed", "1"], ["--flip"], ["--crop", "0.9"], ["--image-side", "32"]):
        line = one_line_failure(run("train", "--resume", out, *other), 2)
        assert "cannot change a whole run" in line, line


def test_export_of_a_stopped_whole_run_does_not_say_its_models_are_exported(tmp_path):
    """`t2i export RUN` of a whole run stopped in its dVAE stage (Ctrl-C) said "RUN is a --stage all run, whose
    models are already exported to RUN/weights", a folder that did not exist: the user looked for weights that
    were never written. It now says the run has not finished, how to finish it (which exports them), and names
    the stage folders it has; a finished run's refusal is as it was."""
    from t2i_cli.train_options import PLAN

    pics = _pictures(tmp_path / "pics")
    out = tmp_path / "run"
    r = run("train", "--stage", "all", "--data", pics, "--out", out, "--preset", "tiny", "--steps", "2",
            "--workers", "0", "--quiet")
    assert r.exit_code == 0, (r.stdout, r.stderr)
    line = one_line_failure(run("export", out, "--to", tmp_path / "w"), 2)
    assert "already exported to" in line and (out / "weights").is_dir(), line
    stopped = tmp_path / "stopped"  # as a Ctrl-C in its dVAE stage leaves it: all.json and the first stages
    stopped.mkdir()
    (stopped / PLAN).write_text((out / PLAN).read_text())
    for stage in ("tokenizer", "dvae"):
        (stopped / stage).mkdir()
    line = one_line_failure(run("export", stopped, "--to", tmp_path / "w"), 2)
    assert "already exported" not in line, line
    assert f"has not finished, so it has no weights yet; finish it with t2i train --resume {stopped}" in line, line
    assert f"export its stage folders ({stopped / 'dvae'})" in line, line
    assert not (tmp_path / "w").exists()
