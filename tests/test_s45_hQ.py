"""Issue 14's small parts of the decode loop (no division by a temperature of 1, the drawn code written through a
view, the code's embedding by index_select, each block's parts read once per draw): the same bytes as before.

The pinned codes were drawn by t2i 0.18.0's loop (/work/main at a11df6c) with these tiny models and seeds."""

from __future__ import annotations

import pytest
import torch

from t2i_cli.models.transformer import (
    Int8Linear,
    KVCache,
    PackedLinear,
    Transformer,
    TransformerConfig,
    can_pack_bf16,
    pack_bf16,
    quantize_int8,
)
from t2i_cli.sampling import SamplingConfig, distribution, draw_codes

CFG = TransformerConfig(text_vocab=40, text_len=6, image_vocab=24, grid=4, n_layer=2, n_head=2, n_embd=32)


def spread() -> Transformer:
    torch.manual_seed(0)
    model = Transformer(CFG).eval()
    with torch.no_grad():  # the 0.02-std init makes every logit almost equal; spread them so changes show
        for p in model.parameters():
            if p.ndim > 1:
                p.mul_(5)
    return model


def prompts() -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randint(0, 34, (3, CFG.text_len), generator=torch.Generator().manual_seed(1)), torch.arange(34, 40)


def draw(model: Transformer, seed: int = 2, **kw) -> list[list[int]]:
    text, empty = prompts()
    known = keep = None
    if kw.pop("prompted", False):
        known = torch.randint(0, CFG.image_vocab, (3, CFG.n_image), generator=torch.Generator().manual_seed(3))
        keep = torch.zeros(3, CFG.n_image, dtype=torch.bool)
        keep[:, :3], keep[0, 7], keep[1, 9:12] = True, True, True  # a kept run, then kept codes between draws
    return draw_codes(model, text, empty, SamplingConfig(**kw), torch.Generator().manual_seed(seed),
                      known=known, keep=keep)[0].tolist()


PINNED = {  # t2i 0.18.0's codes (a11df6c), fp32: one string of 16 codes per prompt
    "plain": ('1 12 18 10 16 13 8 1 6 13 10 14 3 20 5 23',
             '17 11 13 6 3 23 1 20 18 8 8 0 0 17 0 2',
             '4 10 22 2 10 15 9 3 4 6 10 11 3 8 10 8'),
    "temperature": ('1 6 1 11 6 13 11 1 1 9 10 6 10 4 11 6',
                   '17 20 9 6 3 3 1 6 3 5 9 0 0 8 5 2',
                   '4 10 10 2 10 5 9 14 3 3 10 10 11 10 10 10'),
    "stop": ('1 12 18 10 16 13 8 1 16 13 10 14 3 20 5 23',
            '17 11 13 6 3 23 1 20 18 8 8 0 0 17 0 10',
            '4 10 22 2 10 15 9 3 4 6 10 11 3 8 9 8'),
    "unguided": ('1 12 18 10 16 17 8 1 6 13 10 14 3 20 5 23',
                '17 11 13 6 8 23 1 15 18 8 8 0 0 17 0 10',
                '4 0 22 2 10 15 9 3 4 6 10 11 3 8 9 8'),
    "prompted": ('10 8 1 1 12 18 10 5 13 8 1 6 13 6 14 3',
                '15 6 8 3 11 13 3 18 23 2 17 18 8 8 0 0',
                '4 1 3 6 10 22 2 10 15 9 3 4 6 10 11 15'),
    "no cache": ('1 12 18 10 16 13 8 1 6 13 10 14 3 20 5 23',
                '17 11 13 6 3 23 1 20 18 8 8 0 0 17 0 2',
                '4 10 22 2 10 15 9 3 4 6 10 11 3 8 10 8'),
}


@pytest.mark.parametrize("name, kw", [("plain", {}),
                                      ("temperature", {"temperature": 0.7, "top_k": 5}),
                                      ("stop", {"guidance_stop": 0.5}),
                                      ("unguided", {"guidance": 1.0}),
                                      ("prompted", {"prompted": True}),
                                      ("no cache", {"use_cache": False})])
def test_fp32_plain_decoding_draws_the_codes_of_0_18_0(name, kw):
    """The default (guided, temperature 1), a temperature with top-k (the division kept), --guidance-stop (the
    codes' view taken again when the unconditional rows leave), no guidance (one row per image), an image
    prompt (kept codes written through the view) and no cache: t2i 0.18.0's codes, bit for bit."""
    assert draw(spread(), **kw) == [[int(c) for c in row.split()] for row in PINNED[name]]


def test_a_draw_reads_the_layers_the_model_has_when_it_starts():
    """decode_layers is read once per draw, never kept on the model: a model quantised (or packed) in place after
    a decode draws what a model quantised before any decode draws, through its new layers."""
    fresh = quantize_int8(spread())
    want = draw(fresh)
    model = spread()
    draw(model)  # a decode of the fp32 model first
    quantize_int8(model)
    assert isinstance(model.decode_layers()[0][3], Int8Linear)
    assert draw(model) == want
    if can_pack_bf16():
        want = draw(pack_bf16(spread()))
        model = spread()
        draw(model)
        pack_bf16(model)
        assert isinstance(model.decode_layers()[0][8], PackedLinear)
        assert draw(model) == want


@pytest.mark.parametrize("precision", ["fp32", "int8", "bf16"])
def test_decode_step_gives_the_same_logits_with_the_draws_layers_or_the_models(precision):
    """cache.layers (set by a draw's prefill) and the model's modules read at each step: the same logits, bit for
    bit, and the same keys and values in the cache."""
    if precision == "bf16" and not can_pack_bf16():
        pytest.skip("this CPU has no oneDNN bf16 linear layers")
    model = {"fp32": lambda m: m, "int8": quantize_int8, "bf16": pack_bf16}[precision](spread())
    text, _ = prompts()
    codes = torch.randint(0, CFG.image_vocab, (3, CFG.n_image), generator=torch.Generator().manual_seed(5))
    caches = [KVCache.for_model(model, 3, torch.device("cpu")) for _ in range(2)]
    with torch.inference_mode():
        for i in range(CFG.n_image):
            a, b = (model.image_logits(text, codes[:, :i], c) for c in caches)
            caches[0].layers = None  # (the prefill set them on both: this one's steps read the model's modules)
            assert caches[1].layers is not None
            assert torch.equal(a, b), i
    assert torch.equal(caches[0].k, caches[1].k) and torch.equal(caches[0].v, caches[1].v)


def test_a_temperature_of_1_leaves_the_logits_as_they_are_and_another_divides_them():
    logits = torch.randn(4, 24, generator=torch.Generator().manual_seed(0)) * 5
    assert torch.equal(distribution(logits, SamplingConfig()), torch.softmax(logits, dim=-1))
    assert torch.equal(distribution(logits.bfloat16(), SamplingConfig()), torch.softmax(logits.bfloat16().float(), -1))
    assert torch.equal(distribution(logits, SamplingConfig(temperature=2.0)), torch.softmax(logits / 2.0, dim=-1))
    assert not torch.equal(distribution(logits, SamplingConfig(temperature=2.0)), torch.softmax(logits, dim=-1))
