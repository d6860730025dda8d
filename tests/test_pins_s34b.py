"""Pins of the s34b mutation audit of the command-line glue (cli.py, train_options.py, stages.py, errors.py): each
test fails under a small change of that code which the rest of the suite let through (an option silently ignored,
bad input accepted, a traceback instead of one line, a wrong exit code)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import one_line_failure, run

# ---------------------------------------------------------------- train_options: a whole run's recorded settings


def _whole_run(folder: Path, recorded: dict) -> Path:
    """A folder that is a --stage all run by its all.json alone (nothing trained yet)."""
    folder.mkdir(parents=True)
    (folder / "all.json").write_text(json.dumps(recorded))
    return folder


def test_a_whole_run_recording_a_setting_this_t2i_does_not_know_is_refused_naming_it(tmp_path):
    """A run of a newer t2i records a setting this one lacks: refused, never continued without it. (The seed after it,
    of the wrong kind, is what a check that skipped the unknown key would name instead.)"""
    run_dir = _whole_run(tmp_path / "run", {"data": "world:train", "preset": "tiny", "from_the_future": 1,
                                            "seed": "zero"})
    line = one_line_failure(run("train", "--resume", run_dir), 2)
    assert "'from_the_future', which t2i" in line and "does not know" in line, line


def test_a_whole_run_recording_a_model_list_of_other_than_text_is_refused_not_an_internal_error(tmp_path):
    run_dir = _whole_run(tmp_path / "run", {"data": "world:train", "preset": "tiny", "model": [8]})
    line = one_line_failure(run("train", "--resume", run_dir), 2)
    assert "its model is [8], not what --model takes" in line, line


def test_a_per_stage_value_for_the_tokenizer_stage_is_refused_not_ignored(tmp_path):
    """The tokenizer stage takes no --steps: `--steps tokenizer=5` is refused (a stage prefix t2i does not take),
    before the later check of --model (which a mutant accepting the prefix reaches instead)."""
    out = tmp_path / "run"
    line = one_line_failure(run("train", "--stage", "all", "--preset", "tiny", "--out", out, "--steps",
                                "tokenizer=5", "--model", "no_such_field=1"), 2)
    assert "per-stage values are dvae=, transformer= or clip=" in line, line
    assert not out.exists()


def test_world_size_that_is_no_count_of_processes_is_one_process(monkeypatch):
    from t2i_cli.train_options import n_processes

    for text, n in (("", 1), ("1", 1), ("0", 1), ("abc", 1), (" 2", 1), ("2", 2), ("8", 8)):
        monkeypatch.setenv("WORLD_SIZE", text)
        assert n_processes() == n, text
    monkeypatch.delenv("WORLD_SIZE")
    assert n_processes() == 1


def test_patience_without_validations_is_refused_before_the_stage_looks_for_its_dependencies(tmp_path):
    """--patience counts validations, and --sample-every 0 asks for none: refused by the config (the transformer's
    missing --tokenizer, checked after it, is what a run that took the two would be stopped by)."""
    out = tmp_path / "run"
    line = one_line_failure(run("train", "--stage", "transformer", "--preset", "tiny", "--out", out, "--patience", "2",
                                "--sample-every", "0"), 2)
    assert "--patience 2 watches the validation loss" in line and "--sample-every N (not 0)" in line, line
    assert not out.exists()


def test_hard_negatives_on_a_folder_is_refused(tmp_path):
    out = tmp_path / "run"
    line = one_line_failure(run("train", "--stage", "clip", "--preset", "tiny", "--out", out, "--hard-negatives",
                                "--data", tmp_path), 2)
    assert "--hard-negatives needs --data world" in line, line
    assert not out.exists()


def test_finetuning_with_logit_laplace_a_decoder_trained_without_it_is_refused(tmp_path, tiny_weights):
    """The tiny weights' dVAE maps no pixels into [eps, 1 - eps] (pixel_eps 0): --recon-loss logit_laplace cannot
    train its decoder. Refused before --data world:val is (which a run past the check would be stopped by)."""
    from t2i_cli.stages import dvae_config

    assert dvae_config(str(tiny_weights)).pixel_eps <= 0
    out = tmp_path / "run"
    line = one_line_failure(run("train", "--stage", "dvae", "--preset", "tiny", "--out", out, "--finetune-decoder",
                                "--dvae", tiny_weights, "--recon-loss", "logit_laplace", "--data", "world:val"), 2)
    assert "--recon-loss logit_laplace needs a dVAE trained with it" in line, line


def test_a_resume_to_fewer_steps_than_the_run_has_is_refused_and_its_own_steps_are_not(tmp_path):
    out = tmp_path / "run"
    r = run("train", "--stage", "dvae", "--preset", "tiny", "--steps", "2", "--workers", "0", "--device", "cpu", "-q",
            "--out", out)
    assert r.exit_code == 0, r.stderr
    before = (out / "train_config.json").read_text()
    line = one_line_failure(run("train", "--resume", out, "--steps", "1", "-q"), 2)
    assert "--steps 1 is fewer than the run's 2" in line, line
    assert (out / "train_config.json").read_text() == before
    again = one_line_failure(run("train", "--stage", "dvae", "--preset", "tiny", "--steps", "2", "--out", out), 2)
    assert f"{out} already holds a run; continue it with --resume {out} or pick another --out" in again, again
    same = run("train", "--resume", out, "--steps", "2", "-q")  # its own total said again: nothing to refuse
    assert same.exit_code == 0, same.stderr
    assert json.loads((out / "train_config.json").read_text())["steps"] == 2


def test_a_resume_takes_the_cadences_and_patience_it_is_given(tmp_path):
    """--sample-every, --log-every, --ckpt-every and --patience of a resume steer the steps still to come (and are
    recorded with the extended schedule), never silently dropped for the run's own."""
    out = tmp_path / "run"
    r = run("train", "--stage", "dvae", "--preset", "tiny", "--steps", "2", "--workers", "0", "--device", "cpu", "-q",
            "--sample-every", "0", "--log-every", "2", "--ckpt-every", "2", "--out", out)
    assert r.exit_code == 0, r.stderr
    r = run("train", "--resume", out, "--steps", "4", "--sample-every", "1", "--log-every", "1", "--ckpt-every", "3",
            "--patience", "5", "-q")
    assert r.exit_code == 0, r.stderr
    cfg = json.loads((out / "train_config.json").read_text())
    assert (cfg["steps"], cfg["sample_every"], cfg["log_every"], cfg["ckpt_every"], cfg["patience"]) == (4, 1, 1, 3, 5)
    logged = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert {3, 4} <= set(logged), logged  # every step past the resume is logged


