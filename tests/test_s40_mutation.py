"""Session 40: a mutation audit of session 39's code (`t2i data caption`, the CSV manifest, write_if_absent, the
OpenMP spin and --threads helpers). Each test here kills a small change to that code (a bound, a condition, a
branch) that the earlier tests let pass: what a user sees, pinned."""

from __future__ import annotations

import csv
import errno
import os
import signal
from pathlib import Path

import pytest
from PIL import Image

from conftest import one_line_failure, run
from t2i_cli import data, name_captions
from t2i_cli.errors import DataError, OutputError
from t2i_cli.files import write_if_absent
from t2i_cli.name_captions import caption_of, write_captions


def picture(path: Path, colour: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (16, 16), (colour % 256, 90, 200)).save(path)
    return path


# --- caption_of -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, caption", [
    ("cat 12345 dog", "cat dog"),  # a number of 5 digits is a counter (4 digits stay: a year, a count)
    ("cat 1234 dog", "cat 1234 dog"),
    ("bird 12 345", "bird"),  # every number at the end goes, not only the last
    ("1f98a", "fox face"), ("emoji_u1fa90", "emoji ringed planet"),  # code points past U+1F6FF are emoji too
    ("red_bird_3fa9c2d1e8", "red bird"),  # a hash's piece of letters and digits is no words
])
def test_caption_of_counters_trailing_numbers_later_emoji_and_hashes(name: str, caption: str):
    assert caption_of(name) == caption


def test_caption_of_percent_escapes_that_are_not_utf8_puts_no_replacement_character_in_a_caption():
    # (a name whose %XX are not UTF-8's is not decoded with U+FFFD for what could not be read, which a caption then
    # held as its name's words, "replacement character")
    for name in ("caf%E9_au_lait", "50%Bear"):
        assert "\ufffd" not in (caption_of(name) or "") and "replacement" not in (caption_of(name) or "")


def test_an_emoji_with_a_skin_tone_is_captioned_as_its_code_points_are():
    # a skin tone's name ends in its number ("fitzpatrick type-4"), which as a character in a name was split off at
    # the hyphen and dropped as a number at the name's end: five tones of one emoji, one caption
    tones = [caption_of("\U0001f44d" + chr(cp)) for cp in range(0x1F3FB, 0x1F400)]
    assert tones[2] == caption_of("1f44d-1f3fd") == "thumbs up sign emoji modifier fitzpatrick type-4"
    assert len(set(tones)) == 5
    assert caption_of("\U0001f64a") == caption_of("1f64a") == "speak-no-evil monkey"  # its own name's hyphens


# --- write_captions and the command's lines about what it wrote -----------------------------------------------

def test_a_caption_file_made_meanwhile_is_kept_and_counted_not_reported_written(tmp_path: Path, monkeypatch):
    pics = tmp_path / "pics"
    picture(pics / "a-cat.png", 1)
    picture(pics / "b-dog.png", 2)
    real = name_captions.write_if_absent

    def another_writer_first(path: Path, content: bytes) -> bool:
        if path.name == "b-dog.txt":  # something else writes it between the plan and the write
            path.write_text("their own words\n")
        return real(path, content)

    monkeypatch.setattr(name_captions, "write_if_absent", another_writer_first)
    plan = data.plan_captions(pics)
    assert write_captions(plan) == ([pics / "a-cat.txt"], 1)
    (pics / "a-cat.txt").unlink()
    (pics / "b-dog.txt").unlink()
    r = run("data", "caption", pics, "-q")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.startswith(f"wrote 1 caption file under {pics} ")
    assert "1 caption file made meanwhile by something else (kept)" in r.stderr
    assert (pics / "b-dog.txt").read_text() == "their own words\n"


