"""Session 39: what the README audit found in the code: --from of a sheet rerank or data preview wrote, the help of
options vary and eval share with generate."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from conftest import one_line_failure, run
from t2i_cli.images import save_png
from t2i_cli.outputs import SHEET_KEY


@pytest.mark.parametrize("kind", ["ranking", "explain"])  # (a data preview's: test_s39_review)
def test_from_a_sheet_that_records_no_settings_names_it_a_sheet(tmp_path: Path, kind: str):
    """rerank's --top sheet and --explain strip (and a data preview) carry no t2i settings: --from said "it was not
    written by `t2i generate` or `t2i vary`", though t2i wrote it; it now says what it is, as of a --grid sheet."""
    sheet = save_png(Image.new("RGB", (8, 8)), tmp_path / f"{kind}-000.png", {SHEET_KEY: kind})
    r = run("generate", "--from", sheet, "--out", tmp_path / "out")
    assert one_line_failure(r, 1) == (f"error: {sheet} is a contact sheet t2i wrote ({kind}); pass --from one of the "
                                      f"images it shows")
    plain = save_png(Image.new("RGB", (8, 8)), tmp_path / "photo.png", {})
    assert "carries no t2i settings" in one_line_failure(run("generate", "--from", plain, "--out", tmp_path / "o"), 1)


def test_vary_and_eval_help_name_only_their_own_options():
    """vary's --json help named --prompts lines and reranked candidates' score and rank, eval's --guidance-stop a
    --negative: options neither command has."""
    vary = " ".join(run("vary", "--help").stdout.split())
    assert "--json Print each file written as one line of JSON instead of its path: path, kind (image or sheet), " \
           "prompt, seed, index." in vary
    evaluate = " ".join(run("eval", "--help").stdout.split())
    assert "--guidance-stop" in evaluate and "--negative" not in evaluate
    generate = " ".join(run("generate", "--help").stdout.split())
    assert "a --negative's push" in generate and "score and rank when candidates were reranked" in generate
