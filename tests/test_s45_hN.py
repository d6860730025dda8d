"""Session 45, hN: review of the session's run/CLI/API changes (each test fails without its fix)."""

from __future__ import annotations

import numpy as np
import pytest

from t2i_cli.models.classifier import JudgeConfig, ObjectClassifier
from t2i_cli.world import evaluate as ev
from t2i_cli.world import judge as jd
from t2i_cli.world import tasks

SMALL = JudgeConfig(crop=24, widths=(16, 32, 32))


class SeenJudge(jd.Judge):
    """A judge that says yes to everything and keeps a sum of each picture it was shown."""

    def __init__(self):
        super().__init__(ObjectClassifier(SMALL))
        self.seen: list[int] = []

    def passes(self, task, image, spec):
        self.seen.append(int(np.asarray(image, dtype=np.int64).sum()))
        return True

    def check(self, image, spec):
        return {c: True for checks in tasks.TASK_CHECKS.values() for c in checks}


def test_validate_judge_refuses_a_seed_eval_refuses_and_takes_numpys_as_the_same_seed():
    # (validate_judge did not check its seed: True rendered other scenes than seed 1's, 1.5 and -1 scenes that
    # `t2i eval --seed` never renders, all without a word; evaluate_model refused them)
    for seed in (True, 1.5, -1, 2 ** 63, "3", np.bool_(True)):
        judge = SeenJudge()
        with pytest.raises(ValueError, match=r"seed must be a whole number in 0\.\.2\*\*63-1"):
            ev.validate_judge(judge, 1, seed, 32)
        assert judge.seen == []  # (refused before any scene is rendered)
    plain, numpys = SeenJudge(), SeenJudge()
    assert ev.validate_judge(plain, 1, 5, 32) == ev.validate_judge(numpys, 1, np.int64(5), 32)
    assert plain.seen == numpys.seen and len(plain.seen) == 2 * len(tasks.TASKS)


def test_the_lines_a_command_prints_name_a_path_typed_as_dot_slash_dash_as_typed(tmp_path, monkeypatch):
    # (the refusals said `--out ./-` as typed, but the lines of what was written said the absolute path t2i makes of
    # it: "wrote 1 scene to /home/me/-", "wrote /home/me/-/preview.png")
    from conftest import run

    monkeypatch.chdir(tmp_path)
    r = run("data", "world", "--n", "1", "--side", "32", "--out", "./-")
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == "wrote 1 scene to ./-" and str(tmp_path) not in r.output
    assert (tmp_path / "-").is_dir()
    r = run("data", "preview", "./-", "--out", "./-")
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == "wrote ./-/preview.png" and str(tmp_path) not in r.output
    assert (tmp_path / "-" / "preview.png").is_file()
    r = run("data", "world", "--n", "1", "--side", "32", "--out", "w")  # (a later command forgets ./-)
    assert r.exit_code == 0 and r.stdout.strip() == "wrote 1 scene to w"


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["generate", "--help"], ["data", "caption", "--help"]])
def test_help_and_version_stay_torch_free_and_are_no_refusal_of_an_omp_num_threads_openmp_cannot_read(args):
    # (every command now checks OpenMP's environment as it starts, info, export and data too: their --help and
    # `t2i --version` must still answer, and load no torch, as t2i --help is pinned to: BENCHMARKS.md cold start)
    import os
    import subprocess
    import sys
    from pathlib import Path

    src = str(Path(__file__).resolve().parents[1] / "src")
    code = ("import sys\nfrom t2i_cli.cli import app\ntry:\n    app(sys.argv[1:])\nexcept SystemExit as e:\n"
            "    print('exit', e.code, 'torch' in sys.modules, file=sys.stderr)\n")
    env = {**os.environ, "OMP_NUM_THREADS": "abc", "PYTHONPATH": src}
    r = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=120)
    assert r.stderr.strip().splitlines()[-1] == "exit 0 False", r.stderr
    assert "OMP_NUM_THREADS" not in r.stderr and r.stdout.strip()


