"""Session 45, hB: crash-safety leftovers (a long name's temporary, a caption's temporary after its link, Ctrl-C
while the tokenizer trains)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from PIL import Image

from conftest import run


def _aged(path: Path, seconds: float = 120.0) -> Path:
    """path made `seconds` old (a killed run's temporary, found by a run started later)."""
    old = time.time() - seconds
    os.utime(path, (old, old))
    return path


def _picture(path: Path) -> Path:
    Image.new("RGB", (16, 16), (200, 30, 30)).save(path)
    return path


def test_a_killed_writes_temporary_of_a_long_picture_name_is_removed_by_the_next_run(tmp_path):
    """The temporary of a new picture whose name is over 64 bytes (a prompt of non-ASCII words: 48 characters of
    3 bytes) recorded only the name's first 64 bytes, which no cleanup knew for a -NNN.png of its own: a killed
    write left it there for good. Its record now keeps the name's end too."""
    from t2i_cli.files import NEW_FILE_NAME, STALE_AFTER, _finished_temporary, remove_temporaries, temporary_of

    stem = "一只红色的鸟站在蓝色的海边上面看着远处的太阳慢慢升起来了-1a2b3c4d"
    tmp = _aged(_finished_temporary(tmp_path / f"{stem}-NNN.png", lambda t: t.write_bytes(b"png")))
    assert len(tmp.name.encode()) <= 1 + 64 + 1 + 8 + 4  # no longer than before: it fits where the name fits
    assert NEW_FILE_NAME.fullmatch(temporary_of(tmp.name))
    assert remove_temporaries(tmp_path, NEW_FILE_NAME.fullmatch, STALE_AFTER) == [tmp]
    assert list(tmp_path.iterdir()) == []


def test_generate_removes_a_long_named_temporary_a_kill_left_but_not_a_users_file_so_named(tmp_path):
    """generate's folder cleanup (cli._pictures_folder) takes the killed write's temporary of a long name, once a
    minute old, and leaves a user's own hidden .tmp files of the same shape (another end, no mkstemp part)."""
    from t2i_cli.cli import _pictures_folder
    from t2i_cli.files import _finished_temporary

    stem = "é" * 40 + "-1a2b3c4d"
    killed = _aged(_finished_temporary(tmp_path / f"{stem}-NNN.png", lambda t: t.write_bytes(b"png")))
    record = killed.name[1:-4].rpartition(".")[0]
    mine = [tmp_path / f".{record}.backup.tmp",  # the same record, but not mkstemp's random part
            tmp_path / f".{'é' * 25}…notes.txt.abcdefgh.tmp",  # a cut name's shape, not a -NNN.png
            tmp_path / f".{'é' * 40}-1a2b3c4d-NNN.png.tmp"]  # no random part at all
    for p in mine:
        p.write_bytes(b"mine")
        _aged(p)
    _pictures_folder(tmp_path, "--out")
    assert not killed.exists()
    assert all(p.read_bytes() == b"mine" for p in mine)


def test_a_long_caption_names_temporary_is_removed_by_the_next_data_caption(tmp_path):
    """A caption file's temporary of a picture named over 64 bytes was never known for one of data caption's."""
    from t2i_cli.files import _finished_temporary

    name = "a-photo-of-a-red-bird-sitting-on-a-branch-in-the-garden-near-the-old-oak-tree"
    _picture(tmp_path / f"{name}.png")
    other = _picture(tmp_path / "blue square.png")
    killed = _aged(_finished_temporary(tmp_path / f"{name}.txt", lambda t: t.write_bytes(b"a red bird\n")))
    r = run("data", "caption", tmp_path)
    assert r.exit_code == 0, r.output
    assert not killed.exists()
    assert (tmp_path / f"{name}.txt").is_file() and other.with_suffix(".txt").is_file()


def test_a_captions_temporary_left_after_its_link_is_removed_where_every_caption_is_written(tmp_path):
    """A kill between write_if_absent's link and its unlink left .NAME.txt.XXXX.tmp beside the caption written;
    the next data caption removed it only where that folder still had a caption to write: here it has none
    ("nothing to write"), in a sub-folder too. A newer temporary (another run's write now) stays."""
    sub = tmp_path / "birds"
    sub.mkdir()
    for folder in (tmp_path, sub):
        _picture(folder / "red bird.png")
        (folder / "red bird.txt").write_text("red bird\n")
    left = [tmp_path / ".red bird.txt.k3j_9x0a.tmp", sub / ".red bird.txt.zz81ab2c.tmp"]
    for p in left:
        os.link(p.parent / "red bird.txt", p)  # a hard link to the caption, as the kill left it
        _aged(p)
    newer = sub / ".red bird.txt.newer123.tmp"
    newer.write_text("red bird\n")
    r = run("data", "caption", tmp_path, "--dry-run")  # a dry run changes nothing
    assert r.exit_code == 0, r.output
    assert all(p.exists() for p in left)
    r = run("data", "caption", tmp_path)
    assert r.exit_code == 0, r.output
    assert "nothing to write" in r.output
    assert not any(p.exists() for p in left) and newer.exists()
    assert (tmp_path / "red bird.txt").read_text() == "red bird\n" == (sub / "red bird.txt").read_text()
