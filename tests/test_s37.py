"""Session 37: the command line's smaller points (a finished run resumed)."""

from __future__ import annotations

from pathlib import Path

from conftest import run


def test_resuming_a_finished_run_says_it_was_finished_not_a_bare_step(tmp_path: Path):
    """`t2i train --resume RUN` of a finished run trained nothing and said `dvae stage finished: {"step": 4}`, as
    if it had (the torchrun walkthrough's point): it now says the run was finished and how to train on."""
    out = tmp_path / "run"
    first = run("train", "--stage", "dvae", "--preset", "tiny", "--steps", "3", "--out", out, "-q")
    assert first.exit_code == 0, first.stderr
    assert '"loss"' in first.stdout  # (a run that trained shows its metrics)
    again = run("train", "--resume", out)
    assert again.exit_code == 0, again.stderr
    lines = again.stdout.splitlines()
    assert lines[0] == f"dvae stage: already finished at step 3; nothing to train (to train on: t2i train --resume " \
                       f"{out} --steps N, N over 3)", again.stdout
    assert lines[1].startswith(f"run folder: {out}")
    more = run("train", "--resume", out, "--steps", "4", "-q")  # (what it advises trains on)
    assert more.exit_code == 0 and more.stdout.startswith('dvae stage finished: {"step": 4, "loss"'), more.stdout