def test_a_write_that_fails_first_says_only_the_failure(tmp_path: Path, monkeypatch):
    # ("0 caption files of 2 written before it" is no news: the count is said only where some were written)
    picture(tmp_path / "a-cat.png", 1)
    picture(tmp_path / "b-dog.png", 2)

    def read_only(path: Path, content: bytes) -> bool:
        raise OutputError(f"cannot write {path}: Read-only file system; free space or choose another folder")

    monkeypatch.setattr(name_captions, "write_if_absent", read_only)
    assert one_line_failure(run("data", "caption", tmp_path, "-q"), 1) == (
        f"error: cannot write {tmp_path / 'a-cat.txt'}: Read-only file system; free space or choose another folder")


def test_write_captions_reports_its_progress_to_the_end(tmp_path: Path):
    # (the bar is left on screen: its last count is all of them, not one short)
    for name in ("a-cat", "b-dog", "c-fox"):
        picture(tmp_path / f"{name}.png")
    seen = []
    written, existing = write_captions(data.plan_captions(tmp_path), lambda k, n: seen.append((k, n)))
    assert len(written) == 3 and existing == 0
    assert seen == [(0, 3), (1, 3), (2, 3), (3, 3)]


def test_data_caption_honours_quiet_for_its_progress_bar(tmp_path: Path, monkeypatch):
    import t2i_cli.cli as cli

    asked = []
    real = cli.progress_bar
    monkeypatch.setattr(cli, "progress_bar", lambda quiet, unit="tokens": asked.append(quiet) or real(quiet, unit))
    picture(tmp_path / "a" / "a-cat.png")
    picture(tmp_path / "b" / "b-dog.png")
    assert run("data", "caption", tmp_path / "a", "-q").exit_code == 0
    quiet, asked[:] = list(asked), []
    assert run("data", "caption", tmp_path / "b").exit_code == 0
    # (two bars since 0.18.0: its pictures' check, then the writes; each quiet with -q alone)
    assert quiet == [True, True] and asked == [False, False]


# --- plan_captions --------------------------------------------------------------------------------------------

def test_one_caption_name_taken_for_two_pictures_of_one_name_is_counted_once(tmp_path: Path):
    picture(tmp_path / "cat.png", 1)
    picture(tmp_path / "cat.jpg", 2)  # cat.png and cat.jpg read one cat.txt, here a folder
    (tmp_path / "cat.txt").mkdir()
    picture(tmp_path / "red_bird.png", 3)
    assert data.plan_captions(tmp_path).taken == [tmp_path / "cat.txt"]
    r = run("data", "caption", tmp_path, "-q")
    assert r.exit_code == 0 and "1 caption file name taken by what is not a caption file" in r.stderr, r.stderr


def test_a_refusal_for_taken_names_alone_does_not_send_to_the_other_source(tmp_path: Path):
    # every picture's caption name taken (no name without words): --from folder would not help, so it is not said
    picture(tmp_path / "pics" / "red_bird.png")
    (tmp_path / "pics" / "red_bird.txt").mkdir()
    line = one_line_failure(run("data", "caption", tmp_path / "pics"), 1)
    assert line.startswith("error: no caption to write") and "try --from" not in line


def test_from_folder_given_as_dot_names_only_its_own_pictures_by_it(tmp_path: Path, monkeypatch):
    # `cd cats; t2i data caption . --from folder`: pictures in cats/ are "cats"; those in cats/tabby_cat/ "tabby cat"
    picture(tmp_path / "cats" / "IMG_1.png")
    picture(tmp_path / "cats" / "tabby_cat" / "IMG_2.png")
    monkeypatch.chdir(tmp_path / "cats")
    plan = data.plan_captions(Path("."), "folder")
    assert {str(p): c for p, (c, _) in plan.writes.items()} == {"IMG_1.txt": "cats",
                                                                 str(Path("tabby_cat", "IMG_2.txt")): "tabby cat"}
    monkeypatch.chdir(tmp_path / "cats" / "tabby_cat")  # and given as ..
    plan = data.plan_captions(Path(".."), "folder")
    assert {str(p): c for p, (c, _) in plan.writes.items()} == {str(Path("..", "IMG_1.txt")): "cats",
                                                                 str(Path("..", "tabby_cat", "IMG_2.txt")): "tabby cat"}
    assert not plan.nameless