def test_a_train_config_takes_numpys_model_sizes_and_booleans_as_plain_ones(tmp_path):
    # (the README says a TrainConfig's numbers may be numpy's; its model's sizes were refused, "n_codes is
    # np.int64(64), not an integer", and a sweep's np.bool_ flip "flip must be bool, got np.True_")
    import json

    from t2i_cli.stages import apply_preset, dvae_model_config
    from t2i_cli.train import TrainConfig

    kw = apply_preset("dvae", "tiny", {"steps": 1}, str(tmp_path))
    plain = TrainConfig(stage="dvae", data=str(tmp_path), **kw)
    sizes = {k: np.int64(v) if isinstance(v, int) and not isinstance(v, bool) else v for k, v in kw["model"].items()}
    assert any(isinstance(v, np.int64) for v in sizes.values())
    cfg = TrainConfig(stage="dvae", data=str(tmp_path), **{**kw, "model": sizes}, flip=np.bool_(True),
                      hard_negatives=np.bool_(False))
    cfg.check()
    assert cfg.model == plain.model and all(type(v) is type(plain.model[k]) for k, v in cfg.model.items())
    assert cfg.flip is True and cfg.hard_negatives is False
    assert dvae_model_config(cfg) == dvae_model_config(plain)
    said = json.loads(json.dumps(cfg.to_json()))  # (train_config.json can hold it: it could not)
    assert said["model"] == json.loads(json.dumps(plain.to_json()))["model"] and said["flip"] is True
    assert isinstance(sizes[next(k for k, v in sizes.items() if isinstance(v, np.int64))], np.int64)  # (not changed)


def test_an_image_prompt_takes_numpys_floats_as_sampling_does(tiny_weights, tmp_path):
    # (build refused keep_top=np.float32(0.5) as "keep_top must be a number, got float32", where SamplingConfig
    # takes np.float32 temperatures; np.bool_ is still no number)
    import torch
    from PIL import Image

    from t2i_cli.image_prompt import build
    from t2i_cli.weights import load_folder

    dvae = load_folder(tiny_weights).dvae
    src = tmp_path / "src.png"
    Image.new("RGB", (20, 20), (200, 40, 40)).save(src)
    for name in ("keep_top", "strength"):
        plain, numpys = build(dvae, src, **{name: 0.5}), build(dvae, src, **{name: np.float32(0.5)})
        assert numpys.mode == plain.mode and torch.equal(numpys.codes, plain.codes)
        assert (plain.keep is None and numpys.keep is None) or torch.equal(numpys.keep, plain.keep)
        assert numpys.strength == plain.strength and type(numpys.strength) is type(plain.strength)
        with pytest.raises(TypeError, match=rf"^{name} must be a number, got (np\.True_|True)$"):  # (its repr)
            build(dvae, src, **{name: np.bool_(True)})


def test_dvae_metrics_takes_numpys_seed_as_the_plain_one(tiny_weights):
    # (dvae_metrics multiplied an np.int64 seed into an overflow, other scenes than the plain seed's, and said n as
    # np.int64; t2i eval --seed 2**63-1 checks its judge at seed 0, where seed + 1 is past the range: test_s45_hK)
    import json
    import warnings

    from t2i_cli.weights import load_folder

    dvae = load_folder(tiny_weights).dvae
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (numpy's overflow warning is a failure)
        numpys = ev.dvae_metrics(dvae, np.int64(2), np.int64(2 ** 62))
    assert numpys == ev.dvae_metrics(dvae, 2, 2 ** 62) and type(numpys["n"]) is int and json.dumps(numpys)
    with pytest.raises(ValueError, match=r"seed must be a whole number in 0\.\.2\*\*63-1, got True"):
        ev.dvae_metrics(dvae, 1, True)


def test_the_transformer_reads_codes_of_any_integer_type_and_bits_refuses_bools(tiny_weights):
    # (the README's transformer(text, codes): int32 codes, as torch.tensor(..., dtype=torch.int32) makes them, were
    # "expected target dtype to be Long or Byte, but got Int" from deep in the loss; pipe.bits read bool codes as
    # codes 0 and 1, where dvae.image_from_codes refuses them)
    import torch

    from t2i_cli.errors import UsageError
    from t2i_cli.pipeline import TextToImage

    pipe = TextToImage.from_folder(tiny_weights, "cpu")
    g = pipe("a red bird", 1, 0)[0]
    t = pipe.bundle.transformer
    text = torch.tensor([pipe.request("a red bird").encoded.ids])
    with torch.inference_mode():
        logits, loss = t(text, g.codes[None])
        for kind in (torch.int32, torch.int16):
            other_logits, other_loss = t(text.to(kind), g.codes[None].to(kind))
            assert torch.equal(other_logits, logits) and torch.equal(other_loss, loss)
        for bad in (g.codes[None].bool(), g.codes[None].float()):
            with pytest.raises(ValueError, match="the transformer reads token ids and codes as integers"):
                t(text, bad)
    assert torch.equal(pipe.bits(["a red bird"], g.codes[None].int()), pipe.bits(["a red bird"], g.codes[None]))
    with pytest.raises(UsageError, match="codes must be integers in 0"):
        pipe.bits(["a red bird"], (g.codes[None] % 2).bool())
