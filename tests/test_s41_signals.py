"""A stop that reaches the training run's data loader workers as well as its main process (a scheduler, systemd or
`pkill` signalling each of the run's processes, not a process group): the run saves the steps it trained and
stops in one line with the resume command, whichever process the signal reaches first. Before, DataLoader's
SIGCHLD handler raised "DataLoader worker (pid N) is killed by signal: Terminated" wherever the main process was
when the worker ended: inside the checkpoint the stop was writing (an internal error, the steps since the last
checkpoint lost) or inside opt.step() (nothing saved)."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from conftest import SRC, run
from t2i_cli import train
from t2i_cli.train import CHECKPOINT
from t2i_cli.weights import load_tensors

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGCHLD") or not hasattr(os, "waitid"),
                                reason="needs SIGCHLD and waitid (POSIX)")

COLOURS = [(200, 30, 30), (30, 30, 200), (30, 160, 30), (220, 200, 40), (140, 40, 160), (20, 20, 20)]


@pytest.fixture(scope="module")
def pictures(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("pics")
    for i, colour in enumerate(COLOURS):
        img = Image.new("RGB", (24, 24), colour)
        img.paste((255, 255, 255), (4 + i, 4, 12 + i, 12))
        img.save(folder / f"p{i}.png")
        (folder / f"p{i}.txt").write_text(f"a square number {i}\n")
    return folder


def args(pictures: Path, out: Path, ckpt_every: int = 100) -> list:
    return ["train", "--stage", "dvae", "--preset", "tiny", "--data", pictures, "--steps", "6", "--workers", "1",
            "--batch-size", "2", "--ckpt-every", ckpt_every, "--sample-every", "0", "--device", "cpu", "-q",
            "--out", out]


def end_worker(signum: int) -> int:
    """Send the loader's one worker signum and wait until it has ended (not reaping it: the loader's SIGCHLD
    check sees it as it would a kill from outside); its pid."""
    workers = multiprocessing.active_children()
    assert len(workers) == 1, workers
    pid = workers[0].pid
    os.kill(pid, signum)
    os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
    return pid


def on_step(monkeypatch, n: int, action) -> None:
    """Run action() inside the n-th AdamW step (inside the training loop's hold), after the update."""
    real, calls = torch.optim.AdamW.step, {"n": 0}

    def step(self, *a, **k):
        out = real(self, *a, **k)
        calls["n"] += 1
        if calls["n"] == n:
            action()
        return out

    monkeypatch.setattr(torch.optim.AdamW, "step", step)


def checkpoint_step(run_dir: Path) -> str:
    return load_tensors(run_dir / CHECKPOINT)[1]["step"]


def same_as_uninterrupted(pictures: Path, tmp_path: Path, cut: Path) -> None:
    r = run("train", "--resume", cut, "-q")
    assert r.exit_code == 0, r.output + r.stderr
    assert run(*args(pictures, tmp_path / "full")).exit_code == 0
    full, cut_t = load_tensors(tmp_path / "full" / CHECKPOINT)[0], load_tensors(cut / CHECKPOINT)[0]
    assert set(full) == set(cut_t) and all(torch.equal(full[k], cut_t[k]) for k in full)


def test_a_worker_ended_while_the_stop_writes_its_checkpoint_loses_nothing(pictures, tmp_path, monkeypatch):
    """SIGTERM to the main process, then to its worker: the worker ends while the stop's checkpoint is written."""
    real_save, ended = train.save_checkpoint, []

    def save(*a, **k):
        if not ended:  # the kill's second signal, to the worker, lands as the stop's checkpoint is written
            ended.append(end_worker(signal.SIGTERM))
        return real_save(*a, **k)

    def stop() -> None:
        monkeypatch.setattr(train, "save_checkpoint", save)
        os.kill(os.getpid(), signal.SIGTERM)  # (held until the step is counted)

    on_step(monkeypatch, 3, stop)
    cut = tmp_path / "cut"
    r = run(*args(pictures, cut))
    monkeypatch.undo()
    assert ended and r.exit_code == 130, r.output + r.stderr
    lines = r.stderr.strip().splitlines()
    assert lines == [f"interrupted: at step 3; checkpoint saved. Resume with: t2i train --resume {cut}"], r.stderr
    assert checkpoint_step(cut) == "3"
    assert not [p for p in cut.iterdir() if p.name.endswith(".tmp")]
    same_as_uninterrupted(pictures, tmp_path, cut)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_stop_that_reaches_the_worker_first_stops_the_run_as_a_stop(pictures, tmp_path, monkeypatch, signum):
    """The worker ends inside opt.step() (where an error saves nothing, the update perhaps half made): its end is
    taken once the step is counted, as a stop, with the step saved."""
    pids = []
    on_step(monkeypatch, 4, lambda: pids.append(end_worker(signum)))
    cut = tmp_path / "cut"
    r = run(*args(pictures, cut))
    monkeypatch.undo()
    assert pids and r.exit_code == 130, r.output + r.stderr
    name = signal.Signals(signum).name
    assert r.stderr.strip().splitlines() == [
        f"interrupted: {name} to its data loader's worker process (pid {pids[0]}, as a kill of each of the run's "
        f"processes sends) at step 4; checkpoint saved. Resume with: t2i train --resume {cut}"], r.stderr
    assert checkpoint_step(cut) == "4"
    same_as_uninterrupted(pictures, tmp_path, cut)


def test_a_worker_killed_by_sigkill_is_said_as_such_and_its_steps_are_saved(pictures, tmp_path, monkeypatch):
    """The out-of-memory killer's SIGKILL of a worker: an error (exit 1) naming it, not an internal error."""
    pids = []
    on_step(monkeypatch, 2, lambda: pids.append(end_worker(signal.SIGKILL)))
    cut = tmp_path / "cut"
    r = run(*args(pictures, cut))
    monkeypatch.undo()
    assert pids and r.exit_code == 1, r.output + r.stderr
    assert r.stderr.strip().splitlines() == [
        f"error: the data loader's worker process (pid {pids[0]}) was ended by SIGKILL (the system's out-of-memory "
        f"killer sends it, or a kill -9; lower --workers or --batch-size if memory ran out); checkpoint saved at "
        f"step 2; once that is mended, resume with: t2i train --resume {cut}"], r.stderr
    assert checkpoint_step(cut) == "2"


# A Ctrl-C that lands as the main process takes a batch's tensors from the worker (its resource sharer hands them
# over a connection), made to land at the start of that hand-over after the second step.
HANG_UP = r"""
import multiprocessing.connection as connection, sys, torch
real_step, real, calls = torch.optim.AdamW.step, connection.answer_challenge, {"n": 0}
def hang_up(conn, authkey):
    connection.answer_challenge = real
    conn.close()
    raise KeyboardInterrupt
def step(self, *a, **k):
    out = real_step(self, *a, **k)
    calls["n"] += 1
    if calls["n"] == 2:
        connection.answer_challenge = hang_up
    return out
torch.optim.AdamW.step = step
sys.argv = ["t2i", *sys.argv[1:]]
from t2i_cli.cli import main
main()
"""


def test_a_stop_while_a_batch_is_taken_from_the_worker_prints_no_traceback(pictures, tmp_path):
    """The worker printed the hand-over's EOFError traceback under the stop's one line."""
    cut = tmp_path / "cut"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-c", HANG_UP, *map(str, args(pictures, cut))], capture_output=True,
                       text=True, timeout=300, env=env, cwd=tmp_path)
    assert r.returncode == 130, r.stderr
    assert r.stderr.strip().splitlines() == [
        f"interrupted: at step 2; checkpoint saved. Resume with: t2i train --resume {cut}"], r.stderr
    assert checkpoint_step(cut) == "2"


