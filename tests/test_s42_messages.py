"""Session 42: user-facing messages left over by the day's attacks (links, read-only runs, pictures in sub-folders)."""

from __future__ import annotations

import os
from pathlib import Path

from conftest import one_line_failure, run


def test_eval_json_that_is_a_dangling_link_is_named_a_link_to_a_missing_file(tmp_path: Path):
    """`eval --json LINK`, LINK a link to a missing file (or a loop of links), said "exists and is not the JSON of
    a t2i eval": the path does not exist as a file; it is a link whose target is missing."""
    os.symlink("missing.json", tmp_path / "lnk")
    line = one_line_failure(run("eval", "--json", tmp_path / "lnk"), 2)
    assert f"is a link to {tmp_path / 'missing.json'}, which does not exist" in line, line
    assert "exists and is not" not in line
    os.symlink("lp", tmp_path / "lp")
    line = one_line_failure(run("eval", "--json", tmp_path / "lp"), 2)
    assert "is a link to" in line and "links back to itself" in line, line
    assert "--force" in line


def stopped_run(folder: Path, step: int, steps: int):
    """A transformer run folder stopped at step of steps: its config and a checkpoint whose metadata says the step."""
    import torch
    from safetensors.torch import save_file

    from t2i_cli.train import CHECKPOINT, TrainConfig

    folder.mkdir(parents=True)
    save_file({"x": torch.zeros(1)}, str(folder / CHECKPOINT), metadata={"step": str(step)})
    return TrainConfig(stage="transformer", data="world:train", steps=steps)


def test_export_of_a_stopped_read_only_run_does_not_advise_a_resume_there(tmp_path: Path, monkeypatch):
    """Export's warning of a run stopped before its last step ended "`t2i train --resume RUN` finishes the run",
    which a resume of a read-only run folder refuses ("copy the run folder to a writable place and resume that
    copy"): the advice is now that one. (os.access stands in for a read-only folder: as root every folder is
    writable.) A writable run is still told to resume it."""
    from t2i_cli import train

    run_dir = tmp_path / "tr"
    cfg = stopped_run(run_dir, 6, 2000)
    said = train._unfinished(run_dir, cfg)
    assert said.endswith(f"`t2i train --resume {run_dir}` finishes the run"), said
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, *a, **k: False if Path(p) == run_dir and mode & os.W_OK
                        else real(p, mode, *a, **k))
    said = train._unfinished(run_dir, cfg)
    assert said.startswith(f"{run_dir} stopped at step 6 of 2,000: its step-6 model is exported; "), said
    assert "cannot be written to" in said and "copy the run folder to a writable place" in said, said
    assert f"--resume {run_dir}`" not in said


def test_info_of_a_folder_with_pictures_only_in_sub_folders_says_it_holds_pictures(tmp_path: Path):
    """`t2i info DIR`, DIR a data folder of train/ and val/ (its pictures one level down), advised
    "`t2i export TRANSFORMER_RUN --to DIR` writes one": an export into the user's pictures. It now says what it says
    of a folder of pictures; a `--weights` of it says so too. A folder with no pictures (nor in sub-folders) is still
    told how to make a weights folder."""
    from PIL import Image

    pics = tmp_path / "pics"
    for name in ("train/red_bird.png", "val/blue_fish.jpg"):
        (pics / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8), (200, 30, 30)).save(pics / name)
    line = one_line_failure(run("info", pics), 1)
    assert f"{pics} holds pictures, not a t2i model" in line and "t2i export" not in line, line
    line = one_line_failure(run("generate", "a red bird", "--weights", pics, "--out", tmp_path / "o"), 1)
    assert "it holds pictures, not a t2i model" in line and f"--to {pics}" not in line, line
    empty = tmp_path / "empty"
    (empty / "notes").mkdir(parents=True)
    (empty / "notes" / "a.txt").write_text("a red bird")
    line = one_line_failure(run("info", empty), 1)
    assert "holds pictures" not in line and "t2i export TRANSFORMER_RUN" in line, line


