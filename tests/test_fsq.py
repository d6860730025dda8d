"""The FSQ bottleneck of the dVAE (--model fsq_levels=...): codes, values, gradients, training and the CLI."""

from __future__ import annotations

import json

import pytest
import torch

from conftest import run
from t2i_cli.models.dvae import DVAE, FSQ, DVAEConfig, psnr
from t2i_cli.stages import apply_preset
from t2i_cli.weights import load_model, save_model
from test_dvae import white_background_pictures
from test_reliability import TINY, one_line_failure

CFG = DVAEConfig(image_side=16, downsample=4, n_codes=60, n_hid=8, code_dim=8, fsq_levels=(5, 4, 3))


def test_every_code_maps_to_distinct_values_in_range_and_back():
    fsq = FSQ((5, 4, 3))  # odd and even level counts
    codes = torch.arange(60).view(1, 6, 10)
    values = fsq.values(codes)  # (1, 3, 6, 10)
    assert values.shape == (1, 3, 6, 10)
    assert float(values.min()) == -1.0 and float(values.max()) <= 1.0
    flat = values.permute(0, 2, 3, 1).reshape(60, 3)
    assert len({tuple(v) for v in flat.tolist()}) == 60  # 60 codes, 60 different points
    # per channel, exactly its level count of values
    assert [len(set(flat[:, i].tolist())) for i in range(3)] == [5, 4, 3]
    # encoder values that round to those points give those codes back
    pre = torch.atanh(((values * fsq.half_width + fsq.offset) / fsq.half_l).clamp(-0.999, 0.999)) - fsq.shift
    assert torch.equal(fsq.codes(pre), codes)


def test_quantised_values_are_the_codes_values_and_the_gradient_passes_straight_through():
    fsq = FSQ((8, 5, 5, 5))
    z = (torch.randn(2, 4, 3, 3, generator=torch.Generator().manual_seed(0)) * 3).requires_grad_()
    q = fsq(z)
    assert torch.equal(q.detach(), fsq.values(fsq.codes(z)))
    codes = fsq.codes(z)
    assert int(codes.min()) >= 0 and int(codes.max()) < 1000
    q.sum().backward()
    # the gradient of the bounded value (tanh), not the zero gradient of rounding
    expected = (1 - torch.tanh(z.detach() + fsq.shift) ** 2) * fsq.half_l / fsq.half_width
    assert torch.allclose(z.grad, expected, atol=1e-6)
    assert float(z.grad.abs().sum()) > 0


def test_an_fsq_dvae_decodes_at_inference_exactly_what_it_trains_on():
    torch.manual_seed(0)
    model = DVAE(CFG)
    assert CFG.state_numel() == sum(v.numel() for v in model.state_dict().values())
    x = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    assert model.encoder(x).shape == (3, 3, 4, 4)  # one value per level count, not one score per code
    recon, loss, parts = model(x, tau=0.3, kl_weight=5.0, loss="l1")
    assert set(parts) == {"recon_l1", "recon", "out_std"}  # no KL: FSQ has no posterior over codes
    assert loss.item() == pytest.approx(float(parts["recon_l1"]))  # kl_weight has nothing to weigh
    with torch.no_grad():
        assert torch.allclose(model.image_from_codes(model.codes_from_image(x)), recon, atol=1e-6)
        again, _, _ = model(x, tau=1.0, hard=True, loss="l1")
    assert torch.equal(again, recon)  # no Gumbel noise: tau and hard change nothing


def train_fsq(steps: int = 200) -> tuple[float, float, int]:
    """(Output spread across images, PSNR, codes used) of a tiny FSQ dVAE trained on white-background icons."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    cfg = DVAEConfig(image_side=16, downsample=4, n_codes=64, n_hid=16, code_dim=16, n_res=1, pixel_eps=0.1,
                     fsq_levels=(4, 4, 4))
    model = DVAE(cfg)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    for _ in range(steps):
        _, total, _ = model(white_background_pictures(g, 16), loss="logit_laplace")
        opt.zero_grad()
        total.backward()
        opt.step()
    x = white_background_pictures(torch.Generator().manual_seed(99), 64)
    with torch.no_grad():
        codes = model.codes_from_image(x)
        recon = model.image_from_codes(codes)
    return float(recon.std(dim=0).mean()), float(psnr(recon, x).mean()), len(codes.unique())


def test_fsq_learns_white_background_pictures():
    """Where L1 with Gumbel-softmax collapsed (test_dvae), FSQ's codes carry the pictures."""
    x = white_background_pictures(torch.Generator().manual_seed(99), 64)
    mean_image_psnr = float(psnr(x.mean(dim=0, keepdim=True).expand_as(x), x).mean())
    spread, fsq_psnr, used = train_fsq()
    assert spread > 0.05 and used > 8
    assert fsq_psnr > mean_image_psnr + 2, (fsq_psnr, mean_image_psnr)  # 18.0 vs 15.2 dB


def test_fsq_configs_are_checked_and_survive_a_file(tmp_path):
    with pytest.raises(ValueError, match="product of fsq_levels"):
        DVAEConfig(n_codes=512, fsq_levels=(8, 8))
    with pytest.raises(ValueError, match="each 2 to 64"):
        DVAEConfig(n_codes=8, fsq_levels=(8, 1))
    with pytest.raises(ValueError, match="list of integers"):
        DVAEConfig(n_codes=64, fsq_levels=(8, 8.0))
    torch.manual_seed(0)
    model = DVAE(CFG)
    path = save_model(model, tmp_path / "dvae.safetensors", "dvae")
    loaded = load_model(path, "dvae")
    assert loaded.cfg == CFG and loaded.cfg.fsq_levels == (5, 4, 3)  # JSON's list back to a tuple
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert torch.equal(loaded.codes_from_image(x), model.codes_from_image(x))


