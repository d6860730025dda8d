"""Hostile files, failed runs and silent options, through the CLI: each case exits 2 (bad command line) or 1,
prints one line, leaves no stray file or folder, and stays within a memory bound where that applies."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from conftest import build_tiny_folder, end_group, one_line_failure, run
from t2i_cli.errors import WeightsError
from t2i_cli.images import encode_png, read_png_text
from t2i_cli.models.transformer import Transformer, TransformerConfig
from t2i_cli.train import CHECKPOINT, RUN_CONFIG
from t2i_cli.weights import FORMAT, load_model, load_tensors, read_metadata, save_model, save_tensors

SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    return build_tiny_folder(tmp_path_factory.mktemp("reliability") / "weights")


TINY = ["--preset", "tiny", "--workers", "0", "-q", "--log-every", "1", "--device", "cpu"]


# ------------------------------------------------------------------------------------------ hostile weights
def hostile_transformer(path: Path, n_layer: int = 4000, n_embd: int = 4096) -> Path:
    """A 1 KB transformer file whose metadata declares a model of n_layer layers of width n_embd."""
    cfg = {"text_vocab": 20, "text_len": 4, "image_vocab": 8, "grid": 2, "n_layer": n_layer, "n_head": 8,
           "n_embd": n_embd}
    return save_tensors(path, {"text_emb.weight": torch.zeros(4, 4)},
                        {"format": FORMAT, "kind": "transformer", "config": json.dumps(cfg)})


def test_a_huge_declared_model_is_refused_by_info_within_a_memory_bound(weights, tmp_path):
    """4,000 layers of width 4,096 in a 1 KB file: refused from the config alone (it grew past 12 GB before)."""
    folder = Path(shutil.copytree(weights, tmp_path / "w"))
    hostile_transformer(folder / "transformer.safetensors")
    assert (folder / "transformer.safetensors").stat().st_size < 2048
    code = ("import resource, sys\nfrom t2i_cli.cli import app\n"
            "try:\n    app([\"info\", \"--weights\", sys.argv[1]])\nexcept SystemExit as e:\n"
            "    print('exit', e.code, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)\n")
    r = subprocess.run([sys.executable, "-c", code, str(folder)], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(SRC)})
    exit_line = r.stdout.strip().splitlines()[-1].split()
    assert exit_line[:2] == ["exit", "1"], r.stdout + r.stderr
    assert int(exit_line[2]) < 1500, f"peak RSS {exit_line[2]} MB"  # torch alone is ~300 MB
    assert "parameters" in r.stderr and "limit" in r.stderr and "Traceback" not in r.stderr


def test_a_config_larger_than_its_tensors_is_refused_before_building(tmp_path, monkeypatch):
    """Within the limits but bigger than what the file holds: refused before any model is built."""
    path = hostile_transformer(tmp_path / "t.safetensors", n_layer=40, n_embd=512)
    built = []
    monkeypatch.setattr(Transformer, "__init__", lambda self, cfg: built.append(cfg))
    with pytest.raises(WeightsError, match="does not match its model"):
        load_model(path, "transformer")
    assert built == []


@pytest.mark.parametrize("kind, cfg", [
    ("transformer", TransformerConfig(text_vocab=20, text_len=4, image_vocab=8, grid=2, n_layer=64, n_head=2,
                                      n_embd=64)),
])
def test_state_numel_and_activations_match_the_real_model(kind, cfg):
    from t2i_cli.models.transformer import KVCache

    model = Transformer(cfg)
    assert cfg.state_numel() == sum(v.numel() for v in model.state_dict().values())
    cache = KVCache(cfg, 1, torch.device("cpu"), torch.float32)
    assert cfg.activation_bytes() == (cache.k.numel() + cache.v.numel()) * 4


JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                                       max_size=3), max_leaves=8)
def _real_states() -> dict[str, dict[str, torch.Tensor]]:
    from t2i_cli.models.clip import Clip, ClipConfig
    from t2i_cli.models.dvae import DVAE, DVAEConfig

    return {"dvae": DVAE(DVAEConfig(image_side=8, downsample=2, n_codes=8, n_hid=4, code_dim=4)).state_dict(),
            "transformer": Transformer(TransformerConfig(text_vocab=10, text_len=3, image_vocab=8, grid=2, n_layer=1,
                                                         n_head=2, n_embd=8)).state_dict(),
            "clip": Clip(ClipConfig(image_side=16, text_vocab=10, text_len=3, n_pad_start=7, n_hid=8, n_embd=8,
                                    n_layer=1, n_head=2, embed_dim=4)).state_dict()}


REAL_STATES = _real_states()
FIELDS = ["text_vocab", "text_len", "image_vocab", "grid", "n_layer", "n_head", "n_embd", "dropout", "image_side",
          "downsample", "n_codes", "n_hid", "code_dim", "n_res", "image_size"]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(["dvae", "transformer", "clip"]),
       config=st.dictionaries(st.sampled_from(FIELDS), st.integers(-5, 2**40) | JSON_VALUES, max_size=9),
       extra_meta=st.dictionaries(st.sampled_from(["format", "kind", "config", "step", "x"]), st.text(max_size=20),
                                  max_size=2),
       shapes=st.none() | st.lists(st.lists(st.integers(0, 64), max_size=3), max_size=4),
       raw_config=st.booleans())
def test_fuzzed_metadata_and_headers_load_or_raise_our_error_within_a_memory_bound(
        tmp_path, kind, config, extra_meta, shapes, raw_config):
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    meta = {"format": FORMAT, "kind": kind, "config": json.dumps(config) if not raw_config else str(config)}
    meta.update(extra_meta)
    if shapes is None:  # a real tiny model's tensors under the fuzzed config
        tensors = dict(REAL_STATES[kind])
    else:
        tensors = {f"t{i}": torch.zeros(tuple(s)) for i, s in enumerate(shapes)}
    path = save_tensors(tmp_path / "f.safetensors", tensors, meta)
    try:
        load_model(path, kind)
    except WeightsError:
        pass
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 300 * 1024  # KiB: < 300 MB more


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(junk=st.binary(min_size=0, max_size=64), length=st.integers(0, 2**64 - 1))
def test_fuzzed_header_bytes_raise_our_error(tmp_path, junk, length):
    path = tmp_path / "h.safetensors"
    path.write_bytes(length.to_bytes(8, "little") + junk)
    with pytest.raises(WeightsError):
        load_model(path, "dvae")


# ------------------------------------------------------------------------------------------------- seeds
@pytest.mark.parametrize("seed", ["99999999999999999999", "-1", str(2**63)])
def test_out_of_range_seed_is_a_usage_error_and_makes_no_folder(weights, tmp_path, seed):
    out = tmp_path / "out"
    line = one_line_failure(run("generate", "a red bird", "--weights", weights, "--out", out, "--seed", seed), 2)
    assert "--seed" in line and not out.exists()
    line = one_line_failure(run("train", "--stage", "dvae", "--out", tmp_path / "run", "--seed", seed, *TINY), 2)
    assert "--seed" in line and not (tmp_path / "run").exists()


def test_the_largest_seed_works(weights, tmp_path):
    r = run("generate", "a red bird", "--weights", weights, "--out", tmp_path / "o", "--seed", str(2**63 - 1))
    assert r.exit_code == 0, r.stderr


def test_a_failing_generate_leaves_no_empty_output_folder(weights, tmp_path, monkeypatch):
    from t2i_cli import outputs

    def broken(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(outputs, "encode_png", broken)
    out = tmp_path / "new" / "out"
    r = run("generate", "a red bird", "--weights", weights, "--out", out)
    assert r.exit_code == 1 and not out.exists()


# -------------------------------------------------------------------------------------- options audit
@pytest.mark.parametrize("args, named", [
    (["--n", "3", "--keep", "2"], "--keep"),  # --keep alone keeps the best of the default 4
    (["--n", "3", "--candidates", "4"], "--candidates"),
])
def test_generate_refuses_options_it_would_ignore(weights, tmp_path, args, named):
    out = tmp_path / "out"
    line = one_line_failure(run("generate", "a red bird", "--weights", weights, "--out", out, *args), 2)
    assert named in line and not out.exists()


@pytest.mark.parametrize("model, named", [
    ("n_hid=abc", "n_hid takes an integer"), ("n_hid=1.5", "n_hid takes an integer"),
    ("image_side=32", "--image-side"), ("nope=1", "n_hid"), ("n_hid", "KEY=VALUE"),
])
def test_model_values_are_parsed_by_type_and_wrong_ones_are_usage_errors(tmp_path, model, named):
    out = tmp_path / "run"
    line = one_line_failure(run("train", "--stage", "dvae", "--out", out, "--model", model, *TINY), 2)
    assert named in line and not out.exists()


@pytest.mark.parametrize("args, named", [
    (["--model", "n_hid=8", "--model", "n_hid=16"], "--model n_hid is given twice"),  # the last was taken
    (["--lr", "0"], "--lr must be above 0 and at most 1, got 0.0"),  # accepted, trained nothing
    (["--lr", "-0.001"], "--lr must be above 0"), (["--lr", "2"], "at most 1, got 2.0"),
    (["--lr", "nan"], "--lr must be a finite number"), (["--lr", "-inf"], "--lr must be a finite number"),
])
def test_train_refuses_a_setting_given_twice_or_a_learning_rate_that_cannot_train(tmp_path, args, named):
    out = tmp_path / "run"
    line = one_line_failure(run("train", "--stage", "dvae", "--out", out, *args, *TINY), 2)
    assert named in line and not out.exists()


def test_an_unbuildable_model_is_a_usage_error_and_leaves_no_run(tmp_path):
    out = tmp_path / "run"
    line = one_line_failure(run("train", "--stage", "dvae", "--out", out, "--model", "downsample=3", *TINY), 2)
    assert "power of two" in line and not out.exists()
    line = one_line_failure(run("train", "--stage", "dvae", "--out", out, "--model", "n_hid=100000", *TINY), 2)
    assert "limit" in line and not out.exists()


@pytest.mark.parametrize("stage, args, named", [
    ("dvae", ["--vocab-size", "64"], "--vocab-size"),
    ("tokenizer", ["--steps", "3"], "--steps"),
    ("clip", ["--dvae", "x"], "--dvae"),
])
def test_train_refuses_options_its_stage_would_ignore(tmp_path, stage, args, named):
    out = tmp_path / "run"
    line = one_line_failure(run("train", "--stage", stage, "--out", out, "--preset", "tiny", *args), 2)
    assert named in line and "does not apply" in line and not out.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_train_on_cuda_without_a_gpu_is_refused_like_generate(weights, tmp_path):
    out = tmp_path / "run"
    line = one_line_failure(run("train", "--stage", "dvae", "--out", out, "--preset", "tiny", "--device", "cuda"), 2)
    assert "--device cpu" in line and not out.exists()
    line = one_line_failure(run("generate", "a bird", "--weights", weights, "--out", out, "--device", "cuda"), 2)
    assert "--device cpu" in line


# ------------------------------------------------------------------------------------- failed starts
def test_a_failed_first_run_leaves_nothing_and_the_retry_simply_works(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    out = tmp_path / "run"
    args = ["train", "--stage", "dvae", "--data", data, "--out", out, "--steps", "2", *TINY]
    line = one_line_failure(run(*args), 1)
    assert "no usable image-caption pairs" in line and not out.exists()
    for i in range(3):
        Image.new("RGB", (20, 20), (60 * i, 90, 200)).save(data / f"{i}.png")
        (data / f"{i}.txt").write_text(f"picture {i}\n")
    r = run(*args)
    assert r.exit_code == 0, r.stderr
    assert (out / RUN_CONFIG).is_file() and (out / "dvae.safetensors").is_file()


def test_a_missing_dependency_leaves_no_run_folder(tmp_path):
    out = tmp_path / "run"
    line = one_line_failure(run("train", "--stage", "transformer", "--out", out, *TINY), 2)
    assert "needs --tokenizer PATH" in line and not out.exists()


def test_a_failed_start_in_an_existing_folder_keeps_what_was_there(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()  # empty: a run may start here; this one fails on its data and leaves the folder empty
    args = ["train", "--stage", "dvae", "--data", tmp_path / "nothing-here", "--out", out, *TINY]
    one_line_failure(run(*args), 1)
    assert out.is_dir() and list(out.iterdir()) == []
    (out / "notes.txt").write_text("mine")  # a folder of other files is refused before anything starts
    one_line_failure(run(*args), 2)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"] and (out / "notes.txt").read_text() == "mine"


# ----------------------------------------------------------------------------------------------- resume
@pytest.fixture
def four_step_run(tmp_path) -> Path:
    out = tmp_path / "run"
    r = run("train", "--stage", "dvae", "--steps", "4", "--ckpt-every", "2", "--out", out, *TINY)
    assert r.exit_code == 0, r.stderr
    return out


def steps_logged(run_dir: Path) -> list[int]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r["step"] for r in rows if "loss" in r]


def test_resume_with_more_steps_extends_the_run(four_step_run):
    r = run("train", "--resume", four_step_run, "--steps", "6", "-q", "--workers", "0")
    assert r.exit_code == 0, r.stderr
    assert read_metadata(four_step_run / CHECKPOINT)["step"] == "6"
    assert read_metadata(four_step_run / "dvae.safetensors")["step"] == "6"
    assert steps_logged(four_step_run) == [1, 2, 3, 4, 5, 6]
    assert json.loads((four_step_run / RUN_CONFIG).read_text())["steps"] == 6


def test_resume_with_a_new_lr_sets_the_peak_of_the_steps_to_come(four_step_run):
    """A run goes on from its checkpoint at another --lr (what a diverged run needs): the steps after it follow
    the schedule of the new peak, the run's config records it, and the steps before keep their logged rates."""
    before = [r["lr"] for r in map(json.loads, (four_step_run / "metrics.jsonl").read_text().splitlines())
              if "lr" in r]
    old = json.loads((four_step_run / RUN_CONFIG).read_text())["lr"]
    r = run("train", "--resume", four_step_run, "--steps", "6", "--lr", str(old / 10), "-q", "--workers", "0")
    assert r.exit_code == 0, r.stderr
    assert json.loads((four_step_run / RUN_CONFIG).read_text())["lr"] == pytest.approx(old / 10)
    rows = [r for r in map(json.loads, (four_step_run / "metrics.jsonl").read_text().splitlines()) if "lr" in r]
    assert [r["lr"] for r in rows[:4]] == before and steps_logged(four_step_run) == [1, 2, 3, 4, 5, 6]
    from t2i_cli.train import TrainConfig, lr_at

    cfg = TrainConfig(**json.loads((four_step_run / RUN_CONFIG).read_text()))
    assert [r["lr"] for r in rows[4:]] == [pytest.approx(lr_at(cfg, s)) for s in (4, 5)]
    assert all(r["lr"] <= old / 10 for r in rows[4:])