OPTS = {k: None for k in ("steps", "batch_size", "lr", "image_side", "text_len", "vocab_size", "seed", "precision",
                          "ckpt_every", "sample_every", "log_every", "recon_loss", "hard_negatives", "patience", "flip",
                          "crop", "ema", "workers", "dvae", "tokenizer", "init")} | {"model": [],
                                                                                      "finetune_decoder": False}


def test_a_finetuned_decoder_keeps_the_loss_its_pixel_mapping_was_trained_for(tmp_path):
    """--finetune-decoder without --recon-loss: logit_laplace for a dVAE that maps pixels into [eps, 1 - eps]
    (pixel_eps > 0), l1 for one that does not; --recon-loss chooses otherwise."""
    import torch

    from t2i_cli.models.dvae import DVAE, DVAEConfig
    from t2i_cli.train_options import train_config
    from t2i_cli.weights import save_model

    for eps, loss in ((0.1, "logit_laplace"), (0.0, "l1")):
        torch.manual_seed(0)
        path = tmp_path / f"dvae-{eps}.safetensors"
        save_model(DVAE(DVAEConfig(image_side=16, downsample=4, n_codes=32, n_hid=8, code_dim=8, pixel_eps=eps)),
                   path, "dvae")
        cfg = train_config("dvae", "world:train", "tiny", OPTS | {"finetune_decoder": True, "dvae": str(path)})
        assert (cfg.recon_loss, cfg.finetune_decoder, cfg.image_side) == (loss, True, 16), eps
        mse = train_config("dvae", "world:train", "tiny", OPTS | {"finetune_decoder": True, "dvae": str(path),
                                                                  "recon_loss": "mse"})
        assert mse.recon_loss == "mse"


