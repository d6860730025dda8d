"""`t2i train --stage all`: every stage in one run folder, exported to RUN/weights, resumable stage by stage."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image

from conftest import one_line_failure, run, torchrun_t2i
from t2i_cli.errors import counted

ALL = ["train", "--stage", "all", "--preset", "tiny", "--steps", "4,clip=3", "--workers", "0", "-q",
       "--device", "cpu", "--log-every", "1"]
FILES = ("tokenizer.json", "dvae.safetensors", "transformer.safetensors", "clip.safetensors")



def said(stderr: str) -> list[str]:
    """stderr's lines but the dVAE stage's end judging its codebook (a dVAE of 4 steps ends collapsed, and is told
    so since session 47)."""
    return [ln for ln in stderr.strip().splitlines() if not ln.startswith("warning: the dVAE's codebook has collapsed")]


def weights_of(run_dir: Path) -> dict[str, bytes]:
    return {name: (run_dir / "weights" / name).read_bytes() for name in FILES}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("all") / "run"
    r = run(*ALL, "--out", out)
    assert r.exit_code == 0, r.stderr
    return out


def test_one_command_trains_every_stage_and_exports_weights_that_generate(uninterrupted, tmp_path):
    for stage in ("tokenizer", "dvae", "transformer", "clip"):
        assert (uninterrupted / stage / "train_config.json").is_file()
    steps = {s: json.loads((uninterrupted / s / "train_config.json").read_text())["steps"]
             for s in ("dvae", "transformer", "clip")}
    assert steps == {"dvae": 4, "transformer": 4, "clip": 3}  # --steps 4,clip=3: per-stage values
    r = run("generate", "a red bird", "--weights", uninterrupted / "weights", "--out", tmp_path / "o")
    assert r.exit_code == 0, r.stderr
    again = run(*ALL, "--out", uninterrupted)  # the same command again: nothing left to do
    assert again.exit_code == 0 and again.stdout.count("done before") == 4, again.stderr
    assert "warning" not in again.stderr, again.stderr  # its weights/ refreshed with nothing new: nothing said
    resumed = run("train", "--resume", uninterrupted, "-q")
    assert resumed.exit_code == 0 and resumed.stderr == "", resumed.stderr


def test_a_whole_run_given_as_weights_points_at_its_weights_folder(uninterrupted):
    from conftest import one_line_failure

    line = one_line_failure(run("generate", "a red bird", "--weights", uninterrupted), 1)
    assert line.endswith(f"it is a --stage all run, whose weights are {uninterrupted / 'weights'}"), line
    said = run("info", "--weights", uninterrupted)  # (since 0.13.1 info describes the run, and says the same)
    assert said.exit_code == 0 and said.stdout.splitlines()[-1] == \
        f"  next      generate with: t2i generate PROMPT --weights {uninterrupted / 'weights'}", said.stdout


# Inside the dVAE stage (its third step: two done); inside the transformer (its second), after the dVAE's 4.
@pytest.mark.parametrize("cut_at, stage, done", [(3, "dvae", 2), (6, "transformer", 1)])
def test_interrupted_whole_run_resumes_to_the_same_weights(uninterrupted, tmp_path, monkeypatch, cut_at, stage,
                                                           done):
    real_step = torch.optim.AdamW.step
    calls = {"n": 0}

    def interrupting_step(self, *a, **k):
        calls["n"] += 1
        if calls["n"] == cut_at:
            raise KeyboardInterrupt
        return real_step(self, *a, **k)

    out = tmp_path / "run"
    monkeypatch.setattr(torch.optim.AdamW, "step", interrupting_step)
    r = run(*ALL, "--out", out)
    assert r.exit_code == 130, r.stderr
    # The command that goes on is the whole run's: a stage's own --resume RUN/STAGE would finish that stage alone.
    assert said(r.stderr) == [
        f"interrupted: in the {stage} stage at step {done}; checkpoint saved; finished stages are kept. "
        f"Resume with: t2i train --resume {out} (or the same command again)"], r.stderr
    monkeypatch.setattr(torch.optim.AdamW, "step", real_step)
    assert not (out / "weights").exists()
    r = run("train", "--resume", out, "-q", "--workers", "0")  # as the message says
    assert r.exit_code == 0, r.stderr
    assert weights_of(out) == weights_of(uninterrupted)


def test_interrupt_between_stages_then_the_same_command_continues(uninterrupted, tmp_path, monkeypatch):
    import t2i_cli.recipe as recipe

    real = recipe.run_stage

    def stop_before_clip(cfg, sub, **kw):
        if cfg.stage == "clip":
            raise KeyboardInterrupt
        return real(cfg, sub, **kw)

    out = tmp_path / "run"
    monkeypatch.setattr(recipe, "run_stage", stop_before_clip)
    r = run(*ALL, "--out", out)
    assert r.exit_code == 130 and said(r.stderr) == [
        f"interrupted: finished stages are kept. Resume with: t2i train --resume {out} "
        "(or the same command again)"], r.stderr
    monkeypatch.setattr(recipe, "run_stage", real)
    r = run(*ALL, "--out", out)
    assert r.exit_code == 0, r.stderr
    assert r.stdout.count("done before") == 3
    assert weights_of(out) == weights_of(uninterrupted)


def test_a_repeated_command_with_other_settings_is_refused(uninterrupted):
    before = weights_of(uninterrupted)
    r = run("train", "--stage", "all", "--preset", "tiny", "--steps", "5", "--out", uninterrupted)
    assert r.exit_code == 2 and "other settings (" in r.stderr and "; steps 4,clip=3 in the run, 5 here)" in r.stderr, \
        r.stderr
    assert weights_of(uninterrupted) == before


@pytest.mark.parametrize("args, named", [
    (["--dvae", "x"], "--dvae"), (["--steps", "dvae=x"], "not a number"), (["--steps", "vae=3"], "per-stage"),
    (["--model", "n_hid=abc"], "n_hid takes an integer"),
    (["--model", "bogus=1"], "no stage's model has that setting"),
    (["--model", "transfomer.n_layer=4"], "'transfomer' is not a stage with a model"),
    (["--model", "tokenizer.vocab_size=4"], "'tokenizer' is not a stage with a model"),
    (["--steps", "dvae=2,dvae=3"], "--steps 'dvae=2,dvae=3': dvae= is given twice"),
    (["--steps", "2,clip=4,3"], "a value for every stage is given twice"),
    (["--lr", "clip=1e-3,transformer=1e-3,clip=2e-3"], "clip= is given twice"),
    (["--batch-size", "transformer=4, transformer=4"], "transformer= is given twice"),
    (["--model", "n_hid=8", "--model", "n_hid=16"], "--model n_hid is given twice"),
    (["--model", "dvae.n_hid=8", "--model", "dvae.n_hid=16"], "--model dvae.n_hid is given twice"),
    (["--lr", "clip=0"], "--lr must be above 0"),
    (["--lr", "nan"], "--lr must be a finite number"),
    # a later stage's model that cannot be built: refused before the tokenizer and dVAE train, not after them
    (["--model", "clip.n_head=7"], "cannot build the clip model from these settings: n_embd 32 must be a multiple"),
    (["--model", "n_layer=0"], "cannot build the transformer model from these settings: n_layer is 0"),
    (["--model", "transformer.n_embd=24", "--model", "transformer.n_head=5"], "cannot build the transformer model"),
    # the CLIP's four poolings need 16 px: it failed deep in torch ("Output size is too small") after the rest
    (["--image-side", "8"], "cannot build the clip model from these settings: image_side must be at least 16"),
])
def test_bad_whole_run_options_are_refused_before_anything_runs(tmp_path, args, named):
    out = tmp_path / "run"
    r = run("train", "--stage", "all", "--preset", "tiny", "--out", out, *args)
    assert r.exit_code == 2 and named in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not out.exists()


def test_a_stages_own_model_setting_wins_over_the_one_for_every_stage(tmp_path):
    """--model n_hid=8 --model dvae.n_hid=12: the dVAE gets 12 and the CLIP 8 (as --steps 5,dvae=3 gives the
    dVAE 3); neither is silently dropped for the order they came in."""
    from t2i_cli.train_options import stage_config_of_all

    for models in (["n_hid=8", "dvae.n_hid=12"], ["dvae.n_hid=12", "n_hid=8"]):
        settings = {"data": "world", "preset": "tiny", "model": models, "steps": "5,dvae=3"}
        dvae = stage_config_of_all("dvae", tmp_path, settings, {"workers": 0})
        clip = stage_config_of_all("clip", tmp_path, settings, {"workers": 0})
        assert (dvae.model["n_hid"], clip.model["n_hid"]) == (12, 8), models
        assert (dvae.steps, clip.steps) == (3, 5)


def test_a_failed_first_stage_leaves_nothing_and_the_retry_works(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    out = tmp_path / "run"
    args = [*ALL, "--data", data, "--out", out]
    r = run(*args)
    assert r.exit_code == 1 and "no usable image-caption pairs" in r.stderr
    assert not out.exists()
    for i in range(4):
        Image.new("RGBA", (24, 20), (50 * i, 100, 200, 255)).save(data / f"{i}.png")
        (data / f"{i}.txt").write_text(f"a picture number {i}\n")
    r = run(*args)
    assert r.exit_code == 0, r.stderr
    assert all((out / "weights" / name).is_file() for name in FILES)


def test_frechet_distance_is_zero_for_one_set_and_grows_with_a_shift():
    from t2i_cli.data_eval import frechet_distance

    g = torch.Generator().manual_seed(0)
    a = torch.randn(400, 6, generator=g)
    assert abs(frechet_distance(a, a)) < 1e-6
    shifted = frechet_distance(a, a + torch.tensor([2.0, 0, 0, 0, 0, 0]))
    assert abs(shifted - 4.0) < 1e-6  # same covariance: the squared distance of the means
    assert frechet_distance(a, 3 * a) > 10  # a wider spread counts too


def test_kernel_distance_is_the_unbiased_mmd_and_stays_near_zero_where_frechet_grows_at_small_n():
    """KID: the unbiased squared MMD under (x.y / D + 1)^3, checked against a loop over pairs; for two small
    samples of one distribution the Frechet distance is far above 0 (its bias at n below D), the kernel
    distance about 0 on average; a shifted set scores higher on both."""
    from t2i_cli.data_eval import frechet_distance, kernel_distance

    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(5, 3, generator=g), torch.randn(4, 3, generator=g)
    k = lambda x, y: (float(x @ y) / 3 + 1) ** 3  # noqa: E731
    within = lambda s: sum(k(s[i], s[j]) for i in range(len(s)) for j in range(len(s)) if i != j) / (  # noqa: E731
        len(s) * (len(s) - 1))
    cross = sum(k(x, y) for x in a for y in b) / (len(a) * len(b))
    assert kernel_distance(a, b) == pytest.approx(within(a) + within(b) - 2 * cross, rel=1e-5)
    assert kernel_distance(a[:1], b) is None and kernel_distance(a, b[:1]) is None
    fds, kds = [], []
    for _ in range(40):  # 16 samples of 32 dimensions, twice, of one normal distribution
        x, y = torch.randn(16, 32, generator=g), torch.randn(16, 32, generator=g)
        fds.append(frechet_distance(x, y))
        kds.append(kernel_distance(x, y))
    mean_fd, mean_kd = sum(fds) / len(fds), sum(kds) / len(kds)
    spread = (sum((d - mean_kd) ** 2 for d in kds) / len(kds)) ** 0.5
    assert mean_fd > 10 and abs(mean_kd) < 0.5 * spread  # Frechet's bias; the kernel distance's mean near 0
    x, y = torch.randn(16, 32, generator=g), torch.randn(16, 32, generator=g) + 1.0
    assert kernel_distance(x, y) > max(kds) and frechet_distance(x, y) > max(fds)


def test_eval_data_on_a_folder_prints_a_table_and_writes_json(uninterrupted, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for i in range(40):
        Image.new("RGBA", (20, 20), (6 * i, 100, 255 - 6 * i, 255 if i % 2 else 0)).save(data / f"p{i:02d}.png")
        (data / f"p{i:02d}.txt").write_text(f"a picture number {i}\n")
    out = tmp_path / "eval.json"
    r = run("eval", "--data", data, "--weights", uninterrupted / "weights", "--n", "4", "--json", out,
            "--device", "cpu", "-q")
    assert r.exit_code == 0, r.stderr
    result = json.loads(out.read_text())
    assert result["n"] == min(4, result["val_size"]) and result["val_size"] >= 1
    assert result["dvae"]["psnr"] > 0 and result["transformer"]["bits_per_code"] > 0
    assert {"score_generated", "score_real", "frechet_distance", "kernel_distance"} <= set(result["clip"])
    assert result["clip"]["embedding_dim"] > 0 and "sentence-level" in result["clip_score"]
    assert "bits per code" in r.stdout and "not with published FID or KID" in r.stdout
    assert "compare it only at the same --n" in r.stdout and "not the reranker's score" in r.stdout
    assert f"seed 0, {result['precision']}" in r.stdout
    bad = run("eval", "--data", data, "--weights", uninterrupted / "weights", "--candidates", "4")
    assert bad.exit_code == 2 and "--candidates" in bad.stderr
    one = tmp_path / "one.json"  # one image has no covariance: no Frechet distance, said so, never NaN
    r = run("eval", "--data", data, "--weights", uninterrupted / "weights", "--n", "1", "--json", one, "-q")
    assert r.exit_code == 0 and "needs 2 or more real images" in r.stdout, r.stderr
    assert "NaN" not in one.read_text() and json.loads(one.read_text())["clip"]["frechet_distance"] is None
    assert json.loads(one.read_text())["clip"]["kernel_distance"] is None


def test_eval_data_draws_several_images_per_caption_each_scored_against_its_own(uninterrupted, tmp_path):
    from t2i_cli.data_eval import evaluate_data
    from t2i_cli.pipeline import TextToImage

    data = tmp_path / "data"
    data.mkdir()
    for i in range(160):  # a val split (5% by name) of several
        Image.new("RGB", (20, 20), (i, 250 - i, (37 * i) % 256)).save(data / f"p{i:03d}.png")
        (data / f"p{i:03d}.txt").write_text(f"{['red', 'blue', 'green'][i % 3]} thing {i}\n")
    pipe = TextToImage.from_folder(uninterrupted / "weights", "cpu")
    drawn = []
    draw_each = pipe.draw_each
    pipe.draw_each = lambda requests, seeds, n=1: drawn.append(out := draw_each(requests, seeds, n)) or out
    plain = evaluate_data(pipe, str(data), 5, seed=3)
    assert evaluate_data(pipe, str(data), 5, seed=3, draws=1) | {"seconds": 0} == plain | {"seconds": 0}
    drawn.clear()
    three = evaluate_data(pipe, str(data), 5, seed=3, draws=3)
    images = [g for part in drawn for g in part]
    count = three["n"]
    assert count >= 3 and three["draws"] == 3 and len(images) == 3 * count
    assert [g.prompt for g in images] == [g.prompt for g in images[::3] for _ in range(3)]  # caption-major
    clip, tok = pipe.bundle.clip, pipe.bundle.tokenizer
    with torch.inference_mode():
        fake, txt = clip.embed(torch.stack([g.image for g in images]),
                               torch.tensor([tok.encode(g.prompt, clip.cfg.text_len).ids for g in images]))
    assert abs(three["clip"]["score_generated"] - float((fake * txt).sum(-1).mean())) < 1e-5
    assert three["clip"]["score_real"] == plain["clip"]["score_real"]
    assert three["clip"]["frechet_distance"] != plain["clip"]["frechet_distance"]  # 3x the generated set
    with pytest.raises(ValueError, match="draws"):
        evaluate_data(pipe, str(data), 5, seed=3, draws=17)
    weights = uninterrupted / "weights"
    for args in (["--data", data, "--draws", "0"], ["--data", data, "--n", "1000", "--draws", "11"], ["--draws", "2"]):
        bad = run("eval", "--weights", weights, *args, "-q")
        assert bad.exit_code == 2 and "--draws" in bad.stderr and "Traceback" not in bad.stderr, bad.stderr


def test_captions_longer_than_the_text_length_are_counted_in_one_warning(uninterrupted, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for i in range(6):
        Image.new("RGB", (16, 16), (40 * i, 90, 90)).save(data / f"{i}.png")
        words = "a very long caption with many many words " * (3 if i < 2 else 0)
        (data / f"{i}.txt").write_text(f"{words}picture {i}\n")
    r = run("train", "--stage", "clip", "--data", data, "--tokenizer", uninterrupted / "tokenizer", "--out",
            tmp_path / "clip", "--preset", "tiny", "--steps", "2", "--workers", "0", "--device", "cpu")
    assert r.exit_code == 0, r.stderr
    from t2i_cli.data import open_source

    train = open_source(str(data), 16, part="train")
    expected = sum("very long" in c for i in range(len(train)) for c in train.captions_at(i))  # val is apart
    said = [ln for ln in r.stderr.splitlines() if "longer than the text length" in ln]
    assert expected >= 1 and len(said) == 1, r.stderr
    verb = "is" if expected == 1 else "are"
    assert said[0].startswith(f"warning: {counted(expected, 'caption')} {verb} longer"), said


def test_a_folder_smaller_than_a_batch_trains_with_one_warning(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for i in range(4):
        Image.new("RGB", (16, 16), (60 * i, 90, 90)).save(data / f"{i}.png")
        (data / f"{i}.txt").write_text(f"picture {i}\n")
    r = run("train", "--stage", "dvae", "--data", data, "--out", tmp_path / "run", "--preset", "tiny",
            "--steps", "2", "--workers", "0", "--device", "cpu", "-q")  # -q hides the bar, not warnings
    assert r.exit_code == 0, r.stderr
    from t2i_cli.data import open_source
    from t2i_cli.stages import PRESETS

    n, batch = len(open_source(str(data), 16, part="train")), PRESETS["tiny"]["dvae"]["batch_size"]
    said = [ln for ln in r.stderr.splitlines() if "fewer than a batch" in ln]
    # of 4 pictures, the ones not trained on are held out for validation: said, so 4 - n is not a mystery
    assert 1 <= n < batch and said == [f"warning: {counted(n, 'training picture')} ({4 - n} more held out for "
                                       "validation), "
                                       f"fewer than a batch of {batch}: every batch repeats them; add pictures or "
                                       "lower --batch-size"], r.stderr
    assert (tmp_path / "run" / "dvae.safetensors").is_file()
    big = run("train", "--stage", "dvae", "--data", data, "--out", tmp_path / "run2", "--preset", "tiny",
              "--steps", "2", "--workers", "0", "--device", "cpu", "--batch-size", str(n))
    assert big.exit_code == 0 and "fewer than a batch" not in big.stderr, big.stderr


def test_a_run_validates_on_a_usable_picture_and_says_when_it_has_none(tmp_path):
    """An unreadable file is left out before the split: a folder whose only val file was a fake PNG still
    validates (on a good picture: val_* lines in metrics.jsonl); with one usable picture nothing can be held out,
    and one warning says so, with what it means for --patience."""
    data = tmp_path / "data"
    data.mkdir()
    for i in (1, 2, 3):
        Image.new("RGB", (16, 16), (60 * i, 90, 90)).save(data / f"good{i}.png")
        (data / f"good{i}.txt").write_text(f"picture {i}\n")
    (data / "fake.png").write_bytes(b"not a png")  # its name hashes into the val split
    (data / "fake.txt").write_text("a fake one\n")
    args = ["train", "--stage", "dvae", "--preset", "tiny", "--steps", "2", "--workers", "0", "-q", "--device", "cpu",
            "--sample-every", "1", "--data", data]

    def metrics(run_dir: Path) -> list[dict]:
        return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]

    r = run(*args, "--out", tmp_path / "three")
    assert r.exit_code == 0, r.stderr
    assert [row["step"] for row in metrics(tmp_path / "three") if "val_loss" in row] == [1, 2]
    assert (f"warning: skipped 1 item (1 unreadable image: {data / 'fake.png'}); using 2 (1 more held out "
            f"for validation)" in r.stderr.splitlines()), r.stderr
    assert "no validation" not in r.stderr
    for name in ("good2", "good3"):
        (data / f"{name}.png").unlink()
        (data / f"{name}.txt").unlink()
    r = run(*args, "--patience", "1", "--out", tmp_path / "one")
    assert r.exit_code == 0, r.stderr
    said = [line for line in r.stderr.splitlines() if "no validation" in line]
    assert said == [f"warning: no validation pictures: {data} has one distinct usable picture, and one is held out "
                    "for validation only from two or more; this run logs no val_* metrics, and --patience 1 cannot "
                    "stop it early (it counts validations); add pictures"], r.stderr
    assert not any(key.startswith("val_") for row in metrics(tmp_path / "one") for key in row)
    # the same picture again under another caption is a second pair, not a second picture (the split is by content)
    shutil.copyfile(data / "good1.png", data / "again.png")
    (data / "again.txt").write_text("the same picture, told otherwise\n")
    r = run(*args, "--out", tmp_path / "copy")
    assert r.exit_code == 0, r.stderr
    assert f"{data} has one distinct usable picture (in 2 image-caption pairs), and one is held out" in r.stderr
    assert not any(key.startswith("val_") for row in metrics(tmp_path / "copy") for key in row)


@pytest.mark.parametrize("content", [
    "{not json", "[1, 2]", "[" * 100_000 + "]" * 100_000,
    # settings of the wrong kind were internal errors (a TypeError, an AttributeError) when resumed
    '{"data": "world", "preset": "tiny", "model": 5}', '{"data": 5, "preset": "tiny"}',
    '{"data": "world", "preset": "tiny", "steps": 3}', '{"data": "world", "preset": "tiny", "crop": true}',
    '{"data": "world", "preset": "tiny", "model": ["n_hid=8", 3]}', '{"data": "world", "preset": "tiny", "x": 1}'])
def test_a_damaged_plan_file_is_one_line(tmp_path, content):
    """Also one nested past the recursion limit (it was an internal error)."""
    out = tmp_path / "run"
    out.mkdir()
    (out / "all.json").write_text(content)
    r = run(*ALL, "--out", out)
    lines = r.stderr.strip().splitlines()
    assert r.exit_code == 2 and len(lines) == 1 and "all.json" in lines[0] and "new --out" in lines[0], r.stderr
    assert (out / "all.json").read_text() == content
    r = run("train", "--resume", out)
    assert r.exit_code == 2 and r.stderr.count("\n") == 1 and "all.json" in r.stderr, r.stderr


def test_a_run_file_larger_than_t2i_writes_is_refused_unread(tmp_path, monkeypatch):
    """all.json and train_config.json were read whole, whatever their size."""
    from t2i_cli import files

    monkeypatch.setattr(files, "MAX_OWN_JSON", 1 << 20)
    big = json.dumps({"data": "world", "pad": "x" * (1 << 20)})
    (tmp_path / "whole").mkdir()
    (tmp_path / "whole" / "all.json").write_text(big)
    (tmp_path / "stage").mkdir()
    (tmp_path / "stage" / "train_config.json").write_text(big)
    for args, name in (([*ALL, "--out", tmp_path / "whole"], "all.json"),
                       (["train", "--resume", tmp_path / "stage"], "train_config.json")):
        r = run(*args)
        lines = r.stderr.strip().splitlines()
        assert r.exit_code == 2 and len(lines) == 1 and name in lines[0], r.stderr
        assert "holds more than the 1 MB t2i writes there" in lines[0], lines


def test_the_whole_run_with_q_still_warns_about_a_small_folder(tmp_path):
    """`--stage all -q` hides the progress display, not the warnings: the folder is smaller than a batch,
    said once for the run (each model stage found it, with the same batch size; it was said three times),
    as is a skipped file."""
    data = tmp_path / "data"
    data.mkdir()
    for i in range(4):
        Image.new("RGB", (16, 16), (60 * i, 90, 90)).save(data / f"{i}.png")
        (data / f"{i}.txt").write_text(f"picture {i}\n")
    (data / "broken.png").write_text("not a picture")
    (data / "broken.txt").write_text("a broken picture\n")
    r = run(*ALL, "--data", data, "--out", tmp_path / "run")  # ALL has -q
    assert r.exit_code == 0, r.stderr
    said = [ln for ln in r.stderr.splitlines() if "fewer than a batch" in ln]
    assert len(said) == 1 and said[0].startswith("warning: "), r.stderr
    assert sum("skipped 1 item (1 unreadable image: " in ln for ln in r.stderr.splitlines()) == 1, r.stderr
    assert (tmp_path / "run" / "weights" / "transformer.safetensors").is_file()


def test_a_stage_stopped_early_is_done_when_the_whole_run_is_repeated(tmp_path, monkeypatch):
    from t2i_cli.stages import DVAEStage

    losses = iter([1.0, 1.1, 1.2, 1.3])
    monkeypatch.setattr(DVAEStage, "validate", lambda self: {"val_loss": next(losses)})
    args = [*ALL, "--sample-every", "1", "--patience", "1", "--out", tmp_path / "run"]
    r = run(*args)
    assert r.exit_code == 0, r.stderr
    assert "step 2: the validation loss has not improved" in r.stderr
    assert json.loads((tmp_path / "run" / "dvae" / "train_config.json").read_text())["steps"] == 2
    assert json.loads((tmp_path / "run" / "transformer" / "train_config.json").read_text())["patience"] == 1
    again = run(*args)
    assert again.exit_code == 0 and again.stdout.count("done before") == 4, again.stderr


def test_a_whole_run_refuses_on_resume_what_it_would_ignore(uninterrupted):
    for extra in (["--steps", "9"], ["--patience", "2"], ["--sample-every", "3"]):
        r = run("train", "--resume", uninterrupted, "-q", *extra)
        assert r.exit_code == 2 and "cannot change a whole run" in r.stderr and "--resume" in r.stderr, r.stderr
    r = run("train", "--resume", uninterrupted, "-q", "--flip")  # the refusal names the flag typed
    assert r.exit_code == 2 and r.stderr.startswith("error: --flip cannot change a whole run"), r.stderr
    r = run("train", "--resume", uninterrupted, "-q", "--no-flip")  # what the run does already: said again
    assert r.exit_code == 0 and r.stdout.count("done before") == 4, r.stderr
    r = run("train", "--resume", uninterrupted, "-q", "--stage", "all")  # its own stage: only said again
    assert r.exit_code == 0 and r.stdout.count("done before") == 4, r.stderr
    r = run("train", "--resume", uninterrupted, "-q", "--stage", "dvae")  # was silently the whole run
    assert r.exit_code == 2 and r.stderr.strip().splitlines() == [
        f"error: --stage dvae: {uninterrupted} is a --stage all run; leave --stage out to continue it, or resume "
        f"that stage's folder alone: t2i train --resume {uninterrupted / 'dvae'}"], r.stderr


def test_a_new_run_never_writes_into_a_folder_of_other_files(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "metrics.jsonl").write_text("my own notes\n")
    (mine / "dvae.safetensors").write_bytes(b"my own model")
    args = ["train", "--stage", "dvae", "--preset", "tiny", "--steps", "2", "--workers", "0", "-q", "--device", "cpu"]
    r = run(*args, "--out", mine)
    assert r.exit_code == 2 and "holds other files; pick a new or empty folder" in r.stderr, r.stderr
    assert (mine / "metrics.jsonl").read_text() == "my own notes\n"
    assert (mine / "dvae.safetensors").read_bytes() == b"my own model"
    assert sorted(p.name for p in mine.iterdir()) == ["dvae.safetensors", "metrics.jsonl"]
    afile = tmp_path / "afile"
    afile.write_text("mine")
    r = run(*args, "--out", afile)
    assert r.exit_code == 2 and "is a file" in r.stderr and afile.read_text() == "mine"
    r = run(*args, "--out", afile / "sub")
    assert r.exit_code == 2 and f"is inside {afile}, which is a file" in r.stderr, r.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    r = run(*args, "--out", empty)  # an empty folder is as good as a new one
    assert r.exit_code == 0, r.stderr
    assert (empty / "dvae.safetensors").is_file()


def test_a_new_whole_run_refuses_a_folder_of_other_files_or_a_file_before_writing(tmp_path):
    """--stage all writes only into a new or empty folder, or one holding its own earlier run (all.json);
    a folder of the user's files, a file, or a path inside a file is one line and exit 2, nothing written."""
    mine = tmp_path / "mine"
    (mine / "weights").mkdir(parents=True)
    (mine / "weights" / "tokenizer.json").write_text("MY OWN TOKENIZER")
    (mine / "notes.txt").write_text("notes")
    r = run(*ALL, "--out", mine)
    lines = r.stderr.strip().splitlines()
    assert r.exit_code == 2 and len(lines) == 1, r.stderr
    assert "holds other files; pick a new or empty folder" in lines[0], r.stderr
    assert sorted(str(p.relative_to(mine)) for p in mine.rglob("*")) == ["notes.txt", "weights",
                                                                          "weights/tokenizer.json"]
    assert (mine / "weights" / "tokenizer.json").read_text() == "MY OWN TOKENIZER"
    afile = tmp_path / "afile"
    afile.write_text("mine")
    for out, said in ((afile, f"--out {afile} is a file; pick a folder to create"),
                      (afile / "sub", f"is inside {afile}, which is a file; pick a folder to create")):
        r = run(*ALL, "--out", out)
        lines = r.stderr.strip().splitlines()
        assert r.exit_code == 2 and len(lines) == 1 and said in lines[0], r.stderr
        assert afile.read_text() == "mine"


