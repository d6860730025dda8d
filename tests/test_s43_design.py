"""Session 43: the README's "Design", "Python API" and "Status" sections read claim by claim against the code. What a
reader relies on and could drift is pinned here: the module tree, the names and parameters the API prose gives, the
numbers it states as defaults, the shipped model's shape, what a preset trains, the format of a model file, what the
identity hashes, and which calls reseed torch's global generator."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from conftest import build_tiny_folder

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def section(title: str) -> str:
    return README.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def flat(text: str) -> str:
    """Text with its line breaks and runs of spaces made one space (the README wraps its sentences anywhere)."""
    return re.sub(r"\s+", " ", text)


API = flat(section("Python API"))


def test_training_reseeds_torchs_global_generator_and_the_pipeline_and_evaluation_do_not(tmp_path: Path):
    """Python API: run_stage seeds torch's global generator at every step (the README said this of evaluate_model,
    the sentence after it: a script that saved and restored its state around evaluate_model did so for nothing,
    and one that did not around run_stage lost its own); torch.random.fork_rng() around the call keeps it."""
    from t2i_cli import stages
    from t2i_cli.image_prompt import build
    from t2i_cli.images import image_from_tensor
    from t2i_cli.pipeline import TextToImage
    from t2i_cli.sampling import SamplingConfig
    from t2i_cli.train import TrainConfig
    from t2i_cli.world.evaluate import evaluate_model, validate_judge
    from t2i_cli.world.judge import load_judge

    training = API.split("Training from Python is", 1)[1].split("`t2i_cli.world.evaluate.evaluate_model", 1)[0]
    assert "seeds torch's global generator at every step" in training

    def state() -> torch.Tensor:
        return torch.random.get_rng_state()

    folder = build_tiny_folder(tmp_path / "w", seed=3)  # (which seeds the global generator: the test's own doing)
    torch.manual_seed(1234)
    before = state()
    pipe = TextToImage.from_folder(folder, "cpu")
    drawn = pipe("a red bird", n=2, seed=0)
    pipe.rerank(drawn, 1)
    pipe.bits(["a red bird"], drawn[0].codes[None])
    pipe("a red bird", n=2, seed=0, sampling=SamplingConfig(jacobi=4))
    image_from_tensor(drawn[0].image).save(tmp_path / "src.png")
    pipe("a red bird", n=2, seed=0, image=build(pipe.bundle.dvae, tmp_path / "src.png", strength=0.5))
    judge = load_judge(ROOT / "weights" / "judge.safetensors")
    evaluate_model(pipe, judge, 1, 0, tasks=("single_object", "two_objects"))
    validate_judge(judge, 1, 0, 64)
    assert torch.equal(state(), before), "the pipeline and the evaluation leave torch's global generator alone"

    cfg = TrainConfig(stage="dvae", data="world:train", **stages.apply_preset("dvae", "tiny", {"steps": 2},
                                                                                 "world:train"))
    with torch.random.fork_rng():
        stages.run_stage(cfg, tmp_path / "kept", device="cpu")
    assert torch.equal(state(), before)
    stages.run_stage(cfg, tmp_path / "run", device="cpu")
    assert not torch.equal(state(), before)


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