def test_a_transformer_stage_trains_at_the_side_of_its_dvae_unless_told(tmp_path):
    """The transformer sees what its --dvae encodes: a dVAE of 32 px gives a 32 px run on the tiny preset (whose own
    side is 16), where the stage would otherwise refuse the dVAE as another side's."""
    import torch

    from t2i_cli.models.dvae import DVAE, DVAEConfig
    from t2i_cli.train_options import train_config
    from t2i_cli.weights import save_model

    torch.manual_seed(0)
    path = tmp_path / "dvae.safetensors"
    save_model(DVAE(DVAEConfig(image_side=32, downsample=4, n_codes=32, n_hid=8, code_dim=8)), path, "dvae")
    opts = OPTS | {"dvae": str(path), "tokenizer": str(tmp_path / "tokenizer.json")}
    assert train_config("transformer", "world:train", "tiny", opts).image_side == 32
    assert train_config("transformer", "world:train", "tiny", opts | {"image_side": 16}).image_side == 16


@pytest.mark.parametrize("stage", ["tokenizer", "dvae", "all"])
def test_an_unknown_preset_is_one_line_naming_the_presets(tmp_path, stage):
    out = tmp_path / "run"
    line = one_line_failure(run("train", "--stage", stage, "--preset", "huge", "--out", out), 2)
    assert "--preset must be one of tiny, default, large, got 'huge'" in line, line
    assert not out.exists()


@pytest.mark.parametrize("name, value", [("--steps", "ten"), ("--batch-size", "8.5"), ("--lr", "fast")])
def test_a_per_stage_option_that_is_no_number_is_one_usage_line(tmp_path, name, value):
    line = one_line_failure(run("train", "--stage", "dvae", "--preset", "tiny", "--out", tmp_path / "run", name,
                                value), 2)
    assert f"{name} {value!r}: {value!r} is not a number" in line, line


def test_a_single_stage_refuses_several_values_of_a_per_stage_option(tmp_path):
    for value in ("5,6", "5,", "dvae=5"):
        line = one_line_failure(run("train", "--stage", "dvae", "--preset", "tiny", "--out", tmp_path / "run",
                                    "--steps", value), 2)
        assert f"--steps {value!r}: per-stage values belong to --stage all" in line, line


# ---------------------------------------------------------------- cli: generate's refusals


@pytest.mark.parametrize("args, named", [
    (["--seed", "5"], "leave out --seed"), (["--n", "2"], "leave out --n"),
    (["a cat"], "leave out PROMPT"), (["a cat", "--seed", "5"], "leave out PROMPT, --seed"),
])
def test_generate_from_a_png_refuses_a_prompt_seed_or_count_it_would_not_use(tmp_path, tiny_weights, args, named):
    """--from redraws the PNG's own image: a PROMPT, --seed or --n given with it is refused (before the PNG is read),
    never silently replaced by the PNG's."""
    line = one_line_failure(run("generate", "--from", tmp_path / "made.png", *args, "--weights", tiny_weights,
                                "--out", tmp_path / "out"), 2)
    assert f"--from takes every setting from the PNG; {named}" in line, line
    assert not (tmp_path / "out").exists()


def test_keep_with_n_is_refused_for_what_it_is(tmp_path, tiny_weights):
    """--keep alone keeps the best of the default candidates; with --n (every image drawn) the refusal says so,
    not that --n and --candidates (never typed) both say how many to draw."""
    line = one_line_failure(run("generate", "a red bird", "--n", "3", "--keep", "2", "--weights", tiny_weights,
                                "--out", tmp_path / "out"), 2)
    assert "--keep keeps the best of --candidates N, and --n keeps every image drawn" in line, line


