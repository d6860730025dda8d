"""Session 40's attack on the day's new behaviour: the inference lock, sheet labels in other scripts, output
names of non-ASCII prompts, non-UTF-8 paths and the new refusals; each test fails without its fix."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import SRC


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs")
def test_inference_lock_path_that_is_a_fifo_does_not_hang(tmp_path):
    """A FIFO at the lock's path (made by anyone: /tmp is everyone's) was opened for reading, which waits for a
    writer: every generate, vary, rerank and eval hung before its first line. It is let be, as an unopenable
    file is (no lock, 0), and a regular file still locks."""
    fifo_dir = tmp_path / "fifo"
    fifo_dir.mkdir()
    os.mkfifo(fifo_dir / "t2i-inference.lock")
    (tmp_path / "dir" / "t2i-inference.lock").mkdir(parents=True)
    (tmp_path / "plain").mkdir()
    code = (f"import sys; sys.path.insert(0, {SRC!r}); from pathlib import Path; "
            "from t2i_cli import files; "
            "print([files.other_t2i_inferring(Path(a)) for a in sys.argv[1:]], len(files._INFERENCE_HOLD))")
    out = subprocess.run([sys.executable, "-c", code, str(fifo_dir), str(tmp_path / "dir"), str(tmp_path / "plain")],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["[0,", "0,", "0]", "1"]  # only the plain folder's lock is held
    assert (fifo_dir / "t2i-inference.lock").is_fifo() and (tmp_path / "plain" / "t2i-inference.lock").is_file()


def test_sheet_label_font_is_chosen_for_the_letters_drawn_not_a_64kb_caption(monkeypatch):
    """A 64 KB caption of Chinese (some 13,000 different characters) had every one of them looked up in every
    installed font to choose the label's (a second a label on one font, more with more fonts: a data preview of
    such captions took many seconds); two lines show a few dozen, and only these are looked up. The label is
    still drawn, inside its tile's label band."""
    import random

    from PIL import Image

    from t2i_cli import images

    if images.label_font("жар") is None:
        pytest.skip("no font of LABEL_FONTS is installed")
    rng = random.Random(0)
    caption = "".join(chr(0x4E00 + rng.randrange(20000)) for _ in range(21000))
    looked_up, real = [], images._has_glyph
    monkeypatch.setattr(images, "_has_glyph", lambda name, ch: looked_up.append(ch) or real(name, ch))
    tile = Image.new("RGB", (64, 64), (255, 255, 255))
    sheet = images.contact_sheet([tile, tile], [caption, "x"], columns=2)
    assert 0 < len(set(looked_up)) <= 2 * 65
    band = sheet.crop((4, 4 + 64, 4 + 64, 4 + 64 + 24))
    assert band.getextrema() != ((255, 255), (255, 255), (255, 255))  # something is drawn
    outside = sheet.crop((0, 0, 4, sheet.height))  # the gutter left of the first tile: nothing
    assert outside.getextrema() == ((255, 255), (255, 255), (255, 255))


@pytest.mark.skipif(sys.platform == "win32" or not os.path.exists("/bin/bash"), reason="a POSIX shell's quoting")
def test_a_suggested_command_names_a_non_utf8_path_so_that_pasted_it_is_that_path(tmp_path):
    """A path holding a byte that is not UTF-8 (a Latin-1 folder name, caf\\xe9) was suggested quoted as
    '/.../caf\\udce9/...' (the printed escape of Python's surrogate), which, pasted into a shell, names another
    path; a newline likewise. Such a word is written in $'...' quoting, which bash reads back as the very bytes;
    a plain path is quoted as before."""
    import re

    from t2i_cli.files import shell_word

    base = os.fsdecode(os.fsencode(str(tmp_path)) + b"/caf\xe9 it's\\")
    out = subprocess.run([sys.executable, "-m", "t2i_cli", "data", "preview", "world", "--out", f"{base}/new\ndir"],
                         capture_output=True, env={**os.environ, "PYTHONPATH": SRC}, timeout=120)
    assert out.returncode == 2, out.stderr
    said = out.stderr.decode("utf-8")
    word = re.search(r"no folder yet: --out (.*) makes it\)", said).group(1)
    pasted = subprocess.run(["bash", "-c", f"printf %s {word}"], capture_output=True, timeout=30).stdout
    assert pasted == os.fsencode(f"{base}/new\ndir/preview.png")
    for plain in ("/tmp/My Pictures/run", "/tmp/красная/run", "/tmp/it's"):
        assert shell_word(plain) == __import__("shlex").quote(plain)
        assert subprocess.run(["bash", "-c", f"printf %s {shell_word(plain)}"], capture_output=True,
                              timeout=30).stdout == plain.encode()


