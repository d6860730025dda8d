"""Session 47 (hK): a new user's leftovers on the data side (paths with ~, captions beside pictures, the prompt
hint after --). Each test fails without its fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import one_line_failure, run


# ----------------------------------------------------------------------------- ~ in every path option
@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A home folder of the test's own, and a current folder apart from it."""
    home, here = tmp_path / "home", tmp_path / "here"
    home.mkdir()
    here.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(here)
    return home


@pytest.mark.parametrize("spelled", [["--out=~/pics"], ["--out", "~/pics"]])
def test_a_tilde_in_generates_out_is_the_home_folder_not_a_folder_named_tilde(home, tiny_weights, spelled):
    """`--out=~/pics` (the shell leaves ~ after =, and in quotes) made a folder named ~ in the current one, while
    --data took ~ as home: every path option reads ~ as the home folder now."""
    r = run("generate", "a red bird", "--weights", tiny_weights, "--n", "1", *spelled)
    assert r.exit_code == 0, (r.stdout, r.stderr)
    assert not (Path.cwd() / "~").exists()
    assert [p.name for p in (home / "pics").iterdir()] == ["a-red-bird-000.png"]
    assert r.stdout.split() == [str(home / "pics" / "a-red-bird-000.png")]  # (said expanded: a file a script opens)


def test_a_tilde_in_weights_and_in_a_str_path_option_is_the_home_folder(home, tiny_weights):
    """`--weights ~/w` was "weights folder ~/w does not exist" where ~/w was the folder; `--tokenizer ~/t.json`
    too (a str option that takes a path)."""
    tiny_weights.rename(home / "w")
    r = run("generate", "a red bird", "--weights", "~/w", "--n", "1", "--out", "o")
    assert r.exit_code == 0, (r.stdout, r.stderr)
    assert (Path.cwd() / "o" / "a-red-bird-000.png").is_file()
    (home / "p.txt").write_text("a red bird\n")
    r = run("generate", "--prompts", "~/p.txt", "--weights", "~/w", "--n", "1", "--out", "q")
    assert r.exit_code == 0, (r.stdout, r.stderr)
    assert (Path.cwd() / "q" / "a-red-bird-000.png").is_file()


# ----------------------------------------------------------------------------- the quote-the-prompt hint after --
@pytest.mark.parametrize("args, hint", [
    (["--", "a", "red", "bird", "--n", "2"], 't2i generate "a red bird" --n 2;'),
    (["--", "a", "red", "bird", "--negative=blue sky"], "t2i generate \"a red bird\" '--negative=blue sky';"),
    (["--", "-a", "red", "bird", "--n", "2"], 't2i generate --n 2 -- "-a red bird";'),
    (["a", "--", "red", "bird"], 't2i generate "a red bird";'),
])
def test_options_after_double_dash_stay_outside_the_quoted_prompt(tiny_weights, args, hint):
    """`t2i generate -- a red bird --n 2` was told `t2i generate "a red bird --n 2"`: the options quoted into the
    prompt. The hint quotes the words alone; a prompt that begins with - keeps its --."""
    line = one_line_failure(run("generate", *args), 2)
    assert "a prompt of several words is one argument: quote it, " + hint in line, line


# ----------------------------------------------------------------------------- dashes in file names
@pytest.mark.parametrize("name, caption", [
    ("Große Straße – Kopie (2)", "große straße"),  # (a copy after an en dash, as after " - ")
    ("bird – copy", "bird"),
    ("bird — Copy (2)", "bird"),
    ("bird –", "bird"),
    ("red–bird", "red bird"),  # (a dash between two words separates them, as "-" does)
    ("red—bird", "red bird"),
    ("blue\uff0dfish", "blue fish"),
])
def test_en_and_em_dashes_separate_words_and_a_copy_after_one_is_dropped(name, caption):
    """`Große Straße – Kopie (2).png` was captioned "große straße –", `bird – copy` "bird –", and `red–bird` was one
    word: the dashes are separators, and a copy's mark after one goes as after Windows' " - Copy"."""
    from t2i_cli.name_captions import caption_of

    assert caption_of(name) == caption
    assert caption_of(name.replace("–", "-").replace("—", "-").replace("\uff0d", "-")) == caption  # (as ASCII's)