def test_keep_alone_over_the_default_candidates_says_what_it_keeps_of(tmp_path, tiny_weights):
    line = one_line_failure(run("generate", "a red bird", "--keep", "5", "--weights", tiny_weights,
                                "--out", tmp_path / "out"), 2)
    assert "--keep 5 alone keeps the best of the 4 candidates drawn by default" in line, line


# ---------------------------------------------------------------- train_options: what each stage takes


@pytest.mark.parametrize("stage, args", [
    ("dvae", ["--text-len", "8"]), ("tokenizer", ["--text-len", "8"]), ("transformer", ["--hard-negatives"]),
    ("transformer", ["--init", "some/clip"]), ("dvae", ["--vocab-size", "64"]), ("clip", ["--vocab-size", "64"]),
    ("transformer", ["--recon-loss", "l1"]), ("clip", ["--finetune-decoder"]), ("clip", ["--dvae", "some/dvae"]),
    ("dvae", ["--tokenizer", "some/tok"]), ("tokenizer", ["--seed", "3"]), ("tokenizer", ["--steps", "3"]),
])
def test_a_stage_refuses_an_option_it_would_not_use(tmp_path, stage, args):
    """Refused before anything else is checked (--data world:val is refused later, by the config), and named as
    typed; the stage never runs with the option silently ignored."""
    out = tmp_path / "run"
    line = one_line_failure(run("train", "--stage", stage, "--preset", "tiny", "--out", out, "--data", "world:val",
                                *args), 2)
    assert f"{args[0]} does not apply to the {stage} stage" in line, line
    assert not out.exists()


# ---------------------------------------------------------------- cli: generate --from's warnings


def _made(tiny_weights: Path, tmp_path: Path) -> Path:
    r = run("generate", "a red bird", "--n", "1", "--seed", "3", "--weights", tiny_weights, "--out", tmp_path / "a",
            "--device", "cpu", "-q")
    assert r.exit_code == 0, r.stderr
    return Path(r.stdout.strip())


def _with_text(png: Path, to: Path, **changed: str) -> Path:
    from PIL import Image

    from t2i_cli.images import encode_png, read_png_text

    meta = read_png_text(png)
    meta["t2i"] = json.dumps(json.loads(meta["t2i"]) | changed)  # what --from reads
    with Image.open(png) as im:
        to.write_bytes(encode_png(im.convert("RGB"), meta))
    return to


def test_from_a_png_of_another_t2i_version_or_device_warns_that_the_pixels_differ_unless_quiet(tmp_path, tiny_weights):
    png = _made(tiny_weights, tmp_path)
    older = _with_text(png, tmp_path / "older.png", t2i_version="0.0.1", device="cuda")
    r = run("generate", "--from", older, "--weights", tiny_weights, "--out", tmp_path / "b", "--device", "cpu")
    assert r.exit_code == 0, r.stderr
    warned = [line for line in r.stderr.splitlines() if line.startswith("warning:")]
    assert any("was drawn by t2i 0.0.1, this is" in w and "the pixels may differ" in w for w in warned), r.stderr
    assert any("was drawn on cuda, this runs on cpu" in w for w in warned), r.stderr
    quiet = run("generate", "--from", older, "--weights", tiny_weights, "--out", tmp_path / "c", "--device", "cpu",
                "-q")
    assert quiet.exit_code == 0 and quiet.stderr == "", quiet.stderr
    same = run("generate", "--from", png, "--weights", tiny_weights, "--out", tmp_path / "d", "--device", "cpu")
    assert same.exit_code == 0 and "warning" not in same.stderr, same.stderr