@pytest.mark.parametrize("args, named", [
    (["--steps", "3"], "fewer"),
    (["--lr", "0"], "--lr must be above 0"),
    (["--lr", "transformer=0.1"], "has no value for this dvae run"),
    (["--preset", "large"], "--preset"),
    (["--data", "world:val"], "--data"),
    (["--model", "n_hid=4"], "--model"),
])
def test_resume_refuses_what_it_cannot_honour(four_step_run, args, named):
    before = (four_step_run / CHECKPOINT).read_bytes()
    line = one_line_failure(run("train", "--resume", four_step_run, *args), 2)
    assert named in line
    assert (four_step_run / CHECKPOINT).read_bytes() == before


@pytest.mark.parametrize("field, value, named", [
    ("batch_size", "32", "--batch-size"), ("num_workers", 65, "--workers"), ("batch_size", 65_537, "--batch-size"),
    ("steps", True, "--steps"), ("lr", float("nan"), "--lr"), ("kl_warmup", 7.0, "--kl-warmup"),
    ("lr", 0.0, "--lr"), ("grad_clip", 0, "grad_clip"), ("weight_decay", -0.5, "weight_decay"),
    # a choice the command line refuses was an internal error, or (precision) silently trained in fp32
    ("recon_loss", "bogus", "--recon-loss"), ("precision", "fp64", "--precision"),
])
def test_resume_checks_the_run_config_it_reads(four_step_run, field, value, named):
    """train_config.json is read back with the command line's checks: a wrong type or a value out of range
    (10,000 worker processes) is one line, not a crash or an unbounded start."""
    path = four_step_run / RUN_CONFIG
    path.write_text(json.dumps(json.loads(path.read_text()) | {field: value}))
    line = one_line_failure(run("train", "--resume", four_step_run, "--steps", "6"), 2)
    assert named.lstrip("-").replace("-", "_") in line.replace("-", "_") and "cannot be resumed" in line


