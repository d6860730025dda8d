"""What t2i does that differs between Linux, macOS and Windows, checked here by simulating the other system where
the difference can be simulated on Linux."""

from __future__ import annotations

import errno
import fcntl
import gc
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import end_group, run
from t2i_cli.files import atomic_write_bytes
from t2i_cli.models.dvae import DVAE, DVAEConfig
from t2i_cli.train import TrainConfig, load_checkpoint, save_checkpoint


@pytest.fixture
def windows_fsync(monkeypatch):
    """os.fsync as on Windows, where it calls FlushFileBuffers, which needs a handle open for writing: EBADF on a
    descriptor opened read-only (Linux syncs either)."""
    real = os.fsync

    def fsync(fd: int) -> None:
        if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDONLY:
            raise OSError(errno.EBADF, "Bad file descriptor")
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)


def test_every_write_syncs_through_a_handle_open_for_writing(tiny_weights, tmp_path, windows_fsync):
    """Each finished temporary was fsynced through a read-only handle: on Windows every write failed ("cannot write
    a new a-red-bird-*.png ...: Bad file descriptor"), so nothing worked there, generate and train included."""
    atomic_write_bytes(tmp_path / "x.bin", b"abc")
    assert (tmp_path / "x.bin").read_bytes() == b"abc"
    r = run("generate", "a red bird", "--weights", tiny_weights, "--out", tmp_path / "o", "--device", "cpu",
            "--quiet", "--candidates", "1")
    assert r.exit_code == 0 and "Bad file descriptor" not in r.stderr, r.stderr
    assert [p.name for p in (tmp_path / "o").iterdir()] == ["a-red-bird-000.png"]


def _mapped(path: Path) -> bool:
    """Whether this process maps path (the file, or what it was before it was replaced: '(deleted)')."""
    return str(path) in Path("/proc/self/maps").read_text()


def test_a_resumed_run_keeps_no_view_of_its_checkpoint_file(tmp_path):
    """The optimizer keeps a tensor of its own dtype as it is given: loaded from safetensors, a view of the file's
    memory map. After --resume the first checkpoint stayed mapped for the whole run, its disk space held after it
    was replaced, and on Windows (where a mapped file cannot be replaced) the next checkpoint would fail."""
    torch.manual_seed(0)
    cfg = DVAEConfig(image_side=16, downsample=4, n_codes=32, n_hid=8, code_dim=8)
    model = DVAE(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.rand(2, 3, 16, 16))[0].float().mean().backward()
    opt.step()
    path = tmp_path / "checkpoint.safetensors"
    tcfg = TrainConfig(stage="dvae", data="world:train", steps=5)
    save_checkpoint(path, model, opt, tcfg, 1, "dvae")
    again = DVAE(cfg)
    opt2 = torch.optim.AdamW(again.parameters(), lr=1e-3)
    step, _ = load_checkpoint(path, again, opt2)
    gc.collect()
    assert step == 1 and not _mapped(path)
    state = opt2.state_dict()["state"]
    assert all(torch.equal(state[i]["exp_avg"], opt.state_dict()["state"][i]["exp_avg"]) for i in state)


SPAWNED = ("import multiprocessing, sys; multiprocessing.set_start_method('spawn'); from t2i_cli.cli import main; "
           "sys.argv[0] = 't2i'; main()")


def _spawned_workers(pid: int) -> list[int]:
    """The loader workers a process has spawned now (its children running multiprocessing's spawn_main, not the
    resource tracker)."""
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                cmd = Path(f"/proc/{child}/cmdline").read_bytes()
            except OSError:
                continue
            if b"spawn_main" in cmd:
                out.append(int(child))
    return out


