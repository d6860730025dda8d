"""Session 38: a transformer (or a fine-tuned decoder) started on a --dvae run that is not finished. One stopped
before its last step (Ctrl-C) was trained on without a word, and the transformer stays tied to those codes;
one being trained by another process now gave whatever step its model file was at. The first warns, naming
the step and the resume; the second is refused before anything is written."""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

import pytest

from conftest import one_line_failure, run, signal_after_step
from t2i_cli.errors import TrainingWarning
from t2i_cli.files import Busy, folder_lock
from t2i_cli.stages import run_stage
from t2i_cli.train import read_run_config
from t2i_cli.weights import read_metadata

Q = ["--preset", "tiny", "--workers", "0", "-q", "--device", "cpu"]
TRANSFORMER = ["train", "--stage", "transformer", *Q, "--steps", "2", "--sample-every", "0"]
FINETUNE = ["train", "--stage", "dvae", "--finetune-decoder", *Q, "--steps", "2", "--sample-every", "0"]


def said(r) -> list[str]:
    """The warning lines of a command that succeeded, but the dVAE's end judging its codebook (these runs of a few
    steps end collapsed, and are told so since session 47: tests/test_s47_hB.py pins that line)."""
    assert r.exit_code == 0, (r.stdout, r.stderr, r.exception)
    return [line for line in r.stderr.splitlines() if line.startswith("warning:")
            and not line.startswith("warning: the dVAE's codebook has collapsed")]


def stopped(folder: Path) -> str:
    """The warning line of a transformer started on the dVAE run `folder`, stopped at step 3 of 6."""
    return (f"warning: --dvae {folder} stopped at step 3 of 6: the transformer learns the codes of that unfinished "
            f"dVAE and stays tied to them (finishing the dVAE later does not change this run); finish it first with "
            f"`t2i train --resume {folder}` (stop this run), unless an early dVAE is what you want")


def busy(folder: Path, step: int, steps: int, flag: str = "--dvae", stage: str = "dvae") -> str:
    at = f" (saved at step {step} of {steps} so far)" if stage == "dvae" else ""
    now = " (or a copy of its dvae.safetensors, to take the dVAE as it is now)" if stage == "dvae" else ""
    return (f"error: {flag} {folder} is a {stage} run being trained by another t2i process now{at}; wait for it to "
            f"finish and start again, or give {flag} a finished run or a weights folder{now}")


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """A tokenizer run, and a dVAE run of 6 steps stopped (Ctrl-C) at step 3 ("cut")."""
    root = tmp_path_factory.mktemp("deps")
    assert run("train", "--stage", "tokenizer", "--preset", "tiny", "-q", "--out", root / "tok").exit_code == 0
    with pytest.MonkeyPatch.context() as mp:
        signal_after_step(mp, 3, signal.SIGINT)
        r = run("train", "--stage", "dvae", *Q, "--steps", "6", "--sample-every", "0", "--out", root / "cut")
    assert r.exit_code == 130 and r.stderr.startswith("interrupted: at step 3;"), r.stderr
    assert read_metadata(root / "cut" / "checkpoint.safetensors")["step"] == "3"
    return root


def test_a_transformer_on_a_dvae_stopped_unfinished_warns_once_and_its_resume_does_not(root: Path, tmp_path: Path):
    cut, tok = root / "cut", root / "tok"
    r = run(*TRANSFORMER, "--dvae", cut, "--tokenizer", tok, "--out", tmp_path / "tr")
    assert said(r) == [stopped(cut)]
    assert read_metadata(tmp_path / "tr" / "dvae.safetensors")["step"] == "3"  # (what it said: tied to step 3)
    # its resume trains on its own copy: said when it started, not again
    r = run("train", "--resume", tmp_path / "tr", "--steps", "3", "-q")
    assert said(r) == [] and read_metadata(tmp_path / "tr" / "checkpoint.safetensors")["step"] == "3"
    # the dVAE's file inside the run is that run (it was taken silently); a copy of it elsewhere, a weights folder,
    # another stage's run holding a copy: taken as given
    assert said(run(*TRANSFORMER, "--dvae", cut / "dvae.safetensors", "--tokenizer", tok, "--out", tmp_path / "f")) \
        == [stopped(cut)]
    (tmp_path / "copy").mkdir()
    shutil.copy(cut / "dvae.safetensors", tmp_path / "copy" / "dvae.safetensors")
    assert said(run(*TRANSFORMER, "--dvae", tmp_path / "copy" / "dvae.safetensors", "--tokenizer", tok, "--out",
                    tmp_path / "f2")) == []
    assert said(run(*TRANSFORMER, "--dvae", tmp_path / "tr", "--tokenizer", tok, "--out", tmp_path / "t2")) == []
    # once finished, silent
    done = tmp_path / "done"
    shutil.copytree(cut, done)
    assert said(run("train", "--resume", done, "-q")) == []
    assert said(run(*TRANSFORMER, "--dvae", done, "--tokenizer", tok, "--out", tmp_path / "tr3")) == []
    # stopped early by --patience: its steps became the step it stopped at, it is finished
    early = tmp_path / "early"
    r = run("train", "--stage", "dvae", *Q, "--steps", "40", "--sample-every", "1", "--patience", "1", "--lr", "1",
            "--out", early)  # (a rate that makes its second validation worse)
    assert [line.endswith("stopping early (--patience 1); the run ends here") for line in said(r)] == [True]
    assert read_run_config(early).steps == 2 and read_metadata(early / "checkpoint.safetensors")["step"] == "2"
    assert said(run(*TRANSFORMER, "--dvae", early, "--tokenizer", tok, "--out", tmp_path / "tr4")) == []


