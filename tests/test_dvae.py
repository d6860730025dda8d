"""dVAE: shapes, code ranges, the KL term against a hand computation, and that training reduces the loss."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from t2i_cli.models.dvae import DVAE, DVAEConfig

CFG = DVAEConfig(image_side=8, downsample=2, n_codes=16, n_hid=8, code_dim=8)


def tiny(seed: int = 0, cfg: DVAEConfig = CFG) -> DVAE:
    torch.manual_seed(seed)
    return DVAE(cfg)


def batch(seed: int = 1, b: int = 2, side: int = 8) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 3, side, side, generator=g)


def zero_logit_layer(model: DVAE) -> torch.nn.Conv2d:
    """Zero the encoder's last 1x1 conv, so its bias alone sets every cell's logits."""
    last = model.encoder.net[-1]
    assert isinstance(last, torch.nn.Conv2d) and last.out_channels == model.cfg.n_codes
    with torch.no_grad():
        last.weight.zero_()
        last.bias.zero_()
    return last


@pytest.mark.parametrize("cfg", [CFG, DVAEConfig(image_side=16, downsample=4, n_codes=32, n_hid=8, code_dim=8)])
def test_shapes(cfg):
    model = tiny(cfg=cfg).eval()
    side = cfg.image_side
    assert cfg.grid == side // cfg.downsample
    x = batch(side=side, b=3)
    g = cfg.grid
    assert model.encoder(x).shape == (3, cfg.n_codes, g, g)
    codes = model.codes_from_image(x)
    assert codes.shape == (3, g, g)
    assert model.image_from_codes(codes).shape == (3, 3, side, side)
    recon, loss, parts = model(x)
    assert recon.shape == x.shape
    assert loss.ndim == 0 and set(parts) == {"recon_l1", "recon", "kl", "out_std"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # std over a batch of one warned (degrees of freedom) and logged NaN
        _, _, parts = model(x[:1])
    assert set(parts) == {"recon_l1", "recon", "kl"} and all(torch.isfinite(v) for v in parts.values())


def test_invalid_configs_are_refused():
    with pytest.raises(ValueError, match="power of two"):
        DVAE(DVAEConfig(image_side=12, downsample=3, n_codes=4, n_hid=4, code_dim=4))
    with pytest.raises(ValueError, match="multiple of downsample"):
        DVAE(DVAEConfig(image_side=10, downsample=4, n_codes=4, n_hid=4, code_dim=4))


def test_codes_from_image_are_ints_in_range_and_the_argmax():
    model = tiny().eval()
    x = batch(b=4)
    codes = model.codes_from_image(x)
    assert codes.dtype == torch.long
    assert int(codes.min()) >= 0 and int(codes.max()) < CFG.n_codes
    assert torch.equal(codes, model.encoder(x).argmax(dim=1))
    assert torch.equal(codes, model.codes_from_image(x))  # no randomness at inference


def test_image_from_codes_in_unit_range():
    model = tiny().eval()
    g = CFG.grid
    codes = torch.stack([torch.zeros(g, g, dtype=torch.long), torch.full((g, g), CFG.n_codes - 1),
                         torch.arange(g * g).view(g, g) % CFG.n_codes])
    with torch.no_grad():
        model.codebook.weight.mul_(50)  # large embeddings push the decoder towards saturation
        img = model.image_from_codes(codes)
    assert img.shape == (3, 3, CFG.image_side, CFG.image_side)
    assert torch.isfinite(img).all()
    assert float(img.min()) >= 0.0 and float(img.max()) <= 1.0


def test_kl_is_zero_for_uniform_logits():
    model = tiny()
    zero_logit_layer(model)
    torch.manual_seed(3)
    _, loss, parts = model(batch(), kl_weight=1.0)
    assert abs(float(parts["kl"])) < 1e-6
    assert math.isclose(loss.item(), float(parts["recon_l1"]), abs_tol=1e-6)


def test_kl_matches_a_hand_computation():
    model = tiny()
    last = zero_logit_layer(model)
    bias = torch.linspace(-2.0, 3.0, CFG.n_codes)
    with torch.no_grad():
        last.bias.copy_(bias)
    q = torch.softmax(bias.double(), dim=0)
    expected = float((q * q.log()).sum() + math.log(CFG.n_codes))  # KL(q || uniform), the same in every cell
    assert expected > 0.1
    torch.manual_seed(3)
    _, loss, parts = model(batch(), kl_weight=0.25)
    assert math.isclose(float(parts["kl"]), expected, rel_tol=1e-4)
    assert math.isclose(loss.item(), float(parts["recon_l1"]) + 0.25 * expected, rel_tol=1e-4)


def test_kl_is_positive_for_a_random_encoder():
    model = tiny()
    torch.manual_seed(3)
    _, _, parts = model(batch())
    assert float(parts["kl"]) > 0


def test_recon_part_is_the_l1_of_the_returned_reconstruction():
    model = tiny()
    x = batch()
    torch.manual_seed(3)
    recon, loss, parts = model(x, kl_weight=0.0)
    assert math.isclose(float(parts["recon_l1"]), (recon - x).abs().mean().item(), rel_tol=1e-6)
    assert math.isclose(loss.item(), float(parts["recon_l1"]), rel_tol=1e-6)


def eval_loss(model: DVAE, x: torch.Tensor) -> float:
    """Mean reconstruction L1 over a few fixed Gumbel draws."""
    total = 0.0
    with torch.no_grad():
        for s in range(3):
            torch.manual_seed(100 + s)
            total += float(model(x, tau=1.0)[2]["recon_l1"])
    return total / 3


def test_a_few_optimizer_steps_reduce_reconstruction_loss():
    model = tiny(seed=5)
    # flat-coloured "clip art": each image one colour, so a few steps can fit it
    colours = torch.tensor([[0.9, 0.1, 0.1], [0.1, 0.2, 0.9], [0.95, 0.9, 0.1], [0.1, 0.8, 0.2]])
    x = colours[:, :, None, None].expand(-1, -1, CFG.image_side, CFG.image_side).contiguous()
    before = eval_loss(model, x)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    torch.manual_seed(7)
    for _ in range(15):
        _, loss, _ = model(x, tau=1.0, kl_weight=0.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = eval_loss(model, x)
    assert after < 0.7 * before, (before, after)


def white_background_pictures(g: torch.Generator, n: int, side: int = 16) -> torch.Tensor:
    """Mostly white pictures with one coloured square each, like icons and emoji (B, 3, side, side)."""
    x = torch.ones(n, 3, side, side)
    for i in range(n):
        s = int(torch.randint(4, 9, (1,), generator=g))
        x0, y0 = torch.randint(0, side - s, (2,), generator=g).tolist()
        x[i, :, y0:y0 + s, x0:x0 + s] = torch.rand(3, 1, 1, generator=g)
    return x


def train_on_white(loss: str, steps: int = 200) -> tuple[float, float]:
    """(output spread across images, PSNR) of argmax reconstructions after training a tiny dVAE with loss."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    cfg = DVAEConfig(image_side=16, downsample=4, n_codes=32, n_hid=16, code_dim=16, n_res=1,
                     pixel_eps=0.1 if loss == "logit_laplace" else 0.0)
    model = DVAE(cfg)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    for _ in range(steps):
        _, total, _ = model(white_background_pictures(g, 16), tau=1.0, kl_weight=0.0, loss=loss)
        opt.zero_grad()
        total.backward()
        opt.step()
    x = white_background_pictures(torch.Generator().manual_seed(99), 64)
    with torch.no_grad():
        recon = model.image_from_codes(model.codes_from_image(x))
    return float(recon.std(dim=0).mean()), float(10 * torch.log10(1 / ((recon - x) ** 2).mean()))