def test_the_command_line_gets_the_same_limits(four_step_run, tmp_path):
    line = one_line_failure(run("train", "--stage", "dvae", "--preset", "tiny", "--workers", "65",
                                "--out", tmp_path / "new"), 2)
    assert "--workers must be between 0 and 64" in line and not (tmp_path / "new").exists()
    before = (four_step_run / RUN_CONFIG).read_bytes()
    line = one_line_failure(run("train", "--resume", four_step_run, "--workers", "65"), 2)
    assert "--workers must be between 0 and 64" in line and (four_step_run / RUN_CONFIG).read_bytes() == before


def test_resume_survives_a_cut_metrics_line(four_step_run):
    with open(four_step_run / "metrics.jsonl", "a") as f:
        f.write('{"step": 4, "loss": 0.')  # a kill mid-line
    r = run("train", "--resume", four_step_run, "--steps", "6", "-q", "--workers", "0")
    assert r.exit_code == 0, r.stderr
    assert steps_logged(four_step_run) == [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize("damage, named", [({"param_groups": None}, "optimizer state"),
                                           ({"param_groups": "{"}, "optimizer state"),
                                           ({"step": "-1"}, "not valid")])
def test_resume_refuses_a_damaged_checkpoint_in_one_line(four_step_run, damage, named):
    tensors, meta = load_tensors(four_step_run / CHECKPOINT)
    meta = {k: v for k, v in (meta | damage).items() if v is not None}
    save_tensors(four_step_run / CHECKPOINT, tensors, meta)
    before = (four_step_run / CHECKPOINT).read_bytes()
    line = one_line_failure(run("train", "--resume", four_step_run, "--steps", "8"), 1)
    assert named in line and "start a new run" in line
    assert (four_step_run / CHECKPOINT).read_bytes() == before


@pytest.mark.parametrize("edit, named", [
    (lambda g: g[0].update(betas="x"), "its setting betas is \"x\""),  # resumed, then failed inside AdamW's step
    (lambda g: g[0].update(betas=[0.9]), "its setting betas"),
    (lambda g: g[0].update(eps=None), "its setting eps is null"),
    (lambda g: g[0].update(amsgrad=1), "its setting amsgrad is 1"),
    (lambda g: g.append(dict(g[0])), "its parameter groups are not this optimizer's"),
    (lambda g: g[0].update(params=g[0]["params"][:-1]), "names other parameters"),
])
def test_resume_refuses_edited_optimizer_settings_in_one_line(four_step_run, edit, named):
    tensors, meta = load_tensors(four_step_run / CHECKPOINT)
    groups = json.loads(meta["param_groups"])
    edit(groups)
    save_tensors(four_step_run / CHECKPOINT, tensors, meta | {"param_groups": json.dumps(groups)})
    line = one_line_failure(run("train", "--resume", four_step_run, "--steps", "8", "--workers", "0"), 1)
    assert named in line and "start a new run" in line, line


@pytest.mark.parametrize("strip, named", [
    (lambda k: k.startswith("optim."), "no optimizer state after 4 steps"),
    (lambda k: k == "optim.0.exp_avg_sq", "the optimizer state of parameter 0 is not whole"),
    (lambda k: k.startswith("optim.3."), "the optimizer state of parameter 3 is missing"),
])
def test_resume_refuses_a_checkpoint_whose_optimizer_state_is_not_whole(four_step_run, strip, named):
    """Without its optimizer tensors (param_groups kept) a checkpoint resumed silently with a fresh optimizer."""
    tensors, meta = load_tensors(four_step_run / CHECKPOINT)
    save_tensors(four_step_run / CHECKPOINT, {k: v for k, v in tensors.items() if not strip(k)}, meta)
    line = one_line_failure(run("train", "--resume", four_step_run, "--steps", "6"), 1)
    assert named in line and "start a new run" in line, line
    assert steps_logged(four_step_run) == [1, 2, 3, 4]


def test_a_checkpoint_of_an_older_t2i_without_its_optimizer_entries_resumes(four_step_run):
    tensors, meta = load_tensors(four_step_run / CHECKPOINT)
    assert json.loads(meta.pop("optim_entries"))  # what 0.9.2 records; 0.9.1 did not
    save_tensors(four_step_run / CHECKPOINT, tensors, meta)
    r = run("train", "--resume", four_step_run, "--steps", "6", "-q", "--workers", "0")
    assert r.exit_code == 0, r.stderr
    assert steps_logged(four_step_run) == [1, 2, 3, 4, 5, 6]


def test_the_optimizer_state_check_refuses_moments_of_another_shape():
    from t2i_cli.train import _check_optimizer_state

    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters())
    model(torch.ones(1, 3)).sum().backward()
    opt.step()
    state = {i: dict(v) for i, v in enumerate(opt.state_dict()["state"].values())}
    _check_optimizer_state(state, opt, 1)  # whole
    state[1]["exp_avg"] = torch.zeros(5)
    with pytest.raises(ValueError, match="parameter 1 has another shape"):
        _check_optimizer_state(state, opt, 1)
    with pytest.raises(ValueError, match="parameter 7"):
        _check_optimizer_state({7: state[0]}, opt, 1)


