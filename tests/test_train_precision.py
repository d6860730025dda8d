"""`t2i train --precision auto`: bf16 autocast only where the device computes bf16 itself, fp32 elsewhere (an
AVX2-only CPU emulated bf16 17-20x slower than fp32, BENCHMARKS.md "Training on a CPU without native
bf16")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from conftest import run
from t2i_cli import train
from t2i_cli.train import CHECKPOINT, TrainConfig, training_precision
from t2i_cli.weights import load_tensors

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


@pytest.mark.parametrize("native, cuda_native, asked, device, means", [
    (True, False, "auto", CPU, "bf16"),
    (False, True, "auto", CPU, "fp32"),
    (False, False, "bf16", CPU, "bf16"),  # asked for: honoured, with a warning (below)
    (True, False, "fp32", CPU, "fp32"),
    (True, True, "auto", CUDA, "bf16"),
    (True, False, "auto", CUDA, "fp32"),  # a GPU before Ampere: the CPU's bf16 says nothing about it
])
def test_auto_follows_what_the_device_computes_natively(monkeypatch, native, cuda_native, asked, device, means):
    monkeypatch.setattr(train, "native_bf16", lambda: native)
    monkeypatch.setattr(train, "cuda_bf16", lambda: cuda_native)
    assert training_precision(TrainConfig(stage="dvae", data="world:train", precision=asked), device) == means


def rows(run_dir: Path) -> list[dict]:
    return [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("native, same_as", [(False, "fp32"), (True, "bf16")])
def test_an_auto_run_trains_exactly_as_the_precision_it_resolves_to(monkeypatch, tmp_path, native, same_as):
    monkeypatch.setattr(train, "native_bf16", lambda: native)
    common = ["train", "--stage", "dvae", "--preset", "tiny", "--workers", "0", "-q", "--steps", "3",
              "--sample-every", "0", "--device", "cpu"]
    for name, extra in (("auto", []), ("fixed", ["--precision", same_as]), ("other", [
            "--precision", "bf16" if same_as == "fp32" else "fp32"])):
        r = run(*common, *extra, "--out", tmp_path / name)
        assert r.exit_code == 0, r.stderr
    auto, _ = load_tensors(tmp_path / "auto" / CHECKPOINT)
    fixed, _ = load_tensors(tmp_path / "fixed" / CHECKPOINT)
    other, _ = load_tensors(tmp_path / "other" / CHECKPOINT)
    model = [k for k in auto if k.startswith("model.")]
    assert all(torch.equal(auto[k], fixed[k]) for k in model)
    assert not all(torch.equal(auto[k], other[k]) for k in model)  # the two precisions do train differently
    first = rows(tmp_path / "auto")[0]
    assert first == {"step": 0, "time": first["time"], "precision": same_as, "threads": first["threads"]}
    # the run keeps auto, which follows the device it trains on
    assert json.loads((tmp_path / "auto" / "train_config.json").read_text())["precision"] == "auto"


def test_bf16_asked_for_on_a_cpu_that_emulates_it_is_honoured_with_a_warning(monkeypatch, tmp_path):
    monkeypatch.setattr(train, "native_bf16", lambda: False)
    common = ["train", "--stage", "dvae", "--preset", "tiny", "--workers", "0", "--steps", "1", "--sample-every", "0",
              "--device", "cpu"]
    r = run(*common, "--precision", "bf16", "--out", tmp_path / "b")
    assert r.exit_code == 0 and "emulated" in r.stderr and "--precision auto picks fp32" in r.stderr, r.stderr
    assert rows(tmp_path / "b")[0]["precision"] == "bf16"
    r = run(*common, "--out", tmp_path / "a")
    assert r.exit_code == 0 and "emulated" not in r.stderr


def test_a_run_resumed_where_auto_means_another_precision_says_so_and_goes_on(monkeypatch, tmp_path):
    """Started where the CPU has bf16, resumed on one without: auto now means fp32; the run goes on in fp32 with
    one warning naming both (and so does a run from before 0.12.0, which recorded nothing and trained in bf16)."""
    monkeypatch.setattr(train, "native_bf16", lambda: True)
    common = ["train", "--stage", "dvae", "--preset", "tiny", "--workers", "0", "--sample-every", "0", "--device",
              "cpu"]
    r = run(*common, "--steps", "2", "-q", "--out", tmp_path / "r")
    assert r.exit_code == 0, r.stderr
    monkeypatch.setattr(train, "native_bf16", lambda: False)
    r = run("train", "--resume", tmp_path / "r", "--steps", "4")
    assert r.exit_code == 0, r.stderr
    assert "this run trained in bf16 until step 2" in r.stderr and "goes on in fp32" in r.stderr
    assert [x.get("precision") for x in rows(tmp_path / "r") if "precision" in x] == ["bf16", "fp32"]
    r = run("train", "--resume", tmp_path / "r", "--steps", "5")  # fp32 again: nothing to say
    assert r.exit_code == 0 and "trained in" not in r.stderr, r.stderr
    old = [x for x in rows(tmp_path / "r") if "precision" not in x and "warning" not in x]  # as 0.11.0 wrote it
    (tmp_path / "r" / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in old))
    r = run("train", "--resume", tmp_path / "r", "--steps", "6")
    assert r.exit_code == 0 and "this run trained in bf16 until step 5" in r.stderr, r.stderr
