"""A training run whose loss or gradients turn NaN or infinite stops at that step in one line, keeps its last
checkpoint (finite, loadable, resumable) and never writes or exports a NaN model. Divergence is injected (a NaN
batch, a NaN or infinite loss, a NaN gradient): a real one takes a model and data too large for a test (the
tiny preset at --lr 1 does not diverge: clipped AdamW steps stay bounded)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from conftest import build_tiny_folder, exit_codes, one_line_failure, run, torchrun_t2i
from t2i_cli.train import CHECKPOINT, StepBatches
from t2i_cli.weights import load_model, load_tensors, read_metadata

TINY = ["--preset", "tiny", "--workers", "0", "-q", "--log-every", "1", "--device", "cpu"]


def finite_checkpoint(run_dir: Path, kind: str) -> int:
    """The step of a run's checkpoint, once it and the model file beside it are finite, at the same step, and
    the model file loads."""
    tensors, meta = load_tensors(run_dir / CHECKPOINT)
    assert all(bool(torch.isfinite(v).all()) for v in tensors.values() if v.is_floating_point())
    model = load_model(run_dir / f"{kind}.safetensors", kind)
    assert all(bool(torch.isfinite(v).all()) for v in model.state_dict().values() if v.is_floating_point())
    assert read_metadata(run_dir / f"{kind}.safetensors")["step"] == meta["step"]
    return int(meta["step"])


def metrics(run_dir: Path) -> list[dict]:
    """metrics.jsonl as strict JSON: a NaN written as a number fails here."""
    def refuse(name):
        raise ValueError(f"{name} in metrics.jsonl")

    return [json.loads(x, parse_constant=refuse) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]


def nan_batches_from(monkeypatch, first: int) -> None:
    """Every training batch from step index `first` on is NaN (as a model gone wrong makes its activations)."""
    real = StepBatches.__getitem__

    def getitem(self, step):
        images, captions = real(self, step)
        return (images * float("nan") if step >= first else images), captions

    monkeypatch.setattr(StepBatches, "__getitem__", getitem)


def test_a_dvae_run_that_diverges_stops_at_that_step_and_keeps_its_last_checkpoint(tmp_path, monkeypatch):
    """NaN latents at a step that logs code usage made an internal error (bincount of NaN codes); now the run
    stops in one line at that step, its checkpoint and metrics intact, and the folder still resumes."""
    out = tmp_path / "run"
    nan_batches_from(monkeypatch, 3)  # the 4th step
    line = one_line_failure(run("train", "--stage", "dvae", "--steps", "8", "--ckpt-every", "2", "--out", out,
                                *TINY), 1)
    assert "training diverged at step 4 (loss nan)" in line, line
    assert f"the last checkpoint (step 2) is kept in {out}" in line and "--lr (this run's is 0.001)" in line, line
    assert line.endswith(f"t2i train --resume {out} --lr 0.0001"), line
    assert finite_checkpoint(out, "dvae") == 2
    rows = metrics(out)
    assert [r["step"] for r in rows if "loss" in r] == [1, 2, 3]
    assert [r["step"] for r in rows if "diverged" in r] == [4]
    before = (out / CHECKPOINT).read_bytes()
    # The same settings replay the same steps, as the line says, and stop alike without touching the checkpoint.
    again = one_line_failure(run("train", "--resume", out, "-q", "--workers", "0"), 1)
    assert again == line and (out / CHECKPOINT).read_bytes() == before
    monkeypatch.undo()  # whatever made the NaN is gone: the command the line gives resumes from step 2
    r = run("train", "--resume", out, "--lr", "0.0001", "-q", "--workers", "0")
    assert r.exit_code == 0, r.stderr
    assert json.loads((out / "train_config.json").read_text())["lr"] == 0.0001
    assert finite_checkpoint(out, "dvae") == 8
    rows = metrics(out)
    assert [r["step"] for r in rows if "loss" in r] == list(range(1, 9))
    assert not any("diverged" in r for r in rows)


def test_a_transformer_run_with_an_infinite_loss_stops_and_exports_its_last_checkpoint(tmp_path, monkeypatch):
    from t2i_cli.stages import TransformerStage

    deps = build_tiny_folder(tmp_path / "deps", with_clip=False)
    real = TransformerStage.loss

    def loss(self, model, images, captions, step):
        value, parts = real(self, model, images, captions, step)
        return (value * float("inf") if step >= 4 else value), parts

    monkeypatch.setattr(TransformerStage, "loss", loss)
    out = tmp_path / "run"
    line = one_line_failure(run("train", "--stage", "transformer", "--steps", "8", "--ckpt-every", "2",
                                "--dvae", deps, "--tokenizer", deps, "--out", out, *TINY), 1)
    assert "training diverged at step 5 (loss inf)" in line and "the last checkpoint (step 4)" in line, line
    assert finite_checkpoint(out, "transformer") == 4
    assert [r["step"] for r in metrics(out) if "loss" in r] == [1, 2, 3, 4]
    r = run("export", out, "--to", tmp_path / "weights")
    assert r.exit_code == 0, r.stderr
    assert read_metadata(tmp_path / "weights" / "transformer.safetensors")["step"] == "4"


def test_a_nan_gradient_with_a_finite_loss_stops_before_the_first_checkpoint(tmp_path, monkeypatch):
    """The gradient norm is checked too; a run that diverges before its first checkpoint says there is no model."""
    from t2i_cli.stages import ClipStage

    deps = build_tiny_folder(tmp_path / "deps", with_clip=False)
    real = ClipStage.loss

    def loss(self, model, images, captions, step):
        value, parts = real(self, model, images, captions, step)
        if step >= 1:  # 0 * sqrt(0): 0 forward, NaN backward
            z = next(model.parameters()).sum()
            value = value + 0 * (z - z).sqrt()
        return value, parts

    monkeypatch.setattr(ClipStage, "loss", loss)
    out = tmp_path / "run"
    line = one_line_failure(run("train", "--stage", "clip", "--steps", "6", "--ckpt-every", "4",
                                "--tokenizer", deps, "--out", out, *TINY), 1)
    assert "training diverged at step 2 (loss " in line and ", gradient norm nan)" in line, line
    assert "before its first checkpoint (--ckpt-every 4)" in line, line
    assert not (out / CHECKPOINT).exists() and not (out / "clip.safetensors").exists()
    assert [r["step"] for r in metrics(out) if "loss" in r] == [1]
    assert "loss nan" not in line


def test_weights_that_turn_nan_are_never_checkpointed(tmp_path, monkeypatch):
    """The backstop: weights that become NaN behind a finite loss and gradient are not saved over a checkpoint."""
    real = torch.optim.AdamW.step
    calls = {"n": 0}

    def poisoning_step(self, *a, **k):
        result = real(self, *a, **k)
        calls["n"] += 1
        if calls["n"] == 4:
            with torch.no_grad():
                self.param_groups[0]["params"][0].fill_(float("nan"))
        return result

    monkeypatch.setattr(torch.optim.AdamW, "step", poisoning_step)
    out = tmp_path / "run"
    line = one_line_failure(run("train", "--stage", "dvae", "--steps", "8", "--ckpt-every", "2", "--out", out,
                                *TINY), 1)
    assert "training diverged at step 4 (NaN or infinite weights)" in line and "(step 2)" in line, line
    assert finite_checkpoint(out, "dvae") == 2


def test_export_refuses_a_model_with_nan_weights(tmp_path, monkeypatch):
    """A run that diverged before t2i stopped such runs holds NaN weights: export names the file, writes nothing."""
    out = tmp_path / "run"
    r = run("train", "--stage", "dvae", "--steps", "2", "--out", out, *TINY)
    assert r.exit_code == 0, r.stderr
    from t2i_cli.weights import save_tensors

    tensors, meta = load_tensors(out / "dvae.safetensors")
    name = sorted(k for k, v in tensors.items() if v.is_floating_point())[0]
    tensors[name][...] = float("nan")
    save_tensors(out / "dvae.safetensors", tensors, meta)
    line = one_line_failure(run("export", out, "--to", tmp_path / "weights"), 1)
    assert f"{out / 'dvae.safetensors'} holds NaN or infinite weights" in line and name in line, line
    assert not (tmp_path / "weights").exists()


def test_torchrun_stops_every_process_when_one_diverges(tmp_path: Path):
    """Only rank 1's loss turns NaN: both processes stop at that step on their own (none hangs, none is killed
    by torchrun), rank 0 alone says why, and the checkpoint before it is kept."""
    patch = """
from t2i_cli.stages import DVAEStage
real = DVAEStage.loss
def loss(self, model, images, captions, step):
    value, parts = real(self, model, images, captions, step)
    return (value * float("nan") if step >= 3 and os.environ["RANK"] == "1" else value), parts
DVAEStage.loss = loss
"""
    out = tmp_path / "run"
    proc = torchrun_t2i(tmp_path, patch, "--stage", "dvae", "--steps", "8", "--ckpt-every", "2", "--log-every", "1",
                        "--out", str(out))
    assert proc.returncode != 0
    assert exit_codes(tmp_path) == ["1", "1"], proc.stderr[-3000:]
    said = [ln for ln in proc.stderr.splitlines() if "training diverged" in ln]
    assert len(said) == 1 and said[0].startswith("error: training diverged at step 4 (loss nan)"), proc.stderr[-3000:]
    assert finite_checkpoint(out, "dvae") == 2
