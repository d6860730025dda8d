"""Stops in a command's first seconds and stops by SIGHUP: a Ctrl-C or SIGTERM that lands while torch is being
imported waits for the import (it was dropped by one of Python's import callbacks, and the command wrote its
image and exited 0, or it left half-imported modules: an internal error); SIGHUP (a closed terminal) stops an
inference command as SIGTERM does (it ended it silently, exit 129, leaving a new output folder empty)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SRC

# Run t2i's main in a fresh process, noting how SIGINT and SIGTERM are handled when torch is first looked up.
WATCH = r"""
import importlib.abc, signal, sys
seen = []
class Watch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" and not seen:
            seen.append([signal.getsignal(s) is signal.default_int_handler for s in (signal.SIGINT, signal.SIGTERM)])
            print("raising on torch's import:", seen[0], file=sys.stderr, flush=True)
        return None
sys.meta_path.insert(0, Watch())
sys.argv = ["t2i", *sys.argv[1:]]
from t2i_cli.cli import main
main()  # (it ends the process itself: what is said is said as torch is looked up)
"""


def t2i(script: str, *args, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", script, *map(str, args)], capture_output=True, text=True,
                          timeout=300, env=env, cwd=tmp_path)


def picture(tiny_weights: Path, tmp_path: Path) -> Path:
    r = t2i("from t2i_cli.cli import main; import sys; sys.argv = ['t2i', *sys.argv[1:]]; main()", "generate",
            "a red bird", "--candidates", "1", "--weights", tiny_weights, "--out", tmp_path / "src", "-q",
            tmp_path=tmp_path)
    assert r.returncode == 0, r.stderr
    return next((tmp_path / "src").glob("*.png"))


@pytest.mark.parametrize("command", ["generate", "vary", "rerank", "eval"])
def test_a_stop_during_torchs_import_waits_for_the_import(tiny_weights: Path, tmp_path: Path, command):
    args = {"generate": ["generate", "a red bird", "--candidates", "1", "--out", tmp_path / "o"],
            "vary": ["vary", "SRC", "--n", "1", "--out", tmp_path / "o"],
            "rerank": ["rerank", tmp_path / "src"],
            "eval": ["eval", "--n", "1", "--candidates", "1"]}[command]
    if command in ("vary", "rerank"):
        src = picture(tiny_weights, tmp_path)
        args = [src if a == "SRC" else a for a in args]
    r = t2i(WATCH, *args, "--weights", tiny_weights, "-q", tmp_path=tmp_path)
    assert r.returncode == 0, r.stderr
    # torch is imported with both held (no KeyboardInterrupt can be raised inside it), once
    assert r.stderr.strip().splitlines() == ["raising on torch's import: [False, False]"], r.stderr


@pytest.mark.skipif(not hasattr(__import__("signal"), "SIGHUP"), reason="no SIGHUP on this system")
def test_sighup_stops_a_generate_as_sigterm_does(tiny_weights: Path, tmp_path: Path):
    # SIGHUP sent to itself as its first batch starts (the terminal closed while it decodes)
    script = r"""
import os, signal, sys
from t2i_cli import pipeline
real = pipeline.TextToImage._batch
def hung_up(self, *args, **kwargs):
    os.kill(os.getpid(), signal.SIGHUP)
    return real(self, *args, **kwargs)
pipeline.TextToImage._batch = hung_up
sys.argv = ["t2i", *sys.argv[1:]]
from t2i_cli.cli import main
main()
"""
    out = tmp_path / "new" / "folder"
    r = t2i(script, "generate", "a red bird", "--n", "2", "--weights", tiny_weights, "--out", out, tmp_path=tmp_path)
    assert r.returncode == 130, (r.returncode, r.stderr)
    assert r.stderr.strip().splitlines()[-1].startswith("interrupted"), r.stderr
    assert "Traceback" not in r.stderr
    assert not out.exists()
