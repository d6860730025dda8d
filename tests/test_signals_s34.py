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


def t2i(script: str, *args, tmp_path: Path, omp: str | None = "1") -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"} | {"PYTHONPATH": SRC}
    if omp is not None:  # (without it, --threads' default imports torch as the command starts)
        env["OMP_NUM_THREADS"] = omp
    return subprocess.run([sys.executable, "-c", script, *map(str, args)], capture_output=True, text=True,
                          timeout=300, env=env, cwd=tmp_path)


def picture(tiny_weights: Path, tmp_path: Path) -> Path:
    r = t2i("from t2i_cli.cli import main; import sys; sys.argv = ['t2i', *sys.argv[1:]]; main()", "generate",
            "a red bird", "--candidates", "1", "--weights", tiny_weights, "--out", tmp_path / "src", "-q",
            tmp_path=tmp_path)
    assert r.returncode == 0, r.stderr
    return next((tmp_path / "src").glob("*.png"))


@pytest.mark.parametrize("command, omp, threads", [
    ("generate", "1", None), ("generate", None, None), ("generate", "1", "1"), ("from", None, None),
    ("vary", "1", None), ("rerank", None, "1"), ("eval", "1", None), ("eval", None, None)])
def test_a_stop_during_torchs_import_waits_for_the_import(tiny_weights: Path, tmp_path: Path, command, omp, threads):
    """With OMP_NUM_THREADS unset (the default) or --threads given, the thread count imported torch first, with
    nothing held; generate --from imported it before the hold, too."""
    args = {"generate": ["generate", "a red bird", "--candidates", "1", "--out", tmp_path / "o"],
            "from": ["generate", "--from", "SRC", "--out", tmp_path / "o"],
            "vary": ["vary", "SRC", "--n", "1", "--out", tmp_path / "o"],
            "rerank": ["rerank", tmp_path / "src"],
            "eval": ["eval", "--n", "1", "--candidates", "1"]}[command]
    if command in ("vary", "rerank", "from"):
        src = picture(tiny_weights, tmp_path)
        args = [src if a == "SRC" else a for a in args]
    extra = [] if threads is None else ["--threads", threads]
    r = t2i(WATCH, *args, "--weights", tiny_weights, "-q", *extra, tmp_path=tmp_path, omp=omp)
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


def test_an_interrupted_generate_takes_away_every_folder_it_made(tiny_weights: Path, tmp_path: Path, monkeypatch):
    """`--out new/a/b` interrupted before any image: b was taken away, new and new/a stayed behind."""
    from conftest import run
    from t2i_cli import pipeline

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline.TextToImage, "_batch", stopped)
    (tmp_path / "kept").mkdir()
    for out, gone, stays in ((tmp_path / "new" / "a" / "b", tmp_path / "new", None),
                             (tmp_path / "kept" / "a" / "b", tmp_path / "kept" / "a", tmp_path / "kept")):
        r = run("generate", "a red bird", "--candidates", "1", "--weights", tiny_weights, "--out", out, "-q")
        assert r.exit_code == 130, r.stderr
        assert not gone.exists()
        assert stays is None or stays.is_dir()


def test_a_write_whose_temporary_another_t2i_swept_writes_it_again(tmp_path: Path, monkeypatch):
    """A writer paused for over STALE_AFTER between its temporary and its name lost the temporary to another
    generate's sweep, and then every image of its run ("cannot write to DIR: No such file or directory")."""
    import time

    from t2i_cli import files

    real, writes, swept = files._link_new, [], []

    def paused_then_swept(tmp, *args):
        if not swept:  # as another t2i in the folder sees it after the pause: unchanged for over STALE_AFTER
            old = time.time() - 2 * files.STALE_AFTER
            os.utime(tmp, (old, old))
            swept.extend(files.remove_temporaries(tmp_path, files.NEW_FILE_NAME.fullmatch, files.STALE_AFTER))
        return real(tmp, *args)

    monkeypatch.setattr(files, "_link_new", paused_then_swept)
    path = files.write_new(tmp_path, "bird", ".png", lambda tmp: (writes.append(tmp), tmp.write_bytes(b"png")))
    assert len(swept) == 1 and len(writes) == 2  # swept once, written again
    assert path == tmp_path / "bird-000.png" and path.read_bytes() == b"png"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bird-000.png"]  # no temporary left


def test_an_out_that_is_a_link_to_nothing_says_so(tiny_weights: Path, tmp_path: Path):
    """It said "cannot create folder dang: File exists" (exit 1)."""
    from conftest import one_line_failure, run

    (tmp_path / "dang").symlink_to(tmp_path / "gone")
    line = one_line_failure(run("generate", "a red bird", "--candidates", "1", "--weights", tiny_weights, "--out",
                                tmp_path / "dang"), 2)
    assert line == (f"error: --out {tmp_path / 'dang'} is a link to {tmp_path / 'gone'}, which does not exist (or "
                    f"links back to itself); make that folder, or choose another with --out"), line
    assert not (tmp_path / "gone").exists() and (tmp_path / "dang").is_symlink()
    # one above the folder (it said "cannot create folder: File exists" too), a relative one, and eval's --images
    (tmp_path / "rel").symlink_to("missing")  # relative to the link's folder
    line = one_line_failure(run("generate", "a red bird", "--candidates", "1", "--weights", tiny_weights, "--out",
                                tmp_path / "rel" / "sub"), 2)
    assert line.startswith(f"error: --out {tmp_path / 'rel' / 'sub'} is inside {tmp_path / 'rel'}, a link to "
                           f"{tmp_path / 'missing'}, which does not exist"), line
    line = one_line_failure(run("eval", "--n", "1", "--weights", tiny_weights, "--images", tmp_path / "dang" / "a"),
                            2)
    assert line.startswith(f"error: --images {tmp_path / 'dang' / 'a'} is inside {tmp_path / 'dang'}, a link"), line
    assert not (tmp_path / "missing").exists() and not (tmp_path / "gone").exists()


def test_a_ctrl_c_while_the_command_line_loads_is_one_line(tmp_path: Path):
    """Ctrl-C in the first tenths of a second (while typer and rich load) printed a KeyboardInterrupt traceback."""
    script = r"""
import importlib.abc, sys
class Stop(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "rich":
            raise KeyboardInterrupt
        return None
sys.meta_path.insert(0, Stop())
sys.argv = ["t2i", "--version"]
from t2i_cli.__main__ import entry
entry()
"""
    r = t2i(script, tmp_path=tmp_path)
    assert r.returncode == 130 and r.stderr == "interrupted: nothing was started\n", (r.returncode, r.stderr)
    assert r.stdout == ""


def test_a_held_stop_is_not_hidden_by_an_ignored_one_before_it(tmp_path: Path):
    """Under nohup SIGHUP is ignored: held first, it was the one replayed (to nothing), and a SIGTERM held after
    it was dropped."""
    script = r"""
import os, signal, time
from t2i_cli.files import signals_held
signal.signal(signal.SIGHUP, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.default_int_handler)
try:
    with signals_held():
        os.kill(os.getpid(), signal.SIGHUP)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.1)
    print("dropped")
except KeyboardInterrupt:
    print("stopped", signal.getsignal(signal.SIGHUP) is signal.SIG_IGN)
"""
    r = t2i(script, tmp_path=tmp_path)
    assert r.stdout.strip() == "stopped True", (r.stdout, r.stderr)
