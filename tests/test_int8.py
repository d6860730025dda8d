"""--precision int8: weight-only int8 linear layers (one scale per output channel) for the decode loop.

The quantised layer equals its dequantised weights' matmul (up to bf16 rounding), every weight lies
within half a step of its original, an int8 transformer decodes valid codes with cache and without and
its logits stay close to fp32, and quantising leaves fp32 decoding untouched.
"""

from __future__ import annotations

import copy
import os

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from t2i_cli.models.transformer import Int8Linear, Transformer, TransformerConfig, quantize_int8
from t2i_cli.sampling import SamplingConfig, generate_codes

CFG = TransformerConfig(text_vocab=40, text_len=6, image_vocab=24, grid=4, n_layer=2, n_head=2, n_embd=32)


def test_int8_linear_is_the_matmul_of_its_dequantised_weights():
    torch.manual_seed(0)
    lin = nn.Linear(64, 48)
    q = Int8Linear(lin)
    assert q.qweight.dtype == torch.int8 and q.scales.shape == (48,)
    deq = q.qweight.float() * q.scales.float()[:, None]
    step = q.scales.float()[:, None]
    assert bool(((deq - lin.weight).abs() <= step / 2 + 1e-6 + lin.weight.abs() * 2 ** -8).all())
    assert int(q.qweight.abs().amax(dim=1).min()) == 127  # each channel uses the whole range
    x = torch.randn(5, 3, 64)
    want = F.linear(x.bfloat16().float(), deq, q.bias.float())
    got = q(x).float()
    assert got.shape == (5, 3, 48)
    torch.testing.assert_close(got, want, atol=0.03, rtol=0.02)
    torch.testing.assert_close(got, lin(x), atol=0.05, rtol=0.05)  # and close to the fp32 layer


ODD_WIDTHS = """
import copy, sys, torch
import torch.nn as nn
from t2i_cli.models.transformer import Int8Linear, Transformer, TransformerConfig, quantize_int8
from t2i_cli.sampling import SamplingConfig, generate_codes
torch.manual_seed(0)
for k in (12, 20, 24, 36):  # in_features no multiple of 16 (12, 20, 36 not even of 8, as AVX2 reads)
    lin = nn.Linear(k, 9)
    x = torch.randn(5, k)
    err = float((Int8Linear(lin)(x).float() - lin(x)).abs().max())
    print(k, err)
    assert err < 0.05, (k, err)
base = torch.randn(1000)  # a view that starts 8 bytes past an aligned address, as a slice may
q = Int8Linear(nn.Linear(16, 8))
view = base.bfloat16()[4:4 + 32].view(2, 16)
assert torch.equal(q(view), q(view.clone()))
cfg = TransformerConfig(text_vocab=40, text_len=6, image_vocab=24, grid=4, n_layer=1, n_head=2, n_embd=20)
int8 = quantize_int8(Transformer(cfg).eval())
text = torch.randint(0, 34, (2, 6), generator=torch.Generator().manual_seed(1))
codes = generate_codes(int8, text, torch.arange(34, 40), SamplingConfig(), torch.Generator().manual_seed(2))
assert codes.shape == (2, 16) and 0 <= int(codes.min()) and int(codes.max()) < 24
print("ok")
"""


def test_int8_layers_of_any_width_and_misaligned_inputs_compute_instead_of_crashing():
    """`_weight_int8pack_mm` crashed the process (a segmentation fault, so run in its own here) on a layer
    whose input width is not a multiple of its block (a user's model with n_embd 20: `--precision auto` is
    int8 on a CPU without native bf16) and on an input that starts off a 16-byte boundary."""
    import subprocess
    import sys

    from conftest import SRC

    r = subprocess.run([sys.executable, "-c", ODD_WIDTHS], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "PYTHONPATH": SRC})
    assert r.returncode == 0 and r.stdout.endswith("ok\n"), (r.returncode, r.stdout, r.stderr[-2000:])


def spread(model: Transformer) -> Transformer:
    with torch.no_grad():  # larger logits, so that a wrong layer would show
        for p in model.parameters():
            if p.ndim > 1:
                p.mul_(5)
    return model.eval()


