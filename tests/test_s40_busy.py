"""A busy start knows of another t2i inference command started at the same instant (files.other_t2i_inferring):
/proc/stat alone missed it in a quarter of the rounds, and both processes then spun on the same two cores."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from t2i_cli.files import _INFERENCE_HOLD, INFERENCE_LOCK, other_t2i_inferring

pytest.importorskip("fcntl")

HOLDER = """
import sys
from pathlib import Path
from t2i_cli.files import other_t2i_inferring
print(other_t2i_inferring(Path(sys.argv[1])), flush=True)
sys.stdin.read()  # holds its lock until the test closes its stdin
"""


@pytest.fixture
def let_go():
    """Close the descriptors the calls in this process took (as the end of the process would)."""
    import os

    yield
    while _INFERENCE_HOLD:
        os.close(_INFERENCE_HOLD.pop())


def holder(folder: Path) -> subprocess.Popen:
    """Another process that took the lock (as a t2i command does as it starts) and still runs; it said 0."""
    p = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "0"  # it was first
    return p


def test_a_command_started_while_another_runs_knows_of_it_and_holds_the_lock_itself(tmp_path, let_go):
    p = holder(tmp_path)
    try:
        assert other_t2i_inferring(tmp_path) == 1
        assert len(_INFERENCE_HOLD) == 1  # it holds it too (shared), for a third start to see
    finally:
        p.stdin.close()
        p.wait(timeout=30)
    assert other_t2i_inferring(tmp_path) == 1  # the holder has gone, but this process holds it (another descriptor)
    import os

    while _INFERENCE_HOLD:
        os.close(_INFERENCE_HOLD.pop())
    assert other_t2i_inferring(tmp_path) == 0  # nobody holds it now: the process that held it ended
    assert (tmp_path / INFERENCE_LOCK).stat().st_size == 0  # an empty file, made once


def test_the_first_command_sees_no_other_and_a_later_one_sees_it(tmp_path, let_go):
    assert other_t2i_inferring(tmp_path) == 0
    p = subprocess.run([sys.executable, "-c", HOLDER, str(tmp_path)], input="", capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0 and p.stdout.strip() == "1", p.stderr  # the second process knew of this one


def test_a_link_or_an_unopenable_path_counts_nobody_and_touches_nothing(tmp_path, let_go):
    target = tmp_path / "somebody-elses"
    target.write_text("kept")
    (tmp_path / INFERENCE_LOCK).symlink_to(target)  # a link planted in a shared temporary folder is not followed
    assert other_t2i_inferring(tmp_path) == 0 and not _INFERENCE_HOLD
    assert target.read_text() == "kept"
    assert other_t2i_inferring(tmp_path / "missing-folder") == 0 and not _INFERENCE_HOLD


def test_inference_commands_count_another_t2i_as_busy_before_the_load(tmp_path, monkeypatch, let_go):
    """start_inference's busy: another t2i holding the lock in the temporary folder makes the start busy even
    where /proc/stat sees nothing else running (as when two started at the same instant)."""
    import t2i_cli.cli as cli

    looked = []
    monkeypatch.setattr(cli, "bound_spinning", lambda busy: looked.append(busy))
    monkeypatch.setattr(cli, "other_running_tasks", lambda: 0)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    cli.start_inference(None, "generate")
    p = holder(tmp_path)
    try:
        assert looked[-1]() == 1
    finally:
        p.stdin.close()
        p.wait(timeout=30)
    import os

    while _INFERENCE_HOLD:
        os.close(_INFERENCE_HOLD.pop())
    assert looked[-1]() == 0  # alone again
    os.close(_INFERENCE_HOLD.pop())
    monkeypatch.setattr(cli, "other_running_tasks", lambda: 2)
    assert looked[-1]() == 2  # and /proc/stat's count still counts
