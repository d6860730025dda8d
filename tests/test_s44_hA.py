"""Session 44 (hA): whole-run and API leftovers. A one-stage run into a whole run's folder is told what the folder
is and how to train that stage further; '-' as a folder option is refused; the Python API refuses a count of 0
(and seeds and draws the commands refuse) as it refuses other bad values."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image


def picture_folder(folder: Path, n: int = 8) -> Path:
    """n distinct 16 px pictures with a caption each."""
    folder.mkdir(parents=True)
    for i in range(n):
        Image.new("RGB", (16, 16), (30 * i, 100, 200 - 20 * i)).save(folder / f"p{i:02d}.png")
        (folder / f"p{i:02d}.txt").write_text(f"picture {i}\n")
    return folder


def test_the_api_refuses_a_count_of_zero_as_the_commands_do(tiny_weights: Path, tmp_path: Path):
    """pipe(prompt, n=0) returned [] and pipe.rerank(results, 0) [] (`--n 0` and `--keep 0` are refused);
    evaluate_data took draws of 1.5 or "2" as a raw TypeError, True as draw_each's n=True, and a seed of -1, 1.5
    or True (which `eval --seed` refuses) as any other; evaluate_model the same seeds."""
    from t2i_cli.data_eval import evaluate_data
    from t2i_cli.errors import UsageError
    from t2i_cli.pipeline import TextToImage
    from t2i_cli.world.evaluate import evaluate_model

    pipe = TextToImage.from_folder(tiny_weights, "cpu")
    request = pipe.request("a red bird")
    for n in (0, -1, 1.5, True, "2", None):
        with pytest.raises(UsageError, match=rf"^n must be a whole number of images, 1 or more, got {n!r}$"):
            pipe("a red bird", n)
        with pytest.raises(UsageError, match=rf"^n must be a whole number of images, 1 or more, got {n!r}$"):
            next(pipe.batches(request, n, 0))
    results = pipe("a red bird", 2, seed=0)
    assert len(results) == 2
    for keep in (0, -1, True, 1.5):
        with pytest.raises(UsageError, match=rf"^keep must be a whole number of results, 1 or more, got {keep!r}$"):
            pipe.rerank(results, keep)
    assert [g.rank for g in pipe.rerank(results, 1)] == [1]
    pics = picture_folder(tmp_path / "pics")
    for draws in (0, 17, 1.5, True, "2"):
        with pytest.raises(ValueError, match=rf"^draws must be in 1\.\.16, got {draws!r}$"):
            evaluate_data(pipe, pics, 1, 0, draws=draws)
    for seed in (-1, 2 ** 63, 1.5, True, "0"):
        with pytest.raises(ValueError, match=rf"^seed must be a whole number in 0\.\.2\*\*63-1, got {seed!r}$"):
            evaluate_data(pipe, pics, 1, seed)
        with pytest.raises(ValueError, match=rf"^seed must be a whole number in 0\.\.2\*\*63-1, got {seed!r}$"):
            evaluate_model(pipe, None, 1, seed)  # (refused before the judge is used)
    assert evaluate_data(pipe, pics, 1, 2 ** 63 - 1)["seed"] == 2 ** 63 - 1