@pytest.mark.parametrize("stage", ["dvae", "clip"])
def test_a_zero_size_is_refused_and_leaves_no_run_folder(tmp_path, stage):
    out = tmp_path / "run"
    args = ["train", "--stage", stage, "--preset", "tiny", "--steps", "2", "--workers", "0", "-q", "--device", "cpu"]
    if stage == "clip":
        r = run("train", "--stage", "tokenizer", "--preset", "tiny", "-q", "--out", tmp_path / "tok")
        assert r.exit_code == 0, r.stderr
        args += ["--tokenizer", tmp_path / "tok"]
    r = run(*args, "--model", "n_hid=0", "--out", out)
    assert r.exit_code == 2 and "n_hid is 0; a size must be at least 1" in r.stderr, r.stderr
    assert not out.exists()
    r = run(*args, "--model", "n_hid=8", "--out", out)  # the corrected command starts where the refused one did
    assert r.exit_code == 0, r.stderr


def test_torchrun_whole_run_refused_in_a_folder_of_other_files_leaves_it_as_it_was(tmp_path):
    """Rank 0 checks the folder and refuses it; another rank used to write all.json there first, so the same
    command again took the folder for its own earlier run and trained into it."""
    user = tmp_path / "user"
    user.mkdir()
    (user / "notes.txt").write_text("mine")
    proc = torchrun_t2i(tmp_path, "", "--stage", "all", "--data", "world", "--out", str(user))
    assert proc.returncode != 0
    assert [p.name for p in user.iterdir()] == ["notes.txt"], proc.stderr[-2000:]
    assert sum("holds other files" in line for line in proc.stderr.splitlines()) == 1, proc.stderr[-2000:]


