"""Session 40: what README.md says of each command, checked where a command did otherwise."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from conftest import run
from t2i_cli.files import folder_lock
from t2i_cli.stages import apply_preset, run_stage
from t2i_cli.train import TrainConfig
from t2i_cli.weights import load_tensors


def picture(path: Path, colour: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (16, 16), (colour % 256, 90, 200)).save(path)
    return path


def test_data_caption_names_the_other_from_for_pictures_without_words_beside_captionable_ones(tmp_path: Path):
    # README: names without words "get none: counted and named, with the other `--from` to try". Where other
    # pictures of the folder got a caption, a dry run and a write counted and named them but left the --from out
    # (only a folder where nothing could be captioned said it).
    pics = tmp_path / "pics"
    picture(pics / "red-bird_02.png", 10)
    picture(pics / "IMG_2041.png", 50)
    for args in (["--dry-run"], ["-q"]):
        r = run("data", "caption", pics, *args)
        assert r.exit_code == 0, r.stderr
        assert r.stderr.strip().splitlines() == [
            f"warning: 1 picture whose name holds no words to caption it by, e.g. {pics / 'IMG_2041.png'}; "
            "write their NAME.txt files yourself"]  # (not "try --from folder": "pics" is a tool's word, no caption)
    assert (pics / "red-bird_02.txt").read_text() == "red bird\n" and not (pics / "IMG_2041.txt").exists()
    by_folder = run("data", "caption", pics, "--from", "folder", "--dry-run")  # the other way round: FOLDER's own
    assert by_folder.exit_code == 0, by_folder.stderr  # pictures take no caption from it; red-bird_02.txt is written
    # (IMG_2041's own name holds no words either: --from name is not said to try)
    assert "whose folder's name holds no words" in by_folder.stderr and "try --from" not in by_folder.stderr


def test_a_run_ended_by_a_broken_pipe_keeps_the_steps_it_trained(tmp_path: Path):
    # README: a broken pipe "stops the output quietly (exit 1), and with it the command", and an error that ends a
    # training run between its checkpoints saves the steps trained since the last --ckpt-every. A line of a run
    # meeting a broken pipe (`t2i train ... 2>&1 | head -1`: the plain progress line a minute in) is Rich's
    # SystemExit(1), which the run's save on an error passed over: every step since the last checkpoint was lost
    # (a tiny dVAE at step 975 of --ckpt-every 2000 left nothing to resume). Now they are saved, and the resume
    # ends where the uninterrupted run does.
    def config() -> TrainConfig:
        return TrainConfig(stage="dvae", data="world:train", **apply_preset(
            "dvae", "tiny", {"steps": 8, "num_workers": 0, "sample_every": 0, "ckpt_every": 100}, "world:train"))

    run_stage(config(), tmp_path / "full")

    def progress(step: int, metrics: dict) -> None:
        if step == 5:
            raise SystemExit(1)  # what rich.Console.on_broken_pipe raises

    with pytest.raises(SystemExit):
        run_stage(config(), tmp_path / "cut", progress=progress)
    assert load_tensors(tmp_path / "cut" / "checkpoint.safetensors")[1]["step"] == "5"
    run_stage(config(), tmp_path / "cut", resume=True)
    a, _ = load_tensors(tmp_path / "full" / "checkpoint.safetensors")
    b, meta = load_tensors(tmp_path / "cut" / "checkpoint.safetensors")
    assert meta["step"] == "8" and set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)


def test_eval_help_names_both_distances_the_table_shows():
    # README: `t2i eval --data` reports the Frechet distance and the kernel distance (KID); its help named the
    # Frechet distance alone.
    for args in ([], ["eval"]):
        r = run(*args, "--help")
        assert r.exit_code == 0 and "Frechet and kernel distances" in " ".join(r.stdout.split()), r.stdout


def test_info_of_a_whole_run_says_its_pace(tmp_path: Path):
    # README: `t2i info runs/mine` (a whole run, `--stage all`) says "steps done, training now or stopped, losses,
    # pace, next command"; its table had no pace (only a stage's own folder said it).
    out = tmp_path / "all"
    r = run("train", "--stage", "all", "--preset", "tiny", "--workers", "0", "-q", "--steps",
            "dvae=4,transformer=2,clip=2", "--out", out)
    assert r.exit_code == 0, r.stderr
    stages = json.loads(run("info", out, "--json").stdout)["stages"]
    lines = run("info", out).stdout.splitlines()
    paces = [line for line in lines if line.startswith("  pace      ")]
    assert stages["clip"]["rate"] > 0 and len(paces) == 1, lines
    assert paces[0].startswith("  pace      clip: ") and paces[0].endswith(" steps/s since its latest start"), lines
    assert lines[-1] == f"  next      generate with: t2i generate PROMPT --weights {out / 'weights'}"
    with folder_lock(out / "dvae", "busy"):  # a stage trained now (its lock held) is the one whose pace is said
        lines = run("info", out).stdout.splitlines()
    assert any(line.startswith("  pace      dvae: ") for line in lines), lines
