"""Pins of the s35 mutation audit of the training loop (train.py): checkpoints, resume, metrics.jsonl, samples, EMA,
precision and stopping. Each test fails under a small change of that code which the rest of the suite let through;
most drive train_loop directly with a stage made here (a linear model on 8 fixed pictures), so they run in
seconds."""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch
from torch import nn

from t2i_cli.errors import T2IError, WeightsError
from t2i_cli.models.dvae import DVAE, DVAEConfig
from t2i_cli.train import (
    BEST,
    CHECKPOINT,
    RUN_CONFIG,
    Dist,
    Diverged,
    Ema,
    StepBatches,
    TrainConfig,
    _check_param_groups,
    clean_stale_temporaries,
    export_run,
    exported_model,
    finished,
    lr_at,
    make_optimizer,
    read_metrics,
    read_run_config,
    stalled,
    stopped_early,
    train_loop,
)
from t2i_cli.weights import load_tensors, non_finite, read_metadata, save_model


@dataclasses.dataclass
class _NetConfig:
    width: int = 12


class _Net(nn.Module):
    """A linear map of a 3x2x2 picture to its mean, with a norm: matrices, biases and gains to train."""

    def __init__(self) -> None:
        super().__init__()
        self.cfg = _NetConfig()
        self.lin = nn.Linear(12, 4)
        self.out = nn.Linear(4, 1)
        self.norm = nn.LayerNorm(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.norm(self.lin(x)))


class _Stage:
    """What train_loop asks of a stage, around _Net: validation losses as scripted (val_script) or measured, and a
    record of every sample grid's step and the histories it was drawn with."""

    procedural = False
    curve = "loss"

    def __init__(self, kind: str = "dvae", val_script: list[float] | None = None, n: int = 8):
        torch.manual_seed(0)
        self.kind, self.model = kind, _Net()
        gen = torch.Generator().manual_seed(1)
        self.dataset = [(torch.rand(3, 2, 2, generator=gen), f"picture {i}") for i in range(n)]
        self.val = self.dataset[:2]
        self.val_script = list(val_script) if val_script is not None else None
        self.samples: list[tuple[int, list, list]] = []

    def loss(self, model, images, captions, step):
        x = images.flatten(1)
        loss = (model(x).squeeze(1) - x.mean(1)).square().mean()
        return loss, {"extra": 1.0}

    def validate(self) -> dict[str, float]:
        if self.val_script is not None:
            return {"val_loss": self.val_script.pop(0)}
        with torch.no_grad():
            x = torch.stack([im for im, _ in self.val]).flatten(1)
            return {"val_loss": float((self.model(x).squeeze(1) - x.mean(1)).square().mean())}

    def write_samples(self, run_dir, step, history, val_history=()) -> None:
        self.samples.append((step, list(history), list(val_history)))


def _cfg(**kw) -> TrainConfig:
    base = dict(stage="dvae", data="pictures", steps=8, batch_size=2, lr=0.05, warmup=0, num_workers=0, log_every=1,
                sample_every=4, ckpt_every=4, precision="fp32", seed=0)
    return TrainConfig(**(base | kw))


def _rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _train(run_dir: Path, stage: _Stage | None = None, warned: list | None = None, progressed: list | None = None,
           **kw) -> tuple[_Stage, dict]:
    run_dir.mkdir(parents=True, exist_ok=True)
    stage = stage or _Stage()
    out = train_loop(stage, _cfg(**kw), run_dir, Dist(),
                     progress=None if progressed is None else (lambda s, m: progressed.append((s, dict(m)))),
                     warn=None if warned is None else warned.append)
    return stage, out


