"""Session 46, hI: a maintainer's review of the session's inference-side changes (hA's folded duplications, hG's
greedy --top-p as --top-k 1); the defects it found, each with a test that fails without its fix."""

from __future__ import annotations

from pathlib import Path


def test_eval_refuses_a_greedy_top_ps_candidates_before_the_judge_runs(tmp_path: Path, monkeypatch):
    """`t2i eval --top-p 0.001 --candidates 2` (a --top-p at or below 1/codebook: greedy, each prompt's candidates one
    image) was refused by evaluate_model, after the judge's check on 50 renders a task and the dVAE's measure on 256
    scenes had run (--top-k 1's is refused before the load); it is refused as the weights
    load, naming --candidates as the command line gave it ('leave --candidates out': the default draws one now)."""
    from conftest import build_tiny_folder, one_line_failure, run
    from t2i_cli.world import evaluate as ev

    ran: list[str] = []
    real_validate, real_metrics = ev.validate_judge, ev.dvae_metrics
    monkeypatch.setattr(ev, "validate_judge", lambda *a, **k: ran.append("judge") or real_validate(*a, **k))
    monkeypatch.setattr(ev, "dvae_metrics", lambda *a, **k: ran.append("dvae") or real_metrics(*a, **k))
    weights = build_tiny_folder(tmp_path / "w")
    line = one_line_failure(run("eval", "--top-p", "1e-9", "--candidates", "2", "--n", "1", "--seed", "0",
                                "--weights", weights, "--threads", "1", "-q", "--images", tmp_path / "i"), 2)
    assert line.startswith("error: --candidates 2 with --top-p 1e-09 draws 2 copies of one image"), line
    assert "leave --candidates out for one image" in line and "top_p" not in line, line
    assert ran == [], ran  # nothing of the evaluation ran before the refusal
    assert not (tmp_path / "i").exists()


def test_a_number_past_a_floats_range_is_refused_in_words_not_a_raw_overflow():
    """SamplingConfig(temperature=Fraction(10**400)) said 'temperature must be a number within a float's range' (its
    float() sat in a try); since its numbers pass through sampling_config.plain_number first (1a16c49), that float()
    raised a raw OverflowError ('integer division result too large for a float'). An image prompt's keep_top takes
    the same helper, and is said the same way."""
    from fractions import Fraction

    import pytest
    import torch

    from t2i_cli.errors import UsageError
    from t2i_cli.image_prompt import ImagePrompt
    from t2i_cli.sampling_config import SamplingConfig

    with pytest.raises(UsageError, match=r"^temperature must be a number within a float's range, got Fraction\("):
        SamplingConfig(temperature=Fraction(10**400))
    with pytest.raises(UsageError, match=r"^top_p must be a number within a float's range"):
        SamplingConfig(top_p=Fraction(-(10**400)))
    keep = torch.tensor([True, False, True, False])
    with pytest.raises(UsageError, match=r"^keep_top must be a number within a float's range"):
        ImagePrompt("complete", torch.arange(4), "0" * 64, keep=keep, keep_top=Fraction(10**400))
    assert SamplingConfig(temperature=Fraction(1, 2)).temperature == 0.5  # (a Fraction in range is taken)


def test_weights_without_a_clip_are_not_said_to_cost_the_best_of_4_at_a_greedy_top_p(tmp_path: Path):
    """generate and eval at weights without a clip.safetensors warn that they draw one image, 'not the best of 4'.
    At a --top-p at or below 1/codebook (greedy: one image, with a CLIP too, since 53f5650 and 20235d0) the warning
    was still said, which is false, where --top-k 1 (the same rule) is not told it."""
    from conftest import build_tiny_folder, run

    weights = build_tiny_folder(tmp_path / "w", with_clip=False)
    common = ["--weights", weights, "--threads", "1", "--seed", "0"]
    for greedy in (["--top-k", "1"], ["--top-p", "1e-9"]):
        g = run("generate", "a red bird", *greedy, *common, "--out", tmp_path / "g")
        e = run("eval", "--n", "1", *greedy, *common, "--json", tmp_path / f"e{greedy[0]}.json")
        for r in (g, e):
            assert r.exit_code == 0, (r.stdout, r.stderr, r.exception)
            assert "clip.safetensors" not in r.stderr and "best of" not in r.stderr, (greedy, r.stderr)
    r = run("generate", "a red bird", "--top-p", "0.5", *common, "--out", tmp_path / "h")  # (not greedy: said)
    assert r.exit_code == 0 and "has no clip.safetensors, so this draws one image, not the best of" in r.stderr, \
        r.stderr


def test_keep_1_alone_at_a_greedy_top_p_draws_without_a_clip_as_at_top_k_1(tmp_path: Path):
    """--keep 1 alone at a --top-p at or below 1/codebook draws the one image, as at --top-k 1 (8a18434); at weights
    without a CLIP --top-k 1 --keep 1 drew it, but the --top-p asked for the CLIP of the 4 candidates it no longer
    draws: 'has no clip.safetensors; it is not a complete t2i weights folder'. A --top-p above 1/codebook still
    reranks the default candidates, and asks for the CLIP. (--prompts FILE checks the files before its file is read,
    the codebook's size from the header without torch: test_s46_lead.)"""
    from conftest import build_tiny_folder, one_line_failure, run

    weights = build_tiny_folder(tmp_path / "w", with_clip=False)
    common = ["a red bird", "--keep", "1", "--seed", "0", "--weights", weights, "--threads", "1"]
    for given, out in ((["--top-k", "1"], "k"), (["--top-p", "1e-9"], "p")):
        r = run("generate", *given, *common, "--out", tmp_path / out)
        assert r.exit_code == 0, (given, r.stdout, r.stderr, r.exception)
    assert [p.name for p in (tmp_path / "p").glob("*.png")] == ["a-red-bird-000.png"]
    line = one_line_failure(run("generate", "--top-p", "0.5", *common, "--out", tmp_path / "x"), 1)
    assert "has no clip.safetensors" in line, line


def test_vary_at_a_greedy_top_p_refuses_copies_in_one_line(tmp_path: Path):
    """vary --strength 1 --n 2 at a --top-p at or below 1/codebook (each variation the one greedy image) was refused
    by the pipeline as it began to draw, after vary had said its 'prompt: ...' line: two lines where a refusal is one
    (--top-k 1's is refused before the load, in one). Refused now before that line, in the command's flags."""
    import numpy as np
    from PIL import Image

    from conftest import build_tiny_folder, one_line_failure, run

    weights = build_tiny_folder(tmp_path / "w")
    src = tmp_path / "src.png"
    Image.fromarray(np.full((32, 32, 3), 200, dtype=np.uint8)).save(src)
    common = [src, "--strength", "1", "--n", "2", "--seed", "0", "--weights", weights, "--threads", "1", "--out",
              tmp_path / "v"]
    for greedy in (["--top-k", "1"], ["--top-p", "1e-9"]):
        r = run("vary", *common, *greedy)
        line = one_line_failure(r, 2)
        assert line.startswith(f"error: --n 2 with {' '.join(greedy).replace('1e-9', '1e-09')}"), line
        assert "prompt:" not in r.stdout + r.stderr, (r.stdout, r.stderr)
    assert not (tmp_path / "v").exists()
    r = run("vary", src, "--strength", "0.5", "--n", "2", *common[5:], "--top-p", "1e-9")  # (own cells: drawn)
    assert r.exit_code == 0 and len(list((tmp_path / "v").glob("*.png"))) == 2, (r.stdout, r.stderr)
