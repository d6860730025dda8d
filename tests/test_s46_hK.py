"""Session 46, hK: leftovers of the session's first helpers (each test fails without its fix)."""

from __future__ import annotations

from pathlib import Path

from conftest import one_line_failure, run
from test_reliability import TINY


def test_an_unknown_model_key_of_a_whole_run_is_said_as_a_single_stage_says_it(tmp_path: Path):
    """`t2i train --stage all --model dvae.bogus=2` said "the dvae stage's model has no setting 'bogus'; its KEYs
    are ..." (and `dvae.image_side=2`, a setting the stage sets itself, the same), where a single stage says
    "--model nope=1: the dvae model has no setting 'nope'; its settings are ...": one wording, the prefix kept."""
    settings = "its settings are code_dim, downsample, fsq_levels, n_codes, n_hid, n_res, pixel_eps"
    whole = ["train", "--stage", "all", "--out", tmp_path / "r", *TINY]
    line = one_line_failure(run(*whole, "--model", "dvae.bogus=2"), 2)
    assert line == f"error: --model dvae.bogus=2: the dvae model has no setting 'bogus'; {settings}", line
    single = one_line_failure(run("train", "--stage", "dvae", "--out", tmp_path / "d", *TINY, "--model", "bogus=2"), 2)
    assert single == f"error: --model bogus=2: the dvae model has no setting 'bogus'; {settings}", single
    line = one_line_failure(run(*whole, "--model", "dvae.image_side=2"), 2)
    assert line == "error: --model dvae.image_side=2: the dvae stage sets it (use --image-side)", line
    assert not (tmp_path / "r").exists() and not (tmp_path / "d").exists()


def test_fsq_levels_out_of_range_are_refused_with_a_new_runs_range(tmp_path: Path):
    """`--model fsq_levels=65,8` said "each 2 to 64", but a new run refuses 2 ("needs 3 or more"), and the README
    says 3 to 64: a new run's refusal says its own range (an older run's dVAE of 2 levels still loads: the config
    takes 2)."""
    from t2i_cli.models.dvae import DVAEConfig

    for levels in ("65,8", "1,8", "3,3,3,3,3,3,3,3,3"):
        for args in (["--stage", "dvae", "--model", f"fsq_levels={levels}"],
                     ["--stage", "all", "--model", f"dvae.fsq_levels={levels}"]):
            line = one_line_failure(run("train", *args, "--steps", "1", "--out", tmp_path / "zr", *TINY), 2)
            assert line == (f"error: the dVAE's fsq_levels {levels}: a new run takes 1 to 8 level counts, each 3 to "
                            f"64 (e.g. 8,5,5,5)"), line
            assert "2 to 64" not in line and not (tmp_path / "zr").exists()
    assert DVAEConfig(n_codes=16, fsq_levels=(2, 8)).fsq_levels == (2, 8)  # (an older run's, still read)


def test_the_readmes_numpy_row_names_every_module_that_imports_numpy():
    """The Dependencies table's numpy row left out world/evaluate.py, world/judge_training.py and cli.py's early
    import: every module of src that imports numpy is named in it."""
    import re

    root = Path(__file__).resolve().parents[1]
    row = next(line for line in (root / "README.md").read_text().splitlines() if line.startswith("| numpy |"))
    src = root / "src" / "t2i_cli"
    users = sorted(str(p.relative_to(src)) for p in src.rglob("*.py")
                   if re.search(r"^\s*(import numpy|from numpy)", p.read_text(), re.M))
    assert users and "cli.py" in users and "world/evaluate.py" in users
    assert [u for u in users if f"`{u}`" not in row] == []