# ----------------------------------------------------------------------------- the optimizer and its learning rate
def test_weight_decay_falls_on_matrices_alone_and_adam_remembers_with_betas_0_9_and_0_95():
    """make_optimizer: --weight-decay on the two matrices, none on biases and the norm's gains; betas (0.9, 0.95)."""
    model = _Net()
    decay, rest = make_optimizer(model, _cfg(weight_decay=0.3)).param_groups
    assert {id(p) for p in decay["params"]} == {id(model.lin.weight), id(model.out.weight)}
    assert {id(p) for p in rest["params"]} == {id(model.lin.bias), id(model.out.bias), id(model.norm.weight),
                                               id(model.norm.bias)}
    assert (decay["weight_decay"], rest["weight_decay"]) == (0.3, 0.0)
    assert decay["betas"] == rest["betas"] == (0.9, 0.95)


def test_each_optimizer_step_takes_the_scheduled_learning_rate_and_logs_it(tmp_path, monkeypatch):
    """The schedule reaches the optimizer (not only metrics.jsonl) at every step, warm-up included."""
    seen, real = [], torch.optim.AdamW.step

    def step(self, *a, **k):
        seen.append(self.param_groups[0]["lr"])
        return real(self, *a, **k)

    monkeypatch.setattr(torch.optim.AdamW, "step", step)
    cfg = _cfg(warmup=2, lr_min_ratio=0.0)
    _train(tmp_path / "r", warmup=2, lr_min_ratio=0.0)
    assert seen == [lr_at(cfg, s) for s in range(8)]
    assert seen[0] == pytest.approx(0.025) and seen[1] == pytest.approx(0.05)  # warm-up: 2 steps up to --lr
    logged = [r["lr"] for r in _rows(tmp_path / "r") if "lr" in r]
    assert logged == seen


# ----------------------------------------------------------------------------- the batches of a step
class _Pictures:
    """A finite source of n numbered items that records the epoch StepBatches sets on it."""

    def __init__(self, n: int):
        self.n, self.epoch, self.epochs = n, None, []

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        self.epochs.append(self.epoch)
        return torch.full((1,), float(i)), f"item {i} epoch {self.epoch}"


def _order(source, cfg: TrainConfig, rank: int = 0, n_procs: int = 1, steps=range(4)) -> list[int]:
    batches = StepBatches(source, cfg, rank, n_procs, procedural=False)
    return [int(x) for s in steps for x in batches[s][0].flatten()]


def test_each_epoch_is_its_own_permutation_of_the_source_drawn_from_the_seed():
    """StepBatches: a finite source is read in a new order each epoch, and another --seed reads it in another."""
    cfg = _cfg(batch_size=4, steps=4)
    first = _order(_Pictures(8), cfg)
    assert sorted(first[:8]) == sorted(first[8:]) == list(range(8))  # two epochs, each every item once
    assert first[:8] != first[8:]  # not the same order twice
    assert first != _order(_Pictures(8), dataclasses.replace(cfg, seed=1))  # --seed draws another order
    assert first == _order(_Pictures(8), cfg)


def test_each_process_takes_its_own_share_of_a_steps_batch():
    """Under torchrun each process reads its own half of the step's global batch, not both the same half."""
    cfg = _cfg(batch_size=4, steps=2)
    whole = _order(_Pictures(8), cfg, steps=[1])
    shares = [_order(_Pictures(8), cfg, rank, 2, steps=[1]) for rank in (0, 1)]
    assert shares[0] + shares[1] == whole and shares[0] != shares[1]


# ----------------------------------------------------------------------------- the loop: what it logs and keeps
def test_a_run_logs_its_last_step_off_the_log_boundary_and_validates_it_once(tmp_path):
    """metrics.jsonl: the precision line at the start, the last step's training loss, its validation and sample
    grid once (the last step is also a --sample-every step), then the finished line."""
    stage, _ = _train(tmp_path / "r", log_every=3)
    assert [s[0] for s in stage.samples] == [4, 8]
    rows = _rows(tmp_path / "r")
    assert rows[0] == {"step": 0, "time": rows[0]["time"], "precision": "fp32", "threads": rows[0]["threads"]}
    assert [r["step"] for r in rows if "loss" in r] == [3, 6, 8]  # 8: the run's last, though not a multiple of 3
    assert rows[-1]["finished"] is True and rows[-1]["step"] == 8


