"""A run on a folder or manifest records what it read (data_record.json); a resume on other pictures or captions
says so in one warning line, and goes on. `--resume` read whatever the folder held now without a word: a picture
removed and another added changed the training set, the validation split and every batch after the checkpoint."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from conftest import run, torchrun_t2i
from t2i_cli.data import DATA_RECORD, MAX_DATA_RECORD, data_change, open_source

COMMON = ("--workers", "0", "--device", "cpu", "-q")
CHANGED = "warning: the data changed since this run started: "
AFTER = "; a resume reads what is there now, so the result will differ from an uninterrupted run"


def picture_folder(folder: Path, n: int = 8) -> Path:
    """n distinct 16 px pictures with a caption each."""
    folder.mkdir(parents=True)
    for i in range(n):
        Image.new("RGB", (16, 16), (30 * i, 100, 200 - 20 * i)).save(folder / f"p{i:02d}.png")
        (folder / f"p{i:02d}.txt").write_text(f"picture {i}\n")
    return folder


def start(data: Path, out: Path, *more: str) -> None:
    r = run("train", "--stage", "dvae", "--preset", "tiny", "--steps", "1", "--data", data, "--out", out,
            *COMMON, *more)
    assert r.exit_code == 0, r.stderr


def resume(out: Path, steps: int) -> list[str]:
    """Resume a run to `steps`; its warning lines about the data (the run must go on)."""
    r = run("train", "--resume", out, "--steps", steps, "-q")
    assert r.exit_code == 0, r.stderr
    assert "Traceback" not in r.stderr
    return [line for line in r.stderr.splitlines() if "since this run started" in line]


def test_a_resume_on_other_pictures_or_captions_warns_once_naming_the_change(tmp_path: Path):
    pics = picture_folder(tmp_path / "pics")
    out = tmp_path / "run"
    start(pics, out, "--flip")  # (--flip: the dVAE reads the captions, for their left and right)
    record = json.loads((out / DATA_RECORD).read_text())
    assert record["pairs"] == 8 and len((out / DATA_RECORD).read_bytes()) < 1024
    assert resume(out, 2) == []  # nothing changed
    (pics / "p02.txt").write_text("picture two, edited\n")
    assert resume(out, 3) == [f"{CHANGED}8 usable pictures then and now: captions of 1 picture edited, 2 new words (in "
                              f"no caption then): 'edited', 'two'{AFTER}"]  # (what changed, since session 44)
    (pics / "p02.txt").write_text("picture 2\n")
    kept = (pics / "p01.png").read_bytes()
    Image.new("RGB", (16, 16), (1, 2, 3)).save(pics / "p01.png")
    assert resume(out, 4) == [f"{CHANGED}8 usable pictures then and now: 1 picture added, 1 removed (an edited picture "
                              f"is both){AFTER}"]
    (pics / "p01.png").write_bytes(kept)
    assert resume(out, 5) == []  # put back: the record is the start's, not the last resume's
    for name in ("p07.png", "p07.txt"):  # renamed, read in the same place: the same training
        (pics / name).rename(pics / name.replace("p07", "p07b"))
    assert resume(out, 6) == []
    (pics / "p03.png").unlink()
    assert resume(out, 7) == [f"{CHANGED}8 usable pictures then, 7 now: 1 picture removed{AFTER}"]
    Image.new("RGB", (16, 16), (250, 0, 250)).save(pics / "new.png")
    (pics / "new.txt").write_text("a new picture\n")
    assert resume(out, 8) == [f"{CHANGED}8 usable pictures then and now: 1 picture added, 1 removed (an edited picture "
                              f"is both), 2 new words (in no caption then): 'new', 'a'{AFTER}"]
    assert json.loads((out / DATA_RECORD).read_text()) == record


def test_a_manifest_run_warns_when_a_line_changes_and_the_world_records_nothing(tmp_path: Path):
    picture_folder(tmp_path / "pics")
    manifest = tmp_path / "m.jsonl"
    lines = [json.dumps({"image": f"pics/p{i:02d}.png", "caption": f"picture {i}"}) for i in range(8)]
    manifest.write_text("\n".join(lines) + "\n")
    start(manifest, tmp_path / "run")
    assert resume(tmp_path / "run", 2) == []
    manifest.write_text("\n".join(lines[:5]) + "\n")
    assert resume(tmp_path / "run", 3) == [f"{CHANGED}8 usable pictures then, 5 now: 3 pictures removed{AFTER}"]
    start("world:train", tmp_path / "world")
    assert not (tmp_path / "world" / DATA_RECORD).exists()
    assert resume(tmp_path / "world", 2) == []


def test_a_run_without_a_record_resumes_silently_and_gets_none(tmp_path: Path):
    """A run started before t2i recorded its data: nothing to compare, and nothing is recorded now (the pictures
    there now are not what it started on)."""
    pics = picture_folder(tmp_path / "pics")
    start(pics, tmp_path / "run")
    (tmp_path / "run" / DATA_RECORD).unlink()
    (pics / "p03.png").unlink()
    assert resume(tmp_path / "run", 2) == []
    assert not (tmp_path / "run" / DATA_RECORD).exists()


@pytest.mark.parametrize("content, says", [
    (b"{not json", "is not JSON"),
    (b"\xff\xfe{}", "is not JSON"),
    (b"[" * 100_000 + b"]" * 100_000, "holds more than the 64 KB t2i writes there"),
    (b"[" * 30_000 + b"]" * 30_000, "is not JSON"),  # nested past the parser's depth
    (json.dumps({"format": 1, "pairs": "8", "names": "0" * 64, "pictures": "0" * 64,
                 "captions": "0" * 64}).encode(), "is not a record of the data as t2i writes it"),
    (json.dumps({"format": True, "pairs": 8, "names": "0" * 64, "pictures": "0" * 64,
                 "captions": "0" * 64}).encode(), "is not a record of the data as t2i writes it"),
    (b"[1, 2]", "is not a record of the data as t2i writes it"),
    (b" " * (MAX_DATA_RECORD + 1), "holds more than the 64 KB t2i writes there"),
])
def test_a_damaged_record_is_one_line_and_the_resume_goes_on(tmp_path: Path, content: bytes, says: str):
    pics = picture_folder(tmp_path / "pics", 3)
    now = open_source(str(pics), 16, part="train").record
    path = tmp_path / DATA_RECORD
    path.write_bytes(content)
    assert data_change(path, now) == (f"cannot tell whether the data changed since this run started: {path} {says}; "
                                      f"the run goes on with the pictures there now")


def test_a_damaged_record_warns_in_a_resume_that_trains_and_a_folder_or_fifo_there_is_not_read(tmp_path: Path):
    import os

    pics = picture_folder(tmp_path / "pics", 3)
    now = open_source(str(pics), 16, part="train").record
    assert data_change(tmp_path / "none.json", now) is None  # no record: silent
    (tmp_path / "dir").mkdir()
    assert "dir is not a file; the run goes on" in data_change(tmp_path / "dir", now)
    os.mkfifo(tmp_path / "fifo")  # never opened (read, it would wait forever)
    assert "fifo is not a file; the run goes on" in data_change(tmp_path / "fifo", now)
    assert data_change(tmp_path / "dir", None) is None  # the world: nothing compared
    start(pics, tmp_path / "run")
    (tmp_path / "run" / DATA_RECORD).write_bytes(b"\x00" * 100)
    assert resume(tmp_path / "run", 2) == [
        f"warning: cannot tell whether the data changed since this run started: {tmp_path / 'run' / DATA_RECORD} is "
        f"not JSON; the run goes on with the pictures there now"]


def test_a_start_killed_after_its_record_leaves_a_folder_the_same_command_starts_in(tmp_path: Path):
    """The record is written just before the run's config: a kill -9 between them left a folder a retry refused
    as one that "holds other files"."""
    from t2i_cli.errors import UsageError
    from t2i_cli.stages import check_new_folder

    pics = picture_folder(tmp_path / "pics", 3)
    out = tmp_path / "run"
    out.mkdir()
    (out / DATA_RECORD).write_text(json.dumps(open_source(str(pics), 16).record))
    (out / f".{DATA_RECORD}.abc123de.tmp").write_bytes(b"{")
    check_new_folder(out)
    start(pics, out)
    assert json.loads((out / DATA_RECORD).read_text())["pairs"] == 3
    other = tmp_path / "other"
    other.mkdir()
    (other / DATA_RECORD).write_text('{"mine": 1}')  # a user's file of that name is not taken
    with pytest.raises(UsageError, match="holds other files"):
        check_new_folder(other)


def test_a_whole_run_warns_when_a_stage_starts_or_resumes_on_other_data(tmp_path: Path):
    """A repeated --stage all compares with what its first stage read: a later stage started on other pictures
    is not the run that began."""
    pics = picture_folder(tmp_path / "pics")
    out = tmp_path / "all"
    whole = ("train", "--stage", "all", "--preset", "tiny", "--steps", "1", "--data", pics, "--out", out, *COMMON)
    r = run(*whole)
    assert r.exit_code == 0 and "since this run started" not in r.stderr, r.stderr
    assert all((out / s / DATA_RECORD).is_file() for s in ("tokenizer", "dvae", "transformer", "clip"))
    shutil.rmtree(out / "clip")  # the clip stage starts again: the same pictures, no word
    r = run(*whole)
    assert r.exit_code == 0 and "since this run started" not in r.stderr, r.stderr
    shutil.rmtree(out / "clip")
    (pics / "p05.txt").write_text("picture five\n")
    r = run(*whole)
    said = [line for line in r.stderr.splitlines() if "since this run started" in line]
    assert r.exit_code == 0 and said == [
        f"{CHANGED}8 usable pictures then and now: captions of 1 picture edited, 1 new word (in no caption then): "
        f"'five'{AFTER}"], r.stderr


def test_under_torchrun_rank_0_alone_warns(tmp_path: Path):
    pics = picture_folder(tmp_path / "pics")
    out = tmp_path / "run"
    proc = torchrun_t2i(tmp_path, "", "--stage", "dvae", "--steps", "1", "--batch-size", "4", "--data", str(pics),
                        "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    (pics / "p03.png").unlink()
    proc = torchrun_t2i(tmp_path, "", "--resume", str(out), "--steps", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr.count("the data changed since this run started: 8 usable pictures then, 7 now") == 1, \
        proc.stderr[-3000:]
