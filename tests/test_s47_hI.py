"""Session 47 (hI): a review of hB's training and torchrun lines. Each test fails without its mend."""

from __future__ import annotations

from pathlib import Path


def test_torchrun_of_three_processes_rank_2_killed_the_lost_connection_is_said_once_by_rank_0(tmp_path: Path):
    """Three processes, rank 2 killed (kill -9, out of memory) at step 5, rank 0 running: rank 0 says it stopped for
    another process, with the checkpoint it saved and the resume; rank 1, which lost the same connection, said a
    bare `rank 1 stopped: another torchrun process of this run stopped first ...` too (6 such lines of 8
    processes). It leaves it to rank 0 now."""
    from conftest import torchrun_t2i
    from test_s45_hI import KILLED_AT_STEP_5

    out = tmp_path / "run"
    patch = KILLED_AT_STEP_5.replace("{killed}", "2").replace("{tmp}", str(tmp_path))
    proc = torchrun_t2i(tmp_path, patch, "--stage", "dvae", "--steps", "8", "--batch-size", "6", "--ckpt-every", "2",
                        "--sample-every", "0", "--data", "world", "--out", str(out), monitor=2, nproc=3)
    codes = [(tmp_path / f"exit-{r}").read_text() if (tmp_path / f"exit-{r}").is_file() else "missing"
             for r in range(3)]
    assert codes == ["1", "1", "missing"], (proc.stderr[-3000:], codes)
    said = [ln for ln in proc.stderr.splitlines() if ln.startswith(("error:", "interrupted:", "internal error:"))]
    assert said == ["error: rank 0 stopped: another torchrun process of this run stopped first (its own line, or "
                    "torchrun's, says why); checkpoint saved at step 5; once that is mended, resume with: t2i train "
                    f"--resume {out}"], proc.stderr[-3000:]


def test_a_rank_reaped_between_the_two_looks_is_taken_for_ended(monkeypatch):
    """Whether rank 0 (or a lower rank) has ended is looked at twice: os.kill(pid, 0), then /proc/PID/stat for a
    zombie or a process ending. Reaped by torchrun between the two (as it reaps a killed rank), its /proc entry was
    gone and it was taken for running: rank 1 then said no checkpoint for a rank 0 killed, or rank 2 stayed silent
    for a rank 1 that had ended. It is ended."""
    import os
    import subprocess
    import sys

    from t2i_cli import train
    from t2i_cli.train import Dist

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # (reaped: its pid names no process now)
    real_kill, looks = os.kill, []

    def kill(pid: int, sig: int) -> None:
        looks.append(pid)
        if len(looks) > 1:  # the first look finds it (not yet reaped), the next ones do not
            real_kill(pid, sig)

    monkeypatch.setattr(train.os, "kill", kill)
    assert Dist(rank=1, n_procs=2, main_pid=gone.pid, pids=(gone.pid, os.getpid())).main_gone()
    assert looks[0] == gone.pid
    looks.clear()
    assert Dist(rank=2, n_procs=3, main_pid=gone.pid, pids=(gone.pid, os.getpid(), os.getpid())).main_says_it() \
        is False


def test_a_lost_connection_outside_the_training_loop_is_said_by_one_rank(monkeypatch, capsys):
    """A rank that lost a connection outside the training loop (rank 0 killed as it checked the data, or between a
    whole run's stages) said a bare `rank N stopped: another torchrun process ...` line on each rank: 2 of 3
    processes. The lowest rank still running says it; the others, rank 0 running or a lower rank, leave it to that
    one."""
    import os
    import subprocess
    import sys

    import pytest
    import typer

    from t2i_cli import cli, train
    from t2i_cli.train import Dist

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # (reaped: rank 0's pid names no process now)
    me = os.getpid()
    monkeypatch.setenv("WORLD_SIZE", "3")
    monkeypatch.setitem(cli.STATE, "debug", False)
    bare = "error: rank 2 stopped: another torchrun process of this run stopped first (its own line, or torchrun's, " \
           "says why)"
    for pids, said in (((gone.pid, me, me), ""), ((me, me, me), ""), ((gone.pid, gone.pid, me), bare)):
        monkeypatch.setenv("RANK", "2")
        monkeypatch.setattr(train, "JOB", Dist(rank=2, n_procs=3, main_pid=pids[0], pids=pids))
        with pytest.raises(typer.Exit) as ex, cli.user_errors():
            raise RuntimeError("[gloo/transport/tcp/pair.cc:534] Connection closed by peer [127.0.0.1]:1234")
        assert ex.value.exit_code == 1
        assert capsys.readouterr().err.strip() == said, pids