def test_l1_collapses_on_white_backgrounds_and_logit_laplace_does_not():
    """The failure users met on real icons, in miniature: with L1 on sigmoid pixels the decoder's output
    freezes into one constant image (the sigmoid saturates towards the white background); DALL-E's
    logit-Laplace on pixels mapped into [eps, 1 - eps] keeps learning."""
    l1_spread, l1_psnr = train_on_white("l1")
    ll_spread, ll_psnr = train_on_white("logit_laplace")
    assert l1_spread < 1e-3  # the collapse: the same image whatever the input
    assert ll_spread > 0.05 and ll_psnr > l1_psnr + 2


def test_logit_laplace_needs_pixel_eps_and_pixels_map_back_into_0_1():
    with pytest.raises(ValueError, match="pixel_eps"):
        tiny()(batch(), loss="logit_laplace")
    with pytest.raises(ValueError, match="unknown reconstruction loss"):
        tiny()(batch(), loss="l2")
    model = DVAE(DVAEConfig(image_side=8, downsample=2, n_codes=16, n_hid=8, code_dim=8, pixel_eps=0.1))
    logits = torch.tensor([-20.0, torch.logit(torch.tensor(0.1)).item(), 0.0, 20.0])
    assert torch.allclose(model.pixels(logits), torch.tensor([0.0, 0.0, 0.5, 1.0]), atol=1e-6)
    plain = tiny()
    assert torch.equal(plain.pixels(logits), torch.sigmoid(logits))  # pixel_eps 0: the shipped models' sigmoid


