"""The README's Python API block runs as written (on the shipped weights), and what the text around it says of
the API holds."""
from __future__ import annotations

import math
import re
from pathlib import Path

import torch
from PIL import Image

from conftest import run

ROOT = Path(__file__).resolve().parents[1]


def readme_block() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Python API\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 1, "the Python API section holds one python block"
    return blocks[0]


def test_the_readme_python_api_block_runs_as_written(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "weights").symlink_to(ROOT / "weights")  # the block names the shipped folder as the README's cwd
    scope: dict = {}
    exec(compile(readme_block(), "README.md", "exec"), scope)
    g, codes, pixels, bits = scope["g"], scope["codes"], scope["pixels"], scope["bits"]
    # (the shapes its comments give)
    assert g.image.shape == (3, 128, 128) and g.codes.shape == (256,)
    assert codes.shape == (1, 256) and pixels.shape == (1, 3, 128, 128) and scope["logits"].shape == (1, 256, 512)
    n_codes = scope["dvae"].cfg.n_codes
    assert bits.shape == (256,) and 0 < float(bits.mean()) < math.log2(n_codes)
    assert re.fullmatch(r"\d+\.\d{3} bits per code\n", capsys.readouterr().out)
    with Image.open(tmp_path / "bird.png") as im:
        assert im.size == (128, 128)


def test_the_api_draws_what_generate_candidates_1_draws_at_its_precision(tiny_weights, tmp_path):
    """`pipe(prompt, n, seed)` is `generate --candidates 1` (the README says so) at the same precision."""
    from t2i_cli.images import image_from_tensor, tensor_from_image
    from t2i_cli.pipeline import TextToImage

    r = run("generate", "a red bird", "--candidates", "1", "--seed", "4", "--precision", "fp32", "--weights",
            tiny_weights, "--out", tmp_path / "o", "-q")
    assert r.exit_code == 0, r.stderr
    pipe = TextToImage.from_folder(tiny_weights, "cpu")  # fp32 by default
    g = pipe("a red bird", n=1, seed=4)[0]
    with Image.open(r.stdout.strip()) as im:
        assert torch.equal(tensor_from_image(im.convert("RGB")), tensor_from_image(image_from_tensor(g.image)))
    assert pipe.precision == "fp32"