def test_a_stop_as_a_periodic_checkpoint_starts_its_file_leaves_no_temporary(pictures, tmp_path, monkeypatch):
    """SIGTERM just after the --ckpt-every checkpoint's temporary file is made: the stop waits for that checkpoint
    (it left the temporary behind, and wrote the checkpoint again)."""
    import tempfile

    real, made = tempfile.mkstemp, []

    def mkstemp(*a, **k):
        fd, name = real(*a, **k)
        if Path(name).name.startswith(".checkpoint.safetensors.") and not made:
            made.append(name)
            os.kill(os.getpid(), signal.SIGTERM)
        return fd, name

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    saves = []
    real_save = train.save_checkpoint
    monkeypatch.setattr(train, "save_checkpoint", lambda *a, **k: saves.append(a[4]) or real_save(*a, **k))
    cut = tmp_path / "cut"
    r = run(*args(pictures, cut, ckpt_every=2))
    monkeypatch.undo()
    assert made and r.exit_code == 130, r.output + r.stderr
    assert r.stderr.strip().splitlines() == [
        f"interrupted: at step 2; checkpoint saved. Resume with: t2i train --resume {cut}"], r.stderr
    assert not [p.name for p in cut.iterdir() if p.name.endswith(".tmp")]
    assert saves == [2] and checkpoint_step(cut) == "2"