def test_torchrun_whole_run_trains_every_stage_and_reports_once(tmp_path):
    """Under torchrun, --stage all failed in most new runs: rank 1 went on from the tokenizer without waiting,
    and each stage made its process group again, whose ranks could read the last group's addresses (gloo
    "Connection refused", or a hang); both ranks exported RUN/weights and printed the summary."""
    out = tmp_path / "run"
    proc = torchrun_t2i(tmp_path, "", "--stage", "all", "--steps", "3", "--batch-size", "8", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("all stages finished:") == 1, proc.stdout
    assert sorted(p.name for p in (out / "weights").iterdir()) == ["clip.safetensors", "dvae.safetensors",
                                                                    "tokenizer.json", "transformer.safetensors"]
    odd = torchrun_t2i(tmp_path, "", "--stage", "dvae", "--steps", "3", "--batch-size", "7", "--out",
                       str(tmp_path / "odd"))  # refused once, and no folder left that a retry would refuse
    assert odd.returncode != 0 and odd.stderr.count("must be a multiple of the 2 processes") == 1, odd.stderr[-2000:]
    assert not (tmp_path / "odd").exists()
    # a whole run: refused before its tokenizer (at the dVAE stage it left an all.json no retry could continue)
    odd = torchrun_t2i(tmp_path, "", "--stage", "all", "--steps", "3", "--batch-size", "3", "--out",
                       str(tmp_path / "odd-all"))
    assert odd.returncode != 0 and odd.stderr.count("must be a multiple of the 2 processes") == 1, odd.stderr[-2000:]
    assert not (tmp_path / "odd-all").exists()


def test_torchrun_a_rank_that_fails_is_named_by_it_and_the_other_says_it_stopped_for_it(tmp_path):
    """When rank 1 failed on its data, rank 0 lost it mid-collective and said "internal error: RuntimeError: ...
    Connection closed by peer" beside rank 1's one line."""
    patch = """
import os
from t2i_cli import world
from t2i_cli.errors import DataError
real = world.scene
calls = [0]
def scene(*a, **k):
    calls[0] += 1
    if os.environ["RANK"] == "1" and calls[0] > 40:
        raise DataError("image /x/gone.png does not exist; check the path")
    return real(*a, **k)
world.scene = scene
"""
    proc = torchrun_t2i(tmp_path, patch, "--stage", "dvae", "--steps", "20", "--batch-size", "8", "--out",
                        str(tmp_path / "run"))
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith(("error:", "internal error:"))]
    assert "error: image /x/gone.png does not exist; check the path" in errors, proc.stderr[-3000:]
    assert not any(line.startswith("internal error:") for line in errors), errors


