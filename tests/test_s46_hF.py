"""Session 46, hF: a user's journey on Cartopy's maps and Qt Quick's control icons (bench/make_maps_folder.py)."""

from __future__ import annotations

import json

import torch

from conftest import run


def test_the_dvae_watchdog_waits_for_the_lr_warm_up(tmp_path, monkeypatch):
    """A tiny dVAE on the maps folder (mostly white) draws white whatever its input early on: at step 75 of 600, its
    lr 0.00075 still rising to 0.001, it was told "the decoder draws the same image whatever the input ...; try a
    lower --lr", and by step 175 it drew the maps (a lower lr left it collapsed). The watchdog now judges the codes
    only once the lr's warm-up (100 steps, or the first quarter of a shorter run) is over."""
    from t2i_cli.models.dvae import DVAE

    real = DVAE.forward

    def frozen(self, *a, **k):  # a decoder whose output never varies, as the maps' did early
        recon, loss, parts = real(self, *a, **k)
        return recon, loss, {**parts, "out_std": torch.tensor(0.0)}

    monkeypatch.setattr(DVAE, "forward", frozen)
    monkeypatch.setattr("t2i_cli.train.WATCHDOG_WARMUP", 2)
    out = tmp_path / "run"
    r = run("train", "--stage", "dvae", "--steps", "24", "--out", out, "--preset", "tiny", "--workers", "0",
            "--log-every", "1", "--device", "cpu", "-q")
    assert r.exit_code == 0, r.stderr
    said = [ln for ln in r.stderr.splitlines() if "same image whatever the input" in ln]
    assert len(said) == 1 and said[0].startswith("warning: step 7:"), said  # the warm-up: 24 // 4 = 6 steps
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    lrs = [r["lr"] for r in rows if "lr" in r]
    assert lrs[5] == max(lrs)  # step 6, the warm-up's last, is the lr's peak: the warning comes after it


def test_vary_of_a_captioned_picture_names_its_caption_as_the_prompt_to_give(tmp_path, tiny_weights):
    """`t2i vary f/controls/dial-icon@2x.png`, a picture of the user's folder captioned by `t2i data caption`, said
    "prompt: none found in the picture; drawing from the empty prompt (set one with --prompt)", silent on the
    caption beside it that training and rerank read. It still draws from the empty prompt (as the README says), and
    names the caption and the option that draws from it; a picture without one is told --prompt alone."""
    from PIL import Image

    pics = tmp_path / "f"
    pics.mkdir()
    for name in ("dial-icon@2x", "bare"):
        Image.new("RGB", (16, 16), (200, 30, 30)).save(pics / f"{name}.png")
    (pics / "dial-icon@2x.txt").write_text("dial icon\n")
    said = {}
    for name in ("dial-icon@2x", "bare"):
        r = run("vary", pics / f"{name}.png", "--n", "1", "--weights", tiny_weights, "--out", tmp_path / "o",
                "--seed", "0")
        assert r.exit_code == 0, r.stderr
        said[name] = [ln for ln in (r.stdout + r.stderr).splitlines() if ln.startswith("prompt:")]
    assert said["dial-icon@2x"] == ["prompt: none found in the picture; drawing from the empty prompt (dial-icon@2x"
                                    ".txt beside it captions it 'dial icon': draw from that with --prompt 'dial icon')"]
    assert said["bare"] == ["prompt: none found in the picture; drawing from the empty prompt (set one with --prompt)"]


def test_a_collapsed_dvae_on_logit_laplace_is_told_more_steps_too(monkeypatch):
    """The maps' tiny dVAE at 150 steps, told at step 75 "codebook perplexity 1.00: nearly every cell uses one code;
    try a lower --lr", did so (1e-4) and was told it again, ending collapsed (4 of 64 codes); at the preset's lr and
    600 steps it left the collapse by step 175. Its remedy names more --steps before a lower --lr (an l1 dVAE's is
    still --recon-loss logit_laplace)."""
    from t2i_cli.errors import SPEAKING
    from t2i_cli.train import Watchdog

    monkeypatch.setitem(SPEAKING, "cli", True)  # as the command line names the options
    collapsed = {"loss": 1.0, "out_std": 0.0, "perplexity": 1.0}
    said = Watchdog(50, recon_loss="logit_laplace").check(75, collapsed)
    l1 = Watchdog(50, recon_loss="l1").check(75, collapsed)
    assert [s.split("; ")[-1] for s in said] == ["try more --steps or a lower --lr"] * 2
    assert [s.split("; ")[-1] for s in l1] == ["try --recon-loss logit_laplace or a lower --lr"] * 2
