"""Session 44, hJ: the review of the session's run-side and CLI changes (the '-' folder refusal, export's journal,
vary's guidance refusals)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import one_line_failure, run


@pytest.mark.parametrize("spelled", [["--out", "./-"], ["--out=.//-"]])
def test_a_path_written_to_a_folder_named_dash_is_taken(tmp_path: Path, monkeypatch, spelled: list[str]):
    """`--out -` is refused (standard output's name, which no folder option writes to), but `--out ./-` is a path:
    a user who writes one means it. A Path reads ./- as -, so it was refused as `--out -` is (`--out $PWD/-` was
    taken)."""
    monkeypatch.chdir(tmp_path)
    r = run("data", "world", "--n", "1", "--side", "32", *spelled)
    assert r.exit_code == 0, r.stderr
    assert sorted(p.suffix for p in (tmp_path / "-").iterdir()) == [".json", ".png", ".txt"]
    line = one_line_failure(run("data", "world", "--n", "1", "--side", "32", "--out", "-", "--split", "val"), 2)
    assert "--out - would make a folder named '-'" in line, line
    # a path and '-' are two folders: given both, they disagree (the normalised ./- read as - let them agree)
    line = one_line_failure(run("data", "world", "--n", "1", "--side", "32", "--out", "./-", "--out", "-"), 2)
    assert "disagree" in line, line


def _weights_with_journal(tmp_path: Path, renames: list[list[str]]) -> tuple[list[str], Path]:
    """A tokenizer run exported into tmp_path/w, which then holds a journal of renames, and the command that exports
    it there again."""
    r = run("train", "--stage", "tokenizer", "--out", tmp_path / "tok", "--preset", "tiny", "-q")
    assert r.exit_code == 0, r.stderr
    weights, args = tmp_path / "w", ["export", str(tmp_path / "tok"), "--to", str(tmp_path / "w")]
    r = run(*args)
    assert r.exit_code == 0, r.stderr
    (weights / "tokenizer.json").write_text("{}")  # (so that the export again has its file to write)
    (weights / ".t2i-export.json").write_text(json.dumps({"renames": renames}))
    return [*args, "--force"], weights


def test_a_journal_naming_files_no_export_writes_renames_nothing(tmp_path: Path):
    """finish_set renamed any temporary-shaped file of the folder that a journal named onto its name (a journal
    edited, or copied from elsewhere, moved .notes.txt.x.tmp onto the user's notes.txt), and a bad pair after a
    good one left the good one renamed. Now a journal whose every pair is not a temporary of a weights file is
    left alone, nothing renamed, and the export then writes its own set."""
    args, weights = _weights_with_journal(tmp_path, [[".dvae.safetensors.ab12cd34.tmp", "dvae.safetensors"],
                                                     [".notes.txt.ab12cd34.tmp", "notes.txt"]])
    (weights / "notes.txt").write_text("mine")
    (weights / ".notes.txt.ab12cd34.tmp").write_text("not mine")
    (weights / ".dvae.safetensors.ab12cd34.tmp").write_bytes(b"half")
    r = run(*args)
    assert r.exit_code == 0, r.stderr
    assert (weights / "notes.txt").read_text() == "mine"
    assert (weights / ".notes.txt.ab12cd34.tmp").read_text() == "not mine"  # not a weights file's: not removed
    assert not (weights / "dvae.safetensors").exists()  # the journal's good pair was not done either
    assert not (weights / ".t2i-export.json").exists()  # the export's own set replaced it, and removed it
    assert (weights / "tokenizer.json").read_bytes() == (tmp_path / "tok" / "tokenizer.json").read_bytes()


def test_a_journal_naming_the_parent_folder_is_no_crash(tmp_path: Path):
    """A journal pair (....x.tmp, ..) passed the temporary-name check (.. is what ....x.tmp was made for) and its
    rename onto the parent folder was an OSError out of export: a traceback, and the folder could not be exported
    into again. Now it is not a weights file's pair: left alone."""
    args, weights = _weights_with_journal(tmp_path, [["....abcdefgh.tmp", ".."]])
    (weights / "....abcdefgh.tmp").write_text("x")
    r = run(*args)
    assert r.exit_code == 0, r.stderr
    assert (weights / "tokenizer.json").is_file() and (weights / "....abcdefgh.tmp").is_file()


def test_vary_takes_a_neutral_guidance_from_the_empty_prompt(tmp_path: Path, tiny_weights: Path):
    """vary of a picture without a prompt refuses guidance options (they push away from the empty prompt toward
    the same empty prompt): but `--guidance 1 --guidance-start 1` guides no step at all (sampling.guided is
    false), the same as leaving both out, and was refused as if it pushed ('--guidance-start 1 changes
    nothing'). A guidance that does guide is still refused."""
    from PIL import Image

    src = tmp_path / "photo.png"
    Image.new("RGB", (32, 32), (200, 30, 30)).save(src)
    common = ["vary", src, "--weights", tiny_weights, "--n", "1", "--seed", "3", "-q"]
    plain = run(*common, "--guidance", "1", "--out", tmp_path / "plain")
    assert plain.exit_code == 0, plain.stderr
    r = run(*common, "--guidance", "1", "--guidance-start", "1", "--out", tmp_path / "neutral")
    assert r.exit_code == 0, r.stderr
    pixels = [[Image.open(p).convert("RGB").tobytes() for p in sorted((tmp_path / out).glob("*.png"))]
              for out in ("neutral", "plain")]
    assert len(pixels[0]) == 1 and pixels[0] == pixels[1]  # (guidance 1, unguided: the pixels of a plain vary)
    line = one_line_failure(run(*common, "--guidance", "1", "--guidance-start", "0", "--out", tmp_path / "x"), 2)
    assert "--guidance-start 0 changes nothing with the empty prompt" in line, line


@pytest.mark.parametrize("held", ["notes.txt", "train_config.json"])
def test_export_into_a_folder_named_dash_suggests_a_folder_not_an_option(tmp_path: Path, held: str):
    """A folder named '-' (`--to ./-`, taken again) that export refuses suggested NAME-weights: 'e.g. --to
    --weights', an option, not a folder; a name with a space was not quoted either. Now a folder named so is
    suggested another name, and every suggestion is a shell word."""
    r = run("train", "--stage", "tokenizer", "--out", tmp_path / "tok", "--preset", "tiny", "-q")
    assert r.exit_code == 0, r.stderr
    for folder, suggested in ((tmp_path / "-", "e.g. --to weights-mine"),
                              (tmp_path / "my run", "e.g. --to 'my run-weights'")):
        folder.mkdir()
        (folder / held).write_text("{}")
        line = one_line_failure(run("export", tmp_path / "tok", "--to", folder), 2)
        assert line.endswith(suggested) or f"{suggested})" in line, line


@pytest.mark.parametrize("written", [["--out", "-"], ["--out=-"], ["--to", "-"]])
def test_export_refuses_a_dash_naming_the_option_as_written(tmp_path: Path, monkeypatch, written: list[str]):
    """`t2i export RUN --out -` (--out, a second name of --to) was told '--to - would make a folder named '-'...;
    --to takes a folder', an option the user never wrote. Now the refusal names the one given; nothing made."""
    monkeypatch.chdir(tmp_path)
    line = one_line_failure(run("export", tmp_path / "run", *written), 2)
    option = written[0].split("=")[0]
    assert line.startswith(f"error: {option} - would make a folder named '-'") and f"e.g. {option} " in line, line
    assert list(tmp_path.iterdir()) == []