def test_the_presets_train_fsq_and_gumbel_softmax_is_one_option_away(tmp_path):
    """The tiny preset (like default) trains FSQ: no KL and no temperature are logged; an empty
    --model fsq_levels= trains DALL-E's Gumbel-softmax codebook, which logs both."""
    rows = {}
    for name, extra in (("fsq", []), ("gumbel", ["--model", "fsq_levels=", "--model", "n_codes=64"])):
        out = tmp_path / name
        r = run("train", "--stage", "dvae", "--out", out, "--steps", "4", *extra, *TINY)
        assert r.exit_code == 0, r.output + r.stderr
        rows[name] = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()
                      if '"loss"' in line]
        assert len(rows[name]) == 4
    assert all("kl" not in row and "tau" not in row for row in rows["fsq"])
    assert all("kl" in row and "tau" in row for row in rows["gumbel"])
    assert load_model(tmp_path / "fsq" / "dvae.safetensors", "dvae").cfg.fsq_levels == (4, 4, 4)
    assert load_model(tmp_path / "gumbel" / "dvae.safetensors", "dvae").cfg.fsq_levels == ()
    line = one_line_failure(run("train", "--stage", "dvae", "--out", tmp_path / "bad", "--model",
                                "fsq_levels=4,4", "--model", "n_codes=64", *TINY), 2)
    assert "product of fsq_levels" in line and not (tmp_path / "bad").exists()
    # Levels without a size: the size is their product.
    r = run("train", "--stage", "dvae", "--out", tmp_path / "fsq16", "--steps", "1", "--model", "fsq_levels=4,4",
            *TINY)
    assert r.exit_code == 0, r.output + r.stderr
    assert load_model(tmp_path / "fsq16" / "dvae.safetensors", "dvae").cfg.n_codes == 16


def test_the_default_preset_picks_the_bottleneck_by_data():
    """On a folder the default preset's dVAE is FSQ (8x5x5x5); on the world it is the Gumbel-softmax codebook
    of 512 (ON_WORLD; the measured choice); a user's --model wins over both."""
    folder = apply_preset("dvae", "default", {}, "/some/pictures")["model"]
    assert folder["fsq_levels"] == (8, 5, 5, 5) and folder["n_codes"] == 1000
    for world in ("world", "world:train", "world:val"):
        model = apply_preset("dvae", "default", {}, world)["model"]
        assert model["fsq_levels"] == () and model["n_codes"] == 512
        assert model["n_hid"] == folder["n_hid"]  # only the bottleneck changes
    fsq = apply_preset("dvae", "default", {"model": {"fsq_levels": (8, 5, 5, 5)}}, "world:train")["model"]
    assert fsq["fsq_levels"] == (8, 5, 5, 5) and fsq["n_codes"] == 1000
    # A folder's transformer stops once it memorises (--patience 2; the world's streamed data keeps none).
    assert "patience" not in apply_preset("transformer", "default", {}, "world:train")
    assert apply_preset("transformer", "default", {}, "/some/pictures")["patience"] == 2
    assert apply_preset("transformer", "default", {"patience": 0}, "/some/pictures")["patience"] == 0
    assert "patience" not in apply_preset("dvae", "default", {}, "/some/pictures")
    assert apply_preset("dvae", "large", {}, "world")["model"]["n_codes"] == 512


def test_the_data_source_reaches_the_preset_on_every_path(tmp_path):
    """The single-stage command line and `--stage all` both hand --data to the preset: a world run's dVAE is
    the Gumbel-softmax codebook, a folder's FSQ."""
    from t2i_cli.train_options import stage_config_of_all

    for data, levels, codes in (("world:train", (), 512), (str(tmp_path), (8, 5, 5, 5), 1000)):
        cfg = stage_config_of_all("dvae", tmp_path, {"data": data, "preset": "default"}, {"workers": 0})
        assert (tuple(cfg.model["fsq_levels"]), cfg.model["n_codes"]) == (levels, codes), data
    folder = {"data": str(tmp_path), "preset": "default"}
    assert stage_config_of_all("transformer", tmp_path, folder, {"workers": 0}).patience == 2
    assert stage_config_of_all("transformer", tmp_path, {**folder, "sample_every": 0}, {"workers": 0}).patience == 0
    assert stage_config_of_all("transformer", tmp_path, {"data": "world", "preset": "default"},
                               {"workers": 0}).patience == 0
    out = tmp_path / "world-run"
    r = run("train", "--stage", "dvae", "--data", "world:train", "--preset", "default", "--steps", "1",
            "--image-side", "16", "--batch-size", "2", "--sample-every", "0", "--workers", "0", "-q",
            "--device", "cpu", "--out", out)
    assert r.exit_code == 0, r.stderr
    saved = json.loads((out / "train_config.json").read_text())["model"]
    assert (saved["fsq_levels"], saved["n_codes"]) == ([], 512)
    assert load_model(out / "dvae.safetensors", "dvae").cfg.fsq_levels == ()
