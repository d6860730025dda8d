"""A new user's journey on their own pictures (session 42): the defects met on the way, each pinned."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from PIL import Image

from conftest import one_line_failure, run

CHECKPOINT = "checkpoint.safetensors"


def _pictures(folder: Path, n: int = 3) -> Path:
    """n small captioned pictures, each of one colour."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.new("RGB", (20, 20), (40 * i, 200 - 50 * i, 90)).save(folder / f"pic{i}.png")
        (folder / f"pic{i}.txt").write_text(f"a picture number {i}\n")
    return folder


def test_rerank_of_a_read_only_folder_is_refused_before_scoring(tmp_path, tiny_weights, monkeypatch):
    """rerank writes ranking.json into the folder it ranks. On a read-only folder (a mounted camera card, a
    shared disk) it scored every picture, then failed on the write with "choose a writable folder", which no
    option of rerank can do: the work was lost and the line said nothing that helps. Now it refuses at once,
    saying to copy the pictures somewhere writable, before any picture is scored."""
    from t2i_cli import rerank as rr

    pics = _pictures(tmp_path / "card")
    real_access = os.access

    def read_only(path, mode, *a, **k):  # the folder as a read-only mount shows it (root ignores chmod)
        if Path(path) == pics and mode & os.W_OK:
            return False
        return real_access(path, mode, *a, **k)

    scored = []
    real_rank = rr.rank_folder
    monkeypatch.setattr(os, "access", read_only)
    monkeypatch.setattr(rr, "rank_folder", lambda *a, **k: scored.append(1) or real_rank(*a, **k))
    line = one_line_failure(run("rerank", pics, "--weights", tiny_weights), 1)
    assert str(pics) in line and "ranking.json" in line and "copy the pictures" in line, line
    assert not scored  # refused before the model scored anything
    assert sorted(p.name for p in pics.iterdir()) == [f"pic{i}{s}" for i in range(3) for s in (".png", ".txt")]


def _disk_full_after(monkeypatch, saves: int) -> dict:
    """Make every checkpoint write after the first `saves` fail as a full disk does; returns the call count."""
    import t2i_cli.train as train

    real_save, calls = train.save_checkpoint, {"n": 0}

    def save(*a, **k):
        calls["n"] += 1
        if calls["n"] > saves:
            raise OSError(errno.ENOSPC, "No space left on device", str(a[0]))
        return real_save(*a, **k)

    monkeypatch.setattr(train, "save_checkpoint", save)
    return calls


TRAIN = ["train", "--preset", "tiny", "--workers", "0", "-q", "--sample-every", "0", "--ckpt-every", "2"]


def test_a_full_disk_at_a_checkpoint_says_the_run_resumes_from_the_one_kept(tmp_path, monkeypatch):
    """The disk filled as a run wrote its step-4 checkpoint (a tmpfs of 4 MB: the real journey), and the save of
    the error's steps failed too. The line said "cannot write RUN/checkpoint.safetensors: No space left on
    device; free space or choose another folder" alone, as if the run were lost, where README promises a full
    disk's line ends with the resume: the step-2 checkpoint is whole and the run goes on from it."""
    from t2i_cli.weights import load_tensors

    calls = _disk_full_after(monkeypatch, 1)
    out = tmp_path / "run"
    line = one_line_failure(run(*TRAIN, "--stage", "dvae", "--steps", "6", "--out", out), 1)
    monkeypatch.undo()
    assert calls["n"] == 3  # step 2 saved; step 4's failed, and so did the save on the error
    assert f"{out / CHECKPOINT}: No space left on device" in line and line.endswith(
        f"; its checkpoint of step 2 is kept; once that is mended, resume with: t2i train --resume {out}"), line
    assert load_tensors(out / CHECKPOINT)[1]["step"] == "2"
    r = run("train", "--resume", out, "-q", "--workers", "0")
    assert r.exit_code == 0, r.stderr
    assert load_tensors(out / CHECKPOINT)[1]["step"] == "6"


def test_a_whole_runs_full_disk_names_the_stage_and_the_whole_runs_resume(tmp_path, monkeypatch):
    """The same in a whole run: the note names the stage whose checkpoint is kept and the whole run's resume."""
    _disk_full_after(monkeypatch, 1)
    out = tmp_path / "all"
    line = one_line_failure(run(*TRAIN, "--stage", "all", "--steps", "6", "--out", out), 1)
    assert line.endswith(f"; its checkpoint of the dvae stage of step 2 is kept; once that is mended, resume with: "
                         f"t2i train --resume {out}"), line


def test_data_caption_on_a_read_only_folder_says_what_can_be_done(tmp_path, monkeypatch):
    """`t2i data caption` of a read-only folder (a mounted card) said "cannot write to FOLDER: Read-only file
    system; choose a writable folder", which no option of data caption can do: it writes each caption beside its
    picture. The line now says to make the folder writable or to caption a writable copy."""
    import tempfile

    pics = tmp_path / "card"
    pics.mkdir()
    for name in ("red-bird", "blue-fish"):
        Image.new("RGB", (8, 8), (200, 30, 30)).save(pics / f"{name}.png")
    real_mkstemp = tempfile.mkstemp

    def read_only(*a, **k):  # the folder as a read-only mount refuses a new file (root ignores chmod)
        if Path(k.get("dir") or "") == pics:
            raise OSError(errno.EROFS, "Read-only file system", str(pics))
        return real_mkstemp(*a, **k)

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    line = one_line_failure(run("data", "caption", pics, "-q"), 1)
    assert line == (f"error: cannot write {pics / 'blue-fish.txt'}: Read-only file system; data caption writes each "
                    f"caption beside its picture: make {pics} writable, or copy the pictures into a writable folder "
                    f"and caption that"), line
    assert sorted(p.name for p in pics.iterdir()) == ["blue-fish.png", "red-bird.png"]


