"""`t2i train --crop F`: a folder's training pictures shown, each epoch, as a random square of F to all of
their side."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch
from PIL import Image

from conftest import one_line_failure, run
from t2i_cli import images
from t2i_cli.data import Augment, as_stored, flips, open_source


def gradient_folder(folder: Path, n: int, size: int = 40) -> Path:
    """Pictures whose every pixel differs from its neighbours (two gradients and a per-picture offset), so any
    two different crops differ."""
    folder.mkdir(parents=True)
    for i in range(n):
        img = Image.new("RGB", (size, size))
        img.putdata([(5 * x + i, 5 * y, (x * y + 7 * i) % 256) for y in range(size) for x in range(size)])
        img.save(folder / f"p{i:02d}.png")
        (folder / f"p{i:02d}.txt").write_text(f"picture {i}\n")
    return folder


def test_a_cropping_dataset_shows_a_random_square_of_the_larger_decode_by_seed_epoch_and_picture(tmp_path):
    folder = gradient_folder(tmp_path / "d", 12)
    side = 16
    train = open_source(str(folder), side, part="train")
    train.augment = Augment(5, crop=0.5)  # decoded at 32, a square of 16..32 of it resized to 16
    sizes = set()
    for epoch in (0, 3):
        train.epoch = epoch
        for i in range(len(train)):
            x, _ = train[i]
            rng = random.Random(f"t2i-crop:5:{epoch}:{i}")
            c = rng.randint(side, 32)
            x0, y0 = rng.randint(0, 32 - c), rng.randint(0, 32 - c)
            big = images.load_rgb(train.pairs[i][0], 32)
            want = big.crop((x0, y0, x0 + c, y0 + c)).resize((side, side), Image.LANCZOS) if c != side else \
                big.crop((x0, y0, x0 + c, y0 + c))
            assert torch.equal(x, images.tensor_from_image(want)), (epoch, i)
            sizes.add(c)
    assert len(sizes) > 5 and min(sizes) >= side and max(sizes) <= 32
    train.epoch = 0
    first = [train[i][0] for i in range(len(train))]
    train.epoch = 1
    assert any(not torch.equal(a, train[i][0]) for i, a in enumerate(first))  # another epoch, other crops
    again = open_source(str(folder), side, part="train")
    again.augment, again.cache_bytes = Augment(5, crop=0.5), 1 << 20  # kept pictures: the same crops
    assert all(torch.equal(a, again[i][0]) for i, a in enumerate(first))
    assert all(torch.equal(a, again[i][0]) for i, a in enumerate(first))  # read from the cache
    plain = open_source(str(folder), side, part="train")
    assert all(torch.equal(as_stored(again, i)[0], plain[i][0]) for i in range(len(plain)))  # sample sheets
    assert again.augment == Augment(5, crop=0.5)
    plain.augment = Augment(5, crop=1.0)  # the whole picture: as stored
    assert all(torch.equal(plain[i][0], as_stored(plain, i)[0]) for i in range(len(plain)))
    both = open_source(str(folder), side, part="train")
    both.augment = Augment(5, flip=True, crop=0.5)  # mirrored after the crop, where --flip would mirror
    mirrored = [i for i in range(len(both)) if flips(5, 0, i, both[i][1])]
    assert 0 < len(mirrored) < len(both)
    assert all(torch.equal(both[i][0], first[i].flip(-1) if i in mirrored else first[i]) for i in range(len(both)))


def test_crop_rgb_takes_the_square_and_resamples_only_when_it_is_not_the_training_side():
    pixels = bytes(range(256)) * 3 * 16  # 32 x 32 RGB
    crop = images.crop_rgb(pixels, 32, (3, 5, 24), 16)
    img = Image.frombytes("RGB", (32, 32), pixels).crop((3, 5, 27, 29)).resize((16, 16), Image.LANCZOS)
    assert crop == img.tobytes()
    assert images.crop_rgb(pixels, 32, (0, 0, 16), 16) == Image.frombytes("RGB", (32, 32), pixels).crop(
        (0, 0, 16, 16)).tobytes()  # a crop of the training side is not resampled


def dvae_run(tmp_path: Path, name: str, data, *extra: str):
    return run("train", "--stage", "dvae", "--data", data, "--out", tmp_path / name, "--preset", "tiny",
               "--steps", "3", "--workers", "0", "--device", "cpu", "-q", *extra)


def test_train_crop_is_honoured_recorded_and_refused_where_it_cannot_apply(tmp_path):
    data = gradient_folder(tmp_path / "d", 10)
    for name, extra in (("plain", ()), ("crop", ("--crop", "0.7")), ("whole", ("--crop", "1"))):
        r = dvae_run(tmp_path, name, data, *extra)
        assert r.exit_code == 0, r.stderr
    model = {n: (tmp_path / n / "dvae.safetensors").read_bytes() for n in ("plain", "crop", "whole")}
    assert model["crop"] != model["plain"] == model["whole"]
    assert json.loads((tmp_path / "crop" / "train_config.json").read_text())["crop"] == 0.7
    line = one_line_failure(dvae_run(tmp_path, "w", "world:train", "--crop", "0.8"), 2)
    assert "--crop shows parts of the pictures of a folder or manifest" in line
    assert not (tmp_path / "w").exists()
    assert dvae_run(tmp_path, "w2", "world:train", "--crop", "1").exit_code == 0  # nothing to crop: honoured
    for bad in ("0.4", "1.5", "nan"):
        line = one_line_failure(dvae_run(tmp_path, "b", data, "--crop", bad), 2)
        assert "--crop" in line, line
    line = one_line_failure(run("train", "--stage", "tokenizer", "--data", data, "--out", tmp_path / "t", "--crop",
                                "0.8"), 2)
    assert "--crop does not apply to the tokenizer stage" in line
    line = one_line_failure(run("train", "--resume", tmp_path / "crop", "--steps", "4", "--crop", "0.9"), 2)
    assert line.startswith("error: --crop cannot change a run that has started"), line


@pytest.mark.parametrize("stage", ["transformer", "clip"])
def test_crop_reaches_the_transformer_and_clip_stages(tmp_path, stage, monkeypatch):
    from t2i_cli import stages

    seen = {}

    def build(cfg, run_dir, dd, dataset, val):
        seen["train"], seen["val"] = dataset.augment, val.augment
        raise KeyboardInterrupt  # enough: the datasets are what this test looks at

    data = gradient_folder(tmp_path / "d", 10)
    assert run("train", "--stage", "tokenizer", "--data", data, "--out", tmp_path / "tok", "--preset", "tiny",
               "-q").exit_code == 0
    extra = ["--dvae", tmp_path / "dv"] if stage == "transformer" else []
    if stage == "transformer":
        assert dvae_run(tmp_path, "dv", data).exit_code == 0
    monkeypatch.setattr(stages, "_build_stage", build)
    run("train", "--stage", stage, "--data", data, "--out", tmp_path / stage, "--preset", "tiny", "--tokenizer",
        tmp_path / "tok", "--crop", "0.75", "--seed", "7", "--workers", "0", "--device", "cpu", "-q", *extra)
    assert seen == {"train": Augment(7, crop=0.75), "val": None}


def test_a_crop_near_1_still_crops_at_a_small_side():
    """round(16 / 0.97) is 16: the picture must still be decoded a pixel larger, or --crop 0.97 would be ignored."""
    assert Augment(0, crop=0.97).decoded_side(16) == 17
    assert Augment(0, crop=0.8).decoded_side(64) == 80 and Augment(0, crop=0.5).decoded_side(16) == 32
    assert Augment(0, crop=1.0).decoded_side(16) == 16


def test_data_preview_shows_samples_cropped_and_mirrored_as_training_would(tmp_path):
    from t2i_cli.images import read_png_text

    data = gradient_folder(tmp_path / "d", 6)
    sheets = {}
    for name, extra in (("plain", ()), ("crop", ("--crop", "0.5", "--seed", "3")),
                        ("again", ("--crop", "0.5", "--seed", "3")), ("seed4", ("--crop", "0.5", "--seed", "4")),
                        ("flip", ("--flip",))):
        r = run("data", "preview", data, "--out", tmp_path / f"{name}.png", "--n", "6", "--side", "16", "-q", *extra)
        assert r.exit_code == 0, r.stderr
        with Image.open(tmp_path / f"{name}.png") as im:
            sheets[name] = im.tobytes()
    assert sheets["crop"] == sheets["again"] != sheets["plain"] != sheets["flip"]
    assert sheets["seed4"] != sheets["crop"]
    text = read_png_text(tmp_path / "crop.png")
    assert (text["crop"], text["flip"], text["seed"]) == ("0.5", "false", "3")
    assert "crop" not in read_png_text(tmp_path / "plain.png")
    dataset = open_source(str(data), 16)
    dataset.augment = Augment(3, crop=0.5)
    want = images.contact_sheet([images.image_from_tensor(dataset[i][0]) for i in range(6)],
                                [dataset[i][1] for i in range(6)])
    assert want.tobytes() == sheets["crop"]  # the very crops a dataset with that Augment gives
    for bad, says in ((["world:train", "--crop", "0.8"], "the world is never cropped or mirrored"),
                      (["world:train", "--flip"], "the world is never cropped or mirrored"),
                      ([data, "--crop", "0.4"], "--crop must be between 0.5 and 1.0"),
                      ([data, "--crop", "nan"], "--crop must be between 0.5 and 1.0"),
                      ([data, "--crop", "0.8", "--seed", "-1"], "--seed must be between"),
                      ([data, "--seed", "5"], "--seed picks the draws of --crop and --flip"),
                      ([data, "--crop", "1", "--no-flip", "--seed", "5"], "--seed picks the draws")):
        line = one_line_failure(run("data", "preview", *bad, "--out", tmp_path / "bad.png", "-q"), 2)
        assert says in line, line
    assert not (tmp_path / "bad.png").exists()
    r = run("data", "preview", "world:train", "--crop", "1", "--no-flip", "--n", "2", "--side", "16", "-q", "--out",
            tmp_path / "world.png")  # nothing to crop or mirror: accepted, as train accepts it
    assert r.exit_code == 0, r.stderr