# ----------------------------------------------------------------------------- what a picture folder holds besides
def picture(path: Path, colour=(200, 30, 30)) -> Path:
    from PIL import Image

    Image.new("RGB", (16, 16), colour).save(path)
    return path


def test_a_folder_named_as_a_pictures_caption_is_named(tmp_path):
    """pic.txt/ (a folder) beside pic.png: pic.png was "without .txt caption" and the folder went unsaid, though a
    caption that is not a regular file is named. It is named now, with what to do."""
    from t2i_cli.data import FOLDER_CAPTION, open_source

    for name in ("a", "b"):
        picture(tmp_path / f"{name}.png")
        (tmp_path / f"{name}.txt").write_text(f"a thing {name}\n")
    picture(tmp_path / "c.png")
    (tmp_path / "c.txt").mkdir()
    said = open_source(str(tmp_path), 16).skipped_message()
    assert f"1 {FOLDER_CAPTION}: {tmp_path / 'c.txt'}" in said, said
    assert "rename it" in FOLDER_CAPTION
    assert said.startswith("skipped 2 items ("), said  # (the folder and its picture, as a link to nothing is)


def test_a_readme_or_license_beside_the_pictures_is_no_caption_without_image(tmp_path):
    """README.txt and LICENSE.txt in a picture folder were counted as ".txt captions without image" (3 of them,
    e.g. LICENSE.txt); a document's name is no caption's: not counted, and a real orphan caption still is."""
    from t2i_cli.data import open_source

    for name in ("a", "b"):
        picture(tmp_path / f"{name}.png")
        (tmp_path / f"{name}.txt").write_text(f"a thing {name}\n")
    for doc in ("README.txt", "LICENSE.txt", "license-MIT.txt", "Credits.txt"):
        (tmp_path / doc).write_text("MIT License\n")
    assert open_source(str(tmp_path), 16).skipped_message() is None
    (tmp_path / "gone.txt").write_text("a blue fish\n")
    said = open_source(str(tmp_path), 16).skipped_message()
    assert said.startswith(f"skipped 1 item (1 .txt caption without image: {tmp_path / 'gone.txt'})"), said


# ----------------------------------------------------------------------------- rerank's empty caption file
def test_rerank_names_a_picture_whose_caption_file_is_empty(tmp_path):
    """`t2i rerank DIR --bits` said "1 picture without a prompt (pass --prompt)" (and "1 text file") of a picture
    whose NAME.txt beside it is empty: said as an empty caption file now, the file counted as its caption; a
    manifest row still captions such a picture."""
    from t2i_cli.rerank import EMPTY_CAPTION, collect

    picture(tmp_path / "a.png")
    (tmp_path / "a.txt").write_text("a red bird\n")
    picture(tmp_path / "b.png")
    (tmp_path / "b.txt").write_text("\n  \n")
    items, skipped = collect(tmp_path, None)
    assert [(p.name, t) for p, t in items] == [("a.png", "a red bird")]
    assert dict(skipped) == {EMPTY_CAPTION: 1}, skipped
    assert "write its caption" in EMPTY_CAPTION
    (tmp_path / "metadata.jsonl").write_text('{"file_name": "b.png", "text": "a blue fish"}\n')
    items, skipped = collect(tmp_path, None)
    assert [(p.name, t) for p, t in items] == [("a.png", "a red bird"), ("b.png", "a blue fish")]