def test_eval_data_reads_and_embeds_its_images_a_batch_at_a_time(uninterrupted, tmp_path, monkeypatch):
    """Every val image and every drawn one was held, and embedded by the CLIP in one batch (--n 10,000: 20,000
    pictures); now a batch at a time, with the same measurements."""
    from t2i_cli import data_eval
    from t2i_cli.pipeline import TextToImage

    data = tmp_path / "data"
    data.mkdir()
    for i in range(160):
        Image.new("RGB", (20, 20), (i, 250 - i, (37 * i) % 256)).save(data / f"p{i:03d}.png")
        (data / f"p{i:03d}.txt").write_text(f"{['red', 'blue', 'green'][i % 3]} thing {i}\n")
    pipe = TextToImage.from_folder(uninterrupted / "weights", "cpu")
    whole = data_eval.evaluate_data(pipe, str(data), 5, seed=1, draws=2)
    sizes, embed = [], pipe.bundle.clip.embed_images  # (embed's images go through it too)
    monkeypatch.setattr(pipe.bundle.clip, "embed_images", lambda x: (sizes.append(len(x)), embed(x))[1])
    monkeypatch.setattr(data_eval, "EVAL_BATCH", 3)
    batched = data_eval.evaluate_data(pipe, str(data), 5, seed=1, draws=2)
    assert whole["n"] == batched["n"] == 4  # the val split of these 160 pictures
    assert sizes == [3, 1, 8]  # the real images 3 at a time, then the drawn ones a decode at a time
    for part in ("dvae", "transformer", "clip"):
        assert batched[part].keys() == whole[part].keys()
        for key, value in whole[part].items():  # (a value or an interval's two)
            assert batched[part][key] == pytest.approx(value, rel=1e-5, abs=1e-6), (part, key)