def test_after_a_kill_between_the_two_writes_resume_and_export_repair_the_pair(four_step_run, tmp_path):
    """A kill can leave a temporary file and a model file older than the checkpoint (the checkpoint is
    written first): export and resume take the checkpoint's model, and a resume removes the temporary."""
    ckpt_model = {k[len("model."):]: v for k, v in load_tensors(four_step_run / CHECKPOINT)[0].items()
                  if k.startswith("model.")}
    model = load_model(four_step_run / "dvae.safetensors", "dvae")
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    save_model(model, four_step_run / "dvae.safetensors", "dvae", step=2)  # an older step's model
    stale = four_step_run / ".checkpoint.safetensors.k1ll3d00.tmp"
    stale.write_bytes(b"half a checkpoint")

    r = run("export", four_step_run, "--to", tmp_path / "w")
    assert r.exit_code == 0, r.stderr
    exported, _ = load_tensors(tmp_path / "w" / "dvae.safetensors")
    assert all(torch.equal(exported[k], v) for k, v in ckpt_model.items())

    save_model(model, four_step_run / "dvae.safetensors", "dvae", step=2)
    r = run("train", "--resume", four_step_run, "-q", "--workers", "0")
    assert r.exit_code == 0, r.stderr
    assert not stale.exists()
    model_step = read_metadata(four_step_run / "dvae.safetensors")["step"]
    assert model_step == read_metadata(four_step_run / CHECKPOINT)["step"] == "4"


@pytest.mark.skipif(not Path("/proc/self/task").is_dir() or not hasattr(os, "killpg"),
                    reason="needs Linux /proc and process groups")