def test_data_caption_of_a_jsonl_manifest_sends_to_training_on_it(tmp_path: Path):
    (tmp_path / "m.jsonl").write_text('{"image": "a.png", "caption": "a red bird"}\n')
    assert one_line_failure(run("data", "caption", tmp_path / "m.jsonl"), 1) == (
        f"error: {tmp_path / 'm.jsonl'} is not a folder but a manifest of captions: train on it with t2i train "
        f"--stage all --data {tmp_path / 'm.jsonl'} --out runs/m")  # (a command that runs as pasted, since 0.18.0)


@pytest.mark.parametrize("name, content", [
    ("Metadata.csv", "file_name,text\nred_bird.png,a small red bird\n".encode()),  # its name in other letter case
    ("metadata.csv", "file_name,text\nred_bird.png,a small red bird\n".encode("utf-16")),  # unreadable: named
])
def test_a_metadata_csv_beside_the_pictures_is_named_in_any_case_or_encoding(tmp_path: Path, name: str,
                                                                             content: bytes):
    # (since session 41 the folder reads it: its caption is the picture's; one in UTF-16 is refused, naming it)
    picture(tmp_path / "red_bird.png")
    (tmp_path / name).write_bytes(content)
    r = run("data", "caption", tmp_path)
    if content.startswith(b"\xff\xfe"):
        assert f"manifest {tmp_path / name} is saved as UTF-16" in one_line_failure(r, 1)
    else:
        assert r.exit_code == 0 and "has a caption" in r.stdout, r.stderr
    assert not (tmp_path / "red_bird.txt").exists()


def test_a_dry_run_beside_a_manifest_from_folder_says_by_their_folders(tmp_path: Path):
    picture(tmp_path / "red_bird" / "IMG_1.png")
    (tmp_path / "red_bird" / "captions.jsonl").write_text('{"image": "IMG_1.png", "caption": "a small red bird"}\n')
    r = run("data", "caption", tmp_path, "--from", "folder", "--dry-run")
    assert r.exit_code == 0 and "to caption the pictures by their folders anyway" in r.stderr, r.stderr


def test_data_caption_runs_in_one_process(tmp_path: Path, monkeypatch):
    picture(tmp_path / "red_bird.png")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert "runs in one process" in one_line_failure(run("data", "caption", tmp_path), 2)
    assert not (tmp_path / "red_bird.txt").exists()


def test_data_caption_stops_on_sigterm_as_on_ctrl_c(tmp_path: Path):
    # (Python's default ends the process silently mid-run; the command makes SIGTERM a KeyboardInterrupt)
    picture(tmp_path / "red_bird.png")
    before = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        assert run("data", "caption", tmp_path, "--dry-run").exit_code == 0
        assert signal.getsignal(signal.SIGTERM) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGTERM, before)


# --- the CSV manifest -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("header", [b"file_name,text\n", b"sep=,\nfile_name,text\n"])
def test_a_csv_row_of_exactly_the_limit_is_read_first_as_later(tmp_path: Path, header: bytes):
    # the header's bytes were counted into the first row's: a first row of 1 MiB was refused as "a row over 1 MiB
    # ... (a quote left open?)", where the same row on a later line was read
    row = b"a.png,a red bird"
    row += b"," * (data.MAX_MANIFEST_LINE - len(row)) + b"\n"
    (tmp_path / "m.csv").write_bytes(header + row + b"b.png,a blue fish\n" + row.replace(b"a.png", b"c.png"))
    pairs, skipped = data._scan_csv(tmp_path / "m.csv")
    assert pairs == [(tmp_path / "a.png", ["a red bird"]), (tmp_path / "b.png", ["a blue fish"]),
                     (tmp_path / "c.png", ["a red bird"])] and not skipped


