"""Session 47, hJ: a resume's own settings, edited or damaged in its run files since the run started, are refused
naming the file that holds them (a stage's train_config.json, a whole run's all.json) as a run that cannot be
resumed as it is: never as options the user typed ("cannot build the dvae model from these settings", "--model
nope=1", "--patience 5 watches ...")."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from t2i_cli.train import RUN_CONFIG

AS_IT_IS = "the run cannot be resumed as it is"


@pytest.fixture(scope="module")
def whole_run(tmp_path_factory) -> Path:
    """A finished two-step whole run (the tiny preset), as `t2i train --stage all` leaves it: its dvae, transformer
    and clip folders are runs of their own."""
    from conftest import run

    run_dir = tmp_path_factory.mktemp("runs") / "all"
    r = run("train", "--stage", "all", "--preset", "tiny", "--data", "world", "--out", run_dir, "--steps", "2",
            "--batch-size", "2", "--quiet")
    assert r.exit_code == 0, r.stderr
    return run_dir


def _edited(src: Path, dst: Path, file: str = RUN_CONFIG, **changes) -> Path:
    """A copy of the run folder src at dst, with file's JSON settings changed (a key "model.KEY" changes a model
    setting); returns dst."""
    shutil.copytree(src, dst)
    path = dst / file
    data = json.loads(path.read_text())
    for key, value in changes.items():
        place, _, name = key.rpartition(".")
        (data[place] if place else data)[name] = value
    path.write_text(json.dumps(data, indent=2))
    return dst


@pytest.mark.parametrize("stage, change, said", [
    ("dvae", {"model.n_hid": 10_000_000}, "that cannot build the dvae model (n_hid is 10000000, above 1048576, the "
                                          "largest dimension t2i builds)"),
    ("transformer", {"model.n_head": 3}, "that cannot build the transformer model (n_embd 32 must be a multiple of "
                                         "n_head 3)"),
    ("transformer", {"image_side": 32}, "that cannot build the transformer model (its dVAE, dvae.safetensors, was "
                                        "trained on 16 px images, not the image_side 32 it holds)"),
    ("clip", {"model.n_layer": 100_000}, "that cannot build the clip model (the model would have 1,270,421,953 "
                                         "parameters, above the limit of 1,073,741,824)"),
])
def test_a_resumes_own_settings_that_cannot_train_are_said_of_its_run_file(whole_run: Path, tmp_path: Path,
                                                                             stage: str, change: dict, said: str):
    """`t2i train --resume RUN --steps 8` of a run whose train_config.json says "n_hid": 10000000: "cannot build
    the dvae model from these settings: n_hid is 10000000, ..." (no file named, as of settings the command gave);
    a transformer's image_side other than its dVAE's "pass --image-side 16" (which a resume refuses). Now one line
    naming the file, exit 2, before the data is opened. (An unknown key, "--model nope=1: ...", is said as the
    file's since then too: test_s47_hG.)"""
    from conftest import one_line_failure, run

    run_dir = _edited(whole_run / stage, tmp_path / stage, **change)
    line = one_line_failure(run("train", "--resume", run_dir, "--steps", "8"), code=2)
    assert line == f"error: {run_dir / RUN_CONFIG} holds settings {said}; {AS_IT_IS}"
    assert json.loads((run_dir / RUN_CONFIG).read_text())["steps"] == 2  # (nothing of the run was written)


def test_a_resumes_own_patience_without_validation_is_the_files_and_the_resume_may_mend_it(whole_run: Path,
                                                                                            tmp_path: Path):
    """A run file saying patience 5 with sample_every 0 (no run starts so): its resume was told "--patience 5
    watches the validation loss ...: give --sample-every N (not 0), or --patience 0" of options it never gave.
    Now said of the file; a resume that gives --patience 0 (what a resume may change) goes on; a --patience the
    resume gives beside the file's sample_every 0 is still the user's own."""
    from conftest import one_line_failure, run

    run_dir = _edited(whole_run / "dvae", tmp_path / "dvae", patience=5, sample_every=0)
    line = one_line_failure(run("train", "--resume", run_dir, "--steps", "3"), code=2)
    assert line == (f"error: {run_dir / RUN_CONFIG} holds settings a run cannot train with (patience 5 watches the "
                    f"validation loss, which is measured every sample_every steps: give sample_every above 0, or "
                    f"patience 0); {AS_IT_IS}")
    r = run("train", "--resume", run_dir, "--steps", "3", "--patience", "0", "--quiet")
    assert r.exit_code == 0, r.stderr
    line = one_line_failure(run("train", "--resume", run_dir, "--steps", "4", "--patience", "2"), code=2)
    assert line.startswith("error: --patience 2 watches the validation loss")


def test_a_resume_from_python_says_its_run_files_model_of_the_file(whole_run: Path, tmp_path: Path):
    """run_stage(read_run_config(RUN) with more steps, resume=True) of a run whose file says "n_hid": 10000000:
    "cannot build the dvae model from these settings" named no file, as of a config the caller made."""
    from t2i_cli.errors import UsageError
    from t2i_cli.stages import run_stage
    from t2i_cli.train import read_run_config

    run_dir = _edited(whole_run / "dvae", tmp_path / "dvae", **{"model.n_hid": 10_000_000})
    cfg = dataclasses.replace(read_run_config(run_dir), steps=3)
    with pytest.raises(UsageError) as caught:
        run_stage(cfg, run_dir, resume=True, device="cpu")
    assert str(caught.value) == (f"{run_dir / RUN_CONFIG} holds settings that cannot build the dvae model (n_hid is "
                                 f"10000000, above 1048576, the largest dimension t2i builds); {AS_IT_IS}")


def test_a_whole_runs_resume_says_a_started_stages_damaged_file(whole_run: Path, tmp_path: Path):
    """`t2i train --resume RUN` of a whole run whose dVAE stage has steps left and a train_config.json saying
    "n_hid": 10000000: refused naming RUN/dvae/train_config.json, not "cannot build the dvae model from these
    settings"; the later stages are not begun."""
    from conftest import one_line_failure, run

    run_dir = _edited(whole_run, tmp_path / "all", file=f"dvae/{RUN_CONFIG}", steps=4, **{"model.n_hid": 10_000_000})
    for later in ("transformer", "clip", "weights"):
        shutil.rmtree(run_dir / later)
    line = one_line_failure(run("train", "--resume", run_dir), code=2)
    assert line == (f"error: {run_dir / 'dvae' / RUN_CONFIG} holds settings that cannot build the dvae model (n_hid "
                    f"is 10000000, above 1048576, the largest dimension t2i builds); {AS_IT_IS}")
    assert not (run_dir / "transformer").exists()


@pytest.mark.parametrize("model, said", [
    (["transformer.n_head=3"], "that cannot build the transformer model (n_embd 32 must be a multiple of n_head 3)"),
    (["clip.nope=3"], "a run cannot train with (--model clip.nope=3: the clip model has no setting 'nope'"),
])
def test_a_whole_runs_resume_says_its_recorded_settings_of_all_json(whole_run: Path, tmp_path: Path,
                                                                    model: list[str], said: str):
    """`t2i train --resume RUN` of a whole run whose all.json records a --model a stage still to come cannot
    build: "cannot build the transformer model from these settings: ..." named no file (the resume gave none).
    Now said of RUN/all.json, before anything trains."""
    from conftest import one_line_failure, run
    from t2i_cli.files import PLAN

    run_dir = _edited(whole_run, tmp_path / "all", file=PLAN, model=model)
    for later in ("transformer", "clip", "weights"):
        shutil.rmtree(run_dir / later)
    line = one_line_failure(run("train", "--resume", run_dir), code=2)
    assert line.startswith(f"error: {run_dir / PLAN} holds settings {said}") and line.endswith(AS_IT_IS)
    assert not (run_dir / "transformer").exists()


def test_a_whole_runs_resume_with_workers_says_a_started_stages_patience_of_its_file(whole_run: Path, tmp_path: Path):
    """`t2i train --resume RUN --workers 0` (a whole run's resume may steer its loader) of a run whose dVAE stage,
    with steps left, has a train_config.json saying patience 5 and sample_every 0: "--patience 5 watches the
    validation loss ..." (the stage's settings judged with --workers as options given). Now said of its file."""
    from conftest import one_line_failure, run

    run_dir = _edited(whole_run, tmp_path / "all", file=f"dvae/{RUN_CONFIG}", steps=4, patience=5, sample_every=0)
    for later in ("transformer", "clip", "weights"):
        shutil.rmtree(run_dir / later)
    line = one_line_failure(run("train", "--resume", run_dir, "--workers", "0"), code=2)
    assert line.startswith(f"error: {run_dir / 'dvae' / RUN_CONFIG} holds settings a run cannot train with (patience "
                           f"5 watches the validation loss") and line.endswith(AS_IT_IS)


@pytest.mark.parametrize("stage, change, said", [
    ("clip", {"image_side": 32}, "image_side 32, the checkpoint's 16"),
    ("transformer", {"text_len": 13}, "text_len 13, the checkpoint's 12"),
    ("dvae", {"model.n_hid": 16}, "model's n_hid 16, the checkpoint's 8"),
])
def test_a_resumes_settings_edited_away_from_its_checkpoints_are_said_of_its_run_file(whole_run: Path,
                                                                                      tmp_path: Path, stage: str,
                                                                                      change: dict, said: str):
    """A run file edited to build another model than its checkpoint holds: a CLIP's image_side 16 made 32 went on
    training at 32 px without a word (its checkpoint fits either); a transformer's text_len 13 was "RUN/checkpoint.
    safetensors does not match this run's model (...); start a new run", blaming the checkpoint of a run whose
    file alone had changed. Now said of the file, with the checkpoint's value to put back; nothing is trained."""
    from conftest import one_line_failure, run

    run_dir = _edited(whole_run / stage, tmp_path / stage, **change)
    line = one_line_failure(run("train", "--resume", run_dir, "--steps", "4"), code=2)
    assert line == (f"error: {run_dir / RUN_CONFIG} holds other settings than its checkpoint was trained with "
                    f"({said}); {AS_IT_IS}: put back the checkpoint's settings there (or the run's own checkpoint)")
    assert json.loads((run_dir / RUN_CONFIG).read_text())["steps"] == 2