def test_info_of_a_folder_of_pictures_names_info_not_an_option_never_given(tmp_path):
    """`t2i info my_pictures/` (a user checking their data) said "...; --weights takes a weights folder", an option
    they never gave; it now says what info takes, and where pictures are looked at."""
    pics = _pictures(tmp_path / "my pictures")
    line = one_line_failure(run("info", pics), 1)
    assert line == (f"error: {pics} holds pictures, not a t2i model; give t2i info a weights folder or a training "
                    f"run folder (t2i data preview '{pics}' shows the pictures)"), line
    assert "--weights" not in line


def test_an_output_path_through_a_broken_link_or_a_loop_of_links_is_named_as_such(tmp_path):
    """An --out or --to that is a link to nothing (a moved disk) or a loop of links: `train --out LINK` said "is a
    file", `data preview --out LINK/p.png` "cannot write to LINK: File exists; choose a writable folder", and
    `export --to LINK` to a missing target ended in an internal error (FileNotFoundError). Each now says, exit 2,
    that it is a link to a folder that does not exist, as generate and eval say it; nothing is written."""
    import os

    pics = _pictures(tmp_path / "pics")
    run_dir = tmp_path / "tok"
    assert run("train", "--stage", "tokenizer", "--data", pics, "--preset", "tiny", "--out", run_dir).exit_code == 0
    gone, loop = tmp_path / "gone", tmp_path / "loop"
    os.symlink(tmp_path / "nowhere", gone)
    os.symlink(loop, loop)
    for link, target in ((gone, tmp_path / "nowhere"), (loop, loop)):
        said = f"is a link to {target}, which does not exist (or links back to itself)"
        line = one_line_failure(run("train", "--stage", "tokenizer", "--data", pics, "--preset", "tiny",
                                    "--out", link), 2)
        assert f"--out {link} {said}" in line, line
        line = one_line_failure(run("export", run_dir, "--to", link), 2)
        assert f"--to {link} {said}" in line, line
        line = one_line_failure(run("data", "preview", pics, "--out", link / "p.png"), 2)
        assert f"--out {link / 'p.png'} is inside {link}, a link to {target}, which does not exist" in line, line
        line = one_line_failure(run("data", "preview", pics, "--out", link), 2)
        assert f"--out {link} {said}" in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gone", "loop", "pics", "tok"]
    assert not (tmp_path / "nowhere").exists()


def test_no_data_caption_hint_where_data_caption_would_refuse_every_picture(tmp_path):
    """Pictures whose NAME.txt is taken by what is no caption file (a folder, a link to nothing): training and
    `data preview` said "to caption them by their names: t2i data caption FOLDER", which then refused ("caption
    file names taken ... rename it"). The hint is now given only where data caption could write a caption."""
    import os

    pics = tmp_path / "pics"
    pics.mkdir()
    for name in ("red-bird", "blue-fish"):
        Image.new("RGB", (8, 8), (200, 30, 30)).save(pics / f"{name}.png")
    (pics / "red-bird.txt").mkdir()
    os.symlink(tmp_path / "nowhere.txt", pics / "blue-fish.txt")
    line = one_line_failure(run("data", "preview", pics, "--out", tmp_path / "p.png"), 1)
    assert "data caption" not in line, line
    one_line_failure(run("data", "caption", pics), 1)  # (which refuses, naming the names taken)
    (pics / "blue-fish.txt").unlink()  # one name free: the hint is back
    line = one_line_failure(run("data", "preview", pics, "--out", tmp_path / "p.png"), 1)
    assert line.endswith(f"to caption them by their names: t2i data caption {pics} (--dry-run shows the captions "
                         f"first)"), line


def test_a_resume_of_a_read_only_run_folder_says_to_resume_a_copy(tmp_path, monkeypatch):
    """`t2i train --resume RUN` of a run on a read-only disk (a backup mounted read-only) said "cannot write to
    RUN: Read-only file system; choose a writable folder", which a resume cannot do; it now says to copy the run
    folder somewhere writable and resume the copy, and the run folder is left as it was."""
    out = tmp_path / "run"
    r = run(*TRAIN, "--stage", "dvae", "--steps", "2", "--out", out)
    assert r.exit_code == 0, r.stderr
    before = {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    real_access = os.access

    def read_only(path, mode, *a, **k):  # the run folder as a read-only mount shows it (root ignores chmod)
        if Path(path) == out and mode & os.W_OK:
            return False
        return real_access(path, mode, *a, **k)

    monkeypatch.setattr(os, "access", read_only)
    line = one_line_failure(run("train", "--resume", out, "--steps", "4", "-q", "--workers", "0"), 1)
    assert line == (f"error: cannot write to {out} (a read-only disk or folder); a resume writes its checkpoints "
                    f"there: copy the run folder to a writable place and resume that copy"), line
    assert {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
