"""Session 43: the README's "Design", "Python API" and "Status" sections read claim by claim against the code. What a
reader relies on and could drift is pinned here: the module tree, the names and parameters the API prose gives, the
numbers it states as defaults, the shipped model's shape, what a preset trains, the format of a model file, what the
identity hashes, and which calls reseed torch's global generator."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from conftest import build_tiny_folder


@pytest.mark.parametrize("word_region", [False, True])
def test_loading_a_clip_leaves_torchs_global_generator_as_it_was(tmp_path: Path, word_region: bool):
    """weights.skipped_init builds a model to load "without drawing its random initial weights": nn.MultiheadAttention
    (the CLIP's text encoder) calls the xavier_uniform_ its module imported by name, which the swap of torch.nn.init's
    functions missed, so loading a CLIP (from_folder of any folder with one) drew from torch's global generator: a
    script's seeded stream after it depended on whether the folder held a reranker, or two."""
    import torch.nn.modules.activation as activation

    from t2i_cli.models.clip import Clip, ClipConfig
    from t2i_cli.pipeline import TextToImage
    from t2i_cli.weights import load_model, save_model

    torch.manual_seed(0)
    clip = Clip(ClipConfig(image_side=16, text_vocab=40, text_len=8, n_pad_start=32, n_hid=8, n_embd=32, n_layer=1,
                           n_head=2, embed_dim=16, word_region=word_region))
    path = save_model(clip, tmp_path / "clip.safetensors", "clip")
    folder = build_tiny_folder(tmp_path / "w")
    torch.manual_seed(1234)
    before = torch.random.get_rng_state()
    loaded = load_model(path, "clip")
    assert torch.equal(torch.random.get_rng_state(), before)
    TextToImage.from_folder(folder, "cpu")
    assert torch.equal(torch.random.get_rng_state(), before)
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), clip.state_dict().values(), strict=True))
    assert activation.xavier_uniform_ is torch.nn.init.xavier_uniform_  # (put back after the load)