def test_sigterm_to_the_whole_process_group_checkpoints_with_loader_workers(tmp_path):
    """`kill -- -PGID` must not reach the DataLoader workers: the run checkpoints and exits 130 with its one
    line (a worker killed first used to end it in an internal error with no checkpoint)."""
    import multiprocessing

    if multiprocessing.get_start_method() != "fork":
        pytest.skip("finds the workers as the run's children, as the fork start method makes them")
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "t2i_cli", "train", "--stage", "dvae", "--preset", "tiny", "--data", "world:train",
           "--workers", "2", "--steps", "100000", "--log-every", "1", "--ckpt-every", "100000",
           "--sample-every", "0", "-q", "--device", "cpu", "--out", str(out)]
    log = tmp_path / "stderr.txt"
    workers: list[tuple[int, str]] = []
    with open(log, "w") as err_file:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err_file, start_new_session=True,
                                env={**os.environ, "PYTHONPATH": str(SRC)})
        try:
            deadline = time.monotonic() + 120
            while not ((out / "metrics.jsonl").is_file() and len(steps_logged(out)) >= 3):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"the run did not start: {log.read_text()}")
                time.sleep(0.2)
            children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
            if not children.is_file():
                pytest.skip("this kernel does not list a process's children")
            workers = [(int(p), started(int(p))) for p in children.read_text().split()]
            assert len(workers) == 2, workers
            assert all(os.getpgid(pid) != proc.pid for pid, _ in workers)  # the workers left the group
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=120)
        except BaseException:
            for pid, when in workers:  # a failed test leaves no worker behind
                if started(pid) == when:
                    os.kill(pid, signal.SIGKILL)
            raise
        finally:
            end_group(proc)
    err = log.read_text()
    assert proc.returncode == 130, err
    assert "internal error" not in err and "checkpoint saved" in err, err
    step = int(read_metadata(out / CHECKPOINT)["step"])
    assert step >= 3
    assert read_metadata(out / "dvae.safetensors")["step"] == str(step)
    deadline = time.monotonic() + 60  # and the workers ended with the run
    while any(started(pid) == when for pid, when in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(started(pid) == when for pid, when in workers)


def started(pid: int) -> str:
    """A live process's start time (so a reused pid is not mistaken for it); "" once it is gone or a zombie."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return ""
    return "" if fields[0] == "Z" else fields[19]


# ----------------------------------------------------------------------------------------------- rerank
def test_rerank_bounds_prompts_read_from_png_text(weights, tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    huge = "a red bird " * 200_000  # 2.2 MB
    (folder / "big.png").write_bytes(encode_png(Image.new("RGB", (16, 16), (200, 30, 30)), {"prompt": huge}))
    r = run("rerank", folder, "--weights", weights, "--device", "cpu")
    assert r.exit_code == 0, r.stderr
    assert len(r.stdout) < 5_000 and len(r.stderr) < 1_000
    assert "1,000 characters" in r.stderr
    assert (folder / "ranking.json").stat().st_size < 5_000


def test_rerank_never_ranks_a_grid_and_prints_whole_names_grouped_by_prompt(weights, tmp_path, monkeypatch):
    out = tmp_path / "out"
    long_prompt = "a small purple heart on a white background above a red car"
    r = run("generate", long_prompt, "--weights", weights, "--out", out, "--n", "3", "--grid")
    assert r.exit_code == 0, r.stderr
    grids = list(out.glob("*-grid-*.png"))
    assert len(grids) == 1 and read_png_text(grids[0])["t2i_sheet"] == "grid"
    monkeypatch.setenv("COLUMNS", "80")
    r = run("rerank", out, "--weights", weights, "--device", "cpu")
    assert r.exit_code == 0, r.stderr
    ranked = json.loads((out / "ranking.json").read_text())
    assert len(ranked) == 3 and all("-grid-" not in row["file"] for row in ranked)
    assert "1 contact sheet t2i wrote" in r.stderr
    assert r.stdout.count(long_prompt) == 1  # the prompt once, as the group's heading
    for row in ranked:
        assert row["file"] in r.stdout  # every name whole, never cut


# ------------------------------------------------------------------------------------------- python -O
def test_config_validation_survives_python_dash_O():
    code = ("from t2i_cli.models.dvae import DVAE, DVAEConfig\n"
            "try:\n    DVAE(DVAEConfig(image_side=12, downsample=3))\n"
            "except ValueError as e:\n    print('refused', e)\n")
    r = subprocess.run([sys.executable, "-O", "-c", code], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(SRC)})
    assert r.stdout.startswith("refused") and "power of two" in r.stdout, r.stdout + r.stderr


# --------------------------------------------------------------------------------------------- watchdog
def test_watchdog_names_each_symptom_once_after_the_warmup():
    from t2i_cli.train import Watchdog

    dog = Watchdog(warmup_steps=50)
    healthy = {"loss": 0.2, "kl": 0.5, "out_std": 0.1, "perplexity": 120.0}
    assert dog.check(25, {**healthy, "kl": 0.001}) == []  # a fresh model's codes carry little: no alarm yet
    assert dog.check(75, healthy) == []
    new = dog.check(100, {"loss": 0.19, "kl": 0.002, "out_std": 0.0, "perplexity": 1.3})
    assert len(new) == 3 and any("posterior collapse" in w for w in new)
    assert any("same image" in w for w in new) and any("perplexity 1.30" in w for w in new)
    assert dog.check(125, {"loss": 0.18, "kl": 0.001, "out_std": 0.0, "perplexity": 1.2}) == []  # said once
    stuck = Watchdog(warmup_steps=0)
    said = [w for step in range(1, 10) for w in stuck.check(step, {"loss": 0.25})]
    assert len(said) == 1 and "has not moved in 8 logs" in said[0]


@pytest.mark.parametrize("quiet", [[], ["-q"]], ids=["progress", "quiet"])
def test_a_collapsed_run_warns_on_stderr_and_in_metrics(tmp_path, monkeypatch, quiet):
    """Through the CLI: a dVAE whose decoder output never varies is reported once, in one line, and logged;
    `-q` hides the progress bar, not the warning."""
    from t2i_cli.models.dvae import DVAE

    real = DVAE.forward

    def frozen(self, *a, **k):
        recon, loss, parts = real(self, *a, **k)
        return recon, loss, {**parts, "out_std": torch.tensor(0.0)}

    monkeypatch.setattr(DVAE, "forward", frozen)
    monkeypatch.setattr("t2i_cli.train.WATCHDOG_WARMUP", 2)
    out = tmp_path / "run"
    r = run("train", "--stage", "dvae", "--steps", "5", "--out", out, "--preset", "tiny", "--workers", "0",
            "--log-every", "1", "--device", "cpu", *quiet)
    assert r.exit_code == 0, r.stderr
    said = [ln for ln in (r.stdout + r.stderr).splitlines() if "same image whatever the input" in ln]
    assert len(said) == 1 and said[0].startswith("warning:")
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "warning" in r and "same image" in r["warning"]] == [3]


def test_watchdog_calls_a_validation_loss_that_rises_twice_overfitting():
    from t2i_cli.train import Watchdog

    dog = Watchdog(warmup_steps=0)
    assert dog.check_val(500, [(500, 3.5)]) == []
    assert dog.check_val(1000, [(500, 3.5), (1000, 3.4), (1500, 3.6)]) == []  # one rise is noise
    said = dog.check_val(2000, [(500, 3.5), (1000, 3.4), (1500, 3.6), (2000, 5.4)])
    assert len(said) == 1 and "memorising" in said[0]
    assert dog.check_val(2500, [(1500, 3.6), (2000, 5.4), (2500, 6.5)]) == []  # said once


def test_stalled_needs_patience_validations_without_a_new_best():
    from t2i_cli.train import stalled

    hist = lambda *v: [(i * 10, x) for i, x in enumerate(v)]  # noqa: E731
    assert not stalled(hist(1.0, 0.9), 2)  # not enough validations yet
    assert not stalled(hist(1.0, 0.9, 1.1), 2)  # one without a new best
    assert stalled(hist(1.0, 0.9, 1.1, 1.2), 2)
    assert not stalled(hist(1.0, 0.9, 1.1, 0.8), 2)  # a new best resets it
    assert not stalled(hist(1.0, 0.9, 0.9), 1)  # equal to the best is not worse
    assert stalled(hist(1.0, 0.9, float("nan")), 1)  # a diverged (NaN) loss is no better
    assert stalled(hist(1.0, 0.9, 0.95), 1)


def test_patience_stops_a_run_whose_validation_loss_stopped_improving(tmp_path, monkeypatch):
    """--patience N: after N validations without a new best the run stops, says so once, records it, and is
    finished at that step (a resume has nothing to do); without --sample-every it is refused."""
    from t2i_cli.stages import DVAEStage

    losses = iter([1.0, 0.9, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6])
    monkeypatch.setattr(DVAEStage, "validate", lambda self: {"val_loss": next(losses)})
    out = tmp_path / "run"
    args = ["--preset", "tiny", "--workers", "0", "--device", "cpu", "--log-every", "1"]
    r = run("train", "--stage", "dvae", "--steps", "8", "--sample-every", "1", "--patience", "2", "--out", out,
            "-q", *args)
    assert r.exit_code == 0, r.stderr
    said = [ln for ln in r.stderr.splitlines() if "stopping early" in ln]
    assert len(said) == 1 and "step 4:" in said[0] and "step 2's 0.9" in said[0], r.stderr
    assert json.loads((out / "train_config.json").read_text())["steps"] == 4
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in rows if "early_stop" in x] == [4] and max(x["step"] for x in rows) == 4
    again = run("train", "--resume", out, "-q", "--workers", "0")
    assert again.exit_code == 0 and "stopping early" not in again.stderr, again.stderr
    assert json.loads((out / "train_config.json").read_text())["steps"] == 4
    # Extending it: the earlier validations still count, so a resume may switch patience off (0) or change it.
    longer = run("train", "--resume", out, "--steps", "6", "--patience", "0", "-q", "--workers", "0")
    assert longer.exit_code == 0 and "stopping early" not in longer.stderr, longer.stderr
    assert json.loads((out / "train_config.json").read_text())["steps"] == 6
    assert json.loads((out / "train_config.json").read_text())["patience"] == 0
    for extra, needle in ((["--sample-every", "0"], "give --sample-every"), (["--patience", "-1"], "patience")):
        bad = run("train", "--stage", "dvae", "--steps", "8", "--patience", "2", *extra, "--out", tmp_path / "bad",
                  *args)
        assert bad.exit_code == 2 and needle in bad.stderr and "Traceback" not in bad.stderr, bad.stderr
        assert not (tmp_path / "bad").exists()
    tok = run("train", "--stage", "tokenizer", "--patience", "2", "--preset", "tiny", "--out", tmp_path / "tok")
    assert tok.exit_code == 2 and "does not apply to the tokenizer stage" in tok.stderr


@pytest.mark.parametrize("stage", ["dvae", "all"])
def test_a_run_folder_that_cannot_be_made_is_one_line(tmp_path, monkeypatch, stage):
    """`train --out` on a read-only disk was an internal error (an OSError from mkdir, unguarded); it is one line
    that names the folder, the reason and the option, and nothing is left behind."""
    import errno
    import pathlib

    out = tmp_path / "ro" / "run"
    real = pathlib.Path.mkdir

    def read_only(self, *args, **kwargs):
        if self == out or out in self.parents:
            raise OSError(errno.EROFS, "Read-only file system")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "mkdir", read_only)
    r = run("train", "--stage", stage, "--preset", "tiny", "--steps", "2", "--workers", "0", "-q", "--out", out)
    assert r.exit_code == 1, r.stderr
    assert r.stderr.strip() == (f"error: cannot create folder {out}: Read-only file system; choose a writable one "
                                "with --out"), r.stderr
    assert sorted(p.name for p in tmp_path.rglob("*")) == []  # nothing made on the way (not even the parent)


def test_a_run_folder_another_process_holds_is_refused_before_anything_is_written(four_step_run, tmp_path):
    """Two `train --resume RUN` at once both trained (every metrics line twice), and a second one's start
    deleted the checkpoint the first was writing; two new runs in one --out both "finished", one of them lost.
    While another process holds a run folder (its lock, released even by kill -9), a resume and a new run
    there are refused in one line, and nothing of the folder changes."""
    from t2i_cli.files import folder_lock

    before = {p.name: p.read_bytes() for p in four_step_run.iterdir() if p.is_file()}
    (four_step_run / ".checkpoint.safetensors.abcd1234.tmp").write_bytes(b"the other process's half-written file")
    script = f"""
import sys, time
sys.path.insert(0, {str(Path(__file__).resolve().parents[1] / "src")!r})
from pathlib import Path
from t2i_cli.files import folder_lock
with folder_lock(Path(sys.argv[1]), "busy"):
    print("held", flush=True)
    time.sleep(60)
"""
    new = tmp_path / "new"
    new.mkdir()
    for folder in (four_step_run, new):
        holder = subprocess.Popen([sys.executable, "-c", script, str(folder)], stdout=subprocess.PIPE, text=True)
        try:
            assert holder.stdout.readline().strip() == "held"
            if folder == four_step_run:
                line = one_line_failure(run("train", "--resume", folder, "--steps", "6"), 1)
                assert f"{folder} is being trained by another t2i process now; wait for it" in line, line
            else:
                line = one_line_failure(run("train", "--stage", "dvae", "--steps", "2", "--out", folder, *TINY), 1)
                assert f"--out {folder} is being used by another t2i process starting a run there" in line, line
        finally:
            holder.kill()
            holder.wait()
    assert {p.name: p.read_bytes() for p in four_step_run.iterdir() if p.is_file()} == before | {
        ".checkpoint.safetensors.abcd1234.tmp": b"the other process's half-written file"}
    assert list(new.iterdir()) == []
    with folder_lock(four_step_run, "busy"):  # the lock is the folder's, not a file in it
        assert sorted(p.name for p in four_step_run.iterdir()) == sorted([*before, "samples",
                                                                          ".checkpoint.safetensors.abcd1234.tmp"])
    r = run("train", "--resume", four_step_run, "--steps", "6")  # once it is free, the resume goes on
    assert r.exit_code == 0, r.stderr
    assert not (four_step_run / ".checkpoint.safetensors.abcd1234.tmp").exists()


def test_an_export_into_a_folder_another_export_holds_is_refused(four_step_run, tmp_path):
    """Two exports into one --to at once could both exit 0, the later one over the other's files unasked."""
    from t2i_cli.files import folder_lock

    to = tmp_path / "w"
    to.mkdir()
    with folder_lock(to, "held by a test"):
        line = one_line_failure(run("export", four_step_run, "--to", to), 1)
    assert f"--to {to} is being written by another t2i export now; wait for it to finish" in line, line
    assert list(to.iterdir()) == []
    (to / ".dvae.safetensors.k3j2h1g0.tmp").write_bytes(b"half")  # what an export killed mid-write left (kill -9)
    (to / ".notes.tmp").write_bytes(b"the user's")
    assert run("export", four_step_run, "--to", to).exit_code == 0
    assert sorted(p.name for p in to.iterdir()) == [".notes.tmp", "dvae.safetensors"]


def test_export_of_a_run_whose_model_file_lags_its_checkpoint_leaves_the_run_as_it_is(four_step_run, tmp_path):
    """A kill between the checkpoint and the model file leaves them at different steps: export exports the
    checkpoint's model (as a resume would write it), and no longer rewrites the run's model file to do so
    (the README says export leaves the run folder as it is; a trainer may be writing there)."""
    model = four_step_run / "dvae.safetensors"
    tensors, meta = load_tensors(model)
    save_tensors(model, {k: v + 1 for k, v in tensors.items()}, {**meta, "step": "2"})  # the step-2 model
    before = {p: p.read_bytes() for p in four_step_run.rglob("*") if p.is_file()}
    r = run("export", four_step_run, "--to", tmp_path / "w")
    assert r.exit_code == 0, r.stderr
    assert {p: p.read_bytes() for p in four_step_run.rglob("*") if p.is_file()} == before
    exported, _ = load_tensors(tmp_path / "w" / "dvae.safetensors")
    ckpt, ckpt_meta = load_tensors(four_step_run / CHECKPOINT)
    assert read_metadata(tmp_path / "w" / "dvae.safetensors")["step"] == ckpt_meta["step"] == "4"
    assert all(torch.equal(exported[k], ckpt["model." + k]) for k in exported)


def test_a_folder_lock_ends_with_the_process_that_took_it_not_its_forked_children(tmp_path):
    """DataLoader workers are forked while the run folder is locked: they inherited the lock and held it for
    seconds after a kill -9 of the trainer, so an immediate --resume was refused as if another t2i trained."""
    from t2i_cli.files import Busy, folder_lock

    ready, said = os.pipe()
    with folder_lock(tmp_path, "busy"):
        child = os.fork()
        if child == 0:  # a worker that outlives the lock's holder (fork's hooks have run by now)
            os.write(said, b"x")
            time.sleep(5)
            os._exit(0)
        assert os.read(ready, 1) == b"x"
    try:
        with folder_lock(tmp_path, "busy"):  # the holder let go: free, though the child still runs
            pass
    except Busy:
        pytest.fail("a forked child kept the folder locked")
    finally:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)


