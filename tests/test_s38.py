"""Session 38: an error that ends a training run keeps the steps it trained since its last checkpoint."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
import torch

from conftest import one_line_failure, run
from t2i_cli.errors import DataError
from t2i_cli.weights import load_tensors

CHECKPOINT = "checkpoint.safetensors"
COMMON = ["train", "--stage", "dvae", "--preset", "tiny", "--workers", "0", "-q", "--sample-every", "0", "--steps",
          "8"]


def failing_at(monkeypatch, call: int, error: BaseException, where: str = "clip") -> None:
    """Make the call-th gradient clip (where="clip": after a step's loss, before its update) or optimizer step
    (where="step": the update itself) of this process raise error."""
    target = (torch.nn.utils, "clip_grad_norm_") if where == "clip" else (torch.optim.AdamW, "step")
    real, calls = getattr(*target), {"n": 0}

    def failing(*a, **k):
        calls["n"] += 1
        if calls["n"] == call:
            raise error
        return real(*a, **k)

    monkeypatch.setattr(*target, failing)


SAVED = "; checkpoint saved at step 5; once that is mended, resume with: t2i train --resume {}"


@pytest.mark.parametrize("error, said", [
    (DataError("image x.png cannot be read (truncated); replace or remove it"),
     "error: image x.png cannot be read (truncated); replace or remove it" + SAVED),
    (OSError(errno.ENOSPC, "No space left on device", "/some/where/samples.png"),
     "error: /some/where/samples.png: No space left on device; the disk is full; free some space or choose a path "
     "on another disk" + SAVED),
    (RuntimeError("a bug"), "internal error: RuntimeError: a bug" + SAVED + " (rerun with --debug for the traceback)"),
])
def test_an_error_mid_run_saves_the_steps_it_trained_and_the_resume_is_the_uninterrupted_run(
        tmp_path: Path, monkeypatch, error, said):
    """A picture gone unreadable, a full disk or a bug ended a run with its checkpoint where the last --ckpt-every
    had left it (250 steps by default: minutes to an hour of a CPU's training lost), where a Ctrl-C saved. The
    steps trained are now saved after the last whole one, the error's line says so and how to go on, and the
    resume ends with the uninterrupted run's weights, bit for bit."""
    full = run(*COMMON, "--ckpt-every", "100", "--out", tmp_path / "full")
    assert full.exit_code == 0, full.stderr
    failing_at(monkeypatch, 6, error)  # steps 1-5 done, the sixth fails before its update
    r = run(*COMMON, "--ckpt-every", "100", "--out", tmp_path / "cut")
    monkeypatch.undo()
    assert r.exit_code == 1 and r.stderr.strip() == said.format(tmp_path / "cut"), r.stderr
    assert load_tensors(tmp_path / "cut" / CHECKPOINT)[1]["step"] == "5"
    assert load_tensors(tmp_path / "cut" / "dvae.safetensors")[1]["step"] == "5"
    resumed = run("train", "--resume", tmp_path / "cut", "-q")
    assert resumed.exit_code == 0, resumed.stderr
    a, _ = load_tensors(tmp_path / "full" / CHECKPOINT)
    b, meta = load_tensors(tmp_path / "cut" / CHECKPOINT)
    assert meta["step"] == "8" and set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)


def test_an_error_inside_the_update_saves_nothing_of_it(tmp_path: Path, monkeypatch):
    """An error inside opt.step() may leave the weights half updated: that model is not saved, and the line does
    not say a checkpoint was."""
    failing_at(monkeypatch, 6, RuntimeError("inside the update"), where="step")
    r = run(*COMMON, "--ckpt-every", "2", "--out", tmp_path / "cut")
    monkeypatch.undo()
    line = r.stderr.strip()
    assert r.exit_code == 1 and line == "internal error: RuntimeError: inside the update (rerun with --debug for " \
                                        "the traceback)", line
    assert load_tensors(tmp_path / "cut" / CHECKPOINT)[1]["step"] == "4"  # the last --ckpt-every's


def test_an_error_where_the_checkpoint_is_current_says_nothing_more(tmp_path: Path, monkeypatch):
    """At a step a checkpoint was just written at, there is nothing more to save or say."""
    failing_at(monkeypatch, 5, DataError("image x.png cannot be read; replace or remove it"))
    line = one_line_failure(run(*COMMON, "--ckpt-every", "2", "--out", tmp_path / "cut"), 1)
    monkeypatch.undo()
    assert line == "error: image x.png cannot be read; replace or remove it", line
    assert load_tensors(tmp_path / "cut" / CHECKPOINT)[1]["step"] == "4"


def test_a_whole_runs_error_names_the_stage_and_the_whole_runs_resume(tmp_path: Path, monkeypatch):
    """In `--stage all`, the command to go on is the whole run's (a stage's own --resume would finish that stage
    alone)."""
    out = tmp_path / "all"
    failing_at(monkeypatch, 3, DataError("image x.png cannot be read; replace or remove it"))
    line = one_line_failure(run("train", "--stage", "all", "--preset", "tiny", "--workers", "0", "-q",
                                "--steps", "dvae=4,transformer=2,clip=2", "--out", out), 1)
    monkeypatch.undo()
    assert line == f"error: image x.png cannot be read; replace or remove it; checkpoint of the dvae stage saved at " \
                   f"step 2; once that is mended, resume with: t2i train --resume {out}", line
    assert load_tensors(out / "dvae" / CHECKPOINT)[1]["step"] == "2"


def test_from_python_the_error_carries_the_note(tmp_path: Path, monkeypatch):
    """stages.run_stage's caller sees the note in the traceback (and saved_step to act on)."""
    from t2i_cli.stages import apply_preset, run_stage
    from t2i_cli.train import TrainConfig

    cfg = TrainConfig(stage="dvae", data="world:train",
                      **apply_preset("dvae", "tiny", {"steps": 6, "num_workers": 0, "sample_every": 0}, "world:train"))
    failing_at(monkeypatch, 4, DataError("image x.png cannot be read"))
    with pytest.raises(DataError) as caught:
        run_stage(cfg, tmp_path / "run")
    assert caught.value.saved_step == 3
    assert caught.value.__notes__ == [f"checkpoint saved at step 3; once that is mended, resume with: t2i train "
                                      f"--resume {tmp_path / 'run'}"]


def test_an_error_before_any_step_writes_no_checkpoint(tmp_path: Path, monkeypatch):
    """Nothing trained, nothing to keep: a run that fails at its first step has no checkpoint to resume from."""
    failing_at(monkeypatch, 1, DataError("image x.png cannot be read; replace or remove it"))
    line = one_line_failure(run(*COMMON, "--out", tmp_path / "cut"), 1)
    monkeypatch.undo()
    assert line == "error: image x.png cannot be read; replace or remove it", line
    assert not (tmp_path / "cut" / CHECKPOINT).exists() and not (tmp_path / "cut" / "dvae.safetensors").exists()


def test_weights_gone_nan_are_not_saved_nor_said_as_a_divergence(tmp_path: Path, monkeypatch):
    """The save on an error went through checkpoint(), whose NaN check logs a "diverged" line before raising:
    the run's metrics (and `t2i info`) then said it diverged, where it had ended with another error."""
    real, calls = torch.nn.utils.clip_grad_norm_, {"n": 0}

    def failing(params, *a, **k):
        calls["n"] += 1
        if calls["n"] == 6:
            with torch.no_grad():
                next(iter(params)).fill_(float("nan"))
            raise DataError("image x.png cannot be read; replace or remove it")
        return real(params, *a, **k)

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", failing)
    line = one_line_failure(run(*COMMON, "--ckpt-every", "100", "--out", tmp_path / "cut"), 1)
    monkeypatch.undo()
    assert line == "error: image x.png cannot be read; replace or remove it", line
    assert not (tmp_path / "cut" / CHECKPOINT).exists()
    assert "diverged" not in (tmp_path / "cut" / "metrics.jsonl").read_text()


def test_an_average_gone_nan_is_not_saved_nor_said_as_a_divergence(tmp_path: Path, monkeypatch):
    """With --ema, the average is saved too: an average gone NaN (the model's weights finite) at an error is not
    saved either, and the run's metrics do not say it diverged."""
    import t2i_cli.train as train

    averages, real_update = [], train.Ema.update

    def update(self, done):
        averages.append(self)
        return real_update(self, done)

    real, calls = torch.nn.utils.clip_grad_norm_, {"n": 0}

    def failing(params, *a, **k):
        calls["n"] += 1
        if calls["n"] == 6:
            next(iter(averages[-1].avg.values())).fill_(float("nan"))
            raise DataError("image x.png cannot be read; replace or remove it")
        return real(params, *a, **k)

    monkeypatch.setattr(train.Ema, "update", update)
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", failing)
    r = run(*COMMON, "--ema", "0.9", "--ckpt-every", "100", "--out", tmp_path / "cut")
    monkeypatch.undo()
    assert r.exit_code == 1 and r.stderr.splitlines()[-1] == "error: image x.png cannot be read; replace or remove " \
                                                             "it", r.stderr
    assert averages and not (tmp_path / "cut" / CHECKPOINT).exists()
    assert "diverged" not in (tmp_path / "cut" / "metrics.jsonl").read_text()


def test_a_save_that_fails_too_leaves_the_error_as_it_was(tmp_path: Path, monkeypatch):
    """A full disk fails the step and then the save after it: the line is the step's error, with no claim of a
    save, naming the checkpoint on disk (the last --ckpt-every's), which is kept, and the resume from it (s42)."""
    import t2i_cli.train as train

    real_save, saves = train.save_checkpoint, {"n": 0}

    def save(*a, **k):
        saves["n"] += 1
        if saves["n"] > 2:  # (steps 2 and 4 are saved; the save on the error is the third)
            raise OSError(errno.ENOSPC, "No space left on device", "checkpoint.safetensors")
        return real_save(*a, **k)

    monkeypatch.setattr(train, "save_checkpoint", save)
    failing_at(monkeypatch, 6, DataError("image x.png cannot be read; replace or remove it"))
    line = one_line_failure(run(*COMMON, "--ckpt-every", "2", "--out", tmp_path / "cut"), 1)
    monkeypatch.undo()
    assert line == "error: image x.png cannot be read; replace or remove it; its checkpoint of step 4 is kept; " \
                   f"once that is mended, resume with: t2i train --resume {tmp_path / 'cut'}", line
    assert saves["n"] == 3 and load_tensors(tmp_path / "cut" / CHECKPOINT)[1]["step"] == "4"


RANK_1_FAILS_AT_6 = """
import os, torch
from t2i_cli.errors import DataError
if os.environ.get("RANK") == "1":
    real, calls = torch.nn.utils.clip_grad_norm_, {"n": 0}
    def failing(*a, **k):
        calls["n"] += 1
        if calls["n"] == 6:
            raise DataError("image x.png cannot be read (rank 1); replace or remove it")
        return real(*a, **k)
    torch.nn.utils.clip_grad_norm_ = failing
"""


def test_under_torchrun_rank_0_says_the_checkpoint_another_ranks_error_made_it_save(tmp_path: Path):
    """A torchrun helper's finding: rank 1's picture unreadable at step 6, rank 0 stopped by the lost connection
    saved step 5 but said only "another torchrun process of this run stopped first": the steps looked lost."""
    from conftest import torchrun_t2i

    out = tmp_path / "run"
    proc = torchrun_t2i(tmp_path, RANK_1_FAILS_AT_6, "--stage", "dvae", "--steps", "8", "--ckpt-every", "100",
                        "--sample-every", "0", "--out", str(out))
    assert proc.returncode != 0
    saved = load_tensors(out / CHECKPOINT)[1]["step"]
    lines = [x for x in proc.stderr.splitlines() if x.startswith(("error:", "interrupted:"))]
    assert "error: image x.png cannot be read (rank 1); replace or remove it" in lines, proc.stderr
    rank0 = [x for x in lines if "rank 1" not in x]  # (stopped by the lost connection, or by torchrun's SIGTERM)
    assert saved == "5" and len(rank0) == 1 and f"t2i train --resume {out}" in rank0[0], proc.stderr


RANK_0_SAVES_SLOWLY = RANK_1_FAILS_AT_6 + """
import time
import t2i_cli.train as train
if os.environ.get("RANK") == "0":
    real_save = train.save_checkpoint
    def slow_save(*a, **k):
        time.sleep(4)  # (a large checkpoint on a slow disk: torchrun's SIGTERM comes in the middle)
        return real_save(*a, **k)
    train.save_checkpoint = slow_save
"""


def test_under_torchrun_a_stop_that_comes_during_the_save_says_the_step_saved(tmp_path: Path):
    """The torchrun helper's second finding: torchrun's SIGTERM, landing while rank 0 saved after rank 1's error,
    replaced the error with the generic `interrupted: RUN holds the run up to its last checkpoint`: no step."""
    from conftest import exit_codes, torchrun_t2i

    out = tmp_path / "run"
    proc = torchrun_t2i(tmp_path, RANK_0_SAVES_SLOWLY, "--stage", "dvae", "--steps", "8", "--ckpt-every", "100",
                        "--sample-every", "0", "--out", str(out))
    assert proc.returncode != 0 and load_tensors(out / CHECKPOINT)[1]["step"] == "5"
    rank0 = [x for x in proc.stderr.splitlines() if x.startswith(("error:", "interrupted:")) and "rank 1" not in x]
    assert len(rank0) == 1 and f"at step 5; checkpoint saved. Resume with: t2i train --resume {out}" in rank0[0] \
        or rank0[0].endswith(f"checkpoint saved at step 5; once that is mended, resume with: t2i train --resume "
                             f"{out}"), (proc.stderr, exit_codes(tmp_path))
