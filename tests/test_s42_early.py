"""Session 42 (hJ): `generate --prompts -` refuses an out-of-range sampling setting before it reads standard input,
and the bounds of rerank --top and of a small --image-side."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import SRC, refused_with_the_pipe_open


@pytest.mark.parametrize("args, says", [
    (["--temperature", "0"], "error: --temperature must be between 0.001 and 100, got 0.0"),
    (["--top-p", "2"], "error: --top-p must be in (0, 1], got 2.0"),
    (["--top-k", "-1"], "error: --top-k must be 0 or more"),
    (["--guidance", "200"], "error: --guidance must be between 0 and 100, got 200.0"),
    (["--guidance-start", "-1"], "error: --guidance-start must be between 0 and 100"),
    (["--guidance-stop", "2"], "error: --guidance-stop must be in (0, 1], got 2.0"),
    (["--guidance-stop", "0.5", "--jacobi", "4"], "error: --guidance-stop does not combine with --jacobi"),
    (["--regional", "-1"], "error: --regional must be between 0 and 100, got -1.0"),
    (["--jacobi", "999"], "error: --jacobi must be in 0..64"),
    (["--negative", "a blue bird", "--guidance", "0.5"], "error: --guidance 0.5 is below 1, where guidance draws "
                                                         "toward the --negative text"),
])
def test_generate_prompts_from_a_pipe_refuses_a_sampling_setting_out_of_range_before_reading_it(
        tiny_weights, tmp_path, args, says):
    """The sampling settings' ranges were checked by SamplingConfig once torch had loaded, which `generate --prompts
    -` does only after reading its pipe to the end: a writer that keeps it open (`tail -f`) kept `--temperature 0`
    waiting forever. Now refused at once, in the same one line, with nothing written."""
    code, err = refused_with_the_pipe_open(tmp_path, args, tiny_weights)
    assert code == 2 and err.startswith(says) and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "out").exists()


def test_sampling_config_and_its_checks_import_without_torch():
    """The early checks need SamplingConfig without torch (which must load only once OpenMP's spinning is bounded);
    sampling.SamplingConfig is the same class, so every import of it keeps working."""
    code = ("import sys; from t2i_cli.sampling_config import SamplingConfig; from t2i_cli.prompt_file import "
            "check_negative; SamplingConfig(temperature=0.5); print('torch' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ,
                                                                                               PYTHONPATH=SRC))
    assert r.returncode == 0 and r.stdout.strip() == "False", r.stderr
    from t2i_cli import pipeline, sampling, sampling_config

    assert sampling.SamplingConfig is sampling_config.SamplingConfig and sampling.MAX_JACOBI == 64
    assert pipeline.check_negative is not None


def test_train_help_names_the_least_image_side_of_a_dvae_and_of_a_clip():
    """`train --image-side` said only "at most 4096", while a dVAE refuses a side that is not a multiple of its cell
    side (4 at least: `--image-side 2` was refused as "must be a multiple of downsample 4") and a CLIP one under 16:
    the help names both least sides."""
    from t2i_cli.cli import train

    helps = [p.help for p in train.__defaults__ if getattr(p, "param_decls", None) and "--image-side" in p.param_decls]
    assert len(helps) == 1
    said = " ".join(helps[0].split())
    assert "a multiple of its cell side" in said and "4 in the tiny preset, 8 in the others" in said, said
    assert "for a CLIP at least 16" in said, said


@pytest.mark.parametrize("args, says", [
    (["--image", "src.png", "--mask", "src.png", "--redraws", "99"], "error: --redraws must be in 1..16, got 99"),
    (["--precision", "fp8"], "error: --precision must be one of auto, fp32, bf16, int8, got 'fp8'"),
    (["--device", "tpu"], "error: --device must be auto, cpu or cuda, got 'tpu'"),
])
def test_generate_prompts_from_a_pipe_refuses_redraws_precision_and_device_before_reading_it(
        tiny_weights, tmp_path, args, says):
    """--redraws out of range, a --precision or --device that is none of the choices were refused by modules that
    import torch (image_prompt, pipeline, devices), which `generate --prompts -` loads only once its pipe closes:
    kept waiting by a writer that keeps it open. Their choices are in the torch-free sampling_config now."""
    from PIL import Image

    Image.new("RGB", (16, 16), (200, 40, 40)).save(tmp_path / "src.png")
    code, err = refused_with_the_pipe_open(tmp_path, args, tiny_weights)
    assert code == 2 and err.startswith(says) and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "out").exists()