def test_a_fine_tuned_decoder_on_a_dvae_stopped_unfinished_warns_and_a_transformer_on_the_fine_tune_says_so(
        root: Path, tmp_path: Path):
    cut = root / "cut"
    r = run(*FINETUNE, "--dvae", cut, "--out", tmp_path / "ft")
    assert said(r) == [stopped(cut).replace("the transformer learns", "the decoder is fine-tuned on")]
    # a fine-tune stopped unfinished: its codes are its start's (frozen); its decoder is what is unfinished
    with pytest.MonkeyPatch.context() as mp:
        signal_after_step(mp, 1, signal.SIGINT)
        assert run(*FINETUNE, "--dvae", cut / "dvae.safetensors", "--out", tmp_path / "ft2").exit_code == 130
    ft2 = tmp_path / "ft2"
    r = run(*TRANSFORMER, "--dvae", ft2, "--tokenizer", root / "tok", "--out", tmp_path / "tr")
    assert said(r) == [
        f"warning: --dvae {ft2} stopped at step 1 of 2: a --finetune-decoder run whose decoder is unfinished (the "
        f"codes are those of the dVAE it started from); this transformer takes that decoder; finish it first with "
        f"`t2i train --resume {ft2}` (stop this run), unless an early dVAE is what you want, or export the "
        f"finished one beside it later (t2i export ... --force)"]
    assert said(run(*FINETUNE, "--dvae", ft2, "--out", tmp_path / "ft3")) == []  # (it goes on from that decoder)


def test_a_dvae_or_tokenizer_run_being_trained_now_is_refused_before_anything_is_written(root: Path, tmp_path: Path):
    cut, tok = root / "cut", root / "tok"
    with folder_lock(cut, "held by the test"):  # (a flock of another open of the folder: as another process's)
        for args, out in (([*TRANSFORMER, "--tokenizer", tok], tmp_path / "tr"), (FINETUNE, tmp_path / "ft")):
            line = one_line_failure(run(*args, "--dvae", cut, "--out", out))
            assert line == busy(cut, 3, 6) and not out.exists()
    with folder_lock(tok, "held by the test"):  # (a resume of a tokenizer run learns it again)
        for args in ([*TRANSFORMER, "--dvae", cut], ["train", "--stage", "clip", *Q, "--steps", "1"]):
            line = one_line_failure(run(*args, "--tokenizer", tok, "--out", tmp_path / "x"))
            assert line == busy(tok, 0, 0, "--tokenizer", "tokenizer") and not (tmp_path / "x").exists()
        # its tokenizer.json, given as the file, is that run too
        line = one_line_failure(run(*TRANSFORMER, "--dvae", cut, "--tokenizer", tok / "tokenizer.json", "--out",
                                    tmp_path / "x"))
        assert line == busy(tok, 0, 0, "--tokenizer", "tokenizer") and not (tmp_path / "x").exists()
    # a run of another stage holds a copy, fixed: it may be trained now
    assert said(run(*TRANSFORMER, "--dvae", cut, "--tokenizer", tok, "--out", tmp_path / "tr")) == [stopped(cut)]
    with folder_lock(tmp_path / "tr", "held by the test"):
        assert said(run("train", "--stage", "clip", *Q, "--steps", "1", "--sample-every", "0", "--tokenizer",
                        tmp_path / "tr", "--out", tmp_path / "clip")) == []


def test_the_python_api_says_it_through_its_warn_callback_or_a_training_warning(root: Path, tmp_path: Path):
    cut = root / "cut"
    assert run(*TRANSFORMER, "--dvae", cut / "dvae.safetensors", "--tokenizer", root / "tok",
               "--out", tmp_path / "base").exit_code == 0
    cfg = read_run_config(tmp_path / "base")
    cfg = type(cfg)(**{**cfg.to_json(), "dvae": str(cut), "tokenizer": str(root / "tok")})
    heard: list[str] = []
    run_stage(cfg, tmp_path / "a", device="cpu", warn=heard.append)
    # (from Python the field names the dVAE: dvae, not --dvae)
    assert heard == [stopped(cut).removeprefix("warning: ").replace("--dvae ", "dvae ", 1)]
    with pytest.warns(TrainingWarning) as caught:
        run_stage(cfg, tmp_path / "b", device="cpu")
    assert [str(w.message) for w in caught] == heard
    with folder_lock(cut, "held by the test"), pytest.raises(Busy) as refused:
        run_stage(cfg, tmp_path / "c", device="cpu")
    assert f"error: {refused.value}" == busy(cut, 3, 6, "dvae") and not (tmp_path / "c").exists()



def test_a_finished_dvae_run_whose_model_file_lags_its_checkpoint_warns_with_the_files_step(root: Path,
                                                                                           tmp_path: Path):
    """A kill between the checkpoint's write and the model file's leaves dvae.safetensors behind: a transformer
    started on that run copies the older file, and is told so, with the step of the file it takes."""
    lag = tmp_path / "lag"
    shutil.copytree(root / "cut", lag)
    assert said(run("train", "--resume", lag, "-q")) == []
    assert read_metadata(lag / "checkpoint.safetensors")["step"] == "6"
    shutil.copy(root / "cut" / "dvae.safetensors", lag / "dvae.safetensors")  # step 3's model file
    r = run(*TRANSFORMER, "--dvae", lag, "--tokenizer", root / "tok", "--out", tmp_path / "tr")
    # ("stopped at step 6 of 6 (its dvae.safetensors at step 3)" read as a finished run: said as what it is)
    assert said(r) == [stopped(lag).replace("stopped at step 3 of 6:", "reached step 6 of 6 but its dvae.safetensors "
                                                                       "holds step 3:")]
    assert read_metadata(tmp_path / "tr" / "dvae.safetensors")["step"] == "3"