# ----------------------------------------------------------------------------- a whole run's data change, once
def test_a_whole_runs_data_change_is_said_once_not_once_a_stage(tmp_path):
    """A whole run resumed on changed data said "the data changed since this run started" once for each stage
    that went on (the dVAE's, of its pictures, then the transformer's and the CLIP's, with the captions' words too):
    once now, saying what the whole run reads (the captions too)."""
    import shutil

    from test_data_record import AFTER, CHANGED, COMMON, picture_folder

    pics = picture_folder(tmp_path / "pics")
    out = tmp_path / "all"
    whole = ("train", "--stage", "all", "--preset", "tiny", "--steps", "1", "--data", pics, "--out", out, *COMMON)
    assert run(*whole).exit_code == 0
    for stage in ("dvae", "transformer", "clip"):
        shutil.rmtree(out / stage)  # (each starts again, against the tokenizer's record)
    (pics / "p07.png").unlink()
    (pics / "p07.txt").unlink()
    (pics / "p05.txt").write_text("picture five\n")
    r = run(*whole)
    said = [line for line in r.stderr.splitlines() if "since this run started" in line]
    assert r.exit_code == 0 and said == [
        f"{CHANGED}8 usable pictures then, 7 now: 1 picture removed, captions of 1 picture edited, 1 new word (in no "
        f"caption then): 'five'{AFTER}"], r.stderr


# ----------------------------------------------------------------------------- info of a run whose pictures moved
def test_info_of_a_stopped_run_whose_pictures_moved_says_so_not_resume_with(tmp_path, monkeypatch):
    """`t2i info RUN` said "resume with: t2i train --resume RUN" of a stopped run whose folder of pictures had been
    moved, and that resume was refused ("... which no longer exists; put them back there"): info says the
    refusal's words now, then the resume; with the pictures back, "resume with" again."""
    import json
    import signal

    from conftest import signal_after_step
    from test_data_record import COMMON, picture_folder

    pics = picture_folder(tmp_path / "pics")
    out = tmp_path / "cut"
    undo = signal_after_step(monkeypatch, 2, signal.SIGINT)
    r = run("train", "--stage", "dvae", "--preset", "tiny", "--steps", "6", "--ckpt-every", "100", "--data", pics,
            "--out", out, *COMMON)
    undo()
    assert r.exit_code == 130, r.stderr
    pics.rename(tmp_path / "moved")
    want = (f"the pictures {out} trains on were at {pics}, which no longer exists; put them back there to resume it "
            f"(a run keeps the data it started with); then: t2i train --resume {out}")
    data = json.loads(run("info", out, "--json").stdout)
    assert data["status"] == "stopped" and data["next"] == want, data
    line = one_line_failure(run("train", "--resume", out, *COMMON))  # (what the resume says, as info said it)
    assert line == f"error: {want.split('; then:')[0]}", line
    (tmp_path / "moved").rename(pics)
    assert json.loads(run("info", out, "--json").stdout)["next"] == f"resume with: t2i train --resume {out}"


def test_info_of_a_whole_run_whose_pictures_moved_says_so(tmp_path):
    """The same of a whole run with a stage left to train (its clip stage not started): "resume with" was said."""
    import json
    import shutil

    from test_data_record import COMMON, picture_folder

    pics = picture_folder(tmp_path / "pics")
    out = tmp_path / "all"
    assert run("train", "--stage", "all", "--preset", "tiny", "--steps", "1", "--data", pics, "--out", out,
               *COMMON).exit_code == 0
    shutil.rmtree(out / "clip")
    pics.rename(tmp_path / "moved")
    data = json.loads(run("info", out, "--json").stdout)
    assert data["status"] == "stopped" and data["next"] == (
        f"the pictures {out} trains on were at {pics}, which no longer exists; put them back there to resume it (a "
        f"run keeps the data it started with); then: t2i train --resume {out}"), data


def test_rerank_names_a_picture_whose_caption_is_a_folder(tmp_path):
    """c.txt/ (a folder) beside c.png: rerank said "picture without a prompt (pass --prompt)", as training said
    "without .txt caption": the folder is said."""
    from t2i_cli.rerank import FOLDER_CAPTION, collect

    picture(tmp_path / "c.png")
    (tmp_path / "c.txt").mkdir()
    items, skipped = collect(tmp_path, None)
    assert items == [] and dict(skipped) == {FOLDER_CAPTION: 1}, skipped
    assert [(p.name, t) for p, t in collect(tmp_path, "a red bird")[0]] == [("c.png", "a red bird")]
