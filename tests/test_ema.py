"""`t2i train --ema`: an average of the weights that validation, samples and the run's model files use, while
the training trajectory itself stays as it was; carried by the checkpoint so a resume is exact."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from conftest import run, signal_after_step
from t2i_cli.cli import app
from t2i_cli.train import BEST, CHECKPOINT, Ema, exported_model, sync_model_file
from t2i_cli.weights import load_tensors, read_metadata

runner = CliRunner()


def t2i(*args) -> None:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output


def val_losses(run_dir: Path) -> list[float]:
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r["val_loss"] for r in rows if "val_loss" in r]


def test_the_average_follows_its_formula_and_applied_puts_the_weights_back():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4))
    model.register_buffer("counter", torch.tensor(7))  # not floating: left out of the average
    ema = Ema(model, decay=0.9)
    assert set(ema.avg) == {"0.weight", "0.bias", "1.weight", "1.bias"}
    expected = {k: v.clone() for k, v in ema.avg.items()}
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    for n in range(1, 121):
        opt.zero_grad()
        model(torch.randn(5, 3)).square().sum().backward()
        opt.step()
        ema.update(n)
        d = min(0.9, (1 + n) / (10 + n))  # the warm-up bound until n = 80, then the decay
        for k, v in model.state_dict().items():
            if k in expected:
                expected[k] = d * expected[k] + (1 - d) * v
    own = {k: v.clone() for k, v in model.state_dict().items()}
    for k in expected:
        torch.testing.assert_close(ema.avg[k], expected[k])
        assert not torch.equal(ema.avg[k], own[k])  # an average, not the last weights
    with ema.applied():
        assert all(torch.equal(model.state_dict()[k], ema.avg[k]) for k in ema.avg)
        assert model.state_dict()["counter"].item() == 7
    assert all(torch.equal(model.state_dict()[k], own[k]) for k in own)  # put back exactly
    with pytest.raises(RuntimeError), ema.applied():  # put back on an error too
        raise RuntimeError("boom")
    assert all(torch.equal(model.state_dict()[k], own[k]) for k in own)


@pytest.mark.parametrize("at", range(1, 9))
def test_a_stop_while_the_average_is_swapped_leaves_no_tensor_half_swapped(monkeypatch, at):
    """Ctrl-C lands between two tensors' copies, on the way in (copies 1-4) or out (5-8): inside hold() it waits
    for the copies to finish, the weights are put back whole, and only then does the stop go on to the
    checkpoint."""
    from t2i_cli.train import _Stops

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    ema = Ema(model, decay=0.9)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)  # the weights moved on; the average did not
    own = {k: v.clone() for k, v in model.state_dict().items()}
    stops = _Stops()
    real_copy, calls = torch.Tensor.copy_, {"n": 0}

    def copy(self, *a, **k):
        calls["n"] += 1
        if calls["n"] == at:
            stops._handler(signal.SIGINT, None)  # what the signal does
        return real_copy(self, *a, **k)

    try:
        monkeypatch.setattr(torch.Tensor, "copy_", copy)
        with pytest.raises(KeyboardInterrupt), ema.applied(stops.held):
            pass
        monkeypatch.setattr(torch.Tensor, "copy_", real_copy)
        assert calls["n"] == 8  # every tensor in and out
        assert all(torch.equal(model.state_dict()[k], own[k]) for k in own)  # every tensor its own again
    finally:
        stops.restore()


def test_a_decay_that_the_warm_up_bound_keeps_out_of_reach_is_named():
    model = nn.Linear(2, 2)
    assert Ema(model, 0.9).covers(1000) is None  # (1 + n) / (10 + n) passes 0.9 at n = 80
    text = Ema(model, 0.999).covers(1500)
    assert text and "ema=0.999" in text and "0.9940" in text and "last 167 steps" in text


@pytest.fixture(scope="module")
def deps(tmp_path_factory) -> list:
    root = tmp_path_factory.mktemp("deps")
    t2i("train", "--stage", "tokenizer", "--preset", "tiny", "-q", "--out", root / "tok")
    t2i("train", "--stage", "dvae", "--preset", "tiny", "--steps", "2", "--workers", "0", "-q", "--out", root / "dvae")
    return ["--dvae", root / "dvae", "--tokenizer", root / "tok"]


COMMON = ["train", "--stage", "transformer", "--preset", "tiny", "--workers", "0", "-q", "--steps", "8",
          "--sample-every", "4", "--device", "cpu"]


def test_ema_leaves_training_as_it_was_and_validates_and_saves_the_average(deps, tmp_path):
    t2i(*COMMON, *deps, "--out", tmp_path / "plain")
    t2i(*COMMON, *deps, "--ema", "0.9", "--out", tmp_path / "ema")
    plain, _ = load_tensors(tmp_path / "plain" / CHECKPOINT)
    averaged, meta = load_tensors(tmp_path / "ema" / CHECKPOINT)
    model_keys = [k for k in plain if k.startswith("model.")]
    # the optimizer saw the same weights, step for step: the average is beside them, not in them
    assert all(torch.equal(plain[k], averaged[k]) for k in plain)
    assert {k[len("ema."):] for k in averaged if k.startswith("ema.")} == {k[len("model."):] for k in model_keys}
    assert json.loads(meta["train_config"])["ema"] == 0.9
    saved, saved_meta = load_tensors(tmp_path / "ema" / "transformer.safetensors")
    assert saved_meta["step"] == "8"
    assert all(torch.equal(saved[k], averaged["ema." + k]) for k in saved)
    assert not all(torch.equal(saved[k], averaged["model." + k]) for k in saved)
    vals = val_losses(tmp_path / "ema")
    low_step = 4 * (1 + min(range(len(vals)), key=lambda i: (vals[i], -i)))
    assert read_metadata(tmp_path / "ema" / BEST)["step"] == str(low_step)
    if low_step == 8:  # the best model is the average too
        best, _ = load_tensors(tmp_path / "ema" / BEST)
        assert all(torch.equal(best[k], saved[k]) for k in saved)
    # validation measured the average: the same trajectory, other validation losses
    assert len(vals) == 2 and vals != val_losses(tmp_path / "plain")
    # what `t2i export` writes is the average
    t2i("export", tmp_path / "ema", "--to", tmp_path / "w")
    exported, _ = load_tensors(tmp_path / "w" / "transformer.safetensors")
    source, _ = load_tensors(exported_model(tmp_path / "ema", "transformer")[0])
    assert set(exported) == set(source) and all(torch.equal(exported[k], source[k]) for k in exported)


def test_a_kill_between_the_checkpoint_and_the_model_file_is_repaired_with_the_average(deps, tmp_path):
    t2i(*COMMON, *deps, "--ema", "0.9", "--out", tmp_path / "r")
    ckpt, _ = load_tensors(tmp_path / "r" / CHECKPOINT)
    (tmp_path / "r" / "transformer.safetensors").unlink()
    assert sync_model_file(tmp_path / "r", "transformer")
    saved, _ = load_tensors(tmp_path / "r" / "transformer.safetensors")
    assert all(torch.equal(saved[k], ckpt["ema." + k]) for k in saved)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_run_with_ema_resumes_to_the_same_average(deps, tmp_path, monkeypatch, signum):
    common = [*COMMON, *deps, "--ema", "0.8", "--ckpt-every", "100"]
    t2i(*common, "--out", tmp_path / "full")
    undo = signal_after_step(monkeypatch, 5, signum)
    result = runner.invoke(app, [str(a) for a in common] + ["--out", str(tmp_path / "cut")])
    assert result.exit_code == 130, result.output
    undo()
    assert load_tensors(tmp_path / "cut" / CHECKPOINT)[1]["step"] == "5"
    t2i("train", "--resume", tmp_path / "cut", "-q")
    full, _ = load_tensors(tmp_path / "full" / CHECKPOINT)
    cut, _ = load_tensors(tmp_path / "cut" / CHECKPOINT)
    assert any(k.startswith("ema.") for k in full) and set(full) == set(cut)
    assert all(torch.equal(full[k], cut[k]) for k in full), "resumed average differs from the uninterrupted one"
    assert val_losses(tmp_path / "cut") == val_losses(tmp_path / "full")


def test_a_checkpoint_without_its_average_is_refused_not_restarted(deps, tmp_path):
    from t2i_cli.weights import save_tensors

    t2i(*COMMON, *deps, "--ema", "0.9", "--out", tmp_path / "r")
    tensors, meta = load_tensors(tmp_path / "r" / CHECKPOINT)
    save_tensors(tmp_path / "r" / CHECKPOINT, {k: v for k, v in tensors.items() if not k.startswith("ema.")}, meta)
    r = run("train", "--resume", tmp_path / "r", "--steps", "10", "-q")
    assert r.exit_code == 1 and "average of the weights" in r.stderr and "Traceback" not in r.stderr
    t2i(*COMMON, *deps, "--out", tmp_path / "plain")  # and a run without --ema refuses a checkpoint that has one
    save_tensors(tmp_path / "plain" / CHECKPOINT, tensors, meta)
    r = run("train", "--resume", tmp_path / "plain", "--steps", "10", "-q")
    assert r.exit_code == 1 and "--ema" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("args, says", [
    (["--stage", "tokenizer", "--ema", "0.9"], "--ema does not apply to the tokenizer stage"),
    (["--stage", "dvae", "--ema", "1"], "--ema must be between 0.0 and 0.99999"),
    (["--stage", "dvae", "--ema", "-0.5"], "--ema must be between 0.0 and 0.99999"),
])
def test_ema_is_refused_where_it_cannot_apply(tmp_path, args, says):
    r = run("train", "--preset", "tiny", "--out", tmp_path / "r", *args)
    assert r.exit_code == 2 and says in r.stderr, r.stderr
    assert not (tmp_path / "r").exists()


def test_a_resume_cannot_change_ema_and_a_whole_run_records_it(deps, tmp_path):
    from t2i_cli.recipe import plan_settings

    t2i(*COMMON, *deps, "--out", tmp_path / "r")
    r = run("train", "--resume", tmp_path / "r", "--steps", "10", "--ema", "0.9")
    assert r.exit_code == 2 and "--ema cannot change a run that has started" in r.stderr
    r = run("train", "--stage", "all", "--out", tmp_path / "all", "--preset", "tiny", "--steps", "1", "--workers", "0",
            "--device", "cpu", "-q", "--ema", "0.5")
    assert r.exit_code == 0, r.stderr
    assert json.loads((tmp_path / "all" / "all.json").read_text())["ema"] == 0.5
    assert all(json.loads((tmp_path / "all" / s / "train_config.json").read_text())["ema"] == 0.5
               for s in ("dvae", "transformer", "clip"))
    assert any(k.startswith("ema.") for k in load_tensors(tmp_path / "all" / "transformer" / CHECKPOINT)[0])
    old = tmp_path / "old"  # a whole run from before --ema averaged nothing, and goes on so
    old.mkdir()
    (old / "all.json").write_text(json.dumps({"data": "world:train", "preset": "tiny", "flip": None, "crop": None}))
    same = {"data": "world:train", "preset": "tiny", "flip": None, "crop": None, "ema": None}
    assert plan_settings(old, same)["ema"] == 0.0
    with pytest.raises(Exception, match=r"other settings \(ema 0\.0 in the run, 0\.9 here\)"):
        plan_settings(old, same | {"ema": 0.9})


def test_the_sample_grid_is_drawn_by_the_average(deps, tmp_path, monkeypatch):
    """What write_samples sees at the last step is the average the model file holds, not the last weights."""
    from t2i_cli import stages

    seen = {}
    real = stages.TransformerStage.write_samples

    def spy(self, run_dir, step, *a, **k):
        seen[step] = {k2: v.clone() for k2, v in self.model.state_dict().items()}
        return real(self, run_dir, step, *a, **k)

    monkeypatch.setattr(stages.TransformerStage, "write_samples", spy)
    t2i(*COMMON, *deps, "--ema", "0.9", "--out", tmp_path / "r")
    assert sorted(seen) == [4, 8]
    ckpt, _ = load_tensors(tmp_path / "r" / CHECKPOINT)
    assert all(torch.equal(seen[8][k], ckpt["ema." + k]) for k in seen[8])
    assert not all(torch.equal(seen[8][k], ckpt["model." + k]) for k in seen[8])