def test_a_csv_manifest_larger_than_one_row_may_be_is_read_whole(tmp_path: Path):
    # each row is bounded, not the file: 30,000 rows of about 45 bytes (1.3 MB) are all read
    rows = "".join(f"pic_{i:05d}.png,a picture numbered {i}\n" for i in range(30_000))
    (tmp_path / "m.csv").write_text("file_name,text\n" + rows)
    assert (tmp_path / "m.csv").stat().st_size > data.MAX_MANIFEST_LINE
    pairs, _ = data._scan_csv(tmp_path / "m.csv")
    assert len(pairs) == 30_000 and pairs[-1] == (tmp_path / "pic_29999.png", ["a picture numbered 29999"])


def test_a_csv_header_with_spaces_after_its_commas_is_read(tmp_path: Path):
    (tmp_path / "m.csv").write_text("file_name, text\na.png,  a red bird  \n")
    pairs, _ = data._scan_csv(tmp_path / "m.csv")
    assert pairs == [(tmp_path / "a.png", ["a red bird"])]  # (its caption stripped too)


def test_a_sep_line_naming_another_separator_is_refused_as_that(tmp_path: Path):
    # (comma, semicolon or tab, as the README says: "sep=|" is not read as a separator; it was read as the header,
    # refused as "no columns ... line 1 (found: 'sep=|'); name them so there", which sent to rename the columns)
    (tmp_path / "m.csv").write_text("sep=|\nfile_name|text\na.png|a red bird\n")
    with pytest.raises(DataError) as e:
        data._scan_csv(tmp_path / "m.csv")
    assert str(e.value) == (f"manifest {tmp_path / 'm.csv'} line 1 names its separator as '|' (sep=), which t2i does "
                            f"not read; save it comma-, semicolon- or tab-separated")
    assert data._looks_like_csv_manifest(tmp_path / "m.csv")  # (beside pictures it is named: training says this)


def test_a_csv_row_of_fewer_fields_than_the_caption_column_is_counted_not_an_internal_error(tmp_path: Path):
    (tmp_path / "m.csv").write_text("file_name,text\na.png\nb.png,a blue fish\n")
    pairs, skipped = data._scan_csv(tmp_path / "m.csv")
    assert pairs == [(tmp_path / "b.png", ["a blue fish"])]
    assert skipped.first == {"manifest row without a picture or a caption column": f"{tmp_path / 'm.csv'} line 2"}


def test_a_csv_row_of_empty_fields_is_a_blank_row(tmp_path: Path):
    # a spreadsheet saves an empty row as ",," (or ";;"): skipped as a blank line is, not counted as a bad row
    (tmp_path / "m.csv").write_text("file_name,text,score\na.png,a red bird,1\n,,\n , , \n")
    pairs, skipped = data._scan_csv(tmp_path / "m.csv")
    assert pairs == [(tmp_path / "a.png", ["a red bird"])] and not skipped


def test_a_tab_separated_row_with_an_extra_field_names_the_tab(tmp_path: Path):
    (tmp_path / "m.tsv.csv").write_text("file_name\ttext\na.png\ta red bird\tflying\n")
    _, skipped = data._scan_csv(tmp_path / "m.tsv.csv")
    assert list(skipped.first) == ["manifest row with more fields than its header row (a caption holding a tab not "
                                   "quoted? quote it)"]


def test_reading_a_csv_manifest_leaves_the_csv_modules_field_limit_as_it_was(tmp_path: Path):
    (tmp_path / "m.csv").write_text("file_name,text\na.png,a red bird\n")
    before = csv.field_size_limit(1 << 20)  # (a value of its own: another reading may have left the default)
    try:
        data._scan_csv(tmp_path / "m.csv")
        assert csv.field_size_limit() == 1 << 20
    finally:
        csv.field_size_limit(before)


def test_a_csv_header_with_a_picture_column_but_no_caption_column_is_refused_in_one_line(tmp_path: Path):
    # a classification folder's metadata.csv (file_name, label): both columns are needed, one is no manifest
    (tmp_path / "m.csv").write_text("file_name,label\na.png,3\n")
    with pytest.raises(DataError, match="has no columns \"file_name\" and \"text\""):
        data._scan_csv(tmp_path / "m.csv")


