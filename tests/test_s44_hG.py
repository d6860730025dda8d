"""Session 44, helper hG: a mutation audit of the inference core (sampling.py, sampling_config.py, pipeline.py,
models/transformer.py, rerank.py's scoring). Each test here kills a small change to that code which the rest of
the suite let through; tiny models built here, fixed seeds."""

from __future__ import annotations

import pytest
import torch

from t2i_cli.models.transformer import Transformer, TransformerConfig
from t2i_cli.sampling import SamplingConfig

CFG = TransformerConfig(text_vocab=20, text_len=5, image_vocab=16, grid=3, n_layer=2, n_head=2, n_embd=32)


@pytest.fixture(scope="module")
def model() -> Transformer:
    torch.manual_seed(0)
    m = Transformer(CFG).eval()
    with torch.no_grad():  # spread the logits so different texts and seeds really differ
        for p in m.parameters():
            if p.ndim > 1:
                p.mul_(10)
    return m


def prompts(b: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    text = torch.randint(0, 15, (b, CFG.text_len), generator=torch.Generator().manual_seed(4))
    empty = torch.arange(15, 15 + CFG.text_len)  # per-position padding ids
    return text, empty


# ---- sampling._draw -----------------------------------------------------------------------------------------

def test_a_draw_rounded_past_the_last_nonzero_code_takes_that_code_whatever_the_zeros_around_it():
    """u rounded up to the total lands past every code of nonzero weight: the draw is the last nonzero code (2
    of weights 0, 1, 1, 0, 0), never a code of weight 0; counted from the end, not mirrored from the first
    nonzero code (which gave code 3, of weight 0, where the zeros before and after differ in number)."""
    from t2i_cli import sampling

    for weights, want in (([0.0, 1.0, 1.0, 0.0, 0.0], 2), ([1.0, 0.0, 0.0], 0), ([0.0, 0.0, 3.0, 0.0], 2)):
        got = sampling._draw(torch.tensor([weights]), torch.Generator(), u=torch.tensor([1.0]))
        assert got.tolist() == [want], weights


# ---- sampling.refuse_greedy_copies (the Python API's rule for top_k=1) ---------------------------------------

def test_two_greedy_redraws_of_an_inpainting_are_refused():
    """--redraws K draws each image K times and keeps the best fit: with top_k=1 the K draws are alike, so K=2 is
    refused as K=3 is (the smallest K that has copies), and K=1 is taken."""
    from t2i_cli.errors import UsageError
    from t2i_cli.image_prompt import ImagePrompt
    from t2i_cli.sampling import refuse_greedy_copies

    keep = torch.tensor([True] * 3 + [False] * 3 + [True] * 3)
    for k in (2, 3):
        with pytest.raises(UsageError, match=rf"^redraws={k} with top_k=1 draws each image {k} times alike"):
            refuse_greedy_copies(SamplingConfig(top_k=1), 1, ImagePrompt("inpaint", torch.arange(9), "0" * 64,
                                                                         keep=keep, redraws=k))
    refuse_greedy_copies(SamplingConfig(top_k=1), 1, ImagePrompt("inpaint", torch.arange(9), "0" * 64, keep=keep))


# ---- sampling.draw_codes: regions ------------------------------------------------------------------------------

@pytest.mark.parametrize("jacobi", [0, 3])
def test_region_masks_of_another_grid_are_refused(model, jacobi):
    """Regions' masks hold one weight per code of the model's grid: masks one code short or one code long (of
    another model's grid) are refused naming both counts, in plain and Jacobi decoding alike, not read past
    their end or cut to the grid."""
    from t2i_cli.sampling import Regions, draw_codes

    text, empty = prompts(2)
    N = CFG.n_image
    ids = text[None]  # one region per row: its own prompt
    cfg = SamplingConfig(regional=1.0, jacobi=jacobi)
    codes, _ = draw_codes(model, text, empty, cfg, torch.Generator().manual_seed(0),
                          regions=Regions(ids, torch.ones(1, 2, N)))
    assert codes.shape == (2, N)
    for wrong in (N - 1, N + 1):
        with pytest.raises(ValueError, match=rf"^regions for \(2, 5\) prompts and {wrong} codes, but the batch is "
                                             rf"\(2, 5\) and the model draws {N}$"):
            draw_codes(model, text, empty, cfg, torch.Generator().manual_seed(0),
                       regions=Regions(ids, torch.ones(1, 2, wrong)))

# ---- sampling_config.SamplingConfig ---------------------------------------------------------------------------

def test_a_temperature_just_under_its_lower_bound_is_refused():
    """--temperature's range starts at 0.001 (below it float32 logits overflow): 0.001 is taken, 0.0009 and
    0.0001 are refused pointing to top_k 1."""
    from t2i_cli.errors import UsageError

    assert SamplingConfig(temperature=0.001).temperature == 0.001
    for bad in (0.0009, 0.0001):
        with pytest.raises(UsageError, match=r"^temperature must be between 0.001 and 100, got .*top_k=1"):
            SamplingConfig(temperature=bad)


# ---- pipeline.TextToImage.redraw ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pipe(tmp_path_factory):
    from conftest import build_tiny_folder
    from t2i_cli.pipeline import TextToImage

    return TextToImage.from_folder(build_tiny_folder(tmp_path_factory.mktemp("w") / "weights"), device="cpu")


def test_redraw_of_an_image_past_the_first_batch_decodes_its_own_batch(pipe, monkeypatch):
    """redraw (`--from`) decodes only the batch that holds image `index`: with 2 images a batch, images 2, 3 and 4 of
    5 are batches()'s images 2, 3 and 4 (the batch starts at index // 2 * 2, not at index // 2)."""
    from t2i_cli import pipeline

    monkeypatch.setattr(pipeline, "MAX_BATCH", 2)
    request = pipe.request("two green cats")
    every = [g for batch in pipe.batches(request, 5, 7) for g in batch]
    for index in (2, 3, 4):
        again = pipe.redraw(request, 5, 7, index)
        assert again.index == index and torch.equal(again.codes, every[index].codes), index


# ---- rerank.explain_maps (what `rerank --explain` draws) -------------------------------------------------------

def test_explain_maps_a_word_of_several_tokens_as_the_mean_of_its_tokens_attention(tmp_path):
    """A word the tokenizer splits into several tokens gets one panel: the mean of its tokens' attention over the
    image's regions (each a softmax), so every word's map is a distribution summing to 1, as a one-token word's
    is; a sum over its tokens made a word of k tokens k times as bright."""
    from conftest import TEXT_LEN, build_tiny_folder
    from t2i_cli.models.clip import Clip, ClipConfig
    from t2i_cli.pipeline import TextToImage
    from t2i_cli.rerank import explain_maps
    from t2i_cli.weights import load_tokenizer, save_model

    folder = build_tiny_folder(tmp_path / "weights")
    tok = load_tokenizer(folder / "tokenizer.json")
    torch.manual_seed(0)
    cfg = ClipConfig(image_side=16, text_vocab=tok.vocab_size(TEXT_LEN), text_len=TEXT_LEN, n_pad_start=tok.n_bpe,
                     n_hid=8, n_embd=32, n_layer=1, n_head=2, embed_dim=16, word_region=True)
    save_model(Clip(cfg), folder / "clip.safetensors", "clip")
    pipe = TextToImage.from_folder(folder, device="cpu", need_clip=True)
    prompt = "a red zebracorn"
    tokens = dict(tok.words(prompt, TEXT_LEN))
    assert len(tokens["zebracorn"]) > 1 and len(tokens["red"]) == 1  # one word of several tokens, one of one
    maps = explain_maps(pipe, torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(1)), prompt)
    assert [w for w, _, _ in maps] == ["a", "red", "zebracorn"]
    for word, attn, _ in maps:
        assert abs(float(attn.sum()) - 1.0) < 1e-4, word