def test_the_ema_too_short_note_is_said_when_a_run_starts_not_again_on_resume(tmp_path):
    """Ema.covers' note (a decay the run is too short to reach) is said once, at the start, not at every resume."""
    warned: list[str] = []
    _train(tmp_path / "r", warned=warned, steps=4, ema=0.999)
    assert len(warned) == 1 and "ema=0.999: in a run of 4 steps" in warned[0]  # (from Python: the field)
    again: list[str] = []
    _train(tmp_path / "r", warned=again, steps=8, ema=0.999)
    assert again == []


def test_the_clip_of_gradients_is_the_runs_grad_clip(tmp_path, monkeypatch):
    """The gradient norm is clipped to the run's grad_clip, not to a constant."""
    seen, real = [], torch.nn.utils.clip_grad_norm_

    def clip(params, max_norm, *a, **k):
        seen.append(max_norm)
        return real(params, max_norm, *a, **k)

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", clip)
    _train(tmp_path / "r", grad_clip=0.25, steps=2)
    assert seen == [0.25, 0.25]


def test_the_average_is_folded_in_after_each_step_with_the_count_of_steps_done(tmp_path, monkeypatch):
    """Ema.update hears n after the n-th step (1 for the first: its warm-up bound (1 + n) / (10 + n)), a resume
    going on with the count."""
    counts, real = [], Ema.update
    monkeypatch.setattr(Ema, "update", lambda self, done: (counts.append(done), real(self, done)))
    _train(tmp_path / "r", ema=0.5, steps=4)
    _train(tmp_path / "r", ema=0.5, steps=6)
    assert counts == [1, 2, 3, 4, 5, 6]


def test_a_non_finite_average_is_never_checkpointed(tmp_path, monkeypatch):
    """The checkpoint's backstop checks the average (--ema) as well as the model: a NaN average would be written
    as the run's model file and exported."""
    real = Ema.update

    def update(self, done):
        real(self, done)
        if done == 6:
            next(iter(self.avg.values())).fill_(math.nan)

    monkeypatch.setattr(Ema, "update", update)
    with pytest.raises(Diverged, match=r"diverged at step 8 \(NaN or infinite weights\); the last checkpoint "
                                       r"\(step 4\)"):
        _train(tmp_path / "r", ema=0.5, ckpt_every=4)
    assert read_metadata(tmp_path / "r" / CHECKPOINT)["step"] == "4"
    assert not non_finite(load_tensors(tmp_path / "r" / "dvae.safetensors")[0])


@pytest.mark.parametrize("kind", ["transformer", "dvae"])
def test_the_best_model_is_kept_for_transformer_and_clip_runs_at_the_latest_lowest_validation(tmp_path, kind):
    """A tie with the lowest validation loss so far is a new best (the later model); a dVAE run keeps none (a
    later stage is trained on its final codes)."""
    _train(tmp_path / "r", _Stage(kind=kind, val_script=[0.5, 0.5]))
    best = tmp_path / "r" / BEST
    if kind == "dvae":
        assert not best.exists()
    else:
        assert read_metadata(best)["step"] == "8"


def test_resuming_a_run_stopped_before_its_final_validation_writes_it(tmp_path):
    """A checkpoint at the last step without the validation and samples after it (a stop between the two): the
    resume trains nothing and writes them, and only then says the run finished."""
    _train(tmp_path / "r", sample_every=0)
    rows = _rows(tmp_path / "r")
    (tmp_path / "r" / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows
                                                          if "val_loss" not in r and "finished" not in r))
    stage, _ = _train(tmp_path / "r", sample_every=4)
    assert [s[0] for s in stage.samples] == [8]
    rows = _rows(tmp_path / "r")
    assert [r["step"] for r in rows if "val_loss" in r] == [8] and rows[-1] == {**rows[-1], "finished": True}


