"""`t2i train --flip`: a folder's training pictures mirrored half the time, never against a caption."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from conftest import one_line_failure, run
from t2i_cli.data import Augment, flips, open_source


def lopsided_folder(folder: Path, captions: list[str]) -> Path:
    """Pictures bright on their left half only, so a mirrored one differs from the original everywhere."""
    folder.mkdir(parents=True)
    for i, caption in enumerate(captions):
        img = Image.new("RGB", (16, 16), (10, 10, 10))
        img.paste((200, 40 + 10 * i, 90), (0, 0, 8, 16))
        img.save(folder / f"p{i:02d}.png")
        (folder / f"p{i:02d}.txt").write_text(caption + "\n")
    return folder


def test_flips_half_the_pictures_by_seed_epoch_and_index_never_against_left_or_right():
    draws = [flips(0, e, i, "a red bird") for e in range(4) for i in range(500)]
    assert 0.45 < sum(draws) / len(draws) < 0.55
    assert draws == [flips(0, e, i, "a red bird") for e in range(4) for i in range(500)]  # a pure function
    assert draws != [flips(1, e, i, "a red bird") for e in range(4) for i in range(500)]  # of the seed too
    by_epoch = [[flips(0, e, i, "x") for i in range(200)] for e in range(2)]
    assert by_epoch[0] != by_epoch[1]  # a picture is mirrored in some epochs, not in others
    for caption in ("a bird on the left", "RIGHT of the fish", "a cat to the left of a dog", "left", "the leftmost cat",
                    "a rightward arrow", "arrows pointing leftwards", "a left-handed glove", "a right-hand turn",
                    "the lefty pitcher"):
        assert not any(flips(0, e, i, caption) for e in range(2) for i in range(100)), caption
    assert any(flips(0, 0, i, "leftover pizza, a copyright sign") for i in range(10))  # whole words only


def test_a_flipping_dataset_mirrors_exactly_the_pictures_flips_names_and_validation_none(tmp_path):
    folder = lopsided_folder(tmp_path / "d", [f"picture {i}" for i in range(12)] + ["a cat on the left"] * 4)
    train = open_source(str(folder), 16, part="train")
    plain = [train[i][0] for i in range(len(train))]
    train.augment, train.epoch = Augment(3, flip=True), 1
    for i in range(len(train)):
        x, caption = train[i]
        mirrored = flips(3, 1, i, caption)
        assert torch.equal(x, plain[i].flip(-1) if mirrored else plain[i]), (i, caption)
        assert not mirrored or not torch.equal(x, plain[i])
    assert any(flips(3, 1, i, train[i][1]) for i in range(len(train)))
    val = open_source(str(folder), 16, part="val")
    assert val.augment is None


def dvae_run(tmp_path: Path, name: str, data: Path, *extra: str):
    return run("train", "--stage", "dvae", "--data", data, "--out", tmp_path / name, "--preset", "tiny",
               "--steps", "3", "--workers", "0", "--device", "cpu", "-q", *extra)


def test_train_flip_is_honoured_recorded_and_refused_where_it_cannot_apply(tmp_path):
    """--flip changes what a folder's run trains on (another model, the same seed), is recorded in the run's
    config, and changes nothing where every caption says left or right; on the world, on the tokenizer stage or
    on a resume it is refused."""
    data = lopsided_folder(tmp_path / "d", [f"picture {i}" for i in range(10)])
    for name, extra in (("plain", ()), ("flip", ("--flip",)), ("noflip", ("--no-flip",))):
        r = dvae_run(tmp_path, name, data, *extra)
        assert r.exit_code == 0, r.stderr
    model = {n: (tmp_path / n / "dvae.safetensors").read_bytes() for n in ("plain", "flip", "noflip")}
    assert model["flip"] != model["plain"] == model["noflip"]
    assert json.loads((tmp_path / "flip" / "train_config.json").read_text())["flip"] is True
    sided = lopsided_folder(tmp_path / "s", [f"a thing {i} on the left" for i in range(10)])
    assert dvae_run(tmp_path, "s1", sided, "--flip").exit_code == 0
    assert dvae_run(tmp_path, "s0", sided).exit_code == 0
    assert (tmp_path / "s1" / "dvae.safetensors").read_bytes() == (tmp_path / "s0" / "dvae.safetensors").read_bytes()
    line = one_line_failure(dvae_run(tmp_path, "w", "world:train", "--flip"), 2)
    assert "--flip mirrors the pictures of a folder or manifest" in line
    assert not (tmp_path / "w").exists()
    assert dvae_run(tmp_path, "w2", "world:train", "--no-flip").exit_code == 0  # nothing to turn off: honoured
    line = one_line_failure(run("train", "--stage", "tokenizer", "--data", data, "--out", tmp_path / "t", "--flip"), 2)
    assert "--flip does not apply to the tokenizer stage" in line
    line = one_line_failure(run("train", "--stage", "tokenizer", "--data", data, "--out", tmp_path / "t", "--no-flip"),
                            2)
    assert "--no-flip does not apply to the tokenizer stage" in line  # the refusal names the flag typed
    for typed in ("--flip", "--no-flip"):
        line = one_line_failure(run("train", "--resume", tmp_path / "flip", "--steps", "4", typed), 2)
        assert line.startswith(f"error: {typed} cannot change a run that has started"), line


@pytest.mark.parametrize("stage", ["transformer", "clip"])
def test_flip_reaches_the_transformer_and_clip_stages(tmp_path, stage, monkeypatch):
    """Every stage that reads pictures hands its training set the run's seed when --flip is on, and validation
    none."""
    from t2i_cli import stages

    seen = {}
    real = stages._build_stage

    def build(cfg, run_dir, dd, dataset, val):
        seen["train"], seen["val"] = dataset.augment, val.augment
        raise KeyboardInterrupt  # enough: the datasets are what this test looks at

    monkeypatch.setattr(stages, "_build_stage", build)
    data = lopsided_folder(tmp_path / "d", [f"picture {i}" for i in range(10)])
    assert run("train", "--stage", "tokenizer", "--data", data, "--out", tmp_path / "tok", "--preset", "tiny",
               "-q").exit_code == 0
    extra = ["--dvae", tmp_path / "dv"] if stage == "transformer" else []
    if stage == "transformer":
        monkeypatch.setattr(stages, "_build_stage", real)
        assert dvae_run(tmp_path, "dv", data).exit_code == 0
        monkeypatch.setattr(stages, "_build_stage", build)
    run("train", "--stage", stage, "--data", data, "--out", tmp_path / stage, "--preset", "tiny", "--tokenizer",
        tmp_path / "tok", "--flip", "--seed", "7", "--workers", "0", "--device", "cpu", "-q", *extra)
    assert seen == {"train": Augment(7, flip=True), "val": None}


def test_flip_defaults_by_preset_and_data_and_an_older_run_reads_as_unflipped(tmp_path):
    """On a folder the default and large presets mirror the dVAE's and transformer's pictures (measured on real
    icons, BENCHMARKS.md), not the CLIP's; tiny (the tests' preset) and the world never; --no-flip turns it off. A
    run folder written before --flip existed resumes as it was trained, unflipped."""
    from t2i_cli.train import read_run_config
    from t2i_cli.train_options import train_config

    data = lopsided_folder(tmp_path / "d", [f"picture {i}" for i in range(4)])
    opts = {k: None for k in ("steps", "batch_size", "lr", "image_side", "text_len", "vocab_size", "seed",
                              "precision", "ckpt_every", "sample_every", "log_every", "recon_loss", "hard_negatives",
                              "patience", "flip", "crop", "ema", "workers", "dvae", "tokenizer", "init")}
    opts |= {"model": [], "finetune_decoder": False}
    for preset in ("default", "large", "tiny"):
        for stage in ("dvae", "transformer", "clip"):
            for source in (str(data), "world:train"):
                cfg = train_config(stage, source, preset, opts)
                on = preset != "tiny" and stage != "clip" and source != "world:train"
                assert (cfg.flip, cfg.crop) == ((True, 0.8) if on else (False, 1.0)), (preset, stage, source)
    assert not train_config("transformer", str(data), "default", opts | {"flip": False}).flip
    assert train_config("transformer", str(data), "default", opts | {"crop": 1.0}).crop == 1.0
    run_dir = tmp_path / "old"
    run_dir.mkdir()
    saved = train_config("dvae", str(data), "default", opts).to_json()
    del saved["flip"], saved["crop"]
    (run_dir / "train_config.json").write_text(json.dumps(saved))
    assert read_run_config(run_dir).flip is False and read_run_config(run_dir).crop == 1.0


def test_a_whole_run_records_flip_and_one_started_before_flip_goes_on_unmirrored(tmp_path):
    """A new --stage all run records flip (null: the preset's choice per stage); an all.json written before
    --flip existed, which mirrored nothing, reads as flip false, so its later stages train as it began; the same
    command (no --flip) still matches it, and --flip is refused as a change."""
    from t2i_cli.recipe import plan_settings
    from t2i_cli.train_options import stage_config_of_all

    data = lopsided_folder(tmp_path / "d", [f"picture {i}" for i in range(6)])
    r = run("train", "--stage", "all", "--data", data, "--out", tmp_path / "new", "--preset", "tiny", "--steps", "1",
            "--workers", "0", "--device", "cpu", "-q")
    assert r.exit_code == 0, r.stderr
    assert json.loads((tmp_path / "new" / "all.json").read_text())["flip"] is None
    assert json.loads((tmp_path / "new" / "all.json").read_text())["crop"] is None
    old = tmp_path / "old"
    old.mkdir()
    (old / "all.json").write_text(json.dumps({"data": str(data), "preset": "default"}))
    same = {"data": str(data), "preset": "default", "flip": None, "crop": None}  # the same command
    recorded = plan_settings(old, same)
    assert recorded["flip"] is False and recorded["crop"] == 1.0
    params = {"workers": None}
    assert not any(stage_config_of_all(s, old, recorded, params).flip for s in ("dvae", "transformer", "clip"))
    assert all(stage_config_of_all(s, old, recorded, params).crop == 1.0 for s in ("dvae", "transformer", "clip"))
    new = stage_config_of_all("transformer", tmp_path / "new2", same, params)  # a new run: on
    assert new.flip and new.crop == 0.8
    with pytest.raises(Exception, match=r"other settings \(flip false in the run, true here\)"):
        plan_settings(old, same | {"flip": True})
    with pytest.raises(Exception, match=r"other settings \(crop 1\.0 in the run, 0\.9 here\)"):
        plan_settings(old, same | {"crop": 0.9})
    between = tmp_path / "between"  # started by 0.10.0: it records flip, not crop
    between.mkdir()
    (between / "all.json").write_text(json.dumps({"data": str(data), "preset": "default", "flip": None}))
    assert plan_settings(between, same) == {"data": str(data), "preset": "default", "flip": None, "crop": 1.0,
                                            "ema": 0.0}


def test_the_dvae_sample_sheet_shows_pictures_as_stored_where_a_folder_has_no_validation_split(tmp_path, monkeypatch):
    """Copies of one picture under ten captions: nothing can be held out, so the dVAE's samples reconstruct
    training pictures, and with --flip they are shown as the file holds them, not as the epoch mirrors them."""
    from t2i_cli import stages

    folder = tmp_path / "d"
    lopsided_folder(folder, ["picture 0"])
    for i in range(1, 10):
        (folder / f"p{i:02d}.png").write_bytes((folder / "p00.png").read_bytes())
        (folder / f"p{i:02d}.txt").write_text(f"picture {i}\n")
    seen = {}
    real = stages._build_stage

    def build(cfg, run_dir, dd, dataset, val):
        stage = real(cfg, run_dir, dd, dataset, val)
        seen["fixed"], seen["val"], seen["dataset"] = stage.fixed, len(val), dataset
        raise KeyboardInterrupt

    monkeypatch.setattr(stages, "_build_stage", build)
    dvae_run(tmp_path, "dv", folder, "--flip", "--seed", "0")
    stored = open_source(str(folder), 16, part="train")[0][0]
    assert seen["val"] == 0 and seen["dataset"].augment == Augment(0, flip=True)
    assert any(flips(0, 0, i, seen["dataset"][i][1]) for i in range(8))  # the epoch mirrors some of the eight
    assert len(seen["fixed"]) == 8 and all(torch.equal(x, stored) for x in seen["fixed"])
    assert seen["dataset"].augment == Augment(0, flip=True)  # and training still mirrors