# Rank 1 ends its loader's worker with SIGTERM inside its third optimizer step (a stop that reached that worker
# alone); the test's processes write their exit codes to exit-RANK.
RANK_1_WORKER_STOPPED = r"""
import multiprocessing, os, signal, sys
import torch
real, calls = torch.optim.AdamW.step, {"n": 0}
def step(self, *a, **k):
    out = real(self, *a, **k)
    calls["n"] += 1
    if calls["n"] == 3 and os.environ["RANK"] == "1":
        (worker,) = multiprocessing.active_children()
        os.kill(worker.pid, signal.SIGTERM)
        os.waitid(os.P_PID, worker.pid, os.WEXITED | os.WNOWAIT)
    return out
torch.optim.AdamW.step = step
from t2i_cli.cli import main
sys.argv = ["t2i", *sys.argv[1:]]
try:
    main()
except SystemExit as e:
    open("exit-" + os.environ["RANK"], "w").write(str(e.code))
    raise
"""


def test_under_torchrun_the_process_whose_worker_was_stopped_says_so(pictures, tmp_path):
    """Rank 1's worker stopped: rank 1 says why in its own line (a stop is otherwise said by rank 0 alone, which
    here only lost rank 1), and rank 0 saves the steps trained."""
    pytest.importorskip("torch.distributed.run")
    out, tmp = tmp_path / "run", tmp_path / "tmp"
    tmp.mkdir()
    (tmp_path / "patched_t2i.py").write_text(RANK_1_WORKER_STOPPED)
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1", "TMPDIR": str(tmp)}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                        str(tmp_path / "patched_t2i.py"), *map(str, args(pictures, out))], env=env, cwd=tmp_path,
                       capture_output=True, text=True, timeout=300)
    said = [ln for ln in r.stderr.splitlines() if ln.startswith(("interrupted:", "error:", "internal error:"))]
    assert len(said) == 2 and said[0].startswith("interrupted: SIGTERM to its data loader's worker process") \
        and said[0].endswith(f"at step 3; checkpoint saved. Resume with: t2i train --resume {out}"), r.stderr[-3000:]
    assert said[1].startswith("error: rank 0 stopped: another torchrun process") and "saved at step 3" in said[1]
    assert [(tmp_path / f"exit-{rank}").read_text() for rank in (0, 1)] == ["1", "130"]
    assert checkpoint_step(out) == "3"


def test_a_stop_while_an_error_is_handled_waits_for_the_steps_save(pictures, tmp_path, monkeypatch):
    """An error ends the run after step 3 (a picture gone), and SIGTERM lands as it is handled, before the save of
    the steps since the last checkpoint: the stop ended the run there, those steps lost."""
    from t2i_cli.errors import DataError

    real_clip, real_non_finite, calls = torch.nn.utils.clip_grad_norm_, train.non_finite, {"n": 0, "failed": False}

    def clip(*a, **k):
        calls["n"] += 1
        if calls["n"] == 4:
            calls["failed"] = True
            raise DataError("picture p3.png is gone")
        return real_clip(*a, **k)

    def non_finite(*a, **k):
        if calls["failed"]:
            calls["failed"] = False
            os.kill(os.getpid(), signal.SIGTERM)
        return real_non_finite(*a, **k)

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", clip)
    monkeypatch.setattr(train, "non_finite", non_finite)
    cut = tmp_path / "cut"
    r = run(*args(pictures, cut))
    monkeypatch.undo()
    assert r.exit_code == 130, r.output + r.stderr
    assert r.stderr.strip().splitlines() == [
        f"interrupted: at step 3; checkpoint saved. Resume with: t2i train --resume {cut}"], r.stderr
    assert checkpoint_step(cut) == "3"
    same_as_uninterrupted(pictures, tmp_path, cut)


def loss_steps(run_dir: Path) -> list[int]:
    return [r["step"] for r in train.read_metrics(run_dir / "metrics.jsonl") if "loss" in r]


def test_the_step_a_stop_saves_keeps_its_logged_loss(pictures, tmp_path, monkeypatch):
    """SIGTERM inside step 3's optimizer update: the checkpoint is step 3's, and so is the last loss line (it
    was not written: the stop came as the step was counted, before its line, and the resume starts after it,
    so the run's metrics never held step 3's loss)."""
    from conftest import signal_after_step

    undo = signal_after_step(monkeypatch, 3, signal.SIGTERM)
    cut = tmp_path / "cut"
    r = run(*args(pictures, cut), "--log-every", "1")
    undo()
    assert r.exit_code == 130, r.output + r.stderr
    assert checkpoint_step(cut) == "3"
    assert loss_steps(cut) == [1, 2, 3]
    assert run("train", "--resume", cut, "-q").exit_code == 0
    assert loss_steps(cut) == [1, 2, 3, 4, 5, 6]