# ----------------------------------------------------------------------------- what a checkpoint's resume takes
def test_an_average_stored_in_another_dtype_is_not_this_runs(tmp_path):
    """Ema.load: the checkpoint's "ema." tensors are float32 (an fp16 copy would round the average at resume)."""
    model = _Net()
    ema = Ema(model, 0.9)
    tensors = {f"ema.{k}": v.half() for k, v in ema.avg.items()}
    with pytest.raises(T2IError, match="does not hold this run's average"):
        Ema(_Net(), 0.9).load(tensors, tmp_path / CHECKPOINT)
    Ema(_Net(), 0.9).load({f"ema.{k}": v for k, v in ema.avg.items()}, tmp_path / CHECKPOINT)  # float32: taken


def _checkpoint_free() -> tuple[_Net, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = _Net()
    opt = make_optimizer(model, _cfg())
    model(torch.rand(2, 12)).square().mean().backward()
    opt.step()
    return model, opt


def test_saved_optimizer_settings_must_be_as_many_groups_with_finite_numbers():
    """A checkpoint's param_groups (JSON anyone can edit): a NaN beta or an infinite lr is refused at resume, not
    trained with (NaN weights from the first step)."""
    _, opt = _checkpoint_free()
    groups = opt.state_dict()["param_groups"]
    _check_param_groups(json.loads(json.dumps(groups)), opt)
    with pytest.raises(ValueError, match="parameter groups are not this optimizer's"):
        _check_param_groups(json.loads(json.dumps(groups[:1])), opt)
    edited = json.loads(json.dumps(groups))
    edited[0]["betas"] = [math.nan, 0.95]
    with pytest.raises(ValueError, match="its setting betas"):
        _check_param_groups(edited, opt)
    edited[0]["betas"], edited[1]["lr"] = [0.9, 0.95], math.inf
    with pytest.raises(ValueError, match="its setting lr"):
        _check_param_groups(edited, opt)


# ----------------------------------------------------------------------------- the run config's limits
@pytest.mark.parametrize(("field", "value", "says"), [
    ("precision", "fp16", "precision must be one of auto, bf16, fp32"),
    ("steps", True, "steps must be an integer"),
    ("val_fraction", 0.6, "val_fraction must be between 0.0 and 0.5"),
])
def test_a_run_config_outside_what_the_command_line_takes_is_refused(field, value, says):
    """TrainConfig.check (a run folder's train_config.json read back): a precision t2i has no autocast for, true
    for a count of steps, more than half the pictures held out for validation."""
    with pytest.raises((ValueError, TypeError), match=says):  # (TypeError: a value of the wrong type)
        dataclasses.replace(_cfg(), **{field: value}).check()


# ----------------------------------------------------------------------------- --patience: an early stop is an end
def test_an_early_stop_ends_the_run_at_that_step_for_its_config_its_log_and_its_progress(tmp_path):
    """--patience 1, validations every 2 steps: step 4's loss is worse than step 2's, so the run stops at 4 and
    that becomes its length: train_config.json and the checkpoint say 4 steps, the last step's training loss is
    logged though 4 is off --log-every 3, progress hears the new length, and the run counts as finished there."""
    run_dir = tmp_path / "r"
    run_dir.mkdir()
    (run_dir / RUN_CONFIG).write_text(json.dumps(_cfg(steps=20, patience=1).to_json()))
    warned: list[str] = []
    progressed: list[tuple[int, dict]] = []
    _, out = _train(run_dir, _Stage(val_script=[1.0, 2.0]), warned, progressed, steps=20, patience=1,
                    sample_every=2, log_every=3)
    assert out["step"] == 4
    assert read_run_config(run_dir).steps == 4
    assert json.loads(read_metadata(run_dir / CHECKPOINT)["train_config"])["steps"] == 4
    rows = _rows(run_dir)
    assert [r["step"] for r in rows if "loss" in r] == [3, 4]
    assert [r["step"] for r in rows if "early_stop" in r] == [4] and len(warned) == 1
    assert progressed[-1][0] == 4 and progressed[-1][1]["steps"] == 4
    assert all("steps" not in m for _, m in progressed[:-1])
    assert finished(run_dir, 4) and stopped_early(run_dir, 4) and not finished(run_dir, 20)


# ----------------------------------------------------------------------------- what export and resume read back
def _fake_transformer_run(run_dir: Path, val: list[tuple[int, float]], best_step: int) -> Path:
    run_dir.mkdir(parents=True)
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps({"step": s, "val_loss": v}) + "\n" for s, v in val))
    save_model(_Net(), run_dir / "transformer.safetensors", "transformer", step=val[-1][0])
    save_model(_Net(), run_dir / BEST, "transformer", step=best_step)
    return run_dir