@pytest.mark.skipif(sys.platform == "win32", reason="no flock")
@pytest.mark.parametrize("env", [{"T2I_OMP": "keep"}, {"GOMP_SPINCOUNT": "1000"}, {"OMP_WAIT_POLICY": "passive"}])
def test_an_inference_command_holds_the_lock_whatever_its_openmp_settings(tmp_path, env):
    """With T2I_OMP=keep, or an OMP_WAIT_POLICY or GOMP_SPINCOUNT of the user's own, bound_spinning returns before
    it asks whether another t2i runs, and the inference lock was never taken: a generate started beside such a
    command did not know of it (README: each inference command holds it from its start)."""
    import fcntl

    code = (f"import sys; sys.path.insert(0, {SRC!r}); from t2i_cli import cli; "
            "cli.start_inference(None, 'generate'); print('started', flush=True); sys.stdin.read()")
    clean = {k: v for k, v in os.environ.items() if k not in ("T2I_OMP", "GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            env={**clean, **env, "TMPDIR": str(tmp_path)})
    try:
        assert proc.stdout.readline().strip() == "started"
        lock = tmp_path / "t2i-inference.lock"
        assert lock.is_file()
        with open(lock) as f:
            with pytest.raises(BlockingIOError):
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held (shared) by the command
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)


@pytest.mark.parametrize("nothing", ["\ufe0f", "\u034f", "\u3164", "\ufe0e \ufe0f", "\U000e0100"])
def test_a_prompt_of_characters_that_draw_nothing_of_other_categories_is_empty(tmp_path, nothing):
    """A zero-width space alone was refused as an empty prompt, but the emoji variation selector (U+FE0F), the
    combining grapheme joiner and Hangul's filler, which draw nothing as well (Unicode's default ignorables, of
    categories Mn and Lo), were drawn as an unknown word under a hashed name (image-2dff52cb-000.png); a caption
    line of them was trained on. An emoji with its selector still reads."""
    from conftest import run
    from t2i_cli.data import _caption_lines
    from t2i_cli.prompt_file import blank

    r = run("generate", nothing, "--out", tmp_path / "out")
    assert r.exit_code == 2 and "the prompt is empty" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
    assert _caption_lines(f"a red bird\n{nothing}\n") == ["a red bird"]
    assert not blank("\U0001f426\ufe0f") and not blank("\u0301")  # a bird emoji; a lone accent draws an accent


def test_rerank_ranks_prompts_the_model_reads_alike_as_one(tiny_weights, tmp_path):
    """Two generates of "café bird", one typed composed and one decomposed (a Mac's, a pasted name's), and one in
    capitals: the same prompt to the model and its rerankers (and one to a --prompts file, which draws it once),
    were ranked as three prompts, three blocks headed alike ('prompt: café bird' twice), each file first of its own.
    They are one prompt now, named as first met, the scores unchanged."""
    import json

    from conftest import run

    out = tmp_path / "out"
    for seed, prompt in enumerate(("caf\u00e9 bird", "cafe\u0301 bird", "CAF\u00c9 BIRD")):
        r = run("generate", prompt, "--weights", tiny_weights, "--candidates", "1", "--seed", seed, "--out", out, "-q")
        assert r.exit_code == 0, r.stderr
    r = run("rerank", out, "--weights", tiny_weights)
    assert r.exit_code == 0, r.stderr
    assert r.stdout.count("prompt:") == 1, r.stdout
    rows = json.loads((out / "ranking.json").read_text())
    assert sorted(row["rank"] for row in rows) == [1, 2, 3]
    assert {row["prompt"] for row in rows} == {"caf\u00e9 bird"}
    assert [row["score"] for row in rows] == sorted((row["score"] for row in rows), reverse=True)