def test_keep_1_alone_at_a_greedy_top_p_draws_without_a_clip_as_at_top_k_1(tmp_path: Path):
    """`generate --top-p 0.001 --keep 1` on weights without clip.safetensors was refused "has no clip.safetensors"
    (the loader was asked for a CLIP before the codebook said the top-p is greedy), while `--top-k 1 --keep 1` drew
    its one image: both draw it, one prompt or a --prompts file; a --keep 1 that reranks is still refused."""
    from PIL import Image

    from conftest import build_tiny_folder

    weights = build_tiny_folder(tmp_path / "noclip", with_clip=False)
    prompts = tmp_path / "p.txt"
    prompts.write_text("a red bird\na blue fish\n")
    common = ["--seed", "0", "--weights", weights, "--threads", "1", "--keep", "1", "-q"]
    for option, value in (("--top-k", "1"), ("--top-p", "0.001")):
        r = run("generate", "a red bird", *common, option, value, "--out", tmp_path / f"one{option}")
        assert r.exit_code == 0, (r.stdout, r.stderr)
        r = run("generate", "--prompts", prompts, *common, option, value, "--out", tmp_path / f"file{option}")
        assert r.exit_code == 0, (r.stdout, r.stderr)
    for option in ("--top-k", "--top-p"):
        assert len(list((tmp_path / f"one{option}").glob("*.png"))) == 1
        assert len(list((tmp_path / f"file{option}").glob("*.png"))) == 2
    same = [Image.open(next((tmp_path / f"one{o}").glob("*.png"))).tobytes() for o in ("--top-k", "--top-p")]
    assert same[0] == same[1]  # (both take the most likely code at every step)
    for extra in ([], ["--top-p", "0.5"]):  # (these rerank the default candidates: a CLIP is needed)
        for where in (["a red bird"], ["--prompts", prompts]):
            line = one_line_failure(run("generate", *where, *common, *extra, "--out", tmp_path / "no"), 1)
            assert line.startswith(f"error: {weights} has no clip.safetensors;"), line
    assert not (tmp_path / "no").exists()


def test_a_stop_of_generate_says_what_was_written_in_every_phase(tmp_path: Path, monkeypatch):
    """`generate "x" --n 64 --out og` stopped (Ctrl-C, SIGTERM) while the weights loaded, or while drawing before
    its first file, said "finished files are kept; nothing partial was written" of none (and og was removed): it
    says "nothing was written" until a file is, then how many finished files it kept (named on stdout)."""
    from conftest import build_tiny_folder
    from t2i_cli import pipeline
    from t2i_cli.pipeline import TextToImage

    weights = build_tiny_folder(tmp_path / "w")
    common = ["--n", "3", "--seed", "4", "--weights", weights, "--threads", "1"]
    real_load, real_draw = TextToImage.from_folder.__func__, pipeline.draw_codes

    def stop_loading(cls, *a, **k):
        raise KeyboardInterrupt

    assert run("generate", "a red bird", *common[2:], "--n", "1", "--out", tmp_path / "ok").exit_code == 0
    source = next((tmp_path / "ok").glob("*.png"))
    with monkeypatch.context() as m:
        m.setattr(TextToImage, "from_folder", classmethod(stop_loading))
        r = run("generate", "a red bird", *common, "--out", tmp_path / "load")
        assert stopped(r) == "interrupted: nothing was written" and r.stdout == ""
        r = run("vary", source, "--n", "2", "--weights", weights, "--threads", "1", "--out", tmp_path / "vary")
        assert stopped(r) == "interrupted: nothing was written" and r.stdout == ""
    assert not (tmp_path / "load").exists() and not (tmp_path / "vary").exists()
    assert TextToImage.from_folder.__func__ is real_load
    monkeypatch.setattr(pipeline, "MAX_BATCH", 1)
    for at, said in ((1, "nothing was written"), (2, "1 finished file kept, named on stdout; nothing partial was "
                                                     "written"),
                     (3, "2 finished files kept, named on stdout; nothing partial was written")):
        calls = []

        def stop(*a, calls=calls, at=at, **k):
            calls.append(1)
            if len(calls) == at:
                raise KeyboardInterrupt
            return real_draw(*a, **k)

        monkeypatch.setattr(pipeline, "draw_codes", stop)
        out = tmp_path / f"at{at}"
        r = run("generate", "a red bird", *common, "--out", out)
        assert stopped(r) == f"interrupted: {said}"
        kept = sorted(out.glob("*.png")) if out.exists() else []
        assert len(kept) == at - 1 and r.stdout.split() == [str(p) for p in kept]
        assert out.exists() == (at > 1)


def stopped(r) -> str:
    """A stopped command's one line (exit 130, no traceback)."""
    assert r.exit_code == 130, (r.exit_code, r.stdout, r.stderr, r.exception)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stdout + r.stderr, r.stderr
    return lines[0]


