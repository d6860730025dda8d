"""--precision bf16 on the CPU: the decode loop's linear layers oneDNN-packed at load (PackedLinear).

A packed layer gives F.linear's bf16 products bit for bit at every batch shape, and a packed transformer
draws exactly the codes of the plain bf16 one (one code per pass, no cache, Jacobi windows).
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from t2i_cli.models.transformer import PackedLinear, Transformer, TransformerConfig, can_pack_bf16, pack_bf16
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
    for refused in (lambda: packed.state_dict(), lambda: packed.float(), lambda: packed.to(torch.float32)):
        with pytest.raises(RuntimeError, match="packed for bf16"):  # never half a cast, never a weight left out
            refused()


def test_a_packed_transformer_draws_the_codes_of_the_plain_bf16_one():
    torch.manual_seed(0)
    fp32 = Transformer(CFG).eval()
    with torch.no_grad():
        for p in fp32.parameters():
            if p.ndim > 1:
                p.mul_(5)
    plain = copy.deepcopy(fp32).to(torch.bfloat16)
    packed = pack_bf16(copy.deepcopy(fp32))
    assert isinstance(packed.blocks[1].mlp[2], PackedLinear) and isinstance(packed.image_head, PackedLinear)
    assert packed.text_emb.weight.dtype == torch.bfloat16
    text = torch.randint(0, 34, (3, CFG.text_len), generator=torch.Generator().manual_seed(1))
    empty = torch.arange(34, 40)
    for extra in ({}, {"use_cache": False}, {"jacobi": 5}, {"guidance": 1.0}):
        want = generate_codes(plain, text, empty, SamplingConfig(**extra), torch.Generator().manual_seed(2))
        got = generate_codes(packed, text, empty, SamplingConfig(**extra), torch.Generator().manual_seed(2))
        assert torch.equal(got, want), extra
        assert int(got.min()) >= 0 and int(got.max()) < CFG.image_vocab


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
