"""Session 46, hL: a review of hD's greedy --top-p rules (refused before the weights load, as --top-k 1's are) and
of hH's cold start (cli.QuickCoercion, the collector around torch's first import); each defect's test fails
without its fix."""

from pathlib import Path

import pytest

from conftest import one_line_failure, refused_with_the_pipe_open, run


@pytest.fixture
def no_load(monkeypatch):
    """Make loading a weights folder fail loudly: a refusal said before the load never reaches it."""
    from t2i_cli.pipeline import TextToImage

    def refuse(*a, **k):
        raise AssertionError("the weights were loaded before the refusal")

    monkeypatch.setattr(TextToImage, "from_folder", refuse)


GREEDY_P = "with --top-p 1e-09 draws 5 copies of one image (a --top-p at or below 1/32, this model's 32 codes"


@pytest.mark.parametrize("source", [["a red bird"], ["--prompts", "prompts.txt"]])
def test_keep_alone_above_the_default_candidates_is_refused_as_copies_beside_a_greedy_top_p(
        source, tmp_path, tiny_weights, no_load, monkeypatch):
    """`generate "a red bird" --top-p 1e-9 --keep 5` was told "--keep 5 alone keeps the best of the 4 candidates
    drawn by default; give --keep 1..4", and the --keep 2 it then gave was refused as copies of one image; with
    --top-k 1 the first refusal says so. Both settings now say the copies, before the load."""
    monkeypatch.chdir(tmp_path)
    Path("prompts.txt").write_text("a red bird\na blue fish\n")
    base = ["generate", *source, "--weights", tiny_weights, "--keep", "5", "--out", tmp_path / "o"]
    by_k = one_line_failure(run(*base, "--top-k", "1"), 2)
    by_p = one_line_failure(run(*base, "--top-p", "1e-9"), 2)
    assert by_k.startswith("error: --keep 5 with --top-k 1 draws 5 copies of one image"), by_k
    assert by_p.startswith(f"error: --keep 5 {GREEDY_P}"), by_p
    assert by_p.endswith("leave --keep out for one image, or give a --top-p above 1/32 (0.03125) to draw different "
                         "ones"), by_p
    # a --top-p that is not greedy keeps the range's words
    line = one_line_failure(run(*base, "--top-p", "0.5"), 2)
    assert line.startswith("error: --keep 5 alone keeps the best of the 4 candidates drawn by default"), line
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("moot", [["--temperature", "0.5"], ["--top-k", "7"]])
def test_a_moot_setting_beside_a_greedy_top_p_is_refused_before_a_prompts_pipe_is_read(tmp_path, tiny_weights, moot):
    """`generate --prompts - --top-p 1e-9 --temperature 0.5` read its pipe to the end (a `tail -f` writer kept it
    waiting for ever) before it said the temperature changes nothing, where `--top-k 1 --temperature 0.5` is
    refused at once."""
    code, err = refused_with_the_pipe_open(tmp_path, ["--top-p", "1e-9", *moot], tiny_weights)
    assert code == 2 and err.startswith(f"error: {' '.join(moot)} changes nothing with --top-p 1e-09, which at or "
                                        f"below 1/32 (this model's 32 codes) keeps the most likely code alone"), err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("data", [False, True])
def test_evals_moot_setting_beside_a_greedy_top_p_is_refused_before_the_load(data, tmp_path, tiny_weights, no_load):
    """`eval --top-p 1e-9 --temperature 0.5` (and eval --data's) loaded the weights before it said the temperature
    changes nothing, where --top-k 1's is refused before the load; the codebook's size is in the transformer file's
    header, which eval reads before the load for the copies already."""
    base = ["eval", "--weights", tiny_weights, "--device", "cpu", "--n", "1", "-q", "--temperature", "0.5"]
    base += ["--data", tmp_path] if data else []
    by_k = one_line_failure(run(*base, "--top-k", "1"), 2)
    by_p = one_line_failure(run(*base, "--top-p", "1e-9"), 2)
    assert by_k.startswith("error: --temperature 0.5 changes nothing with --top-k 1"), by_k
    assert by_p == ("error: --temperature 0.5 changes nothing with --top-p 1e-09, which at or below 1/32 (this "
                    "model's 32 codes) keeps the most likely code alone; leave it out, or give a --top-p above 1/32 "
                    "(0.03125)")


@pytest.fixture
def typer_fits_anew():
    """cli._quick_coercion_fits asked afresh in the test and after it (it is cached for the process)."""
    from t2i_cli import cli

    fits = getattr(cli, "_quick_coercion_fits", None)  # (None before it was there: the test then fails on its own)
    if fits is not None:
        fits.cache_clear()
    yield
    if fits is not None:
        fits.cache_clear()


