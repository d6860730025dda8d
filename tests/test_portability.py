"""What t2i does that differs between Linux, macOS and Windows, checked here by simulating the other system where
the difference can be simulated on Linux."""

from __future__ import annotations

import errno
import fcntl
import gc
import os
from pathlib import Path

import pytest
import torch

from conftest import run
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
