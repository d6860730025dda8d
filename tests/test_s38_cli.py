"""Session 38: the command line's commonest slips get their cause said (the walkthrough's points)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import one_line_failure, run


def test_an_unquoted_prompt_is_told_to_be_quoted(tiny_weights: Path, tmp_path: Path):
    """`t2i generate a red bird` said only "Got unexpected extra argument(s) (red bird)"."""
    line = one_line_failure(run("generate", "a", "red", "bird", "--weights", tiny_weights), 2)
    assert line == ("error: Got unexpected extra argument(s) (red bird); a prompt of several words is one argument: "
                    "quote it, t2i generate \"a red bird\"; see 'root generate --help'"), line


def test_a_shell_pattern_that_gave_several_paths_is_named(tmp_path: Path):
    """`--data pics/*.png` gave --data the first picture and the rest as extra arguments."""
    for name in ("a.png", "b.png", "c.png"):
        (tmp_path / name).write_bytes(b"")
    line = one_line_failure(run("train", "--stage", "dvae", "--data", tmp_path / "a.png", tmp_path / "b.png",
                                tmp_path / "c.png"), 2)
    assert line == (f"error: Got unexpected extra argument(s) ({tmp_path / 'b.png'} {tmp_path / 'c.png'}); a shell "
                    f"pattern (such as *.png) gave several paths where one is taken: give their folder; see "
                    f"'root train --help'"), line
    # with a prompt given, a pattern's paths are still a pattern's (not words of the prompt to quote)
    line = one_line_failure(run("generate", "a red bird", "--image", tmp_path / "a.png", tmp_path / "b.png",
                                tmp_path / "c.png"), 2)
    assert "a shell pattern (such as *.png) gave several paths where one is taken: give their folder" in line \
        and "quote it" not in line, line
    plain = one_line_failure(run("rerank", "nowhere-a", "nowhere-b"), 2)  # no cause to guess: as before
    assert plain == "error: Got unexpected extra argument(s) (nowhere-b); see 'root rerank --help'", plain


def test_an_out_that_names_a_picture_file_is_refused(tiny_weights: Path, tmp_path: Path, monkeypatch):
    """`generate --out new/bird.png` made a folder named bird.png holding new/bird.png/a-red-bird-000.png."""
    monkeypatch.chdir(tmp_path)
    for args, folder in ((["generate", "a red bird"], "new"), (["generate", "a red bird"], None)):
        out = f"{folder}/bird.png" if folder else "bird.PNG"
        line = one_line_failure(run(*args, "--weights", tiny_weights, "--candidates", "1", "--out", out), 2)
        assert line == (f"error: --out {out} names a file, but --out is the folder the images go in (each named from "
                        f"its prompt, e.g. a-red-bird-000.png); give a folder, e.g. --out {folder or 'outputs'}"), line
        assert not (tmp_path / out).exists() and not (tmp_path / "new").exists()
    (tmp_path / "kept.png").mkdir()  # an existing folder of such a name is the user's choice
    r = run("generate", "a red bird", "--weights", tiny_weights, "--candidates", "1", "--out", "kept.png", "-q")
    assert r.exit_code == 0 and (tmp_path / "kept.png" / "a-red-bird-000.png").is_file(), r.stderr
    src = tmp_path / "kept.png" / "a-red-bird-000.png"
    line = one_line_failure(run("vary", src, "--weights", tiny_weights, "--out", "v/x.jpg"), 2)
    assert line.startswith("error: --out v/x.jpg names a file, but --out is the folder"), line


def test_resuming_a_finished_run_does_not_read_its_pictures_again(tmp_path: Path):
    """`t2i train --resume RUN` of a finished run checked every picture of its folder again and said its skipped
    files before "nothing to train" (a large folder's check takes minutes); with the folder gone it refused."""
    from PIL import Image

    pics = tmp_path / "pics"
    pics.mkdir()
    for i in range(8):
        Image.new("RGB", (16, 16), (30 * i, 100, 200 - 20 * i)).save(pics / f"p{i}.png")
        (pics / f"p{i}.txt").write_text(f"picture {i}\n")
    Image.new("RGB", (16, 16)).save(pics / "uncaptioned.png")
    out = tmp_path / "run"
    first = run("train", "--stage", "dvae", "--preset", "tiny", "--steps", "2", "--workers", "0", "--data", pics,
                "--out", out)
    assert first.exit_code == 0 and "skipped 1 item" in first.stderr, first.stderr
    pics.rename(tmp_path / "moved")
    again = run("train", "--resume", out)
    assert again.exit_code == 0 and again.stderr == "", again.stderr
    assert again.stdout.startswith("dvae stage: already finished at step 2; nothing to train"), again.stdout
    more = run("train", "--resume", out, "--steps", "3")  # a resume that trains still finds its pictures gone
    assert more.exit_code != 0 and "moved" not in more.stderr and str(pics) in more.stderr, more.stderr


def test_a_scene_count_must_be_an_int():
    """SceneSpec(count=True) passed 1 <= True <= 4 and was written to JSON as `"count": true`; 2.0 likewise."""
    import pytest

    from t2i_cli.world.spec import ObjectSpec, SceneSpec

    bird = (ObjectSpec("bird", "red", "medium"),)
    for bad in (True, 2.0, "2"):
        with pytest.raises(ValueError, match="count must be an int of 1-4, got"):
            SceneSpec(bird, count=bad)
    assert SceneSpec(bird, count=3).to_dict()["count"] == 3


def test_a_redraw_that_draws_other_codes_than_its_png_records_says_so(tiny_weights: Path, tmp_path: Path):
    """The researcher's walkthrough: one of 8 images of a two-object prompt drew 13 other codes at --threads 1 than
    at 2 (bf16, plain decoding), and `--from` of it redrew the other image without a word. The PNG records its
    codes: a redraw that draws others now says how many, where the first is, and what to pass."""
    import base64

    import numpy as np
    from PIL import Image, PngImagePlugin

    r = run("generate", "a red bird", "--weights", tiny_weights, "--candidates", "1", "--out", tmp_path / "g",
            "--threads", "1", "-q")
    assert r.exit_code == 0, r.stderr
    png = tmp_path / "g" / "a-red-bird-000.png"
    same = run("generate", "--from", png, "--weights", tiny_weights, "--out", tmp_path / "f", "--threads", "1")
    assert same.exit_code == 0 and "warning" not in same.stderr, same.stderr
    with Image.open(png) as im:  # as if drawn elsewhere: codes 5 and 9 of its record otherwise
        text, pixels = dict(im.text), im.copy()
    codes = np.frombuffer(base64.b64decode(text["t2i_codes"]), dtype="<u2").copy()
    codes[[5, 9]] = (codes[[5, 9]] + 1) % 32
    text["t2i_codes"] = base64.b64encode(codes.astype("<u2").tobytes()).decode("ascii")

    def saved(folder: str) -> Path:
        """The picture with `text` as its PNG text, in a folder of its own."""
        info = PngImagePlugin.PngInfo()
        for k, v in text.items():
            info.add_text(k, v)
        path = tmp_path / folder / "a-red-bird-000.png"
        path.parent.mkdir()
        pixels.save(path, pnginfo=info)
        return path

    other = saved("other")
    r = run("generate", "--from", other, "--weights", tiny_weights, "--out", tmp_path / "f", "--threads", "1")
    assert r.exit_code == 0, r.stderr
    assert r.stderr.strip().splitlines() == [
        f"warning: this redraw drew 2 codes of {len(codes)} other than {other} records (the first at position 5): a "
        f"product summed in another order at another thread count (this ran on 1) or on another kind of CPU flips a "
        f"near tie; pass the --threads it was drawn with (where it was drawn on this machine) for its bytes"], r.stderr
    quiet = run("generate", "--from", other, "--weights", tiny_weights, "--out", tmp_path / "f", "-q")
    assert quiet.exit_code == 0 and quiet.stderr == "", quiet.stderr
    # drawn by another t2i version: that is said, and the codes' word (which another version explains) is not
    import json

    meta = json.loads(text["t2i"])
    text["t2i"] = json.dumps({**meta, "t2i_version": "0.0.1"})
    old = saved("old")
    r = run("generate", "--from", old, "--weights", tiny_weights, "--out", tmp_path / "f", "--threads", "1")
    assert r.exit_code == 0, r.stderr
    warned = [line for line in r.stderr.splitlines() if line.startswith("warning:")]
    assert len(warned) == 1 and warned[0].startswith(f"warning: {old} was drawn by t2i 0.0.1, this is "), r.stderr
    # drawn by other weights: those are said, and again not the codes (other weights draw other codes)
    text["t2i"] = json.dumps({**meta, "weights": "0" * 16, "generator": "1" * 16})
    text["weights"], text["generator"] = "0" * 16, "1" * 16
    theirs = saved("theirs")
    r = run("generate", "--from", theirs, "--weights", tiny_weights, "--out", tmp_path / "f", "--threads", "1")
    assert r.exit_code == 0, r.stderr
    warned = [line for line in r.stderr.splitlines() if line.startswith("warning:")]
    assert len(warned) == 1 and warned[0].startswith(f"warning: {theirs} was drawn by weights {'0' * 16}, "), r.stderr
    # drawn on another device: that is said, and not the codes
    text["t2i"] = json.dumps({**meta, "device": "cuda"})
    text["weights"], text["generator"], text["device"] = meta["weights"], meta["generator"], "cuda"
    gpu = saved("gpu")
    r = run("generate", "--from", gpu, "--weights", tiny_weights, "--out", tmp_path / "f", "--threads", "1")
    assert r.exit_code == 0, r.stderr
    warned = [line for line in r.stderr.splitlines() if line.startswith("warning:")]
    assert len(warned) == 1 and warned[0].startswith(f"warning: {gpu} was drawn on cuda, this runs on cpu"), r.stderr




def test_explain_holds_a_two_object_prompts_crops_where_a_removal_unparses_it():
    """The researcher's walkthrough: `rerank --explain` of "a yellow star and a red bird" gave "and" +0.81, as much
    as a colour: removing it left no two objects to parse, so the crop scores (half the score) switched off. The
    crops stay those of the prompt's two objects there; a removal that still parses to two (a size word) scores
    its own."""
    from types import SimpleNamespace

    import torch

    from t2i_cli import rerank as rr
    from t2i_cli.world.captions import object_prompts

    def encode(text, n):
        return SimpleNamespace(ids=[sum(map(ord, w)) for w in text.lower().split()[:n]])

    def score(images, text, objects=None):  # the sentence's tokens, plus 1 a crop scored (as if each matched)
        objects = object_prompts(text) if objects is None else objects
        return torch.tensor([sum(encode(text, 64).ids) / 1000 + (len(objects) if objects else 0)])

    pipe = SimpleNamespace(bundle=SimpleNamespace(tokenizer=SimpleNamespace(encode=encode),
                                                  clip=SimpleNamespace(cfg=SimpleNamespace(text_len=64))),
                           score=score)
    prompt = "a yellow star and a small red bird"
    got = dict(rr.explain(pipe, torch.zeros(3, 8, 8), prompt))
    assert got["and"] == pytest.approx(sum(map(ord, "and")) / 1000, abs=1e-6)  # the sentence's part alone
    assert got["red"] == pytest.approx(sum(map(ord, "red")) / 1000, abs=1e-6)
    assert object_prompts("a yellow star and a red bird") is not None  # "small" removed: still two objects,
    assert got["small"] == pytest.approx(sum(map(ord, "small")) / 1000, abs=1e-6)  # scored with its own crops


def test_a_prompt_word_that_names_a_file_is_still_told_to_be_quoted(tmp_path: Path, monkeypatch):
    """In a folder holding a file `cat`, `t2i generate a cat` was said to be a shell pattern's paths."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cat").write_text("")
    line = one_line_failure(run("generate", "a", "cat"), 2)
    assert "a prompt of several words is one argument: quote it, t2i generate \"a cat\"" in line, line


def test_info_of_a_folder_that_is_not_there_says_what_it_takes(tmp_path: Path):
    """`t2i info nope` said "weights folder nope does not exist; pass --weights DIR or run `make weights`"."""
    line = one_line_failure(run("info", tmp_path / "nope"), 2)
    assert line == f"error: {tmp_path / 'nope'} does not exist; give t2i info a weights folder or a training run folder"
    (tmp_path / "f.json").write_text("{}")
    line = one_line_failure(run("info", tmp_path / "f.json"), 2)
    assert line == f"error: {tmp_path / 'f.json'} is a file; give t2i info a weights folder or a training run folder"


def test_the_starting_command_with_resume_added_continues_a_stage_where_out_was_typed_relative(
        tmp_path: Path, monkeypatch):
    """A stop says `t2i train --resume RUN` with RUN absolute; the command that started it (--out run, relative),
    with that --resume added and a larger --steps, names the same folder: it continues the run."""
    from t2i_cli.weights import read_metadata

    monkeypatch.chdir(tmp_path)
    start = ["train", "--stage", "dvae", "--preset", "tiny", "--workers", "0", "-q", "--sample-every", "0",
             "--out", "run"]
    assert run(*start, "--steps", "2").exit_code == 0
    r = run(*start, "--steps", "3", "--resume", tmp_path / "run")
    assert r.exit_code == 0, r.stderr
    assert read_metadata(tmp_path / "run" / "checkpoint.safetensors")["step"] == "3"
    line = one_line_failure(run(*start[:-1], "elsewhere", "--steps", "4", "--resume", tmp_path / "run"), 2)
    assert line.startswith("error: --out cannot change a run that has started"), line  # (its --preset not named)


def test_score_takes_the_objects_to_crop_in_place_of_the_prompts_own(tiny_weights: Path, monkeypatch):
    """pipe.score(objects=...) is what `rerank --explain` holds a two-object prompt's crops with: given, its crops
    are scored for a text that parses to none; None keeps the prompt's own."""
    import torch

    from t2i_cli.pipeline import TextToImage
    from t2i_cli.world.captions import object_prompts

    pipe = TextToImage.from_folder(tiny_weights, "cpu")
    torch.manual_seed(0)
    image = torch.rand(1, 3, 16, 16)
    prompt, cut = "a red bird and a blue fish", "a red bird a blue fish"
    held = object_prompts(prompt)
    assert held is not None and object_prompts(cut) is None
    assert not torch.equal(pipe.score(image, cut, held), pipe.score(image, cut))  # the crops count
    assert torch.equal(pipe.score(image, prompt, held), pipe.score(image, prompt))  # the prompt's own
    two = torch.rand(2, 3, 16, 16)  # a large CLIP scores a few pictures at a time: with the same objects
    whole = pipe.score(two, cut, held)
    with monkeypatch.context() as m:
        m.setattr(pipe, "score_fit", lambda n: 1)
        assert torch.allclose(pipe.score(two, cut, held), whole, atol=1e-5)
    no_crops = pipe.score(image, prompt, [])  # none given: the sentence's score alone
    import t2i_cli.pipeline as pipeline

    monkeypatch.setattr(pipeline, "CROP_SCORE_WEIGHT", 0.0)
    assert torch.equal(no_crops, pipe.score(image, prompt)) and not torch.equal(no_crops, pipe.score(image, cut, held))
