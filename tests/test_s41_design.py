"""Session 41: the README's Design section read against the code."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from conftest import build_tiny_folder
from t2i_cli.errors import UsageError
from t2i_cli.image_prompt import build
from t2i_cli.images import image_from_tensor
from t2i_cli.pipeline import TextToImage
from t2i_cli.sampling import SamplingConfig


@pytest.fixture
def pipe_and_image(tmp_path: Path):
    pipe = TextToImage.from_folder(build_tiny_folder(tmp_path / "weights"), "cpu")
    src = tmp_path / "src.png"
    image_from_tensor(torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(0))).save(src)
    return pipe, build(pipe.bundle.dvae, src, keep_top=0.5)


def test_an_image_prompt_given_in_progress_place_is_refused_by_name(pipe_and_image):
    """batches' fourth parameter is progress (README Design named it batches(request, n, seed, image)): an image
    prompt given there failed at the first code as "'ImagePrompt' object is not callable"."""
    pipe, image = pipe_and_image
    request = pipe.request("a red bird")
    with pytest.raises(UsageError, match=r"progress must be a function.*ImagePrompt; give an image prompt as image="):
        list(pipe.batches(request, 1, 0, image))
    with pytest.raises(UsageError, match=r"image=\.\.\."):
        pipe("a red bird", 1, 0, SamplingConfig(), image)
    with pytest.raises(UsageError, match=r"progress must be a function.*got int"):
        pipe.redraw(request, 2, 0, 1, image, 5)
    # given by name it draws, keeping the top rows
    (g,) = [g for batch in pipe.batches(request, 1, 0, image=image) for g in batch]
    top = pipe.bundle.transformer.cfg.n_image // 2
    assert torch.equal(g.codes[:top], image.codes[:top])
    seen = []
    pipe.redraw(request, 2, 0, 1, image, progress=seen.append)
    assert seen and seen[-1] == pipe.bundle.transformer.cfg.n_image