def test_export_names_a_lagging_models_checkpoint_and_leaves_no_folder_when_refused(four_step_run, tmp_path):
    """Two runs whose model files lag their checkpoints (each exported from its checkpoint, written to a scratch
    folder) differ: the refusal named the scratch files, gone by then. A refused export into a new nested
    folder leaves none of it behind (the folder is made first, to be locked)."""
    other = tmp_path / "other"
    shutil.copytree(four_step_run, other)
    tensors, meta = load_tensors(other / CHECKPOINT)
    save_tensors(other / CHECKPOINT, {k: v + 1 if k.startswith("model.") else v for k, v in tensors.items()}, meta)
    for run_dir in (four_step_run, other):
        tensors, meta = load_tensors(run_dir / "dvae.safetensors")
        save_tensors(run_dir / "dvae.safetensors", tensors, {**meta, "step": "2"})
    to = tmp_path / "a" / "b" / "w"
    line = one_line_failure(run("export", four_step_run, other, "--to", to), 2)
    assert f"{four_step_run / CHECKPOINT}'s model and {other / CHECKPOINT}'s model differ" in line, line
    assert "t2i-export" not in line and not (tmp_path / "a").exists()


def test_a_folder_removed_while_it_is_being_locked_is_not_taken_as_locked(tmp_path, monkeypatch):
    """Another start that failed can remove the folder between this one's open and its flock: the lock would be
    on a deleted folder, and the run would go on writing into a new, unlocked one of the same name."""
    import fcntl

    from t2i_cli.files import Busy, folder_lock

    folder = tmp_path / "run"
    folder.mkdir()
    real = fcntl.flock

    def removed_first(fd, op):
        folder.rmdir()
        folder.mkdir()  # and made again by someone else
        return real(fd, op)

    monkeypatch.setattr(fcntl, "flock", removed_first)
    with pytest.raises(Busy, match="held elsewhere"), folder_lock(folder, "held elsewhere"):
        pass
    monkeypatch.undo()
    with folder_lock(folder, "held elsewhere"):
        pass