def test_eval_data_without_a_clip_draws_nothing(tmp_path):
    """Without a CLIP no measurement reads the drawn images: they were drawn and thrown away."""
    from conftest import build_tiny_folder
    from t2i_cli import data_eval
    from t2i_cli.pipeline import TextToImage

    data = tmp_path / "data"
    data.mkdir()
    for i in range(160):
        Image.new("RGB", (20, 20), (i, 250 - i, (37 * i) % 256)).save(data / f"p{i:03d}.png")
        (data / f"p{i:03d}.txt").write_text(f"a red bird {i}\n")
    pipe = TextToImage.from_folder(build_tiny_folder(tmp_path / "w", with_clip=False), "cpu")
    pipe.draw_each = lambda *a, **k: pytest.fail("drew images nothing measures")
    result = data_eval.evaluate_data(pipe, str(data), 5, seed=0)
    assert "clip" not in result and result["n"] >= 2 and result["transformer"]["bits_per_code"] > 0


def test_a_stage_whose_final_validation_failed_is_finished_by_the_next_command(uninterrupted, tmp_path, monkeypatch):
    """A full disk (or a stop) after a stage's last checkpoint and before its final validation, best model and
    samples counted it "done before": the whole run went on without them, and could export another model."""
    import errno

    from t2i_cli.stages import TransformerStage

    real, calls = TransformerStage.write_samples, []

    def full_disk_once(self, *a, **k):
        calls.append(1)
        if len(calls) == 1:
            raise OSError(errno.ENOSPC, "No space left on device", "samples")
        return real(self, *a, **k)

    monkeypatch.setattr(TransformerStage, "write_samples", full_disk_once)
    out = tmp_path / "run"
    r = run(*ALL, "--out", out)
    assert r.exit_code == 1 and "No space left on device" in r.stderr, r.stderr
    r = run(*ALL, "--out", out)
    assert r.exit_code == 0 and r.stdout.count("done before") == 2, r.stdout  # the tokenizer and the dVAE
    ref = uninterrupted / "transformer"
    assert sorted(p.name for p in (out / "transformer" / "samples").iterdir()) == sorted(
        p.name for p in (ref / "samples").iterdir())
    assert weights_of(out) == weights_of(uninterrupted)


