"""Session 42: README.md's "Use", "Train on your own images", "Python API" and "When things go wrong" against the
code, pinned where the code or its --help said otherwise."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import one_line_failure, run
from t2i_cli.data import MAX_PREVIEW_PIXELS, MAX_SIDE, MAX_WORLD_SCENES
from t2i_cli.image_prompt import MAX_REDRAWS
from t2i_cli.prompt_file import MAX_PROMPT_CHARS, MAX_PROMPT_FILE, MAX_PROMPTS
from t2i_cli.sampling import MAX_JACOBI
from t2i_cli.train import CONFIG_LIMITS, TrainConfig


def option_help(command: list[str], option: str) -> str:
    """The --help text of one option, its wrapped lines joined."""
    r = run(*command, "--help")
    assert r.exit_code == 0, r.stderr
    text = re.sub(r"\s+", " ", r.stdout)
    found = re.search(rf"(?:^| ){re.escape(option)}(?:, [-\w]+)? <\w+> (.*?)(?= -[-\w]+(?:, [-\w]+)? <\w+> | -[-\w]+ "
                      rf"(?=[A-Z])|$)", text)
    assert found, f"{option} not in {command} --help"
    return found.group(1)


@pytest.mark.parametrize("command, option, bound", [
    (["generate"], "--threads", "1..256"), (["vary"], "--threads", "1..256"), (["rerank"], "--threads", "1..256"),
    (["eval"], "--threads", "1..256"),
    (["generate"], "--seed", "0..2^63-1"), (["vary"], "--seed", "0..2^63-1"), (["train"], "--seed", "0..2^63-1"),
    (["generate"], "--jacobi", f"0..{MAX_JACOBI}"), (["eval"], "--jacobi", f"0..{MAX_JACOBI}"),
    (["generate"], "--redraws", f"1..{MAX_REDRAWS}"),
    (["generate"], "--candidates", "1..256"), (["eval"], "--candidates", "1..256"),
    (["generate"], "--top-k", "at most the codebook's size"),
    (["train"], "--workers", "{0}..{1}".format(*CONFIG_LIMITS["num_workers"])),
    (["data", "world"], "--n", f"1..{MAX_WORLD_SCENES:,}"), (["data", "world"], "--side", f"16..{MAX_SIDE}"),
    (["data", "preview"], "--n", "1..256"), (["data", "preview"], "--side", f"16..{MAX_SIDE}"),
    (["train"], "--batch-size", "at most {1:,}".format(*CONFIG_LIMITS["batch_size"])),
    (["train"], "--image-side", "at most {1}".format(*CONFIG_LIMITS["image_side"])),
    (["train"], "--text-len", "at most {1}".format(*CONFIG_LIMITS["text_len"])),
    (["train"], "--vocab-size", "at most {1:,}".format(*CONFIG_LIMITS["vocab_size"])),
    (["generate"], "--guidance-start", "(0..100)"), (["vary"], "--guidance-start", "(0..100)"),
    (["eval"], "--guidance-start", "(0..100)"),
    (["eval"], "--draws", "with --n x --draws at most 10000"),
    (["generate"], "--prompts", f"at most {MAX_PROMPTS:,} prompts, {MAX_PROMPT_FILE >> 20} MiB and "
                                f"{MAX_PROMPT_CHARS:,} characters a line"),
])
def test_help_names_the_range_the_command_enforces(command: list[str], option: str, bound: str):
    # README "When things go wrong" names these ranges (`--candidates` or `--threads` outside 1..256, `--jacobi`
    # outside 0..64, `--redraws` outside 1..16, `data world --n` past 1,000,000, `--prompts` over 10,000 prompts,
    # ...) and the commands refuse outside them; their --help said none of them ("Scenes to write.", "DataLoader
    # worker processes.").
    assert bound in option_help(command, option)


def test_help_names_the_training_cadence_defaults():
    # --ckpt-every, --sample-every, --log-every and --workers showed no default (their TrainConfig's, which no
    # preset changes); the README's "500 by default" for --sample-every is the validation cadence.
    defaults = TrainConfig(stage="dvae", data="world:train")
    assert f"default {defaults.ckpt_every}" in option_help(["train"], "--ckpt-every")
    assert f"default {defaults.log_every}" in option_help(["train"], "--log-every")
    assert f"default {defaults.num_workers}" in option_help(["train"], "--workers")
    sample = option_help(["train"], "--sample-every")
    assert f"default {defaults.sample_every}" in sample and "validations" in sample
    assert MAX_PREVIEW_PIXELS == 2 ** 25 and "at most 2^25" in option_help(["data", "preview"], "--side")


def test_vary_out_that_names_a_picture_file_names_vary_files(tiny_weights: Path, tmp_path: Path, monkeypatch):
    # README: `generate --out new/bird.png` (or `vary`) is refused, `--out` being the folder the images go in;
    # vary's refusal said they are "each named from its prompt, e.g. a-red-bird-000.png", names vary never writes
    # (its files are named from the source's: a-red-bird-000-vary-000.png).
    monkeypatch.chdir(tmp_path)
    r = run("generate", "a red bird", "--weights", tiny_weights, "--candidates", "1", "--out", "src", "-q")
    assert r.exit_code == 0, r.stderr
    line = one_line_failure(run("vary", "src/a-red-bird-000.png", "--weights", tiny_weights, "--out", "v/x.jpg"), 2)
    assert line == ("error: --out v/x.jpg names a file, but --out is the folder the images go in (each named from "
                    "its source's name, e.g. a-red-bird-000-vary-000.png); give a folder, e.g. --out v"), line
    assert not (tmp_path / "v").exists()
    r = run("vary", "src/a-red-bird-000.png", "--weights", tiny_weights, "--n", "1", "--out", "v", "-q")
    assert r.exit_code == 0 and r.stdout.split() == [str(Path("v") / "a-red-bird-000-vary-000.png")], r.stdout


def test_train_help_names_the_recon_loss_and_precision_defaults():
    # README: the reconstruction loss is `--recon-loss logit_laplace` in the default and tiny presets, `large`
    # keeping `l1`; training's `--precision auto` is the default. --help named neither default.
    from t2i_cli.stages import apply_preset

    assert [apply_preset("dvae", p, {}, "world:train")["recon_loss"] for p in ("tiny", "default", "large")] == \
        ["logit_laplace", "logit_laplace", "l1"]
    assert "default: logit_laplace, l1 in the large preset" in option_help(["train"], "--recon-loss")
    assert option_help(["train"], "--precision").startswith("auto, the default")