def test_a_manifest_that_cannot_be_opened_is_refused_in_one_line(tmp_path: Path, monkeypatch):
    # (not only a missing one: a permission refused, which root is never refused here, so refused by hand)
    def refused(path, mode="r", *a, **k):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    (tmp_path / "m.csv").write_text("file_name,text\na.png,a red bird\n")
    monkeypatch.setattr(data, "open", refused, raising=False)
    with pytest.raises(DataError, match=r"cannot read manifest .*m\.csv: Permission denied; check the path"):
        data._scan_csv(tmp_path / "m.csv")


def test_a_csv_source_that_is_no_regular_file_is_refused(tmp_path: Path):
    os.symlink(os.devnull, tmp_path / "m.csv")
    with pytest.raises(DataError, match="is not a regular file"):
        data.open_source(str(tmp_path / "m.csv"), 16)


# --- write_if_absent where the file system has no hard links ------------------------------------------------

@pytest.fixture
def no_hard_links(monkeypatch):
    def link(src, dst, *a, **k):
        raise OSError(errno.EPERM, "Operation not permitted")  # as FAT or a network share answers

    monkeypatch.setattr(os, "link", link)


def test_write_if_absent_without_hard_links_writes_a_new_file(tmp_path: Path, no_hard_links):
    assert write_if_absent(tmp_path / "a.txt", b"new\n")
    assert (tmp_path / "a.txt").read_bytes() == b"new\n" and sorted(os.listdir(tmp_path)) == ["a.txt"]


def test_write_if_absent_without_hard_links_never_replaces_a_file_or_a_link(tmp_path: Path, no_hard_links):
    (tmp_path / "a.txt").write_bytes(b"mine\n")
    assert not write_if_absent(tmp_path / "a.txt", b"new\n")
    assert (tmp_path / "a.txt").read_bytes() == b"mine\n"
    os.symlink(tmp_path / "missing", tmp_path / "dangling.txt")
    assert not write_if_absent(tmp_path / "dangling.txt", b"new\n")
    assert (tmp_path / "dangling.txt").is_symlink() and not (tmp_path / "missing").exists()
    assert sorted(os.listdir(tmp_path)) == ["a.txt", "dangling.txt"]


def test_write_if_absent_that_fails_says_so_in_one_line_and_leaves_no_temporary(tmp_path: Path, no_hard_links,
                                                                               monkeypatch):
    def read_only(src, dst):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(os, "replace", read_only)
    with pytest.raises(OutputError, match=r"cannot write .*a\.txt: Read-only file system"):
        write_if_absent(tmp_path / "a.txt", b"new\n")
    assert os.listdir(tmp_path) == []


# --- other_running_tasks, use_threads --------------------------------------------------------------------------

def test_running_tasks_are_the_least_of_looks_apart_in_time(tmp_path: Path, monkeypatch):
    # a blip (5 running at the first look, 1 after) does not count: the least of the looks, a moment apart
    import time

    from t2i_cli.cli import other_running_tasks

    stat = tmp_path / "stat"
    stat.write_text("procs_running 6\n")
    monkeypatch.setattr(time, "sleep", lambda s: stat.write_text("procs_running 1\n"))
    assert other_running_tasks(stat=str(stat)) == 0


def test_threads_takes_its_largest_value_and_refuses_one_more(monkeypatch):
    import torch

    import t2i_cli.cli as cli
    from t2i_cli.errors import UsageError

    asked = []
    monkeypatch.setattr(torch, "set_num_threads", asked.append)
    cli.use_threads(cli.MAX_THREADS)
    assert asked == [cli.MAX_THREADS]
    with pytest.raises(UsageError, match="--threads must be between 1 and"):
        cli.use_threads(cli.MAX_THREADS + 1)