def test_a_whole_run_refreshes_its_weights_folder_as_one_set(uninterrupted, tmp_path):
    """RUN/weights held another tokenizer and transformer (a run whose stages were redone): the whole run exported
    stage by stage, and its tokenizer was checked against the old transformer still there, so the repeat failed
    ("would not load"). It is refreshed as one set, checked whole."""
    run_dir = tmp_path / "run"
    shutil.copytree(uninterrupted, run_dir)
    weights = run_dir / "weights"
    from t2i_cli.models.transformer import Transformer
    from t2i_cli.weights import load_model, save_model

    cfg = load_model(weights / "transformer.safetensors", "transformer").cfg  # another run's: one token more
    other = Transformer(dataclasses.replace(cfg, text_vocab=cfg.text_vocab + 1))
    save_model(other, weights / "transformer.safetensors", "transformer")
    r = run(*ALL, "--out", run_dir)
    assert r.exit_code == 0, r.stderr
    for name in ("tokenizer.json", "transformer.safetensors"):
        assert (weights / name).read_bytes() == (uninterrupted / "weights" / name).read_bytes()


def test_a_whole_run_stopped_before_its_first_stage_on_resume_is_as_it_was(tmp_path, monkeypatch):
    """A whole run whose plan (all.json) is written but no stage started (a start killed with SIGKILL): a stop of
    its resume before the first stage said "the run is as it was: the same command resumes it", but the resume
    had removed the plan, and the same command then found no run. The plan stays; the same command goes on."""
    import t2i_cli.recipe as recipe

    out, kept = tmp_path / "run", tmp_path / "plan.json"
    real = recipe.run_stage

    def killed(cfg, sub, **k):  # what SIGKILL at the first stage's start leaves: the plan alone
        shutil.copy(sub.parent / "all.json", kept)
        raise KeyboardInterrupt

    monkeypatch.setattr(recipe, "run_stage", killed)
    r = run(*ALL, "--out", out)
    assert r.exit_code == 130 and not out.exists(), r.stderr  # a new run's stop leaves nothing (as before)
    out.mkdir()
    shutil.copy(kept, out / "all.json")
    monkeypatch.setattr(recipe, "run_stage", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt()))
    r = run("train", "--resume", out, "-q")
    assert r.exit_code == 130 and f"t2i train --resume {out}" in r.stderr, r.stderr
    assert (out / "all.json").read_bytes() == kept.read_bytes()
    monkeypatch.setattr(recipe, "run_stage", real)
    # resumed under 3 processes, which cannot split its batches: it named --batch-size, which a resume refuses
    monkeypatch.setenv("WORLD_SIZE", "3")
    line = one_line_failure(run("train", "--resume", out, "-q"), 2)
    assert "cannot be split over 3 processes; resume it with a number of processes that divides every stage's " \
           "batch (1, 2" in line and "--batch-size" not in line, line
    monkeypatch.delenv("WORLD_SIZE")
    r = run("train", "--resume", out, "-q")
    assert r.exit_code == 0 and (out / "weights" / "transformer.safetensors").is_file(), r.stderr


