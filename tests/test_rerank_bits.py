"""`t2i rerank DIR --bits`: each picture's bits per code under the transformer given its prompt, beside CLIP's
score (the ranking stays CLIP's), of a t2i PNG's recorded codes, else of the dVAE's reading of the picture."""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from PIL import Image

from conftest import one_line_failure, run
from t2i_cli import rerank as rr
from t2i_cli.images import load_rgb, tensor_from_image
from t2i_cli.pipeline import TextToImage


def bits_of(pipe: TextToImage, codes: torch.Tensor, prompt: str) -> float:
    """The README's Python API: the transformer's mean surprise at each code, in bits."""
    with torch.inference_mode():
        text = torch.tensor([pipe.request(prompt).encoded.ids])
        logits, _ = pipe.bundle.transformer(text, codes[None])
        return float(torch.nn.functional.cross_entropy(logits.float()[0], codes) / math.log(2))


def test_rerank_bits_gives_each_pictures_bits_per_code_under_its_prompt(tiny_weights: Path, tmp_path: Path):
    folder = tmp_path / "pics"
    r = run("generate", "a red bird", "--n", "3", "--weights", tiny_weights, "--out", folder,
            "--seed", "5", "-q", "--threads", "1")
    assert r.exit_code == 0, r.stderr
    drawn = sorted(folder.glob("*.png"))
    Image.new("RGB", (20, 16), (200, 30, 30)).save(folder / "mine.png")  # not t2i's: no prompt, no codes
    plain = run("rerank", folder, "--weights", tiny_weights, "-q", "--threads", "1")
    assert plain.exit_code == 0 and "bits/code" not in plain.stdout, plain.stderr
    assert all(set(row) == rr.RANKING_KEYS for row in json.loads((folder / rr.RANKING).read_text()))
    r = run("rerank", folder, "--weights", tiny_weights, "--bits", "--prompt", "a red bird", "-q", "--threads", "1")
    assert r.exit_code == 0, r.stderr
    rows = {row["file"]: row for row in json.loads((folder / rr.RANKING).read_text())}
    assert set(rows) == {p.name for p in drawn} | {"mine.png"}
    # the order is CLIP's alone, as without --bits
    again = json.loads((folder / rr.RANKING).read_text())
    assert [row["rank"] for row in sorted(again, key=lambda row: -row["score"])] == [1, 2, 3, 4]
    pipe = TextToImage.from_folder(tiny_weights, "cpu")
    b = pipe.bundle
    for p in drawn:  # a t2i PNG: the codes it records (what it was decoded from)
        from t2i_cli.image_prompt import recorded_codes
        from t2i_cli.images import read_png_text

        codes = recorded_codes(read_png_text(p), b.transformer.cfg.n_image, b.dvae.cfg.n_codes)
        assert codes is not None
        assert abs(rows[p.name][rr.BITS_KEY] - bits_of(pipe, codes, "a red bird")) < 1e-4
    with torch.inference_mode():  # anyone else's: the dVAE's reading of it, cropped as t2i reads pictures
        x = tensor_from_image(load_rgb(folder / "mine.png", b.dvae.cfg.image_side))
        codes = b.dvae.codes_from_image(x[None]).flatten()
    assert abs(rows["mine.png"][rr.BITS_KEY] - bits_of(pipe, codes, "a red bird")) < 1e-4
    # printed beside each score
    line = next(ln for ln in r.stdout.splitlines() if "mine.png" in ln)
    assert f"{rows['mine.png'][rr.BITS_KEY]:.3f}" in line.split(), line
    assert "bits/code" in r.stdout
    # another prompt, another surprise
    r = run("rerank", folder, "--weights", tiny_weights, "--bits", "--prompt", "two green cats", "-q")
    other = {row["file"]: row[rr.BITS_KEY] for row in json.loads((folder / rr.RANKING).read_text())}
    assert other != {name: row[rr.BITS_KEY] for name, row in rows.items()}


def test_a_ranking_with_bits_is_t2is_own_and_replaced_but_other_keys_are_not():
    row = {"rank": 1, "score": 0.5, "file": "a.png", "prompt": "a red bird"}
    assert rr.is_ranking([row]) and rr.is_ranking([row | {rr.BITS_KEY: 3.2}])
    assert not rr.is_ranking([row | {"notes": "mine"}])
    assert not rr.is_ranking([{k: v for k, v in row.items() if k != "score"} | {rr.BITS_KEY: 3.2}])


def test_rerank_bits_of_an_empty_folder_is_still_one_line(tiny_weights: Path, tmp_path: Path):
    (tmp_path / "empty").mkdir()
    line = one_line_failure(run("rerank", tmp_path / "empty", "--bits", "--weights", tiny_weights), 1)
    assert "nothing to rank" in line, line