def test_an_int8_transformer_decodes_valid_codes_close_to_fp32_and_fp32_is_untouched():
    torch.manual_seed(0)
    fp32 = spread(Transformer(CFG))
    before = {k: v.clone() for k, v in fp32.state_dict().items()}
    text = torch.randint(0, 34, (3, CFG.text_len), generator=torch.Generator().manual_seed(1))
    empty = torch.arange(34, 40)
    codes32 = generate_codes(fp32, text, empty, SamplingConfig(), torch.Generator().manual_seed(2))
    int8 = quantize_int8(copy.deepcopy(fp32))
    assert all(torch.equal(v, fp32.state_dict()[k]) for k, v in before.items())  # the original is unchanged
    assert torch.equal(generate_codes(fp32, text, empty, SamplingConfig(), torch.Generator().manual_seed(2)), codes32)
    assert isinstance(int8.blocks[0].attn.qkv, Int8Linear) and int8.text_emb.weight.dtype == torch.bfloat16
    for extra in ({"use_cache": True}, {"use_cache": False}, {"jacobi": 5}):  # Jacobi: windows through Int8Linear
        codes = generate_codes(int8, text, empty, SamplingConfig(**extra), torch.Generator().manual_seed(2))
        assert codes.shape == (3, CFG.n_image) and codes.dtype == torch.long
        assert int(codes.min()) >= 0 and int(codes.max()) < CFG.image_vocab
    # Teacher-forced on the fp32 codes, the int8 logits stay close (bf16 activations, 8-bit weights).
    with torch.no_grad():
        want = fp32(text, codes32)[0]
        got = int8(text, codes32)[0].float()
    probs_want, probs_got = want.softmax(-1), got.softmax(-1)
    assert float((probs_want - probs_got).abs().sum(-1).mean()) < 0.15  # mean total variation x 2
    assert float((want.argmax(-1) == got.argmax(-1)).float().mean()) > 0.85


def test_precision_auto_is_bf16_on_the_cpu_and_is_recorded_as_such(tiny_weights, tmp_path, monkeypatch):
    from PIL import Image

    import t2i_cli.pipeline as pipeline
    from conftest import run
    from t2i_cli.pipeline import TextToImage

    monkeypatch.setattr(pipeline, "native_bf16", lambda: True)  # as on the machine the choice was measured

    assert TextToImage.from_folder(tiny_weights, "cpu", precision="auto").precision == "bf16"
    auto = run("generate", "a red bird", "--n", 2, "--precision", "auto", "--weights", tiny_weights,
               "--out", tmp_path / "a", "-q")
    bf16 = run("generate", "a red bird", "--n", 2, "--precision", "bf16", "--weights", tiny_weights,
               "--out", tmp_path / "b", "-q")
    assert auto.exit_code == 0 and bf16.exit_code == 0, (auto.stderr, bf16.stderr)
    for a, b in zip(auto.stdout.split(), bf16.stdout.split(), strict=True):
        with Image.open(a) as x, Image.open(b) as y:
            assert x.text["precision"] == "bf16" and x.tobytes() == y.tobytes()


def test_precision_auto_is_int8_on_a_cpu_without_native_bf16(monkeypatch):
    import t2i_cli.pipeline as pipeline

    cpu = torch.device("cpu")
    monkeypatch.setattr(pipeline, "native_bf16", lambda: False)
    assert pipeline.auto_precision(cpu) == "int8"
    monkeypatch.setattr(pipeline, "native_bf16", lambda: True)
    assert pipeline.auto_precision(cpu) == "bf16" and pipeline.auto_precision(torch.device("cuda")) == "fp32"


def test_rerank_precision_auto_is_fp32_on_a_cpu_without_native_bf16(monkeypatch, tiny_weights):
    import t2i_cli.pipeline as pipeline

    monkeypatch.setattr(pipeline, "native_bf16", lambda: False)
    pipe = pipeline.TextToImage.from_folder(tiny_weights, "cpu", need_clip=True, clip_precision="auto")
    assert next(pipe.bundle.clip.parameters()).dtype == torch.float32
    monkeypatch.setattr(pipeline, "native_bf16", lambda: True)
    pipe = pipeline.TextToImage.from_folder(tiny_weights, "cpu", need_clip=True, clip_precision="auto")
    assert next(pipe.bundle.clip.parameters()).dtype == torch.bfloat16


@pytest.mark.parametrize("precision", ["fp32", "bf16", "int8"])
def test_the_dvae_decoder_follows_a_bf16_or_int8_transformer_on_a_cpu_with_native_bf16(precision, monkeypatch,
                                                                                        tiny_weights):
    import t2i_cli.pipeline as pipeline

    for native in (True, False):
        monkeypatch.setattr(pipeline, "native_bf16", lambda native=native: native)
        pipe = pipeline.TextToImage.from_folder(tiny_weights, "cpu", precision=precision)
        want = "bf16" if native and precision != "fp32" else "fp32"
        dvae = pipe.bundle.dvae
        assert pipe.decoder_precision == want
        assert dvae.decoder.net[0].weight.dtype == (torch.bfloat16 if want == "bf16" else torch.float32)
        assert next(dvae.encoder.parameters()).dtype == torch.float32
        images = pipe("a red bird", n=2, seed=0)
        assert all(g.image.dtype == torch.float32 and 0 <= float(g.image.min()) <= float(g.image.max()) <= 1
                   for g in images)