def test_a_clip_run_on_one_picture_says_it_learns_nothing(tmp_path):
    """The CLIP learns by telling a batch's pictures apart: on one training picture its batches are copies of it,
    the loss stays at ln(batch), and the warning only said to add pictures or lower --batch-size."""
    data = tmp_path / "data"
    data.mkdir()
    for i in range(2):
        Image.new("RGB", (16, 16), (120 * i, 90, 90)).save(data / f"{i}.png")
        (data / f"{i}.txt").write_text(f"picture {i}\n")
    common = ["--data", data, "--preset", "tiny", "-q"]
    assert run("train", "--stage", "tokenizer", "--out", tmp_path / "tok", *common).exit_code == 0
    common += ["--workers", "0", "--device", "cpu"]
    r = run("train", "--stage", "clip", "--tokenizer", tmp_path / "tok", "--out", tmp_path / "clip", "--steps", "2",
            *common)
    assert r.exit_code == 0, r.stderr
    said = [ln for ln in r.stderr.splitlines() if "fewer than a batch" in ln]
    assert len(said) == 1 and "with one picture it learns nothing" in said[0], r.stderr
    r = run("train", "--stage", "dvae", "--out", tmp_path / "dvae", "--steps", "2", *common)
    assert r.exit_code == 0 and "fewer than a batch" in r.stderr and "learns nothing" not in r.stderr, r.stderr
    # one picture on more manifest lines than a batch: as many pairs, still one picture
    from t2i_cli.data import open_source

    (trained,) = {p for p, _ in open_source(str(data), 16, part="train").pairs}
    (other,) = {data / f"{i}.png" for i in range(2)} - {trained}
    lines = [{"image": str(trained), "caption": f"picture variant {k}"} for k in range(12)]
    (tmp_path / "m.jsonl").write_text("\n".join(json.dumps(x) for x in [*lines, {"image": str(other),
                                                                                 "caption": "other"}]))
    common[1] = tmp_path / "m.jsonl"
    r = run("train", "--stage", "clip", "--tokenizer", tmp_path / "tok", "--out", tmp_path / "clip2", "--steps", "2",
            *common)
    said = [ln for ln in r.stderr.splitlines() if "learns nothing" in ln]
    assert r.exit_code == 0 and len(said) == 1 and "12 training pairs hold one picture" in said[0], r.stderr


