"""The Python API as a researcher calls it (session 37): an ImagePrompt built by hand is checked as the command
line's are, and `Generated.fit` is None where nothing was measured."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from t2i_cli.errors import UsageError
from t2i_cli.image_prompt import ImagePrompt, keep_top_cells
from t2i_cli.sampling import SamplingConfig

PLAIN = SamplingConfig(guidance=1, regional=0)


@pytest.fixture
def pipe(tiny_weights: Path):
    from t2i_cli.pipeline import TextToImage

    return TextToImage.from_folder(tiny_weights, "cpu")


def _codes(pipe, seed: int = 0) -> torch.Tensor:
    return pipe("a red bird", 1, seed, PLAIN)[0].codes


def test_a_keep_mask_of_the_wrong_kind_is_refused_not_drawn_from(pipe):
    """A keep of 0/1 integers was negated bitwise (~1 = -2: every cell 'drawn' and 'kept' at once) and drew an
    image without a word; a keep of another length, or a grid, failed in torch ('shape [1, 16] is invalid')."""
    codes = _codes(pipe)
    n = codes.numel()
    for keep in (torch.ones(n, dtype=torch.long), torch.ones(n, dtype=torch.bool)[:3],
                 torch.ones(n, dtype=torch.bool).view(-1, 1), [True] * n):
        with pytest.raises(TypeError, match=rf"keep must be a bool tensor of the codes' shape \({n},\)"):
            ImagePrompt("inpaint", codes, "0" * 64, keep=keep)
    for keep, says in ((torch.ones(n, dtype=torch.bool), "every"), (torch.zeros(n, dtype=torch.bool), "no")):
        with pytest.raises(UsageError, match=f"keep marks {says} cell as kept"):
            ImagePrompt("inpaint", codes, "0" * 64, keep=keep)


def test_codes_of_the_wrong_kind_or_another_model_are_refused(pipe):
    codes = _codes(pipe)
    n, k = codes.numel(), pipe.bundle.dvae.cfg.n_codes
    for bad in (codes.float(), codes.view(1, -1), codes.bool(), codes[:0]):
        with pytest.raises(TypeError, match="codes must be a 1-D tensor of integer codes"):
            ImagePrompt("vary", bad, "0" * 64, strength=0.5)
    request = pipe.request("a red bird", PLAIN)
    short = ImagePrompt("vary", codes[: n - 1], "0" * 64, strength=0.5)
    with pytest.raises(UsageError, match=f"the image prompt has {n - 1} codes and this model draws {n}"):
        list(pipe.batches(request, 1, 0, image=short))
    past = ImagePrompt("vary", codes.clone().fill_(k), "0" * 64, strength=0.5)  # (an IndexError in sampling)
    with pytest.raises(UsageError, match=f"codes run {k}..{k} and this model's codebook holds 0..{k - 1}"):
        pipe.redraw(request, 1, 0, 0, image=past)
    negative = ImagePrompt("vary", codes.clone().fill_(-1), "0" * 64, strength=0.5)
    with pytest.raises(UsageError, match="codes run -1..-1"):
        list(pipe.batches(request, 1, 0, image=negative))


@pytest.mark.parametrize("kwargs, error, says", [
    ({"strength": 2.0}, UsageError, r"^strength must be in \(0, 1\]"),  # (redrew every cell: min(n, round(2n)))
    ({"strength": 0.0}, UsageError, r"^strength must be in \(0, 1\]"),  # (max(1, ...): one cell)
    ({}, ValueError, "vary needs a strength"),  # (a TypeError deep in redrawn_cells)
    ({"strength": 0.5, "redraws": 2.0}, TypeError, "redraws must be an int"),
    ({"strength": 0.5, "redraws": 0}, UsageError, r"^redraws must be in 1\.\.16")])
def test_vary_settings_out_of_range_are_refused(pipe, kwargs, error, says):
    with pytest.raises(error, match=says):
        ImagePrompt("vary", _codes(pipe), "0" * 64, **kwargs)


def test_keep_top_out_of_range_is_refused(pipe):
    codes = _codes(pipe)
    keep = keep_top_cells(pipe.bundle.transformer.cfg.grid, 0.5)
    with pytest.raises(UsageError, match=r"^keep_top must be in \(0, 1\)"):
        ImagePrompt("complete", codes, "0" * 64, keep=keep, keep_top=1.5)  # (recorded in the PNG as given)


def test_fit_is_none_where_no_kept_code_follows_a_drawn_one(pipe):
    """`complete` keeps the top rows: no kept code comes after a drawn one, so there is no fit to measure, and
    Generated.fit said 0.0 (a perfect log-probability). An inpaint whose kept cells follow the drawn ones has a
    real (negative) fit; a plain draw has none."""
    codes, grid = _codes(pipe), pipe.bundle.transformer.cfg.grid
    request = pipe.request("a red bird", PLAIN)
    top = ImagePrompt("complete", codes, "0" * 64, keep=keep_top_cells(grid, 0.5), keep_top=0.5)
    assert [g.fit for g in pipe(request.prompt, 2, 0, PLAIN, image=top)] == [None, None]
    keep = torch.ones(grid * grid, dtype=torch.bool)
    keep[0] = False  # (the first cell drawn: every other cell is kept after it)
    hole = ImagePrompt("inpaint", codes, "0" * 64, keep=keep, redraws=2)
    fits = [g.fit for g in pipe(request.prompt, 2, 0, PLAIN, image=hole)]
    assert all(isinstance(f, float) and f < 0 for f in fits), fits
    assert pipe(request.prompt, 1, 0, PLAIN)[0].fit is None


def test_the_api_warns_when_a_prompt_loses_words(pipe):
    """The commands warn of words past the text length and words the tokenizer does not know; the API drew
    without a word (request.encoded held them, for a caller who knew to look)."""
    import warnings

    from t2i_cli.errors import PromptWarning

    with pytest.warns(PromptWarning, match=r"the prompt 'a red zebra': the tokenizer does not know 'zebra'"):
        pipe.request("a red zebra", PLAIN)
    # a word of known characters that it never learned whole (read in pieces) is said too
    with pytest.warns(PromptWarning, match=r"the prompt 'a red bread': the tokenizer does not know 'bread'"):
        pipe.request("a red bread", PLAIN)
    long = " ".join(["a red bird"] * 20)
    dropped = pipe.request(long, PLAIN, warn=False).encoded.n_dropped
    assert dropped > 0
    with pytest.warns(PromptWarning, match=rf"its last {dropped} tokens are past the model's {pipe.text_len}"):
        pipe(long, 1, 0, PLAIN)
    with pytest.warns(PromptWarning, match=r"the negative prompt 'zebra':"):
        pipe.request("a red bird", SamplingConfig(guidance=3, regional=0), negative="zebra")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pipe.request("a red bird", PLAIN)  # (every word known: no warning)
        pipe.request("a red zebra", PLAIN, warn=False)


def test_commands_say_a_lost_word_once_in_their_own_line(tiny_weights: Path, tmp_path: Path):
    """The commands warn in their own words (_warn_encoding); the API's PromptWarning is not printed beside it.
    (A subprocess: in-process, pytest records warnings instead of printing them.)"""
    import subprocess
    import sys

    from conftest import SRC

    proc = subprocess.run([sys.executable, "-m", "t2i_cli", "generate", "a red zebra", "--weights", str(tiny_weights),
                           "--candidates", "1", "--out", str(tmp_path / "o")], capture_output=True, text=True,
                          timeout=300, env={**__import__("os").environ, "PYTHONPATH": SRC})
    assert proc.returncode == 0, proc.stderr
    assert "PromptWarning" not in proc.stderr and "warnings.warn" not in proc.stderr, proc.stderr
    assert sum("zebra" in ln for ln in proc.stderr.splitlines()) == 1, proc.stderr


def test_eval_data_counts_unknown_words_without_a_warning_per_caption(pipe, tmp_path: Path):
    import warnings

    from t2i_cli.data_eval import evaluate_data
    from test_data import colour, make_pair

    for i in range(40):
        make_pair(tmp_path / "d", f"p{i:02d}", "a red zeppelin bird", colour=colour(i))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = evaluate_data(pipe, tmp_path / "d", 2, 0, PLAIN)
    assert result["unknown_words"]["examples"] == ["zeppelin"]


def test_eval_data_json_holds_each_pictures_own_measurements(tiny_weights: Path, tmp_path: Path):
    """`eval --data --json` held the means and intervals only: which pictures the dVAE reconstructs worst, or
    which captions the model reads least, was not to be found (the researcher's point). Each picture's row names
    its file and caption, and the rows' means are the table's."""
    import json

    from conftest import run
    from test_data import colour, make_pair

    for i in range(60):
        make_pair(tmp_path / "d", f"p{i:02d}", f"a red bird number{i}", colour=colour(i))
    r = run("eval", "--data", tmp_path / "d", "--weights", tiny_weights, "--n", "3", "--draws", "2", "--json",
            tmp_path / "e.json")
    assert r.exit_code == 0, r.stderr
    got = json.loads((tmp_path / "e.json").read_text())
    rows = got["pictures"]
    assert [row["index"] for row in rows] == [0, 1, 2] and got["n"] == 3
    for row in rows:
        assert Path(row["file"]).parent == tmp_path / "d" and Path(row["file"]).suffix == ".png"
        assert row["caption"] == (Path(row["file"]).with_suffix(".txt")).read_text().strip()
    mean = lambda key: sum(row[key] for row in rows) / len(rows)  # noqa: E731
    assert mean("psnr") == pytest.approx(got["dvae"]["psnr"], rel=1e-9)
    assert mean("bits_per_code") == pytest.approx(got["transformer"]["bits_per_code"], rel=1e-9)
    assert mean("score_real") == pytest.approx(got["clip"]["score_real"], rel=1e-9, abs=1e-12)
    assert mean("score_generated") == pytest.approx(got["clip"]["score_generated"], rel=1e-9, abs=1e-12)
    assert len({row["psnr"] for row in rows}) == 3  # (each its own, not the mean repeated)


def test_eval_data_rows_of_the_world_name_no_file(tiny_weights: Path):
    from t2i_cli.data_eval import evaluate_data
    from t2i_cli.pipeline import TextToImage

    pipe = TextToImage.from_folder(tiny_weights, "cpu")
    rows = evaluate_data(pipe, "world:val", 2, 0, PLAIN)["pictures"]
    assert [r["file"] for r in rows] == [None, None] and all(r["caption"] for r in rows)