@pytest.mark.parametrize("cfg", [
    DVAEConfig(image_side=16, downsample=4, n_codes=32, n_hid=8, code_dim=8),
    DVAEConfig(image_side=16, downsample=4, n_codes=45, n_hid=8, code_dim=8, fsq_levels=(5, 3, 3))])
def test_a_bf16_decoder_draws_the_fp32_pictures_within_its_rounding_and_leaves_the_encoder_alone(cfg):
    model = tiny(cfg=cfg).eval()
    x = batch(b=3, side=cfg.image_side)
    with torch.no_grad():
        codes = model.codes_from_image(x)
        want = model.image_from_codes(codes)
        model.decode_in(torch.bfloat16)
        assert model.decoder.net[0].weight.dtype == torch.bfloat16
        assert next(model.codebook.parameters()).dtype == torch.bfloat16
        assert next(model.encoder.parameters()).dtype == torch.float32
        assert torch.equal(model.codes_from_image(x), codes)  # image prompts' codes do not move
        got = model.image_from_codes(codes)
    assert got.dtype == torch.float32 and got.shape == want.shape
    diff = (got - want).abs()
    assert 0 < float(diff.max()) < 0.02 and float(diff.mean()) < 0.004  # bf16 is not fp32, but within 5/255


def test_codes_are_the_float32_ones_under_bf16_autocast_and_the_decoder_fine_tune_reads_them():
    """The transformer trains under bf16 autocast on codes_from_image: in bf16 the encoder's argmax moves some
    codes (12.6% of a world scene's with the shipped dVAE), so training learned other codes than validation
    and image prompts read. Codes are now the float32 ones whatever the caller's autocast, and a decoder
    fine-tune (hard codes) decodes those."""
    torch.manual_seed(0)
    dvae = DVAE(DVAEConfig(image_side=16, downsample=2, n_codes=512, n_hid=8, code_dim=8))
    x = torch.rand(8, 3, 16, 16)
    want = dvae.codes_from_image(x)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        moved = (dvae.encoder(x).argmax(dim=1) != want).float().mean().item()
        got = dvae.codes_from_image(x)
        recon, _, _ = dvae(x, hard=True)
        decoded = dvae.pixels(dvae.decoder(dvae.codebook(want).permute(0, 3, 1, 2)).float())
    assert moved > 0.01, moved  # bf16 does move codes here, so the checks below can fail
    assert torch.equal(got, want)
    assert torch.equal(recon, decoded)


def test_the_training_config_knows_every_reconstruction_loss():
    from t2i_cli.models.dvae import RECON_LOSSES
    from t2i_cli.train import CONFIG_CHOICES

    assert CONFIG_CHOICES["recon_loss"] == RECON_LOSSES  # a run folder's config is checked against these
