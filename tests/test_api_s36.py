"""The Python API as a researcher calls it (session 36's walkthrough): wrong types, shapes and ranges are refused
with a line that names them, never a silently wrong answer; outputs are plain tensors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from t2i_cli.errors import UsageError
from t2i_cli.sampling import SamplingConfig

PLAIN = SamplingConfig(guidance=1, regional=0)


@pytest.fixture
def pipe(tiny_weights: Path):
    from t2i_cli.pipeline import TextToImage

    return TextToImage.from_folder(tiny_weights, "cpu")


def test_bits_refuses_one_prompt_given_as_a_str(pipe):
    """bits("ab", two rows) scored row 0 under the prompt "a" and row 1 under "b"."""
    g = pipe("a red bird", 2, 0, PLAIN)
    codes = torch.stack([x.codes for x in g])
    with pytest.raises(UsageError, match=r"a list of prompts.*for one prompt: \['ab'\]"):
        pipe.bits("ab", codes)
    with pytest.raises(UsageError, match=r"a list of prompts \(str\).*holds an item of type int"):
        pipe.bits([1, 2], codes)
    assert pipe.bits(["a red bird", "a red bird"], codes).shape == codes.shape
    assert pipe.bits([], codes[:0]).shape == (0, codes.shape[1])  # (an IndexError)


def test_prompt_seed_and_count_of_the_wrong_kind_are_refused(pipe):
    with pytest.raises(UsageError, match="the prompt must be a str, got list"):
        pipe(["a red bird"], 1, 0, PLAIN)
    with pytest.raises(UsageError, match="the negative must be a str"):
        pipe.request("a red bird", SamplingConfig(), negative=["x"])
    with pytest.raises(UsageError, match="n must be a whole number"):
        pipe("a red bird", -1, 0, PLAIN)  # (drew nothing, without a word)
    with pytest.raises(UsageError, match="seed must be a whole number"):
        pipe("a red bird", 1, 1.5, PLAIN)
    with pytest.raises(UsageError, match="sampling must be a SamplingConfig"):
        pipe("a red bird", 1, 0, {"guidance": 1})
    with pytest.raises(UsageError, match=r"n must be a whole number of images, 1 or more, got 0"):
        pipe("a red bird", 0, 0, PLAIN)  # (returned [], where `--n 0` is refused; session 44)


@pytest.mark.parametrize("kwargs, says", [({"top_k": 1.5}, "top_k must be a whole number"),
                                          ({"jacobi": True}, "jacobi must be a whole number"),
                                          ({"temperature": "1"}, "temperature must be a number"),
                                          ({"guidance": None}, "guidance must be a number"),
                                          ({"use_cache": 1}, "use_cache must be True or False")])
def test_sampling_config_refuses_a_setting_of_the_wrong_type_when_made(kwargs, says):
    """top_k=1.5 was taken and failed in the decode loop (topk(): argument 'k' must be int)."""
    with pytest.raises(UsageError, match=says):
        SamplingConfig(**kwargs)
    assert SamplingConfig(temperature=1, guidance_start=2, top_p=1).temperature == 1  # ints are numbers
    import numpy as np  # (a sweep over np.arange: numpy's numbers were taken before, and are now, as plain ones)

    swept = SamplingConfig(top_k=np.int64(8), temperature=np.float32(0.5), jacobi=np.int32(2))
    assert (swept.top_k, swept.temperature, swept.jacobi) == (8, 0.5, 2) and type(swept.top_k) is int


def test_dvae_refuses_pictures_that_are_not_a_float_batch_in_0_1_and_decodes_flat_codes(pipe):
    """0..255 pixels, a uint8 tensor and a picture without its batch dimension were encoded without a word into
    other codes; codes (B, N) as Generated.codes holds them could not be decoded (a permute error)."""
    dvae = pipe.bundle.dvae
    side = dvae.cfg.image_side
    x = torch.rand(1, 3, side, side, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        codes = dvae.codes_from_image(x)
        for bad, says in ((x * 255, r"must be in \[0, 1\].*divide by 255"), ((x * 255).byte(), "floats in"),
                          (x[0], r"add the batch dimension"), (x[:, :1], r"\(B, 3, H, W\)")):
            with pytest.raises(ValueError, match=says):
                dvae.codes_from_image(bad)
        assert torch.equal(dvae.image_from_codes(codes.flatten(1)), dvae.image_from_codes(codes))
        for bad in (codes.flatten(1)[:, 1:], codes[:, 1:], codes.float()):
            with pytest.raises(ValueError, match="codes must be integers of shape .* this dVAE's grid"):
                dvae.image_from_codes(bad)
        with pytest.raises(ValueError, match=f"codes must be in 0..{dvae.cfg.n_codes - 1}"):
            dvae.image_from_codes(codes + dvae.cfg.n_codes)  # (an FSQ code past its levels wrapped into another)
        assert torch.equal(dvae.image_from_codes(codes.to(torch.uint8)), dvae.image_from_codes(codes))
    with pytest.raises(UsageError, match="one prompt"):
        pipe.score(x, ["a red bird"])
    with pytest.raises(ValueError, match="divide by 255"):
        pipe.score(x * 255, "a red bird")


def test_rerank_refuses_results_of_several_prompts_and_none(pipe):
    """Every result was scored against the first one's prompt."""
    bird, fish = pipe("a red bird", 1, 0, PLAIN)[0], pipe("two green cats", 1, 0, PLAIN)[0]
    with pytest.raises(UsageError, match="results of one prompt"):
        pipe.rerank([bird, fish], 2)
    with pytest.raises(UsageError, match="at least one result"):
        pipe.rerank([], 1)
    assert [g.rank for g in pipe.rerank(pipe("a red bird", 2, 0, PLAIN), 2)] == [1, 2]


