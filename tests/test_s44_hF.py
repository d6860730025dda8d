"""Session 44, hF: every option honoured or refused (an audit of the CLI's options; tiny models built here)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from conftest import one_line_failure, run


def plain_picture(path: Path) -> Path:
    """A picture with no prompt in it (not drawn by t2i): vary draws it from the empty prompt."""
    Image.new("RGB", (16, 16), (200, 40, 40)).save(path)
    return path


@pytest.mark.parametrize("options, named", [
    (["--guidance", "7"], "--guidance 7 changes nothing"),
    (["--guidance-start", "2"], "--guidance-start 2 changes nothing"),
    (["--guidance-stop", "0.5"], "--guidance-stop 0.5 changes nothing"),
    (["--prompt", "", "--guidance", "5", "--guidance-start", "2"],
     "--guidance 5 and --guidance-start 2 change nothing"),
])
def test_vary_refuses_guidance_from_the_empty_prompt(tmp_path, tiny_weights, options, named):
    """Guidance pushes away from the empty prompt: from the empty prompt it pushed nowhere, and `vary photo.jpg
    --guidance 7` drew the pixels of the default --guidance 3, unsaid. Now refused, nothing written."""
    pic = plain_picture(tmp_path / "photo.png")
    out = tmp_path / "o"
    args = ["vary", pic, "--n", "1", "--out", out, "--weights", tiny_weights, *options]
    line = one_line_failure(run(*args), 2)
    assert named in line and "empty prompt" in line and "--prompt TEXT" in line
    assert not out.exists()


def test_vary_takes_guidance_where_it_pushes(tmp_path, tiny_weights):
    """Not refused where guidance has something to push: a prompt, a --negative from the empty prompt, or
    --guidance 1 (off: fewer rows per code); the default draws from the empty prompt as before."""
    pic = plain_picture(tmp_path / "photo.png")
    for k, options in enumerate((["--prompt", "a red bird", "--guidance", "7"], ["--guidance", "7", "--negative",
                                 "a blue fish"], ["--guidance", "1"], [])):
        r = run("vary", pic, "--n", "1", "--out", tmp_path / f"o{k}", "--weights", tiny_weights, "-q", *options)
        assert r.exit_code == 0, (options, r.stderr)
        assert len(list((tmp_path / f"o{k}").glob("*.png"))) == 1


@pytest.mark.parametrize("command", [["generate", "a red bird", "--n", "1"], ["vary", "SRC", "--n", "1"],
                                     ["rerank", "OUT"], ["eval", "--n", "1"],
                                     ["train", "--preset", "tiny", "--stage", "tokenizer"]])
def test_an_unknown_t2i_omp_is_refused(tmp_path, tiny_weights, monkeypatch, command):
    """T2I_OMP=keep leaves OpenMP's spinning alone; any other value (a typo, `T2I_OMP=1`) was taken as unset,
    unsaid. Now one line, exit 2, before anything is read or written."""
    monkeypatch.setenv("T2I_OMP", "kep")
    pic = plain_picture(tmp_path / "photo.png")
    out = tmp_path / "out"
    args = [pic if a == "SRC" else out if a == "OUT" else a for a in command]
    if command[0] != "rerank":
        args += ["--out", out] if command[0] != "eval" else ["--json", out / "r.json"]
    if command[0] in ("generate", "vary", "eval", "rerank"):
        args += ["--weights", tiny_weights]
    line = one_line_failure(run(*args), 2)
    assert "T2I_OMP must be keep" in line and "'kep'" in line
    assert not out.exists()


def test_an_unknown_t2i_omp_is_refused_before_a_prompt_pipe_is_read(tmp_path, tiny_weights):
    """generate --prompts - says it before it reads standard input (as its other refusals that need no prompt)."""
    import os
    import subprocess
    import sys

    from conftest import SRC

    env = {**os.environ, "PYTHONPATH": SRC, "T2I_OMP": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "t2i_cli", "generate", "--prompts", "-", "--weights",
                             str(tiny_weights), "--out", str(tmp_path / "o")], stdin=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    try:
        assert proc.wait(timeout=60) == 2  # the pipe still open: a refusal that waited for it would time out
        err = proc.stderr.read().decode()
    finally:
        proc.stdin.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "T2I_OMP must be keep" in err and "Traceback" not in err


def test_an_empty_t2i_omp_is_unset(tmp_path, tiny_weights, monkeypatch):
    monkeypatch.setenv("T2I_OMP", "")
    r = run("generate", "a red bird", "--n", "1", "--weights", tiny_weights, "--out", tmp_path / "o", "-q")
    assert r.exit_code == 0, r.stderr


def test_vary_refuses_a_guidance_stop_before_every_redrawn_cell(tmp_path, tiny_weights):
    """vary redraws its own random cells per image (from the seed): where every variation's first redrawn cell
    comes after --guidance-stop, guidance changed no code, and `--guidance 7` drew the pixels of --guidance 3,
    unsaid (generate --image was refused so already). Now refused, naming the first redrawn cell; a stop past it
    draws."""
    import re

    pic = plain_picture(tmp_path / "photo.png")
    common = ["vary", pic, "--prompt", "a red bird", "--n", "1", "--strength", "0.0625", "--weights", tiny_weights]
    # one cell of the tiny model's 16 redrawn; a stop at code 1 comes before it unless the seed redraws cell 0
    line = one_line_failure(run(*common, "--guidance-stop", "0.0625", "--out", tmp_path / "o"), 2)
    first = int(re.search(r"redraw no code before code (\d+)", line).group(1))
    assert 1 <= first < 16 and "--guidance-stop 0.0625 stops guidance at code 1 of 16" in line
    assert not (tmp_path / "o").exists()
    # the same seed's cell, just past the stop: guided, so drawn (and --guidance changes it)
    stop = f"{(first + 1) / 16:g}"
    r = run(*common, "--guidance-stop", stop, "--out", tmp_path / "ok", "-q")
    assert r.exit_code == 0, r.stderr
