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