def test_a_generate_stopped_before_its_first_image_leaves_no_new_folder(tmp_path, tiny_weights, monkeypatch):
    """Ctrl-C (or a failure) before any image is written: the --out folder this command made is removed again; one
    that was there before is left."""
    from t2i_cli.pipeline import TextToImage

    def stopped(self, *a, **k):
        raise KeyboardInterrupt
        yield  # (a generator, as batches is)

    monkeypatch.setattr(TextToImage, "batches", stopped)
    out = tmp_path / "new" / "out"
    r = run("generate", "a red bird", "--n", "1", "--weights", tiny_weights, "--out", out, "--device", "cpu")
    assert r.exit_code == 130, (r.exit_code, r.stderr)
    assert not out.exists() and not (tmp_path / "new").exists()  # (s34: every folder it made)
    (tmp_path / "mine").mkdir()
    r = run("generate", "a red bird", "--n", "1", "--weights", tiny_weights, "--out", tmp_path / "mine",
            "--device", "cpu")
    assert r.exit_code == 130 and (tmp_path / "mine").is_dir()


# ---------------------------------------------------------------- cli: --stage all


def test_a_whole_run_into_a_folder_of_other_files_is_refused_first(tmp_path):
    """Before its settings are checked (a --model no stage has would be refused after it), and nothing is
    written into the folder."""
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    line = one_line_failure(run("train", "--stage", "all", "--preset", "tiny", "--out", out, "--model",
                                "no_such_field=1"), 2)
    assert f"--out {out} is a folder that holds other files" in line, line
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


# ---------------------------------------------------------------- cli: eval's refusals


@pytest.mark.parametrize("args, says", [
    (["--data", "world", "--judge", "j.safetensors"], "--judge belongs to the world's tasks, not to --data"),
    (["--data", "world", "--judge", "j.safetensors", "--candidates", "2"],
     "--candidates, --judge belong to the world's tasks, not to --data"),
    (["--data", "world", "--n", "5001", "--draws", "2"],
     "with --n x --draws at most 10000; got --draws 2 and --n 5001"),
    (["--draws", "2"], "--draws belongs to --data"),
    ([x for seed in range(17) for x in ("--seed", str(seed))], "--seed: at most 16 seeds in one run, got 17"),
])
def test_eval_refuses_options_of_the_other_kind_of_eval_before_loading_anything(tmp_path, args, says):
    """Each refused before the weights are read (these name a folder that does not exist, which a run past the
    check would be stopped by, exit 1)."""
    line = one_line_failure(run("eval", *args, "--weights", tmp_path / "no-weights", "-q"), 2)
    assert says in line, line


# ---------------------------------------------------------------- stages: --model values, process counts


@pytest.mark.parametrize("text, value", [("1", True), ("true", True), ("Yes", True), ("0", False), ("false", False),
                                         ("NO", False)])
def test_a_boolean_model_setting_reads_each_spelling(text, value):
    from t2i_cli.stages import parse_model_overrides

    assert parse_model_overrides("clip", [f"word_region={text}"]) == {"word_region": value}


def test_process_counts_name_every_count_up_to_the_most_that_splits_the_batches():
    from t2i_cli.stages import process_counts

    assert process_counts([64]) == "1, 2, 4, 8, 16, 32, 64"
    assert process_counts([8, 12]) == "1, 2, 4"
    assert process_counts([6], most=3) == "1, 2, 3"


# ---------------------------------------------------------------- cli: what -q silences, what train needs


LONG = "a red bird above a blue fish on the left of two green cats below a big yellow star at night"


def test_quiet_silences_the_warnings_of_a_long_prompt_and_of_weights_without_a_clip(tmp_path):
    from conftest import build_tiny_folder

    weights = build_tiny_folder(tmp_path / "w", with_clip=False)
    said = run("generate", LONG, "--weights", weights, "--out", tmp_path / "a", "--device", "cpu")
    assert said.exit_code == 0, said.stderr
    assert "the prompt is longer than 12 tokens; the last" in said.stderr, said.stderr
    assert "has no clip.safetensors, so this draws one image" in said.stderr, said.stderr
    quiet = run("generate", LONG, "--weights", weights, "--out", tmp_path / "b", "--device", "cpu", "-q")
    assert quiet.exit_code == 0 and quiet.stderr == "", quiet.stderr
    assert len(quiet.stdout.split()) == 1 and Path(quiet.stdout.strip()).is_file()


