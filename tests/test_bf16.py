"""--precision bf16 on the CPU: the decode loop's linear layers oneDNN-packed at load (PackedLinear).

A packed layer gives F.linear's bf16 products bit for bit at every batch shape; its fused GELU is the GELU of
the float32 product rounded once. A packed transformer is as close to fp32 as the plain bf16 one, its cached,
uncached and Jacobi paths agree, and it draws the plain bf16 codes where the GELU's rounding does not decide.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from t2i_cli.models.transformer import KVCache, PackedLinear, Transformer, TransformerConfig, can_pack_bf16, pack_bf16
from t2i_cli.sampling import SamplingConfig, generate_codes

CFG = TransformerConfig(text_vocab=40, text_len=6, image_vocab=24, grid=4, n_layer=2, n_head=2, n_embd=32)

pytestmark = pytest.mark.skipif(not can_pack_bf16(), reason="this PyTorch has no oneDNN linear kernels")


@pytest.mark.parametrize("bias", [True, False])
def test_a_packed_linear_gives_the_bf16_products_bit_for_bit(bias):
    torch.manual_seed(0)
    lin = nn.Linear(64, 48, bias=bias)
    packed = PackedLinear(lin)
    w = lin.weight.detach().bfloat16()
    b = lin.bias.detach().bfloat16() if bias else None
    for shape in [(1, 64), (2, 64), (34, 64), (3, 5, 64)]:
        x = torch.randn(*shape).bfloat16()
        got = packed(x)
        assert got.shape == (*shape[:-1], 48) and got.dtype == torch.bfloat16
        assert torch.equal(got, F.linear(x, w, b))
        ref = F.gelu(F.linear(x.float(), w.float(), None if b is None else b.float()), approximate="tanh")
        fused = packed.gelu(x)
        assert fused.shape == got.shape and fused.dtype == torch.bfloat16
        # one rounding of the fp32 result (2^-8 relative, plus summation order), against a bf16 GELU of a
        # product already rounded, which is off by up to twice that
        assert ((fused.float() - ref).abs() <= ref.abs() * 2 ** -8 + 1e-3).all()
        assert (fused.float() - ref).abs().mean() <= (F.gelu(got, approximate="tanh").float() - ref).abs().mean()
    for refused in (lambda: packed.state_dict(), lambda: packed.float(), lambda: packed.to(torch.float32)):
        with pytest.raises(RuntimeError, match="packed for bf16"):  # never half a cast, never a weight left out
            refused()


def _models() -> tuple[Transformer, Transformer, Transformer]:
    torch.manual_seed(0)
    fp32 = Transformer(CFG).eval()
    with torch.no_grad():
        for p in fp32.parameters():
            if p.ndim > 1:
                p.mul_(5)
    return fp32, copy.deepcopy(fp32).to(torch.bfloat16), pack_bf16(copy.deepcopy(fp32))


def test_a_packed_transformer_is_as_close_to_fp32_as_plain_bf16_on_every_path():
    fp32, plain, packed = _models()
    assert isinstance(packed.blocks[1].mlp[2], PackedLinear) and isinstance(packed.image_head, PackedLinear)
    assert packed.text_emb.weight.dtype == torch.bfloat16
    gen = torch.Generator().manual_seed(1)
    text = torch.randint(0, 34, (3, CFG.text_len), generator=gen)
    codes = torch.randint(0, CFG.image_vocab, (3, CFG.n_image), generator=gen)
    with torch.inference_mode():
        want = fp32(text, codes)[0]
        full = {name: m(text, codes)[0].float() for name, m in (("plain", plain), ("packed", packed))}
        err = {name: (got - want).abs().mean().item() for name, got in full.items()}
        assert err["packed"] <= 1.25 * err["plain"], err
        # The cache path (decode_step, one code per call) and a Jacobi window (Block.forward after a cache)
        # give the full pass's logits: the fused GELU is on both paths.
        cache = KVCache.for_model(packed, 3, torch.device("cpu"))
        steps = [packed.image_logits(text, codes[:, :0], cache)]
        steps += [packed.image_logits(text, codes[:, :i], cache) for i in range(1, CFG.n_image)]
        assert (torch.stack(steps, 1).float() - full["packed"]).abs().max() < 0.05
        cache = KVCache.for_model(packed, 3, torch.device("cpu"))
        first = packed.image_logits(text, codes[:, :0], cache)
        window = packed.ragged_window_logits(codes[:, :CFG.n_image - 1], torch.zeros(3, dtype=torch.long), cache)
        assert (torch.cat([first[:, None], window], 1).float() - full["packed"]).abs().max() < 0.05


def test_a_packed_transformer_draws_valid_codes_and_the_plain_bf16_ones():
    _, plain, packed = _models()
    text = torch.randint(0, 34, (3, CFG.text_len), generator=torch.Generator().manual_seed(1))
    empty = torch.arange(34, 40)
    same = []
    for extra in ({}, {"use_cache": False}, {"jacobi": 5}, {"guidance": 1.0}):
        want = generate_codes(plain, text, empty, SamplingConfig(**extra), torch.Generator().manual_seed(2))
        got = generate_codes(packed, text, empty, SamplingConfig(**extra), torch.Generator().manual_seed(2))
        assert got.shape == want.shape and int(got.min()) >= 0 and int(got.max()) < CFG.image_vocab, extra
        same.append((got == want).float().mean().item())
    # bf16 rounding may tip a near tie, after which a row's codes part ways; at these seeds none does (3 of 4
    # settings allowed to, for another CPU's kernels)
    assert sum(s == 1.0 for s in same) >= 3, same


def test_without_onednn_bf16_a_transformer_stays_plain_bf16(monkeypatch):
    """On a CPU whose oneDNN has no bf16 path (AVX2 only) pack_bf16 casts and does not pack, so bf16 still runs."""
    import t2i_cli.models.transformer as transformer

    monkeypatch.setattr(transformer, "can_pack_bf16", lambda: False)
    torch.manual_seed(0)
    model = pack_bf16(Transformer(CFG).eval())
    assert isinstance(model.blocks[0].attn.qkv, nn.Linear) and model.blocks[0].attn.qkv.weight.dtype == torch.bfloat16
    text = torch.randint(0, 34, (2, CFG.text_len), generator=torch.Generator().manual_seed(1))
    codes = generate_codes(model, text, torch.arange(34, 40), SamplingConfig(), torch.Generator().manual_seed(2))
    assert codes.shape == (2, CFG.n_image) and int(codes.max()) < CFG.image_vocab