@pytest.mark.skipif(not Path("/proc/self/task").is_dir() or not hasattr(os, "killpg"),
                    reason="needs Linux /proc and process groups")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_stop_while_spawned_workers_start_stops_the_run_as_any_stop(tmp_path, signum):
    """macOS and Windows start processes by spawn: a loader worker imports torch for seconds before it leaves the
    process group and ignores Ctrl-C. A SIGTERM to the group then killed it, and the run ended in the loader's
    "worker killed by signal" internal error with no checkpoint; a Ctrl-C printed a traceback per worker. The
    main process blocks both stops while it starts them, so a stop waits in a starting worker until it is out of
    its way: the run stops with its one line and exit 130."""
    out = tmp_path / "run"
    cmd = [sys.executable, "-c", SPAWNED, "train", "--stage", "dvae", "--preset", "tiny", "--data", "world:train",
           "--workers", "2", "--steps", "100000", "--ckpt-every", "100000", "--sample-every", "0", "-q",
           "--device", "cpu", "--out", str(out)]
    log = tmp_path / "stderr.txt"
    with open(log, "w") as err_file:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err_file, start_new_session=True,
                                env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")})
        try:
            deadline = time.monotonic() + 120
            while not _spawned_workers(proc.pid):  # a worker has just been started: it is importing torch
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"no worker started: {log.read_text()}")
                time.sleep(0.05)
            os.killpg(proc.pid, signum)
            proc.wait(timeout=120)
        finally:
            end_group(proc)
    err = log.read_text()
    assert proc.returncode == 130, err
    assert "internal error" not in err and "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert err.strip().splitlines()[-1].startswith("interrupted:"), err


def test_a_suggested_command_quotes_a_path_with_a_space(tmp_path):
    """Home folders on macOS and Windows often hold spaces ('My Pictures', 'John Smith'): the command t2i suggests
    (`--tokenizer PATH`, `t2i train --resume PATH`) split such a path into two words, so pasted it named another
    path."""
    import shlex

    out = tmp_path / "my runs" / "tok"
    r = run("train", "--stage", "tokenizer", "--preset", "tiny", "--out", out, "-q")
    assert r.exit_code == 0, r.stderr
    hint = r.stdout.split("--tokenizer ", 1)[1].rstrip().rstrip(")")
    assert shlex.split(hint) == [str(out)]
    r = run("train", "--stage", "tokenizer", "--preset", "tiny", "--out", out, "-q")
    assert r.exit_code == 2 and shlex.split(r.stderr.split("--resume ", 1)[1])[0] == str(out), r.stderr


def test_a_file_system_without_folder_numbers_still_reads_every_folder(tmp_path, monkeypatch):
    """A folder is read once however many links lead to it, known by its (device, inode) pair; some network shares
    and FAT file systems (Windows, memory cards) number every folder 0, and every sub-folder after the first was
    then skipped as one already read, silently. There it is known by its real path."""
    import stat

    from t2i_cli import data

    for sub in ("a", "b", "c"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "p.png").write_bytes(b"")
    (tmp_path / "a" / "up").symlink_to("..")  # links up the tree: still no loop (two made it run for ever)
    (tmp_path / "a" / "up2").symlink_to("..")
    (tmp_path / "b" / "also-c").symlink_to(tmp_path / "c")  # and a folder reached twice is read once
    real = os.stat

    def numberless(path, *a, **k):
        st = real(path, *a, **k)
        return os.stat_result((st.st_mode, 0, *tuple(st)[2:])) if stat.S_ISDIR(st.st_mode) else st

    monkeypatch.setattr(data.os, "stat", numberless)
    files, _, _ = data.files_under(tmp_path)
    assert sorted(p.resolve().relative_to(tmp_path.resolve()).as_posix() for p in files) == [
        "a/p.png", "b/p.png", "c/p.png"]  # each once (c's through the first path to it)


def test_a_forked_loader_worker_is_ended_by_sigterm_as_a_spawned_one_is(tmp_path):
    """A forked worker kept the main process's training handler for SIGTERM, which only notes a stop while the
    loader starts: the loader's terminate() at exit was noted and never acted on, and the process waiting for the
    worker hung for good (a test run that had a worker's error never exited). After _ignore_stop_signals a worker
    ignores Ctrl-C, has left the process group, and SIGTERM ends it, as in a spawned worker."""
    from t2i_cli.train import _ignore_stop_signals

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: as a worker forked while the main process held its stop handler
        try:
            signal.signal(signal.SIGTERM, lambda *a: None)
            _ignore_stop_signals(0)
            said = (signal.getsignal(signal.SIGTERM) is signal.SIG_DFL,
                    signal.getsignal(signal.SIGINT) is signal.SIG_IGN, os.getpgid(0) == os.getpid())
            os.write(write, repr(said).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as f:
        got = f.read()
    os.waitpid(pid, 0)
    assert got == "(True, True, True)", got
