"""The inference lock is taken once a command has its prompts: `generate --prompts -` reading a pipe whose writer
is slow (or idle) held it while drawing nothing, and another t2i started meanwhile took itself for one beside a
busy t2i (its threads slept at once: 1.8x as long alone)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from t2i_cli.files import _INFERENCE_HOLD, other_t2i_inferring

pytest.importorskip("fcntl")


def reading_stdin(pid: int) -> bool:
    """Whether process pid waits in read(0, ...) (Linux x86-64: syscall 0 on descriptor 0)."""
    fields = Path(f"/proc/{pid}/syscall").read_text().split()
    return fields[:2] == ["0", "0x0"]


def test_generate_reading_a_silent_pipe_does_not_hold_the_inference_lock(tmp_path):
    if sys.platform != "linux" or os.uname().machine != "x86_64":
        pytest.skip("reads /proc/PID/syscall's x86-64 numbers")
    env = dict(os.environ, TMPDIR=str(tmp_path))
    for key in ("T2I_OMP", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT"):
        env.pop(key, None)
    p = subprocess.Popen([sys.executable, "-m", "t2i_cli", "generate", "--prompts", "-", "--out",
                          str(tmp_path / "out"), "--quiet"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, env=env)
    try:
        try:
            Path(f"/proc/{p.pid}/syscall").read_text()
        except OSError:
            pytest.skip("/proc/PID/syscall cannot be read here")
        deadline = time.monotonic() + 120
        while not reading_stdin(p.pid):  # (its imports first; then it waits for the prompts)
            assert p.poll() is None, p.stderr.read().decode()
            assert time.monotonic() < deadline, "generate --prompts - never read its standard input"
            time.sleep(0.05)
        assert other_t2i_inferring(tmp_path) == 0  # waiting for prompts, it holds no lock
    finally:
        while _INFERENCE_HOLD:
            os.close(_INFERENCE_HOLD.pop())
        p.kill()
        p.wait(timeout=30)
    assert not (tmp_path / "out").exists()


def test_generate_reads_its_prompts_before_it_takes_the_lock(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import t2i_cli.cli as cli

    order = []
    real = cli.read_prompts
    monkeypatch.setattr(cli, "read_prompts", lambda *a, **k: (order.append("read"), real(*a, **k))[1])

    def start(threads, command, started=False):
        order.append("start")
        raise cli.UsageError("stopped here by the test")

    monkeypatch.setattr(cli, "start_inference", start)
    (tmp_path / "p.txt").write_text("a red bird\n")
    r = CliRunner().invoke(cli.app, ["generate", "--prompts", str(tmp_path / "p.txt"), "--out", str(tmp_path)])
    assert r.exit_code != 0 and order == ["read", "start"]
    assert not list(tmp_path.glob("*.png"))