def test_a_batch_holds_no_more_images_than_the_decode_memory_bound(weights: Path, monkeypatch):
    """A weights file bounds each image's state (MAX_ACTIVATION_BYTES), but generate decoded 16 images (and eval
    32, 4 rows each) whatever that state: a crafted config of 1 GiB of KV cache a row was accepted and decoded 64
    rows at once. A batch now takes as many images as DECODE_MEMORY holds, and draws what a larger one would
    where the seed's stream allows: redraw and eval's shared decodes give batches()' images, scores don't move."""
    from t2i_cli import pipeline
    from t2i_cli.models import transformer as tmod
    from t2i_cli.pipeline import TextToImage

    pipe = TextToImage.from_folder(weights, device="cpu", need_clip=True)
    assert pipe.per_batch() == pipeline.MAX_BATCH and pipe.fit(pipeline.MAX_EVAL_BATCH) == pipeline.MAX_EVAL_BATCH
    images = torch.rand(8, 3, 16, 16)
    whole = pipe.score(images, "a red bird")
    rows: list[int] = []
    real = tmod.KVCache.__init__

    def spy(self, cfg, batch, *a, **k):
        rows.append(batch)
        real(self, cfg, batch, *a, **k)

    monkeypatch.setattr(tmod.KVCache, "__init__", spy)
    monkeypatch.setattr(pipeline, "DECODE_MEMORY", 3 * pipe.image_bytes())  # three images a batch
    assert pipe.per_batch() == 3 and pipe.fit(pipeline.MAX_EVAL_BATCH) == 3
    drawn = pipe("a red bird", n=8, seed=5)
    assert [g.index for g in drawn] == list(range(8)) and rows and max(rows) <= 3 * 2  # guidance: 2 rows an image
    assert torch.equal(pipe.redraw(pipe.request("a red bird"), 8, 5, 7).image, drawn[7].image)
    rows.clear()
    each = pipe.draw_each([pipe.request("a red bird"), pipe.request("two green cats")], [5, 6], n=5)
    assert max(rows) <= 3 * 2
    for i, (prompt, seed) in enumerate([("a red bird", 5), ("two green cats", 6)]):
        alone = pipe(prompt, n=5, seed=seed)
        assert all(torch.equal(g.image, a.image) for g, a in zip(each[5 * i:5 * i + 5], alone, strict=True))
    rows.clear()
    ones = pipe.draw_each([pipe.request(p) for p in ["a red bird", "two green cats", "a red car above a blue house",
                                                     "a blue fish on the left"]], [5, 6, 7, 8])
    assert max(rows) <= 3 * 4 and len(rows) == 2  # four prompts, regions included: two decodes
    assert len(ones) == 4
    sizes: list[int] = []
    clip = pipe.bundle.clip
    real_score = type(clip).score
    monkeypatch.setattr(type(clip), "score", lambda self, x, ids: sizes.append(len(x)) or real_score(self, x, ids))
    monkeypatch.setattr(pipeline, "DECODE_MEMORY", 3 * clip.cfg.activation_bytes())  # a CLIP three images fill
    assert torch.allclose(pipe.score(images, "a red bird"), whole, atol=1e-5) and max(sizes) == 3
    # A reranker takes no part in drawing: however large, it does not change a batch (each drawn from its own
    # seed), so adding one to a folder draws the same images
    import dataclasses

    monkeypatch.setattr(pipeline, "DECODE_MEMORY", 3 * pipe.image_bytes())
    clip.cfg = dataclasses.replace(clip.cfg, n_hid=clip.cfg.n_hid * 1000)
    assert pipe.per_batch() == 3 and pipe.score_fit(8) == 1


def test_export_into_a_folder_of_the_same_models_at_the_other_precision_says_so(four_step_run, tmp_path):
    """An export without --half into a folder exported with --half (or the other way round) said only "already
    exists; pass --force": the models are the same, stored at another precision, which the user could not tell."""
    r = run("export", four_step_run, "--to", tmp_path / "w", "--half")
    assert r.exit_code == 0, r.stderr
    line = one_line_failure(run("export", four_step_run, "--to", tmp_path / "w"), 2)
    assert "stored in fp16 by --half: pass --half to export them so again" in line, line
    assert run("export", four_step_run, "--to", tmp_path / "w", "--half").exit_code == 0  # the same: nothing to do
    assert run("export", four_step_run, "--to", tmp_path / "full").exit_code == 0
    line = one_line_failure(run("export", four_step_run, "--to", tmp_path / "full", "--half"), 2)
    assert "in full precision: leave --half out" in line, line
    other = tmp_path / "other"  # another model in the folder: no such note
    assert run("export", four_step_run, "--to", other).exit_code == 0
    run("train", "--resume", four_step_run, "--steps", "6")
    line = one_line_failure(run("export", four_step_run, "--to", other), 2)
    assert "already exists; pass --force" in line and "precision" not in line, line