def test_generated_tensors_and_bits_are_plain_tensors_a_caller_may_differentiate_and_edit(pipe):
    """They were inference tensors: outside inference mode the transformer could not run on them with autograd
    ("Inference tensors cannot be saved for backward"), nor could they be edited in place."""
    g = pipe("a red bird", 1, 0, PLAIN)[0]
    assert not g.image.is_inference() and not g.codes.is_inference()
    g.image.clamp_(0, 1)
    text = torch.tensor([pipe.request("a red bird").encoded.ids])
    logits, _ = pipe.bundle.transformer(text, g.codes[None])
    logits.sum().backward()
    assert not pipe.bits(["a red bird"], g.codes[None]).is_inference()  # (the draw is unchanged: same codes)
    assert torch.equal(pipe("a red bird", 1, 0, PLAIN)[0].codes, g.codes)


def test_models_saved_and_loaded_under_the_right_kind_only(tmp_path: Path, pipe):
    """An int8-quantised transformer was saved, then could not be loaded (its int8 buffers in place of the
    weights); a typo of the kind was a bare KeyError at load, and a model saved under another kind said at load
    that its config was unusable."""
    import copy

    from t2i_cli.models.transformer import quantize_int8
    from t2i_cli.weights import load_model, save_model

    model = copy.deepcopy(pipe.bundle.transformer)
    save_model(model, tmp_path / "t.safetensors", "transformer")
    assert load_model(tmp_path / "t.safetensors", "transformer").cfg == model.cfg
    with pytest.raises(ValueError, match="kind must name the model's own kind \\(transformer for a Transformer\\)"):
        save_model(model, tmp_path / "d.safetensors", "dvae")
    with pytest.raises(ValueError, match="kind must be one of dvae, transformer, clip, judge, got 'dave'"):
        load_model(tmp_path / "t.safetensors", "dave")
    quantize_int8(model)
    with pytest.raises(RuntimeError, match="quantised for int8 inference cannot be saved"):
        save_model(model, tmp_path / "q.safetensors", "transformer")
    assert not (tmp_path / "q.safetensors").exists() and not (tmp_path / "d.safetensors").exists()


def test_tokenizer_refuses_a_text_length_under_one(pipe):
    """encode(text, -1) kept 2 of 3 tokens (Python slicing) and said 4 were dropped."""
    tok = pipe.bundle.tokenizer
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match="text_len must be a whole number of 1 or more"):
            tok.encode("a red bird", bad)
    with pytest.raises(TypeError, match="text must be a str"):
        tok.encode(["a red bird"], 8)


def test_from_folder_takes_a_torch_device_and_evaluate_data_a_path(tiny_weights: Path, tmp_path: Path):
    from PIL import Image

    from t2i_cli.data_eval import evaluate_data
    from t2i_cli.pipeline import TextToImage

    pipe = TextToImage.from_folder(tiny_weights, torch.device("cpu"))
    assert pipe.device == torch.device("cpu")
    data = tmp_path / "data"
    data.mkdir()
    for i in range(60):
        Image.new("RGB", (20, 20), (4 * i, 250 - 4 * i, 9 * i % 256)).save(data / f"p{i:02d}.png")
        (data / f"p{i:02d}.txt").write_text("a red bird\n")
    assert evaluate_data(pipe, data, 2, seed=0)["source"] == str(data)  # (AttributeError: 'startswith')
    with pytest.raises(ValueError, match="n must be a whole number of val pictures"):
        evaluate_data(pipe, data, 0, seed=0)


def test_the_transformer_names_a_text_or_codes_of_the_wrong_shape(pipe):
    """A text of 5 ids (not padded) or codes as a grid failed deep in the loss: "Expected input batch_size (23) to
    match target batch_size (4)". (Since session 45 the grid (B, grid, grid), as the dVAE gives codes, is read:
    test_s45_hF; a grid of another shape is still refused.)"""
    t = pipe.bundle.transformer
    text = torch.tensor([pipe.request("a red bird").encoded.ids])
    codes = pipe("a red bird", 1, 0, PLAIN)[0].codes[None]
    with torch.inference_mode():
        t(text, codes)
        for bad_text, bad_codes in ((text[:, :5], codes), (text, codes.view(1, 2, t.cfg.n_image // 2)),
                                    (text, codes[:, :-1]), (text.expand(2, -1), codes)):
            with pytest.raises(ValueError, match=rf"text \(B, {t.cfg.text_len}\).*codes \(B, {t.cfg.n_image}\)"):
                t(bad_text, bad_codes)