def test_a_clips_image_embedding_alone_is_embeds_and_eval_data_encodes_no_text_for_drawn_images(tmp_path,
                                                                                                 monkeypatch):
    """eval --data encoded a text for every drawn image only to throw its embedding away; the image embedding
    alone is the one embed gives, in fp32 and in bf16."""
    from conftest import build_tiny_folder
    from t2i_cli import data_eval
    from t2i_cli.pipeline import TextToImage
    from t2i_cli.weights import load_folder

    weights = build_tiny_folder(tmp_path / "weights")
    clip = load_folder(weights, "cpu", need_clip=True).clip.eval()
    torch.manual_seed(0)
    side, length = clip.cfg.image_side, clip.cfg.text_len
    images, text = torch.rand(3, 3, side, side), torch.randint(0, clip.cfg.n_pad_start, (3, length))
    with torch.inference_mode():
        assert torch.equal(clip.embed_images(images), clip.embed(images, text)[0])
        clip.to(torch.bfloat16)
        assert clip.embed_images(images.bfloat16()).dtype == torch.float32
        assert torch.equal(clip.embed_images(images.bfloat16()), clip.embed(images.bfloat16(), text)[0])
    pipe = TextToImage.from_folder(weights, "cpu")
    texts = []
    encode = pipe.bundle.clip.text_encoder.forward
    monkeypatch.setattr(pipe.bundle.clip.text_encoder, "forward", lambda t: (texts.append(len(t)), encode(t))[1])
    data = tmp_path / "data"
    data.mkdir()
    for i in range(60):
        Image.new("RGB", (20, 20), (4 * i, 250 - 4 * i, (37 * i) % 256)).save(data / f"p{i:03d}.png")
        (data / f"p{i:03d}.txt").write_text(f"a red thing {i}\n")
    result = data_eval.evaluate_data(pipe, str(data), 3, seed=0, draws=2)
    assert result["n"] == 3 and sum(texts) == 3  # the val captions' texts, once each; none for the 6 drawn images


def test_the_kernel_distance_of_images_drawn_from_the_real_ones_captions_leaves_their_pairs_out():
    """eval --data draws its images from the real pictures' own captions: a real picture and what was drawn from
    its caption are alike, as are two draws of one caption. Counted as independent pairs they made a perfect
    model score below 0 (more so at small n, and with more draws); left out, its mean is about 0."""
    from t2i_cli.data_eval import kernel_distance

    g = torch.Generator().manual_seed(1)
    for draws in (1, 4):
        paired, naive = [], []
        for _ in range(60):
            captions = torch.randn(12, 32, generator=g)  # each caption a place; pictures scattered around it
            real = captions + 0.5 * torch.randn(12, 32, generator=g)
            fake = captions.repeat_interleave(draws, 0) + 0.5 * torch.randn(12 * draws, 32, generator=g)
            paired.append(kernel_distance(real, fake, torch.arange(12).repeat_interleave(draws)))
            naive.append(kernel_distance(real, fake))
        mean = sum(paired) / len(paired)
        spread = (sum((x - mean) ** 2 for x in paired) / len(paired)) ** 0.5
        assert abs(mean) < 0.5 * spread, (draws, mean, spread)  # a perfect model: about 0
        assert sum(naive) / len(naive) < -2 * spread  # (the pairs counted: biased below 0)
    one = torch.randn(1, 8, generator=g)
    assert kernel_distance(torch.cat([one, one]), one.repeat(3, 1), torch.zeros(3)) is None  # no pair left