@pytest.mark.parametrize("change", ["renamed", "other arguments"])
def test_a_typer_whose_private_path_check_changed_parses_with_its_own_converter(change, monkeypatch, tmp_path,
                                                                                 typer_fits_anew):
    """QuickCoercion calls Typer's private typer._param_types.coerce_cli_path; a Typer where it is renamed failed
    every command with a path option (generate's default --out among them) in an internal error ("cannot import
    name 'coerce_cli_path'"), or with other arguments in a TypeError. QuickCoercion now steps aside there, and
    Typer's own converter says what it says."""
    pytest.importorskip("typer._coercion")
    import typer._adapters  # noqa: F401 (Typer's own converter, holding its own reference to the function)
    import typer._param_types as param_types

    monkeypatch.chdir(tmp_path)
    if change == "renamed":
        monkeypatch.delattr(param_types, "coerce_cli_path")
    else:
        monkeypatch.setattr(param_types, "coerce_cli_path", lambda value, info, kind=None: value)
    line = one_line_failure(run("generate", "a red bird", "--n", "0", "--out", "pics"), 2)
    assert line == "error: --n must be between 1 and 256, got 0"


def test_a_greedy_top_p_draws_one_from_weights_without_a_clip_unwarned_as_top_k_1_does(tmp_path):
    """`generate "a red bird" --top-p 1e-9` with weights without a CLIP warned "... has no clip.safetensors, so this
    draws one image, not the best of 4", where --top-k 1 says nothing: greedy, each draws one image whatever the
    weights, the best of 4 candidates being 4 copies of it (both refused if asked for)."""
    from conftest import build_tiny_folder

    weights = build_tiny_folder(tmp_path / "weights", with_clip=False)
    said = {}
    for greedy in (["--top-k", "1"], ["--top-p", "1e-9"]):
        out = tmp_path / greedy[0].strip("-")
        r = run("generate", "a red bird", "--weights", weights, *greedy, "--out", out)
        assert r.exit_code == 0, r.stderr
        said[greedy[0]] = r.stderr
        assert sorted(p.name for p in out.iterdir()) == ["a-red-bird-000.png"]
    assert "clip.safetensors" not in said["--top-p"], said["--top-p"]
    assert said["--top-p"] == said["--top-k"]
    # a --top-p that is not greedy is still told what the missing CLIP costs
    r = run("generate", "a red bird", "--weights", weights, "--top-p", "0.5", "--out", tmp_path / "p")
    assert r.exit_code == 0 and "has no clip.safetensors, so this draws one image, not the best of 4" in r.stderr


# generate run in a fresh interpreter up to start_inference's bound on libgomp's spinning (cli.bound_spinning, which
# must come before torch loads libgomp): whether torch was in by then
SPINNING = r"""
import sys
import t2i_cli.cli as cli

class Started(BaseException):
    pass

def bound(busy=lambda: 0):
    print("torch" in sys.modules)
    raise Started

cli.bound_spinning = bound
sys.argv = ["t2i"] + sys.argv[1:]
try:
    cli.app(standalone_mode=False)
except Started:
    pass
"""


@pytest.mark.parametrize("args", [["--top-p", "0.5", "--n", "2"], ["--top-p", "0.9", "--temperature", "0.8"],
                                  ["--top-p", "0.5", "--keep", "2"]])
def test_a_prompts_file_with_a_top_p_bounds_openmps_spinning_before_torch_loads(args, tmp_path, tiny_weights):
    """`generate --prompts FILE --top-p 0.5 --n 2` (and, once a greedy --top-p's moot settings were checked there too,
    `--top-p 0.9 --temperature 0.8`) imported torch to read the codebook's size before the prompts were read, so
    start_inference came after torch had loaded libgomp: its spinning was left unbounded (GOMP_SPINCOUNT unset, the
    4-22x slowdown beside a busy process) and no inference lock was taken for a later t2i to see. The header is now
    read without torch."""
    import os
    import subprocess
    import sys

    from conftest import SRC

    (tmp_path / "p.txt").write_text("a red bird\n")
    env = dict(os.environ, PYTHONPATH=SRC, OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-c", SPINNING, "generate", "--prompts", "p.txt", *args, "--weights",
                        str(tiny_weights), "--out", "o"], capture_output=True, text=True, env=env, cwd=tmp_path,
                       timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "False", (r.stdout, r.stderr)


def test_the_header_read_without_torch_reads_what_the_load_reads(tmp_path, tiny_weights):
    """files.header_config (torch-free) gives the config weights.file_config checks, and None for a file that is not
    one of that kind, is damaged or missing."""
    from t2i_cli.files import header_config
    from t2i_cli.weights import file_config

    for kind in ("transformer", "dvae", "clip"):
        path = tiny_weights / f"{kind}.safetensors"
        checked = {k: list(v) if isinstance(v, tuple) else v for k, v in vars(file_config(path, kind)[0]).items()}
        assert header_config(path, kind) == checked
    assert header_config(tiny_weights / "dvae.safetensors", "transformer") is None
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes((2**62).to_bytes(8, "little") + b"{}")  # a header size past any bound
    assert header_config(bad, "transformer") is None
    bad.write_bytes((tiny_weights / "transformer.safetensors").read_bytes()[:100])  # cut short
    assert header_config(bad, "transformer") is None
    assert header_config(tmp_path / "missing.safetensors", "transformer") is None
