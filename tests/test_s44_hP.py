"""Session 44, hP: small leftovers (train commands t2i suggests run as pasted, ...)."""

from __future__ import annotations

import shlex
from pathlib import Path

from PIL import Image

from conftest import one_line_failure, run


def _pictures(folder: Path, names=("red-bird.png", "blue_fish.png", "green-cat.png")) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        Image.new("RGB", (20, 20), (80 * i, 200 - 60 * i, 90)).save(folder / name)
    return folder


def _trains_as_pasted(said: str, run_name: str, tmp_path: Path) -> None:
    words = shlex.split(said)
    assert words[:4] == ["t2i", "train", "--stage", "all"] and "--out" in words, said
    r = run(*words[1:], "--preset", "tiny", "--steps", "1", "--sample-every", "0")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "runs" / run_name / "weights" / "transformer.safetensors").is_file()


def test_a_manifest_beside_uncaptioned_pictures_names_a_train_command_that_runs(tmp_path, monkeypatch):
    """`t2i data caption` of a folder whose captions.csv holds its captions said "training reads with: t2i train
    --data FOLDER/captions.csv", which train refuses ("give --stage and --out for a new run")."""
    monkeypatch.chdir(tmp_path)
    pics = _pictures(tmp_path / "pics")
    (pics / "captions.csv").write_text("file_name,text\nred-bird.png,a red bird\nblue_fish.png,a blue fish\n"
                                       "green-cat.png,a green cat\n")
    line = one_line_failure(run("data", "caption", "pics"), 1)
    said = line.split("training reads with: ", 1)[1].split(";", 1)[0]
    assert said == "t2i train --stage all --data pics/captions.csv --out runs/captions", line
    _trains_as_pasted(said, "captions", tmp_path)


def test_data_caption_of_a_manifest_names_a_train_command_that_runs(tmp_path, monkeypatch):
    """`t2i data caption MANIFEST.csv` said "train on it with t2i train --data MANIFEST.csv" (refused as pasted); a
    Hugging Face metadata.csv names its run after its folder, not runs/metadata."""
    monkeypatch.chdir(tmp_path)
    _pictures(tmp_path / "birds")
    (tmp_path / "birds" / "metadata.csv").write_text("file_name,text\nred-bird.png,a red bird\n"
                                                    "blue_fish.png,a blue fish\ngreen-cat.png,a green cat\n")
    line = one_line_failure(run("data", "caption", "birds/metadata.csv"), 1)
    said = line.split("train on it with ", 1)[1]
    assert said == "t2i train --stage all --data birds/metadata.csv --out runs/birds", line
    _trains_as_pasted(said, "birds", tmp_path)


def test_resuming_a_whole_runs_dvae_names_the_run_as_typed(tmp_path, monkeypatch):
    """`t2i train --resume runs/x/dvae --steps N` warned "/home/.../runs/x's transformer stage learned this dVAE's
    codes ..., so /home/.../runs/x/weights keeps that dVAE": the run named by an absolute path the user never
    typed, where the rest of the line (and of the run's messages) says runs/x/dvae."""
    monkeypatch.chdir(tmp_path)
    _pictures(tmp_path / "pics")
    for name, caption in (("red-bird", "a red bird"), ("blue_fish", "a blue fish"), ("green-cat", "a green cat")):
        (tmp_path / "pics" / f"{name}.txt").write_text(caption + "\n")
    r = run("train", "--stage", "all", "--data", "pics", "--out", "runs/x", "--preset", "tiny", "--steps", "1",
            "--sample-every", "0", "-q")
    assert r.exit_code == 0, r.output
    r = run("train", "--resume", "runs/x/dvae", "--steps", "2", "-q")
    assert r.exit_code == 0, r.output
    first = r.stderr.strip().splitlines()[0]
    assert first.startswith("warning: runs/x's transformer stage learned this dVAE's codes"), first
    assert "so runs/x/weights keeps that dVAE" in first and str(tmp_path) not in r.stderr, r.stderr
