"""Session 43: refusal leftovers. Options that change nothing on a path are refused in one line (not warned of
after the work), a device this machine cannot run is refused before a --prompts pipe is read, and counts have
stated bounds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from conftest import build_tiny_folder, one_line_failure, run


@pytest.fixture(scope="module")
def bare(tmp_path_factory) -> Path:
    """Tiny weights without clip.safetensors."""
    return build_tiny_folder(tmp_path_factory.mktemp("bare") / "weights", with_clip=False)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """A captioned folder of 24 small pictures (a val split of a few)."""
    folder = tmp_path_factory.mktemp("data") / "d"
    folder.mkdir()
    for i in range(24):
        Image.new("RGB", (16, 16), (i * 8, 90, 200 - i * 5)).save(folder / f"p{i}.png")
        (folder / f"p{i}.txt").write_text("a red bird\n")
    return folder


# ------------------------------------------------------------------------------ eval --data without a CLIP: sampling
@pytest.mark.parametrize("options, named", [
    (["--temperature", "0.5"], "--temperature 0.5 changes nothing"),
    (["--top-k", "3", "--jacobi", "4"], "--top-k 3 and --jacobi 4 change nothing"),
    (["--guidance", "1", "--guidance-stop", "0.5"], "--guidance 1 and --guidance-stop 0.5 change nothing"),
    (["--top-p", "0.9", "--regional", "0", "--guidance-start", "2"],
     "--top-p 0.9, --guidance-start 2 and --regional 0 change nothing"),
])
def test_eval_data_without_a_clip_refuses_sampling_options(bare, data, tmp_path, options, named):
    """`eval --data` of weights without clip.safetensors draws no picture: a sampling option given there was taken,
    and a warning said after the work that the sampling options change nothing. Now it is refused in one line that
    names each option and what to do, before anything is measured or written."""
    line = one_line_failure(run("eval", "--data", data, "--n", "2", "--weights", bare, "--device", "cpu",
                                *options, "--json", tmp_path / "e.json"), 2)
    assert named in line, line
    assert "no clip.safetensors" in line and "give weights with a CLIP" in line, line
    assert not (tmp_path / "e.json").exists()


def test_eval_data_without_a_clip_takes_default_sampling_values_and_its_own_options(bare, data, tmp_path):
    """A sampling option at its default asks for nothing and is taken (as --draws 1 is); --seed and --precision,
    which still count there, are taken; the warning that no CLIP scores anything stays. (--temperature 0.7 beside
    them is refused.)"""
    common = ("eval", "--data", data, "--n", "2", "--weights", bare, "--device", "cpu", "--seed", "5")
    assert "--temperature 0.7 changes nothing" in one_line_failure(run(*common, "--temperature", "0.7"), 2)
    r = run("eval", "--data", data, "--n", "2", "--weights", bare, "--device", "cpu", "--temperature", "1",
            "--guidance", "3", "--top-k", "0", "--seed", "5", "--precision", "fp32", "--json", tmp_path / "e.json")
    assert r.exit_code == 0, r.stderr
    assert "no CLIP cosine or distance" in r.stderr, r.stderr
    result = json.loads((tmp_path / "e.json").read_text())
    assert result["seed"] == 5 and result["precision"] == "fp32" and result["draws"] == 0


# ------------------------------------------------------------------ generate --prompts - --device cuda: before the pipe
def test_generate_refuses_a_missing_cuda_before_it_reads_the_prompts(bare, monkeypatch):
    """`(sleep 30; echo x) | t2i generate --prompts - --device cuda` on a machine without CUDA waited for the pipe
    to close, then said there is no CUDA GPU: it is said before the prompts are read (a machine without CUDA is
    made here by the probe's answer; the prompts are never read)."""
    import t2i_cli.cli as cli

    def never(*a, **k):
        raise AssertionError("the prompts were read before the device was refused")

    monkeypatch.setattr(cli, "read_prompts", never)
    monkeypatch.setattr(cli, "cuda_surely_absent", lambda: True, raising=False)
    line = one_line_failure(run("generate", "--prompts", "-", "--device", "cuda", "--weights", bare), 2)
    assert line == "error: --device cuda was asked for but no CUDA GPU is available; use --device cpu or auto", line
    for device in ("cuda:1", "mps"):  # (not t2i's device names: refused before the pipe too)
        assert f"got {device!r}" in one_line_failure(run("generate", "--prompts", "-", "--device", device), 2)


class _Driver:
    """A stand-in for libcuda: cuInit's and cuDeviceGetCount's results."""

    def __init__(self, init: int, count: int):
        self.init, self.count = init, count

    def cuInit(self, flags):  # noqa: N802 (the driver's name)
        return self.init

    def cuDeviceGetCount(self, ref):  # noqa: N802
        ref._obj.value = self.count
        return 0


@pytest.mark.parametrize("driver, absent", [(None, True), (_Driver(100, 0), True), (_Driver(0, 0), True),
                                            (_Driver(0, 2), False)])
def test_cuda_surely_absent_asks_the_driver_without_torch(monkeypatch, driver, absent):
    """The probe generate asks before it reads a pipe: no driver library, a driver that cannot start (cuInit's
    CUDA_ERROR_NO_DEVICE) or finds no GPU is no CUDA; a driver that finds GPUs leaves the answer to torch."""
    import ctypes
    import sys

    import t2i_cli.cli as cli

    def load(name, *a, **k):
        if driver is None:
            raise OSError(f"{name}: cannot open shared object file")
        return driver

    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(ctypes, "CDLL", load)
    assert cli.cuda_surely_absent() is absent


# ------------------------------------------------------------------------------------------------- rerank --top N
def test_rerank_top_has_a_stated_bound(tmp_path, data):
    """`rerank DIR --top 100000000000` was taken (a sheet of every picture of a prompt, however many); --top is
    bounded as generate's --n and --candidates are (MAX_N, stated in --help), refused in one line before any
    picture is scored or anything written; the bound itself is taken."""
    import shutil

    from t2i_cli.cli import MAX_N

    weights, data = build_tiny_folder(tmp_path / "w"), Path(shutil.copytree(data, tmp_path / "d"))
    line = one_line_failure(run("rerank", data, "--top", 100000000000, "--weights", weights, "--device", "cpu"), 2)
    assert line == f"error: --top must be in 0..{MAX_N} (0 = no sheet), got 100000000000", line
    assert not (data / "ranking.json").exists()
    assert f"0..{MAX_N}" in run("rerank", "--help").stdout
    r = run("rerank", data, "--top", MAX_N, "--weights", weights, "--device", "cpu", "-q")
    assert r.exit_code == 0, r.stderr
    assert sorted(p.name for p in data.glob("ranking-top-*.png")) == ["ranking-top-000.png"]


# ----------------------------------------------------------------------------- --top-k 1's copies: one rule, two voices
def test_greedy_copies_are_one_rule_said_in_the_callers_words():
    """cli.refuse_greedy_copies (flags) and sampling.refuse_greedy_copies (keywords) were two copies of one rule;
    the command line now calls the one in sampling_config (torch-free), which the API's calls too, with each
    caller's words kept byte for byte."""
    import t2i_cli.cli as cli
    from t2i_cli import sampling_config
    from t2i_cli.errors import UsageError
    from t2i_cli.sampling import SamplingConfig, refuse_greedy_copies

    assert cli.refuse_greedy_copies is sampling_config.refuse_greedy_copies
    with pytest.raises(UsageError) as e:
        cli.refuse_greedy_copies("--n", 3, " and --strength 1")
    assert str(e.value) == ("--n 3 with --top-k 1 and --strength 1 draws 3 copies of one image (--top-k 1 always takes "
                            "the most likely code); leave --n out for one image, or give --top-k 0 or above 1 to draw "
                            "different ones")
    with pytest.raises(UsageError) as e:
        refuse_greedy_copies(SamplingConfig(top_k=1), 4, name="draws")
    assert str(e.value) == ("draws=4 with top_k=1 draws 4 copies of one image (top_k=1 always takes the most likely "
                            "code); ask for draws=1, or give a top_k of 0 or above 1 to draw different ones")
    cli.refuse_greedy_copies("--n", 1)  # one image: nothing to refuse
    refuse_greedy_copies(SamplingConfig(top_k=1), 1)
    refuse_greedy_copies(SamplingConfig(top_k=2), 4)


# ---------------------------------------------------------------------------- generate builds its SamplingConfig once
@pytest.mark.parametrize("prompts", [False, True])
def test_generate_builds_its_sampling_config_once(bare, tmp_path, monkeypatch, prompts):
    """generate built the SamplingConfig of its options twice (in _draw_counts, for the negative prompt's checks, and
    again to draw): once now, the same one checked and drawn with (with --prompts too)."""
    from t2i_cli.sampling_config import SamplingConfig

    built, real = [], SamplingConfig.__post_init__

    def counted(self):
        real(self)
        built.append(self)

    monkeypatch.setattr(SamplingConfig, "__post_init__", counted)
    source = ["a red bird"]
    if prompts:
        (tmp_path / "p.txt").write_text("a red bird\n")
        source = ["--prompts", tmp_path / "p.txt"]
    r = run("generate", *source, "--n", "1", "--temperature", "0.9", "--weights", bare, "--device", "cpu",
            "--out", tmp_path / "out", "-q")
    assert r.exit_code == 0, r.stderr
    assert len([s for s in built if s.temperature == 0.9]) == 1, built  # (the options'; the pipeline's own apart)


def test_generate_refuses_int8_on_cuda_before_it_reads_the_prompts(bare, monkeypatch):
    """On a machine with CUDA, `generate --prompts - --device cuda --precision int8` read the pipe to its end, then
    said int8 runs on the CPU only: said before the prompts are read, in the pipeline's words (a machine with CUDA
    is made here by the probe's answer)."""
    import t2i_cli.cli as cli

    def never(*a, **k):
        raise AssertionError("the prompts were read before the precision was refused")

    monkeypatch.setattr(cli, "read_prompts", never)
    monkeypatch.setattr(cli, "cuda_surely_absent", lambda: False, raising=False)
    line = one_line_failure(run("generate", "--prompts", "-", "--device", "cuda", "--precision", "int8",
                                "--weights", bare), 2)
    assert line == ("error: --precision int8 runs on the CPU only (its kernel is PyTorch's CPU int8 matmul); use bf16 "
                    "on a GPU"), line


def test_generate_refuses_an_incomplete_weights_folder_before_it_reads_the_prompts(bare, tmp_path, monkeypatch):
    """`generate --prompts - --weights DIR` with a DIR that lacks a file it needs (a tokenizer; the CLIP that
    --candidates 3 reranks with) read the pipe to its end, then refused the folder: refused first now, in the
    loader's words."""
    import t2i_cli.cli as cli

    def never(*a, **k):
        raise AssertionError("the prompts were read before the weights folder was refused")

    monkeypatch.setattr(cli, "read_prompts", never)
    (tmp_path / "empty").mkdir()
    line = one_line_failure(run("generate", "--prompts", "-", "--weights", tmp_path / "empty"))
    assert line.startswith(f"error: {tmp_path / 'empty'} has no tokenizer.json; it is not a complete t2i weights "
                           f"folder"), line
    line = one_line_failure(run("generate", "--prompts", "-", "--candidates", "3", "--weights", bare))
    assert line.startswith(f"error: {bare} has no clip.safetensors; it is not a complete t2i weights folder"), line


def test_generate_says_no_shipped_weights_before_it_reads_the_prompts(monkeypatch):
    """Where no trained weights are shipped (and none is named), `generate --prompts -` read the pipe to its end
    before it said so: said first now."""
    import t2i_cli.cli as cli

    def never(*a, **k):
        raise AssertionError("the prompts were read before the missing weights were said")

    monkeypatch.setattr(cli, "read_prompts", never)
    monkeypatch.setattr(cli, "shipped_weights", lambda: False)
    monkeypatch.delenv("T2I_WEIGHTS", raising=False)
    line = one_line_failure(run("generate", "--prompts", "-"))
    assert line.startswith(f"error: no trained weights in {cli.REPO_WEIGHTS}") \
        or line.startswith("error: this install of t2i carries no weights"), line


def test_generate_refuses_an_out_that_is_a_file_before_it_reads_the_prompts(bare, tmp_path, monkeypatch):
    """`generate --prompts - --out FILE` (a file, or a path inside one) read the pipe to its end, then refused the
    --out: refused first now, in make_folder's words."""
    import t2i_cli.cli as cli

    def never(*a, **k):
        raise AssertionError("the prompts were read before --out was refused")

    monkeypatch.setattr(cli, "read_prompts", never)
    (tmp_path / "f").write_text("mine\n")
    line = one_line_failure(run("generate", "--prompts", "-", "--weights", bare, "--out", tmp_path / "f"), 2)
    assert line == f"error: --out {tmp_path / 'f'} exists and is not a folder; choose another with --out", line
    line = one_line_failure(run("generate", "--prompts", "-", "--weights", bare, "--out", tmp_path / "f" / "x"), 2)
    assert line == (f"error: --out {tmp_path / 'f' / 'x'} is inside {tmp_path / 'f'}, which is a file; choose "
                    f"another with --out"), line
    assert (tmp_path / "f").read_text() == "mine\n"
