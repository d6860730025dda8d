"""Session 44, hK: this session's new behaviour attacked as a user would (each test fails without its fix)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import build_tiny_folder, one_line_failure, run


@pytest.mark.parametrize("given", ["folder", "file"])
def test_train_refuses_a_tokenizer_and_dvae_from_a_weights_folder_an_export_was_killed_in(tmp_path: Path, given):
    """generate, info, rerank and eval refuse a weights folder whose export journal says a kill -9 cut it between two
    renames (it may hold one export's tokenizer beside another's dVAE); `train --stage transformer --tokenizer W
    --dvae W` read the same two files and trained a transformer on them, unsaid. Now it is refused in the same one
    line, before the run folder is made."""
    from t2i_cli.weights import EXPORT_JOURNAL

    weights = build_tiny_folder(tmp_path / "w", seed=0)
    (weights / EXPORT_JOURNAL).write_text(json.dumps({"renames": [[".dvae.safetensors.t2i-1.tmp",
                                                                   "dvae.safetensors"]]}))
    src = weights if given == "folder" else weights / "dvae.safetensors"
    r = run("train", "--stage", "transformer", "--tokenizer", weights / "tokenizer.json", "--dvae", src,
            "--steps", 1, "--preset", "tiny", "--workers", 0, "-q", "--out", tmp_path / "run")
    line = one_line_failure(r)
    assert "an export into it was killed while it renamed its files" in line, line
    assert not (tmp_path / "run").exists()


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_data_world_of_fewer_scenes_into_a_larger_world_is_refused(tmp_path: Path):
    """`data world --n 50 --out W`, W a world of 3,000 scenes: since a world is finished by the same command again it
    said "wrote 0 scenes to W (50 written before, kept)", and W held 3,000 scenes, not the world of 50 asked for.
    Now a scene past --n is refused in one line (exit 1), the folder left as it was; a larger --n still grows it."""
    out = tmp_path / "w"
    r = run("data", "world", "--n", 4, "--side", 16, "--out", out)
    assert r.exit_code == 0, r.stderr
    before = _tree(out)
    line = one_line_failure(run("data", "world", "--n", 2, "--side", 16, "--out", out))
    assert "train-000002.png is past the 2 train scenes asked for" in line and "--n it was written with" in line
    assert _tree(out) == before
    r = run("data", "world", "--n", 5, "--side", 16, "--out", out)
    assert r.exit_code == 0, r.stderr
    assert "wrote 1 scene to" in r.stdout and "(4 written before, kept)" in r.stdout  # (it said "1 scenes")
    assert len(_tree(out)) == 15


def test_a_stage_run_into_a_whole_run_stopped_in_that_stage_is_told_to_resume_the_whole_run(tmp_path: Path,
                                                                                           monkeypatch):
    """`t2i train --stage dvae --out RUN`, RUN a whole run stopped (Ctrl-C) in its dVAE stage: the refusal said "to
    train its dvae stage further: t2i train --resume RUN/dvae --steps N, N over its 2", of a stage short of its 2
    steps, whose whole run's resume finishes it and the stages after it. It says that now, and that command works."""
    import os
    import signal

    from PIL import Image

    from t2i_cli.models.dvae import DVAE

    pics = tmp_path / "pics"
    pics.mkdir()
    for i in range(8):
        Image.new("RGB", (16, 16), (30 * i, 100, 200 - 20 * i)).save(pics / f"p{i:02d}.png")
        (pics / f"p{i:02d}.txt").write_text(f"picture {i}\n")
    real, calls = DVAE.forward, {"n": 0}

    def stopped_forward(self, *a, **k):  # a Ctrl-C in the dVAE stage
        calls["n"] += 1
        if calls["n"] == 1:
            os.kill(os.getpid(), signal.SIGINT)
        return real(self, *a, **k)

    monkeypatch.setattr(DVAE, "forward", stopped_forward)
    common = ("--preset", "tiny", "--workers", "0", "--device", "cpu", "-q")
    r = run("train", "--stage", "all", "--steps", "2", "--data", pics, "--out", tmp_path / "RUN", *common)
    assert r.exit_code == 130, r.stderr
    monkeypatch.setattr(DVAE, "forward", real)
    monkeypatch.chdir(tmp_path)
    line = one_line_failure(run("train", "--stage", "dvae", "--data", pics, "--out", "RUN", "--steps", "4",
                                *common), 2)
    assert line == ("error: --out RUN is a whole run (--stage all), not a folder for a new dvae run; its dvae stage "
                    "stopped at step 0 of 2: t2i train --resume RUN finishes it and the stages after it; or pick a "
                    "new or empty --out for a dvae run of its own"), line
    # while the whole run trains that stage (its folder locked by another process), no resume is offered
    import subprocess
    import sys

    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, os, sys, time; fd = os.open(sys.argv[1], "
                               "os.O_RDONLY); fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); "
                               "time.sleep(60)", str(tmp_path / "RUN" / "dvae")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        line = one_line_failure(run("train", "--stage", "dvae", "--data", pics, "--out", "RUN", "--steps", "4",
                                    *common), 2)
    finally:
        holder.kill()
        holder.wait()
    assert "its dvae stage is being trained now (checkpoint at step 0 of 2): let it finish;" in line, line
    r = run("train", "--resume", "RUN", *common)
    assert r.exit_code == 0 and (tmp_path / "RUN" / "weights" / "transformer.safetensors").is_file(), r.stderr


def test_export_out_is_named_as_typed_in_its_refusals(tmp_path: Path, monkeypatch):
    """`t2i export RUN --out -` (--out a second name of --to) was told "--to - would make a folder named '-' ...
    --to takes a folder", an option the user did not type; so were a file, a run folder and a folder of other
    things given as --out. Each names --out now (and --to where --to was typed)."""
    weights = build_tiny_folder(tmp_path / "w", seed=0)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pics").mkdir()
    (tmp_path / "pics" / "a.png").write_bytes(b"not weights")
    (tmp_path / "file").write_text("x")
    for where, said in (("-", "--out - would make a folder named '-'"), ("file", "--out file is a file"),
                        ("pics", "--out pics is not a weights folder")):
        line = one_line_failure(run("export", weights, "--out", where), 2)
        assert said in line and "--to" not in line, line
    line = one_line_failure(run("export", weights, "--to", "-"), 2)
    assert "--to - would make a folder named '-'" in line and "--out" not in line, line