def test_export_takes_the_best_model_of_a_tie_at_the_later_step_as_training_wrote_it(tmp_path):
    """Training writes best.safetensors again at a validation loss equal to the lowest: the later step's model is
    the best one, and export finds it so (reading the tie as the earlier step, it exported the overfitted final)."""
    run_dir = _fake_transformer_run(tmp_path / "r", [(2, 2.0), (4, 1.0), (6, 1.0), (8, 3.0)], best_step=6)
    chosen, why = exported_model(run_dir, "transformer")
    assert chosen == run_dir / BEST and "exported the step-6 transformer" in why


def test_an_overlong_metrics_line_is_skipped_not_read(tmp_path):
    """A line over 64 KiB was not written by t2i: it is passed over whole (here 64 KiB of blanks before a row:
    the row read on its own from the cut would be a step-2 validation loss), the lines around it kept."""
    path = tmp_path / "metrics.jsonl"
    long = " " * ((1 << 16) + 1) + json.dumps({"step": 2, "val_loss": 0.5})
    path.write_text(json.dumps({"step": 1, "loss": 1.0}) + "\n" + long + "\n" + json.dumps({"step": 3}) + "\n")
    assert [r["step"] for r in read_metrics(path)] == [1, 3]


def test_a_resume_removes_the_temporaries_a_kill_left_among_the_samples_too(tmp_path):
    (tmp_path / "samples").mkdir()
    left = [tmp_path / ".checkpoint.safetensors.ab12cd34.tmp", tmp_path / "samples" / ".step-4.png.cd34ef56.tmp"]
    for p in left:
        p.write_bytes(b"half")
    kept = tmp_path / "samples" / "step-4.png"
    kept.write_bytes(b"png")
    assert sorted(clean_stale_temporaries(tmp_path)) == sorted(left)
    assert not any(p.exists() for p in left) and kept.exists()



def test_a_nan_first_validation_is_no_best_to_stall_against():
    """stalled() leaves NaN validation losses out of the best before the last `patience`: a run whose first
    validation was NaN is not stopped at its second, whatever that one's loss (min() over a NaN first is NaN, and
    nothing is at or below it)."""
    assert not stalled([(2, math.nan), (4, 1.0)], 1)
    assert not stalled([(2, math.nan), (4, 1.0), (6, 0.9)], 1)
    assert stalled([(2, math.nan), (4, 1.0), (6, 1.1)], 1)


def test_export_of_a_run_with_nan_weights_says_to_train_again_with_a_lower_lr(tmp_path):
    """A model file with NaN weights (a run from before t2i stopped diverged runs) is refused by export with the
    advice for a run, not load's advice for a damaged weights file ("export it again from a good checkpoint")."""
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / RUN_CONFIG).write_text(json.dumps(_cfg().to_json()))
    torch.manual_seed(0)
    model = DVAE(DVAEConfig(image_side=16, downsample=4, n_codes=32, n_hid=8, code_dim=8))
    with torch.no_grad():
        next(model.parameters()).fill_(math.nan)
    save_model(model, tmp_path / "r" / "dvae.safetensors", "dvae")
    with pytest.raises(WeightsError, match="its training diverged; train it again with a lower lr "):  # (Python's
        # word for it: TrainConfig.lr; the command line's --lr, test_s45_hT)
        export_run(tmp_path / "r", tmp_path / "w")
    assert not (tmp_path / "w").exists()