def test_rerank_counts_a_loop_of_links_as_one_not_as_a_link_to_a_missing_file(tmp_path: Path):
    """`t2i rerank DIR` counted `ln -s lp lp` (and a -> b -> a) among "links to a missing file": nothing is
    missing there, the links lead back to themselves. Each is now a "loop of links"; a link to a moved picture is
    still a link to a missing file."""
    from PIL import Image

    from t2i_cli.rerank import collect

    Image.new("RGB", (8, 8), (200, 30, 30)).save(tmp_path / "red.png")
    os.symlink("lp.png", tmp_path / "lp.png")
    os.symlink("b.png", tmp_path / "a.png")
    os.symlink("a.png", tmp_path / "b.png")
    os.symlink("moved.png", tmp_path / "gone.png")
    items, skipped = collect(tmp_path, "a red bird")
    assert [p.name for p, _ in items] == ["red.png"]
    assert skipped["link to a missing file"] == 1, skipped
    assert skipped["loop of links"] == 3, skipped
    from t2i_cli.errors import counted

    assert counted(3, "loop of links") == "3 loops of links"


def test_eval_json_in_a_folder_that_cannot_be_made_is_not_told_to_create_it(tmp_path: Path):
    """`eval --json DIR/e.json` refuses a missing DIR (README: before any work) and says "create it"; it said so
    too where DIR is a file, inside a file, or a link to a missing folder, where making it fails ("File exists",
    "Not a directory"). Those are now named as what they are."""
    (tmp_path / "fl").write_text("notes")
    os.symlink("nowhere", tmp_path / "ld")
    said = {}
    for parent in ("fl", "fl/sub", "ld", "ld/x", "new"):
        line = one_line_failure(run("eval", "--json", tmp_path / parent / "e.json"), 2)
        said[parent] = line.split(": ", 2)[2]
    assert said["fl"] == f"{tmp_path / 'fl'} is a file, not a folder; choose another path"
    assert said["fl/sub"] == f"{tmp_path / 'fl/sub'} is inside {tmp_path / 'fl'}, which is a file; choose another path"
    assert said["ld"].startswith(f"{tmp_path / 'ld'} is a link to {tmp_path / 'nowhere'}, which does not exist")
    assert said["ld/x"].startswith(f"{tmp_path / 'ld/x'} is inside {tmp_path / 'ld'}, a link to ")
    assert said["new"] == f"{tmp_path / 'new'} is not a folder; create it or choose another path"
    assert not any("create it" in said[p] for p in ("fl", "fl/sub", "ld", "ld/x")), said


def test_info_of_a_stopped_read_only_run_does_not_advise_a_resume_there(tmp_path: Path, monkeypatch):
    """`t2i info RUN` of a stopped run said "next: resume with: t2i train --resume RUN" where RUN cannot be written
    to, a resume train refuses ("copy the run folder to a writable place and resume that copy"): info now says
    that, as export's warning does. (os.access stands in for a read-only folder: as root every folder is
    writable.)"""
    import dataclasses
    import json

    from t2i_cli.train import RUN_CONFIG

    run_dir = tmp_path / "tr"
    cfg = stopped_run(run_dir, 6, 2000)
    (run_dir / RUN_CONFIG).write_text(json.dumps(dataclasses.asdict(cfg)))
    r = run("info", run_dir)
    assert r.exit_code == 0 and f"resume with: t2i train --resume {run_dir}" in r.stdout, r.stdout
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, *a, **k: False if Path(p) == run_dir and mode & os.W_OK
                        else real(p, mode, *a, **k))
    r = run("info", run_dir, "--json")
    assert r.exit_code == 0, r.stderr
    said = json.loads(r.stdout)["next"]
    assert said.startswith(f"{run_dir} cannot be written to") and "copy the run folder to a writable place" in said
    assert f"--resume {run_dir}" not in said


def test_export_to_a_folder_of_sub_folders_counts_them_as_folders(tmp_path: Path):
    """`t2i export RUN --to DATA`, DATA holding train/ and val/ of pictures, said "it holds no t2i weights but 2
    other files (e.g. train)": they are folders, of pictures. (Refused before the run is read.)"""
    from PIL import Image

    data = tmp_path / "data"
    for name in ("train/red_bird.png", "val/blue_fish.png"):
        (data / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8), (200, 30, 30)).save(data / name)
    run_dir = tmp_path / "tr"
    stopped_run(run_dir, 6, 2000)
    line = one_line_failure(run("export", run_dir, "--to", data), 2)
    assert f"--to {data} is not a weights folder: it holds no t2i weights but 2 folders (pictures?); " in line, line
    (data / "notes.txt").write_text("a red bird")
    line = one_line_failure(run("export", run_dir, "--to", data), 2)
    assert "but 1 other file and 2 folders (e.g. " in line, line