@pytest.mark.parametrize("args, says", [
    (["--stage", "dvae"], "give --stage and --out for a new run, or --resume RUN_DIR to continue one"),
    (["--out", "run"], "give --stage and --out for a new run, or --resume RUN_DIR to continue one"),
    (["--stage", "all"], "--stage all needs --out RUN (or --resume RUN to continue one)"),
])
def test_a_new_run_without_its_stage_or_folder_is_one_line(tmp_path, monkeypatch, args, says):
    monkeypatch.chdir(tmp_path)
    line = one_line_failure(run("train", "--preset", "tiny", *args), 2)
    assert says in line, line
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- cli: image prompts


def _picture_and_mask(tmp_path: Path) -> tuple[Path, Path]:
    from PIL import Image

    src, mask = tmp_path / "src.png", tmp_path / "mask.png"
    Image.new("RGB", (40, 30), (200, 40, 40)).save(src)
    m = Image.new("L", (40, 30), 0)
    m.paste(255, (20, 0, 40, 30))
    m.save(mask)
    return src, mask


@pytest.mark.parametrize("args, says", [
    (["--redraws", "2"], "--redraws needs --image SRC"),
    (["--mask", "MASK", "--redraws", "2"], "--mask needs --image SRC"),
    (["--image", "SRC", "--mask", "MASK", "--redraws", "0"], "--redraws must be in 1..16, got 0"),
    (["--image", "SRC", "--mask", "MASK", "--redraws", "17"], "--redraws must be in 1..16, got 17"),
])
def test_redraws_without_an_image_prompt_or_out_of_range_is_refused(tmp_path, tiny_weights, args, says):
    src, mask = _picture_and_mask(tmp_path)
    args = [{"SRC": src, "MASK": mask}.get(a, a) for a in args]
    out = tmp_path / "out"
    line = one_line_failure(run("generate", "a cat", *args, "--weights", tiny_weights, "--out", out), 2)
    assert says in line, line
    assert not out.exists()


# ---------------------------------------------------------------- stages: a start's warnings


def test_no_validation_says_what_patience_cannot_do_and_how_many_pairs_hold_the_picture():
    from t2i_cli.stages import no_validation
    from t2i_cli.train import TrainConfig

    line = no_validation(TrainConfig(stage="dvae", data="pics", patience=2), 3)
    assert "pics has one distinct usable picture (in 3 image-caption pairs)" in line, line
    assert "patience=2 cannot stop it early (it counts validations)" in line, line  # (from Python: the field)
    alone = no_validation(TrainConfig(stage="dvae", data="pics", patience=0), 1)
    assert "pairs" not in alone and "patience" not in alone, alone


def test_a_clip_start_on_captions_longer_than_its_text_length_says_how_many_are_cut(tmp_path, tiny_weights):
    from PIL import Image

    pics = tmp_path / "pics"
    pics.mkdir()
    for i, colour in enumerate([(200, 30, 30), (30, 200, 30), (30, 30, 200)]):
        Image.new("RGB", (16, 16), colour).save(pics / f"p{i}.png")
        (pics / f"p{i}.txt").write_text(LONG if i else "a red bird")
    r = run("train", "--stage", "clip", "--preset", "tiny", "--tokenizer", tiny_weights, "--data", pics, "--steps",
            "1", "--batch-size", "2", "--workers", "0", "--device", "cpu", "-q", "--out", tmp_path / "run")
    assert r.exit_code == 0, r.stderr
    cut = [line for line in r.stderr.splitlines() if "longer than the text length" in line]
    assert len(cut) == 1 and "(12 tokens)" in cut[0] and "raise --text-len" in cut[0], r.stderr
    assert cut[0].startswith(("warning: 1 caption is", "warning: 2 captions are")), cut


