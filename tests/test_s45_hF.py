"""The Python API as a researcher scripts it (session 45, hF): numpy's integers, which a script's np.arange or a
random generator gives, are whole numbers wherever the API counts, seeds or indexes; and codes may be given in
either form the README names, (B, grid, grid) as the dVAE reads them or (B, grid * grid), to every call that
reads codes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from t2i_cli.errors import UsageError
from t2i_cli.sampling import SamplingConfig

PLAIN = SamplingConfig(guidance=1, regional=0)


@pytest.fixture
def pipe(tiny_weights: Path):
    from t2i_cli.pipeline import TextToImage

    return TextToImage.from_folder(tiny_weights, "cpu")


def test_numpy_integers_count_seed_and_index_the_draws_as_plain_ints_do(pipe):
    """pipe("...", 2, np.int64(3)) was refused as "seed must be a whole number ..., got np.int64(3)" (and n, keep,
    index, draw_each's n, batch and seeds likewise), where SamplingConfig(top_k=np.int64(5)) was taken."""
    plain = pipe("a red bird", 2, 3, PLAIN)
    numpy = pipe("a red bird", np.int64(2), np.int64(3), PLAIN)
    assert len(numpy) == 2 and all(torch.equal(a.codes, b.codes) for a, b in zip(plain, numpy, strict=True))
    request = pipe.request("a red bird", PLAIN)
    again = pipe.redraw(request, np.int32(2), np.int64(3), np.int64(1))
    assert torch.equal(again.codes, plain[1].codes) and type(again.index) is int
    each = pipe.draw_each([request, request], list(np.arange(3, 5)), n=np.int64(1), batch=np.int16(2))
    assert torch.equal(each[0].codes, pipe("a red bird", 1, 3, PLAIN)[0].codes)
    assert torch.equal(each[1].codes, pipe("a red bird", 1, 4, PLAIN)[0].codes)
    best = pipe.rerank(pipe("a red bird", 3, 0, PLAIN), np.int64(2))
    assert [g.rank for g in best] == [1, 2]
    for bad in (np.float64(3.0), True, "3", np.int64(-1)):  # (still refused: not a whole number of 0 or more)
        with pytest.raises(UsageError, match="seed must be a whole number"):
            pipe("a red bird", 1, bad, PLAIN)
    with pytest.raises(UsageError, match="n must be a whole number of images"):
        pipe("a red bird", np.int64(0), 0, PLAIN)


def test_evaluate_data_takes_numpy_integers_and_reports_plain_ones(pipe, tmp_path: Path):
    """evaluate_data(pipe, data, np.int64(2), seed=np.int64(0)) was refused as not a whole number; taken, its
    result must stay strict JSON (an np.int64 seed in it would not be)."""
    from t2i_cli.data_eval import evaluate_data

    data = tmp_path / "data"
    data.mkdir()
    for i in range(60):
        Image.new("RGB", (20, 20), (4 * i, 250 - 4 * i, 9 * i % 256)).save(data / f"p{i:02d}.png")
        (data / f"p{i:02d}.txt").write_text("a red bird\n")
    result = evaluate_data(pipe, data, np.int64(2), seed=np.int64(0), sampling=PLAIN, draws=np.int8(1))
    assert type(result["seed"]) is int and result["n"] == min(2, result["val_size"])
    assert result["draws"] == 1
    json.dumps({k: v for k, v in result.items() if k != "pictures"}, allow_nan=False)
    with pytest.raises(ValueError, match="seed must be a whole number"):
        evaluate_data(pipe, data, 2, seed=np.float32(0))


def test_the_world_eval_counts_numpy_integers_as_whole_numbers():
    from t2i_cli.world import judge_training as jt
    from t2i_cli.world.evaluate import evaluate_model
    from t2i_cli.world.judge import Judge
    from test_evaluate import SMALL, RenderingPipe

    judge = Judge(jt.train_judge(steps=2, seed=0, side=64, n_images=8, batch=4, cfg=SMALL, is_robust=False))
    ran = evaluate_model(RenderingPipe(), judge, np.int64(1), np.int64(2), tasks=("colours",))
    assert ran["n_per_task"] == 1 and type(ran["seed"]) is int and ran["seed"] == 2
    json.dumps(ran)


def test_bits_and_the_transformer_read_codes_as_the_dvae_gives_them(pipe):
    """The README's rule, codes (B, h, w) or (B, grid * grid): the dVAE's image_from_codes took both, but
    pipe.bits and the transformer refused codes_from_image's (B, h, w) ("bits takes one prompt per row of codes
    (B, 16)"); a list of codes was an AttributeError ('list' object has no attribute 'dim')."""
    g = pipe("a red bird", 1, 0, PLAIN)[0]
    grid = pipe.bundle.transformer.cfg.grid
    square = g.codes.view(1, grid, grid)
    flat = pipe.bits(["a red bird"], g.codes[None])
    assert torch.equal(pipe.bits(["a red bird"], square), flat) and flat.shape == (1, grid * grid)
    with torch.inference_mode():
        read = pipe.bundle.dvae.codes_from_image(g.image[None])  # (1, grid, grid)
        text = torch.tensor([pipe.request("a red bird").encoded.ids])
        logits, loss = pipe.bundle.transformer(text, read)
        flat_logits, flat_loss = pipe.bundle.transformer(text, read.flatten(1))
    assert read.shape == (1, grid, grid) and logits.shape[:2] == (1, grid * grid)
    assert torch.equal(logits, flat_logits) and torch.equal(loss, flat_loss)
    assert pipe.bits(["a red bird"], read).shape == (1, grid * grid)
    with pytest.raises(UsageError, match=rf"codes must be a tensor \(B, {grid * grid}\) or \(B, {grid}, {grid}\), "
                                         r"got list"):
        pipe.bits(["a red bird"], g.codes[None].tolist())
    with pytest.raises(ValueError, match="codes must be a tensor .* got list"):
        pipe.bundle.dvae.image_from_codes(g.codes[None].tolist())
    with pytest.raises(UsageError, match="bits takes one prompt per row of codes"):  # (another grid: still refused)
        pipe.bits(["a red bird"], g.codes.view(1, 2, -1))


def test_a_step_s_logits_name_codes_of_the_wrong_shape(pipe):
    """transformer.image_logits(text, codes so far), a step's logits: a grid of codes was "Tensors must have same
    number of dimensions: got 3 and 4", from deep in torch."""
    t = pipe.bundle.transformer
    g = pipe("a red bird", 1, 0, PLAIN)[0]
    text = torch.tensor([pipe.request("a red bird").encoded.ids])
    with torch.inference_mode():
        assert t.image_logits(text, g.codes[None, :0]).shape == (1, t.cfg.image_vocab)
        assert t.image_logits(text, g.codes[None, :5]).shape == (1, t.cfg.image_vocab)
        # every code of the grid: a whole grid's prefill (the cache Jacobi's ragged windows read)
        assert t.image_logits(text, g.codes[None]).shape == (1, t.cfg.image_vocab)
        past = torch.cat([g.codes, g.codes[:1]])[None]  # one code past the grid
        for bad_text, bad_codes in ((text, g.codes.view(1, t.cfg.grid, t.cfg.grid)), (text, past),
                                    (text[0], g.codes[None, :3]), (text.expand(2, -1), g.codes[None, :3])):
            with pytest.raises(ValueError, match=rf"image_logits reads text \(B, {t.cfg.text_len}\) and the codes "
                                                 rf"drawn so far \(B, n\), n at most {t.cfg.n_image}"):
                t.image_logits(bad_text, bad_codes)


def test_explaining_a_picture_refuses_a_batch_0_255_pixels_a_list_of_prompts_and_no_clip(pipe):
    """rerank.explain and explain_maps (what `rerank --explain` shows, from Python) take one picture (3, H, W):
    a batch of one was "images must be a tensor (B, 3, H, W); got (1, 1, 3, H, W)" or a raw conv2d error; 0..255
    pixels were attended over unsaid (or met the word-region refusal first); a list of prompts was an
    AttributeError ('split'); weights without a CLIP an AttributeError ('NoneType' ... 'cfg')."""
    from t2i_cli.rerank import explain, explain_maps

    image = pipe("a red bird", 1, 0, PLAIN)[0].image
    words = [w for w, _ in explain(pipe, image, "a red bird")]
    assert words == ["a", "red", "bird"]
    for call in (explain, explain_maps):
        name = call.__name__
        with pytest.raises(ValueError, match=rf"{name} takes one picture, a tensor \(3, H, W\) in \[0, 1\]; got "
                                             r"\(1, 3, \d+, \d+\); for one picture of a batch: images\[i\]"):
            call(pipe, image[None], "a red bird")
        with pytest.raises(ValueError, match=r"images must be in \[0, 1\].*divide by 255"):
            call(pipe, image * 255, "a red bird")
        with pytest.raises(UsageError, match=f"{name} takes one prompt \\(a str\\), got list"):
            call(pipe, image, ["a red bird"])
    pipe.bundle.clip = None
    for call in (explain, explain_maps):
        with pytest.raises(UsageError, match=f"has no clip.safetensors: {call.__name__} needs a CLIP"):
            call(pipe, image, "a red bird")


def test_run_stage_from_python_names_the_fields_a_script_sets_not_the_flags(tiny_weights: Path, tmp_path: Path):
    """A training run from Python said "raise --text-len", "lower --batch-size" and "pass --image-side 16", flags a
    script has none of; it names the TrainConfig fields (text_len, batch_size, image_side=16), as the pipeline's
    refusals name their keywords (`t2i train` still names its flags: test_pins_s34b, test_recipe)."""
    from t2i_cli import stages
    from t2i_cli.errors import TrainingWarning
    from t2i_cli.train import TrainConfig

    pics = tmp_path / "pics"
    pics.mkdir()
    for i, colour in enumerate([(200, 30, 30), (30, 200, 30), (30, 30, 200)]):
        Image.new("RGB", (16, 16), colour).save(pics / f"p{i}.png")
        (pics / f"p{i}.txt").write_text("a red bird " * 8 if i else "a red bird")
    fields = stages.apply_preset("clip", "tiny", {"steps": 1, "num_workers": 0, "batch_size": 8,
                                                  "tokenizer": str(tiny_weights / "tokenizer.json")}, str(pics))
    with pytest.warns(TrainingWarning) as said:
        stages.run_stage(TrainConfig(stage="clip", data=str(pics), **fields), tmp_path / "clip", device="cpu")
    lines = [str(w.message) for w in said]
    cut = [m for m in lines if "longer than the text length" in m]
    assert len(cut) == 1 and cut[0].endswith("; raise text_len to keep them whole"), lines
    few = [m for m in lines if "fewer than a batch of 8" in m]
    assert len(few) == 1 and few[0].endswith("; add pictures or lower batch_size"), lines
    fields = stages.apply_preset("transformer", "tiny", {"steps": 1, "num_workers": 0, "image_side": 32,
                                                         "tokenizer": str(tiny_weights / "tokenizer.json"),
                                                         "dvae": str(tiny_weights / "dvae.safetensors")}, str(pics))
    with pytest.raises(UsageError, match=r"the dVAE was trained on 16 px images, not 32; pass image_side=16$"):
        stages.run_stage(TrainConfig(stage="transformer", data=str(pics), **fields), tmp_path / "tr", device="cpu")


def test_score_names_objects_of_another_kind_or_place(pipe):
    """pipe.score(images, prompt, objects): a place the world has no box for was KeyError 'middle', and one pair
    given alone, ("a red bird", "left"), "too many values to unpack (expected 2)"."""
    x = pipe("a red bird", 1, 0, PLAIN)[0].image[None]
    plain = pipe.score(x, "a red bird and a blue fish", [])
    assert pipe.score(x, "a red bird and a blue fish", [("a red bird", "left"), ("a blue fish", "right")]).shape == (1,)
    assert torch.equal(pipe.score(x, "a red bird and a blue fish", []), plain)
    for bad in ([("a red bird", "middle")], ("a red bird", "left"), "a red bird", [("a red bird",)],
                [(["a", "red"], "left")], 3):
        with pytest.raises(UsageError, match=r"objects must be a list of \(text, place\) pairs, each place one of "
                                             r"left, right, top, bottom; got "):
            pipe.score(x, "a red bird", bad)


def test_image_from_tensor_names_a_batch():
    """The README's `image_from_tensor(g.image)` given a batch, images[None] or a (1, 3, H, W) tensor, failed in
    torch's permute ("number of dimensions in the tensor input does not match ...")."""
    from t2i_cli.images import image_from_tensor

    x = torch.rand(3, 8, 6)
    assert image_from_tensor(x).size == (6, 8)
    with pytest.raises(ValueError, match=r"image_from_tensor takes one picture, a tensor \(3, H, W\) in \[0, 1\]; got "
                                         r"\(1, 3, 8, 6\); for one picture of a batch: images\[i\]"):
        image_from_tensor(x[None])
    for bad in (x[:1], x.tolist()):
        with pytest.raises(ValueError, match="image_from_tensor takes one picture"):
            image_from_tensor(bad)


def test_an_image_prompt_is_built_from_a_file_and_takes_numpy_redraws(pipe, tmp_path: Path):
    """image_prompt.build(dvae, PIL image or tensor) failed in os.fspath ("expected str, bytes or os.PathLike
    object, not PngImageFile"); redraws=np.int64(2) was refused as "redraws must be an int"."""
    from t2i_cli.image_prompt import ImagePrompt, build
    from t2i_cli.images import image_from_tensor

    dvae = pipe.bundle.dvae
    picture = pipe("a red bird", 1, 0, PLAIN)[0].image
    src, mask = tmp_path / "src.png", tmp_path / "mask.png"
    image_from_tensor(picture).save(src)
    m = Image.new("L", (16, 16), 0)
    m.paste(255, (0, 0, 8, 8))
    m.save(mask)
    for bad in (Image.open(src), picture):
        with pytest.raises(TypeError, match=rf"build takes the image's file, a Path or str, got "
                                            rf"{type(bad).__name__}; save the picture as a PNG first"):
            build(dvae, bad, keep_top=0.5)
    with pytest.raises(TypeError, match="build takes the mask's file, a Path or str, got PngImageFile"):
        build(dvae, src, mask=Image.open(mask))
    prompt = build(dvae, src, mask=mask, redraws=np.int64(2))
    assert prompt.mode == "inpaint" and type(prompt.redraws) is int and prompt.redraws == 2
    assert build(dvae, str(src), keep_top=0.5).mode == "complete"
    assert ImagePrompt("vary", prompt.codes, "0" * 64, strength=0.5, redraws=np.int8(1)).redraws == 1


def test_a_train_config_takes_numpy_numbers_as_plain_ones():
    """A sweep's TrainConfig(steps=np.int64(75), lr=np.float32(1e-3)) was refused by run_stage ("steps must be int,
    got np.int64(75); choose a value in range"); its fields are now plain numbers, as train_config.json holds them."""
    from t2i_cli.stages import check_run_config
    from t2i_cli.train import TrainConfig

    cfg = TrainConfig(stage="dvae", data="pics/", steps=np.int64(75), lr=np.float32(0.5), batch_size=np.int16(8),
                      crop=np.float64(0.75), flip=True)
    assert (type(cfg.steps), type(cfg.lr), type(cfg.batch_size)) == (int, float, int)
    assert (cfg.steps, cfg.lr, cfg.batch_size, cfg.crop) == (75, 0.5, 8, 0.75)
    cfg.check()
    check_run_config(cfg)
    assert json.loads(json.dumps(cfg.to_json()))["steps"] == 75
    for bad in ({"steps": np.float64(75.0)}, {"flip": np.int64(1)}, {"steps": "75"}):
        with pytest.raises(TypeError, match="must be"):  # (a TypeError since hK: no range to choose a value in)
            TrainConfig(stage="dvae", data="world", **bad).check()


def test_scores_and_an_image_prompt_s_codes_are_plain_tensors(pipe, tmp_path: Path):
    """pipe.score and image_prompt.build's codes were inference tensors: `scores -= scores.mean()` or editing an
    image prompt's codes raised "Inplace update to inference tensor outside InferenceMode is not allowed", where
    the README says what the API returns is plain (images, codes and bits already were)."""
    from t2i_cli.image_prompt import build
    from t2i_cli.images import image_from_tensor

    drawn = pipe("a red bird", 2, 0, PLAIN)
    scores = pipe.score(torch.stack([g.image for g in drawn]), "a red bird")
    assert not scores.is_inference()
    centred = scores.clone()
    centred -= scores.mean()
    assert torch.allclose(centred.sum(), torch.zeros(()), atol=1e-6)
    image_from_tensor(drawn[0].image).save(tmp_path / "src.png")
    prompt = build(pipe.bundle.dvae, tmp_path / "src.png", keep_top=0.5)
    assert not prompt.codes.is_inference()
    prompt.codes[0] = 0  # (a researcher's edit of the kept codes)
    assert int(prompt.codes[0]) == 0


def test_opening_a_source_refuses_a_side_no_picture_can_take(tmp_path: Path):
    """data.open_source(folder, 0) opened, then blamed the first picture: "cannot read image ...: height and width
    must be > 0; give a complete PNG ..." (the picture was fine); 16.5 failed in Pillow's resize; 10**6 went on to
    resize every picture to a million pixels a side."""
    from t2i_cli.data import open_source

    pics = tmp_path / "pics"
    pics.mkdir()
    for i in range(3):
        Image.new("RGB", (20, 20), (80 * i, 40, 200)).save(pics / f"p{i}.png")
        (pics / f"p{i}.txt").write_text("a red bird\n")
    for side in (0, -5, 16.5, 10**6, "16", True):
        with pytest.raises(UsageError, match=rf"side must be a whole number of pixels in 1\.\.4096, got "
                                             rf"{re.escape(repr(side))}$"):
            open_source(pics, side)
    ds = open_source(pics, np.int64(16))
    assert ds.side == 16 and type(ds.side) is int and ds[0][0].shape == (3, 16, 16)
    assert open_source("world:train", 16, n_scenes=2)[0][0].shape == (3, 16, 16)