def test_a_dvae_that_ends_collapsed_says_so_at_its_end_and_in_info(tmp_path: Path):
    """A dVAE whose codebook collapsed (`--preset tiny --data maps --steps 150`: 4 of 64 codes at the end) was told
    so once, by the watchdog at step 75; its end ("finished") and `t2i info RUN` said nothing. Now the end says it
    in the watchdog's words, with what to try, and so does info (and --json's "codebook")."""
    import json

    from PIL import Image

    data = tmp_path / "blank"
    data.mkdir()
    for i in range(8):  # one picture, eight times: every cell takes one code
        Image.new("RGB", (16, 16), "white").save(data / f"p{i}.png")
        (data / f"p{i}.txt").write_text(f"picture {i}")
    run_dir = tmp_path / "run"
    r = run("train", "--stage", "dvae", "--data", data, "--out", run_dir, "--steps", "60", "--image-side", "16", *TINY)
    assert r.exit_code == 0, r.stderr
    said = ("the dVAE's codebook has collapsed: at step 60 its codebook perplexity is 1.00 (1 of 64 codes used): "
            "nearly every cell uses one code; try more --steps or a lower --lr")
    warnings = [line for line in r.stderr.splitlines() if line.startswith("warning:")]
    assert any(w.startswith("warning: step ") and "codebook perplexity 1.00" in w for w in warnings), warnings
    assert warnings[-1] == f"warning: {said}", warnings  # (at the end, after the watchdog's own)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert {"step": 60, "warning": said}.items() <= rows[-2].items() and rows[-1].get("finished") is True
    info = run("info", run_dir)
    assert f"  codebook  {said}" in info.stdout.splitlines(), info.stdout
    assert json.loads(run("info", run_dir, "--json").stdout)["codebook"] == said


def test_a_collapsed_codebook_is_judged_on_its_latest_measure_past_the_watchdogs_warm_up():
    """The end's verdict: the latest measure (validation first at its step), not during the warm-up (a fresh dVAE
    uses one code: every run of a few steps would be told it collapsed), and none where the codebook is used."""
    from t2i_cli.train import TrainConfig, collapsed_codebook

    cfg = TrainConfig(stage="dvae", data="world", steps=150, recon_loss="l1")
    fresh = [{"step": 10, "perplexity": 1.0, "codes_used": 1 / 64}]
    assert collapsed_codebook(fresh, cfg, 64) is None
    ended = [*fresh, {"step": 150, "perplexity": 1.7, "codes_used": 5 / 64},
             {"step": 150, "val_loss": 0.1, "val_perplexity": 1.61, "val_codes_used": 0.0625}]
    assert collapsed_codebook(ended, cfg, 64) == (
        "the dVAE's codebook has collapsed: at step 150 its codebook perplexity is 1.61 (4 of 64 codes used on its "
        "validation pictures): nearly every cell uses one code; try recon_loss='logit_laplace' or a lower lr")
    assert "(6% of its codes used on its validation pictures)" in collapsed_codebook(ended, cfg)
    healthy = [*ended, {"step": 200, "val_perplexity": 12.0, "val_codes_used": 0.5}]
    assert collapsed_codebook(healthy, cfg, 64) is None


def test_a_whole_runs_info_says_its_dvaes_collapsed_codebook(tmp_path: Path):
    """A whole run's `t2i info RUN` (a table of its stages) says its dVAE stage's collapse too, on a codebook line."""
    from PIL import Image

    data = tmp_path / "blank"
    data.mkdir()
    for i in range(8):
        Image.new("RGB", (16, 16), "white").save(data / f"p{i}.png")
        (data / f"p{i}.txt").write_text(f"picture {i}")
    r = run("train", "--stage", "all", "--data", data, "--out", tmp_path / "all", "--steps", "dvae=60,transformer=1,"
            "clip=1", "--image-side", "16", *TINY)
    assert r.exit_code == 0, r.stderr
    said = ("the dVAE's codebook has collapsed: at step 60 its codebook perplexity is 1.00 (1 of 64 codes used): "
            "nearly every cell uses one code; try more --steps or a lower --lr")
    assert f"warning: {said}" in r.stderr.splitlines(), r.stderr
    assert f"  codebook  dvae: {said}" in run("info", tmp_path / "all").stdout.splitlines()