def test_a_dependency_folder_whose_file_is_a_folder_is_refused_as_missing(tmp_path, tiny_weights):
    """--tokenizer DIR (or --dvae DIR) whose tokenizer.json (dvae.safetensors) is a folder: one usage line naming
    that path, before anything is made."""
    import shutil

    odd = tmp_path / "odd"
    shutil.copytree(tiny_weights, odd)
    (odd / "tokenizer.json").unlink()
    (odd / "tokenizer.json").mkdir()
    out = tmp_path / "run"
    line = one_line_failure(run("train", "--stage", "clip", "--preset", "tiny", "--tokenizer", odd, "--out", out), 2)
    assert f"{odd / 'tokenizer.json'} does not exist; pass the tokenizer.json file or a folder that holds it" in line
    assert not out.exists()


def test_from_a_png_drawn_from_its_prompt_alone_refuses_an_image_prompt(tmp_path, tiny_weights):
    png = _made(tiny_weights, tmp_path)
    src, mask = _picture_and_mask(tmp_path)
    for extra in (["--image", src], ["--image", src, "--mask", mask]):
        line = one_line_failure(run("generate", "--from", png, *extra, "--weights", tiny_weights, "--out",
                                    tmp_path / "b"), 2)
        assert f"{png} was drawn from its prompt alone; leave out --image and --mask" in line, line
        assert not (tmp_path / "b").exists()


def test_a_new_dvae_maps_pixels_into_eps_only_for_the_logit_laplace_loss():
    from t2i_cli.stages import dvae_model_config
    from t2i_cli.train import TrainConfig

    model = {"downsample": 4, "n_codes": 32, "n_hid": 8, "code_dim": 8}
    for loss, eps in (("logit_laplace", 0.1), ("l1", 0.0), ("mse", 0.0)):
        cfg = TrainConfig(stage="dvae", data="world", image_side=16, recon_loss=loss, model=model)
        assert dvae_model_config(cfg).pixel_eps == eps, loss


def test_a_single_stage_whose_model_cannot_be_built_is_one_usage_line_and_leaves_nothing(tmp_path, tiny_weights):
    out = tmp_path / "run"
    line = one_line_failure(run("train", "--stage", "clip", "--preset", "tiny", "--tokenizer", tiny_weights, "--model",
                                "n_head=7", "--workers", "0", "--device", "cpu", "--out", out), 2)
    assert "cannot build the clip model from these settings" in line, line
    assert not out.exists()


def test_a_stop_as_training_starts_leaves_no_run_behind(tmp_path, monkeypatch):
    """Ctrl-C after the run's settings are written but before its first step: the start is undone (a retry of
    the same command is not refused as a folder that already holds a run)."""
    import t2i_cli.train as train

    def stopped(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(train, "train_loop", stopped)
    out = tmp_path / "run"
    args = ("train", "--stage", "dvae", "--preset", "tiny", "--steps", "1", "--workers", "0", "--device", "cpu", "-q",
            "--out", out)
    r = run(*args)
    assert r.exit_code == 130, r.stderr
    assert "no run was made" in r.stderr and not out.exists(), r.stderr
    monkeypatch.undo()
    assert run(*args).exit_code == 0


def test_a_folder_of_fewer_training_pictures_than_a_batch_says_so_at_one_short(tmp_path):
    from PIL import Image

    pics = tmp_path / "pics"
    pics.mkdir()
    for i in range(5):
        Image.new("RGB", (16, 16), (40 * i, 200 - 30 * i, 90)).save(pics / f"p{i}.png")
        (pics / f"p{i}.txt").write_text(f"a picture {i}")

    def warned(batch: int) -> list[str]:
        r = run("train", "--stage", "dvae", "--preset", "tiny", "--data", pics, "--steps", "1", "--batch-size",
                str(batch), "--workers", "0", "--device", "cpu", "-q", "--out", tmp_path / f"run-{batch}")
        assert r.exit_code == 0, r.stderr
        return [line for line in r.stderr.splitlines() if "fewer than a batch" in line]

    (line,) = warned(64)
    n = int(line.removeprefix("warning: ").split()[0])  # the training pictures (some are held out)
    assert 1 < n < 5
    (short,) = warned(n + 1)
    assert short.startswith(f"warning: {n} training pictures ") and f"fewer than a batch of {n + 1}" in short
    assert warned(n) == []
