"""The t2i command line through Typer's CliRunner: reproducible PNGs, provenance, no overwrites, clean errors."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import traceback
from pathlib import Path

import pytest
import torch

from conftest import SRC, build_tiny_folder, one_line_failure, run
from t2i_cli import __version__
from t2i_cli.errors import WeightsError
from t2i_cli.images import read_png_text
from t2i_cli.weights import folder_hash


def generate(weights: Path, out: Path, *extra, prompt: str = "a red bird"):
    return run("generate", prompt, "--weights", weights, "--out", out, "--device", "cpu", *extra)


def pngs(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.png")) if folder.exists() else []


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in pngs(folder)}


def test_same_seed_gives_byte_identical_pngs(tiny_weights, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    ra = generate(tiny_weights, a, "--n", "2", "--seed", "0")
    rb = generate(tiny_weights, b, "--n", "2", "--seed", "0")
    assert ra.exit_code == 0, ra.output
    assert rb.exit_code == 0, rb.output
    sa, sb = snapshot(a), snapshot(b)
    assert len(sa) == 2
    assert sa == sb
    # stdout lists the written paths
    assert sorted(Path(line).name for line in ra.stdout.split()) == sorted(sa)
    # the two images of one run are drawn separately
    first, second = (a / name for name in sorted(sa))
    assert first.read_bytes() != second.read_bytes()


def test_different_seed_gives_different_images(tiny_weights, tmp_path):
    assert generate(tiny_weights, tmp_path / "a", "--seed", "0").exit_code == 0
    assert generate(tiny_weights, tmp_path / "b", "--seed", "1").exit_code == 0
    assert list(snapshot(tmp_path / "a").values()) != list(snapshot(tmp_path / "b").values())


def test_png_text_chunks_hold_provenance(tiny_weights, tmp_path):
    out = tmp_path / "out"
    r = generate(tiny_weights, out, "--n", "1", "--seed", "7", "--temperature", "0.9", "--top-k", "5",
                 "--top-p", "0.95", "--guidance", "2.0")
    assert r.exit_code == 0, r.output
    (path,) = pngs(out)
    meta = read_png_text(path)
    assert meta["prompt"] == "a red bird"
    assert meta["seed"] == "7"
    assert float(meta["temperature"]) == 0.9
    assert int(meta["top_k"]) == 5
    assert float(meta["top_p"]) == 0.95
    assert float(meta["guidance"]) == 2.0
    assert meta["weights"] == folder_hash(tiny_weights)
    assert meta["t2i_version"] == __version__


def test_second_run_into_same_folder_does_not_overwrite(tiny_weights, tmp_path):
    out = tmp_path / "out"
    assert generate(tiny_weights, out, "--n", "2", "--seed", "0").exit_code == 0
    before = snapshot(out)
    r = generate(tiny_weights, out, "--n", "2", "--seed", "1")
    assert r.exit_code == 0, r.output
    after = snapshot(out)
    assert len(after) == 4
    assert {k: after[k] for k in before} == before


def test_grid_writes_a_sheet(tiny_weights, tmp_path):
    out = tmp_path / "out"
    r = generate(tiny_weights, out, "--n", "3", "--grid")
    assert r.exit_code == 0, r.output
    files = pngs(out)
    sheets = [p for p in files if "-grid" in p.name]
    assert len(files) == 4 and len(sheets) == 1
    from PIL import Image

    with Image.open(sheets[0]) as sheet, Image.open(next(p for p in files if p not in sheets)) as one:
        assert sheet.width > 3 * one.width  # three images side by side
    assert read_png_text(sheets[0])["prompt"] == "a red bird"


def test_grid_of_reranked_candidates_shows_every_candidate_best_first(tiny_weights, tmp_path, monkeypatch):
    """--grid is "a contact sheet of every image drawn": with --candidates 5 --keep 1 it showed the one image
    kept (the default best of 4 made a sheet of one). The sheet shows all five, in the order of their scores."""
    from PIL import Image

    from t2i_cli import outputs

    shown = []
    real = outputs.write_sheet
    monkeypatch.setattr(outputs, "write_sheet", lambda results, *a: shown.append(results) or real(results, *a))
    out = tmp_path / "out"
    r = generate(tiny_weights, out, "--candidates", "5", "--keep", "1", "--grid")
    assert r.exit_code == 0, r.stderr
    (results,) = shown
    assert sorted(g.index for g in results) == [0, 1, 2, 3, 4]
    assert [g.rank for g in results] == [1, 2, 3, 4, 5]
    assert [g.score for g in results] == sorted((g.score for g in results), reverse=True)
    kept = [p for p in pngs(out) if "-grid" not in p.name]
    assert len(kept) == 1 and read_png_text(kept[0])["index"] == str(results[0].index)
    (sheet,) = [p for p in pngs(out) if "-grid" in p.name]
    with Image.open(sheet) as im, Image.open(kept[0]) as one:
        assert im.width > 4 * one.width  # four of the five in its first row


def test_candidates_keep_writes_the_best_with_ranks(tiny_weights, tmp_path):
    out = tmp_path / "out"
    r = generate(tiny_weights, out, "--candidates", "4", "--keep", "2", "--seed", "3")
    assert r.exit_code == 0, r.output
    metas = [read_png_text(p) for p in pngs(out)]
    assert len(metas) == 2
    by_rank = sorted(metas, key=lambda m: int(m["clip_rank"]))
    assert [m["clip_rank"] for m in by_rank] == ["1", "2"]
    assert float(by_rank[0]["clip_score"]) >= float(by_rank[1]["clip_score"])
    assert all(m["n"] == "4" for m in metas)


def test_a_plain_prompt_draws_the_best_of_the_default_candidates(tiny_weights, tmp_path):
    import torch

    from t2i_cli.cli import DEFAULT_CANDIDATES
    from t2i_cli.images import load_rgb, tensor_from_image
    from t2i_cli.pipeline import TextToImage

    assert DEFAULT_CANDIDATES == 4
    r = generate(tiny_weights, tmp_path / "auto", "--seed", "5")
    assert r.exit_code == 0, r.output
    [png] = pngs(tmp_path / "auto")
    meta = read_png_text(png)
    assert meta["n"] == "4" and meta["clip_rank"] == "1"
    pipe = TextToImage.from_folder(tiny_weights, "cpu", need_clip=True, precision="auto")  # as generate
    drawn = pipe("a red bird", n=4, seed=5)
    best = pipe.rerank(drawn, 1)[0]
    assert meta["index"] == str(best.index)
    scores = [float(pipe.score(g.image[None], "a red bird")) for g in drawn]
    assert float(meta["clip_score"]) == pytest.approx(max(scores), abs=1e-5)
    side = best.image.shape[-1]
    written = tensor_from_image(load_rgb(png, side))
    assert torch.allclose(written, best.image.clamp(0, 1), atol=1 / 255 + 1e-6)  # the pixels of the best
    # --from redraws the kept candidate: index among the 4 drawn
    again = run("generate", "--from", png, "--weights", tiny_weights, "--out", tmp_path / "again", "--device", "cpu")
    assert again.exit_code == 0, again.output
    from PIL import Image

    with Image.open(png) as a, Image.open(pngs(tmp_path / "again")[0]) as b:
        assert a.tobytes() == b.tobytes()


def test_candidates_1_n_and_image_prompts_turn_the_default_off(tiny_weights, tmp_path):
    one = generate(tiny_weights, tmp_path / "one", "--candidates", "1", "--seed", "5")
    assert one.exit_code == 0, one.output
    [png] = pngs(tmp_path / "one")
    meta = read_png_text(png)
    assert meta["n"] == "1" and meta["index"] == "0" and "clip_score" not in meta
    two = generate(tiny_weights, tmp_path / "two", "--n", "2", "--seed", "5")
    assert two.exit_code == 0 and len(pngs(tmp_path / "two")) == 2
    assert all("clip_score" not in read_png_text(p) and read_png_text(p)["n"] == "2" for p in pngs(tmp_path / "two"))
    img = generate(tiny_weights, tmp_path / "img", "--image", png, "--seed", "5")
    assert img.exit_code == 0, img.output
    assert [read_png_text(p)["n"] for p in pngs(tmp_path / "img")] == ["1"]


def test_weights_without_a_clip_draw_one_image_and_say_so(tmp_path):
    folder = build_tiny_folder(tmp_path / "noclip", with_clip=False)
    r = generate(folder, tmp_path / "o")
    assert r.exit_code == 0, r.output
    assert "no clip.safetensors" in r.stderr and "best of 4" in r.stderr
    assert [read_png_text(p)["n"] for p in pngs(tmp_path / "o")] == ["1"]
    quiet = generate(folder, tmp_path / "q", "--candidates", "1")
    assert quiet.exit_code == 0 and quiet.stderr == ""
    explicit = generate(folder, tmp_path / "e", "--candidates", "2")
    assert explicit.exit_code != 0 and "clip" in explicit.stderr.lower()


BAD_INPUTS = [
    pytest.param(["generate", "   "], 2, id="empty-prompt"),
    pytest.param(["generate", "\u200b\u2060 \ufeff"], 2, id="invisible-prompt"),  # zero-width characters alone
    pytest.param(["generate", "a red bird", "--n", "0"], 2, id="n-0"),
    pytest.param(["generate", "a red bird", "--n", "100000"], 2, id="n-100000"),
    pytest.param(["generate", "a red bird", "--top-k", "-1"], 2, id="top-k"),
    pytest.param(["generate", "a red bird", "--top-k", "999"], 2, id="top-k-over-vocab"),
    pytest.param(["generate", "a red bird", "--top-p", "0"], 2, id="top-p"),
    pytest.param(["generate", "a red bird", "--temperature", "0"], 2, id="temperature"),
    pytest.param(["generate", "a red bird", "--guidance", "-1"], 2, id="guidance"),
    pytest.param(["generate", "a red bird", "--candidates", "2", "--keep", "3"], 2, id="keep-over-candidates"),
    pytest.param(["generate", "a red bird", "--keep", "5"], 2, id="keep-over-default-candidates"),
    pytest.param(["generate", "a red bird", "--n", "3", "--keep", "2"], 2, id="keep-with-n"),
    pytest.param(["generate", "a red bird", "--device", "tpu"], 2, id="device-unknown"),
]


@pytest.mark.parametrize("args, code", BAD_INPUTS)
def test_bad_inputs_exit_cleanly_and_write_nothing(tiny_weights, tmp_path, args, code):
    out = tmp_path / "out"
    r = run(*args, "--weights", tiny_weights, "--out", out)
    one_line_failure(r, code)
    assert not out.exists() or not any(out.rglob("*"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_device_cuda_without_cuda(tiny_weights, tmp_path):
    out = tmp_path / "out"
    r = run("generate", "a red bird", "--weights", tiny_weights, "--out", out, "--device", "cuda")
    one_line_failure(r, 2)
    assert "cuda" in r.stderr.lower()
    assert not out.exists() or not any(out.iterdir())


def test_missing_weights_folder(tmp_path):
    out = tmp_path / "out"
    r = run("generate", "a red bird", "--weights", tmp_path / "no-weights-here", "--out", out)
    one_line_failure(r, 1)
    assert "no-weights-here" in r.stderr
    assert not out.exists() or not any(out.iterdir())
    # a folder of pictures given as --weights (rerank's folder, by mistake) was told to `t2i export ... --to` it
    from PIL import Image

    pictures = tmp_path / "pictures"
    pictures.mkdir()
    Image.new("RGB", (8, 8)).save(pictures / "a.png")
    for args in (["rerank", pictures], ["generate", "a red bird", "--out", out]):
        line = one_line_failure(run(*args, "--weights", pictures), 1)
        assert "it holds pictures, not a t2i model" in line and "--to" not in line, line
    assert [p.name for p in pictures.iterdir()] == ["a.png"]


@pytest.mark.parametrize("command", [["generate", "a red bird"], ["vary", "SRC", "--prompt", "a red bird"],
                                     ["rerank", "OUT"], ["eval", "--n", "1"], ["info"]])
def test_weights_that_is_a_file_says_it_takes_a_folder(tiny_weights, tmp_path, command):
    """It said the folder "does not exist"."""
    from PIL import Image

    src = tmp_path / "src.png"
    Image.new("RGB", (16, 16), (200, 0, 0)).save(src)
    args = [{"SRC": src, "OUT": tmp_path}.get(a, a) for a in command]
    file = tiny_weights / "dvae.safetensors"
    r = run(*args, "--weights", file, *(["--out", tmp_path / "o"] if command[0] in ("generate", "vary") else []))
    one_line_failure(r, 1)
    assert f"--weights {file} is a file; --weights takes a weights folder such as {tiny_weights}, which holds " \
           "it" in r.stderr, r.stderr
    assert not (tmp_path / "o").exists()


def test_a_weights_folder_from_t2i_weights_is_named_as_such(tiny_weights, tmp_path, monkeypatch):
    out = tmp_path / "o"
    empty = tmp_path / "empty"
    empty.mkdir()
    for env, says in ((tmp_path / "nope", f"weights folder {tmp_path / 'nope'} (from T2I_WEIGHTS) does not exist; "
                                          f"set T2I_WEIGHTS to a weights folder, or unset it"),
                      (tiny_weights / "clip.safetensors", f"T2I_WEIGHTS {tiny_weights / 'clip.safetensors'} is a "
                                                          f"file; T2I_WEIGHTS takes a weights folder"),
                      (empty, f"{empty} has no tokenizer.json; it is not a complete t2i weights folder; `t2i "
                              f"export TRANSFORMER_RUN --to {empty}` writes one (a transformer run holds its tokenizer "
                              f"and dVAE too) (T2I_WEIGHTS={empty} chose this folder; unset it to use the shipped "
                              f"weights)")):
        monkeypatch.setenv("T2I_WEIGHTS", str(env))
        for command in (["generate", "a red bird", "--out", out], ["info"]):
            r = run(*command)
            one_line_failure(r, 1)
            assert says in r.stderr, r.stderr
    r = run("generate", "a red bird", "--out", out, "--weights", empty)  # --weights wins, and is named as given
    one_line_failure(r, 1)
    assert "T2I_WEIGHTS" not in r.stderr and "has no tokenizer.json" in r.stderr
    monkeypatch.setenv("T2I_WEIGHTS", str(tiny_weights))
    assert run("generate", "a red bird", "--out", out, "-q").exit_code == 0
    assert len(pngs(out)) == 1


def test_debug_shows_the_traceback(tmp_path):
    r = run("--debug", "generate", "a red bird", "--weights", tmp_path / "no-weights-here", "--out", tmp_path / "o")
    assert r.exit_code != 0
    assert isinstance(r.exception, WeightsError)  # propagated, not turned into one line
    assert "Traceback" in "".join(traceback.format_exception(*r.exc_info))
    # and the flag does not stick to the next run
    r = run("generate", "a red bird", "--weights", tmp_path / "no-weights-here", "--out", tmp_path / "o")
    one_line_failure(r, 1)


@pytest.mark.parametrize("prompt", ["../../etc/passwd", "a/b\\c", "/", ".."])
def test_prompt_with_path_separators_stays_inside_out(tiny_weights, tmp_path, prompt):
    out = tmp_path / "deep" / "out"
    r = generate(tiny_weights, out, prompt=prompt)
    assert r.exit_code == 0, r.output
    written = [Path(line) for line in r.stdout.split()]
    assert len(written) == 1
    assert written[0].resolve().parent == out.resolve()
    assert written[0].is_file()
    outside = [p for p in tmp_path.rglob("*.png") if out.resolve() not in p.resolve().parents]
    assert outside == []
    assert read_png_text(written[0])["prompt"] == prompt  # the prompt itself is kept, only the name is safe


def test_unknown_words_give_a_warning_naming_them(tiny_weights, tmp_path):
    r = generate(tiny_weights, tmp_path / "out", prompt="a zebra bird")
    assert r.exit_code == 0, r.output
    assert "warning" in r.stderr and "zebra" in r.stderr
    assert "bird" not in r.stderr.split("training")[-1]
    r = generate(tiny_weights, tmp_path / "out2", prompt="a red bird")
    assert "warning" not in r.stderr
    r = generate(tiny_weights, tmp_path / "out3", "--quiet", prompt="a zebra bird")
    assert "warning" not in r.stderr


def test_long_prompt_warns_about_dropped_tokens(tiny_weights, tmp_path):
    r = generate(tiny_weights, tmp_path / "out", prompt=" ".join(["a red bird"] * 6))
    assert r.exit_code == 0, r.output
    assert "dropped" in r.stderr and re.search(r"\b6\b", r.stderr)  # 18 single-token words, 12 kept


def test_info_json(tiny_weights):
    r = run("info", "--weights", tiny_weights, "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert set(data["models"]) == {"tokenizer", "dvae", "transformer", "clip"}
    assert data["identity"] == folder_hash(tiny_weights)
    assert data["models"]["transformer"]["config"]["text_len"] == 12
    assert all(m["parameters"] > 0 for k, m in data["models"].items() if k != "tokenizer")


def test_out_that_is_a_file_or_inside_one_is_a_usage_error_as_in_train_and_export(tiny_weights, tmp_path):
    target = tmp_path / "taken"
    target.write_text("keep me")
    line = one_line_failure(generate(tiny_weights, target), 2)
    assert line == f"error: --out {target} exists and is not a folder; choose another with --out"
    line = one_line_failure(generate(tiny_weights, target / "deeper" / "out"), 2)
    assert line == f"error: --out {target / 'deeper' / 'out'} is inside {target}, which is a file; choose another " \
                   "with --out"
    assert target.read_text() == "keep me"
    for argv in (["train", "--stage", "tokenizer", "--out", target], ["export", tmp_path, "--to", target]):
        one_line_failure(run(*argv), 2)  # the same exit code for the same mistake
    line = one_line_failure(run("data", "preview", "world", "--n", "1", "--out", target / "p.png"), 2)  # was 1
    assert line == f"error: --out {target / 'p.png'} is inside {target}, which is a file; choose another with --out"
    line = one_line_failure(run("data", "world", "--split", "bogus", "--n", "1", "--out", tmp_path / "w"), 2)
    assert line == "error: --split 'bogus' is no world split; use one of train, val, heldout"
    assert target.read_text() == "keep me" and not (tmp_path / "w").exists()


def test_info_missing_folder(tmp_path):
    one_line_failure(run("info", "--weights", tmp_path / "nothing"), 1)


def test_version():
    r = run("--version")
    assert r.exit_code == 0 and __version__ in r.stdout


def test_python_m_help_runs_without_torch():
    r = subprocess.run([sys.executable, "-m", "t2i_cli", "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "generate" in r.stdout and "info" in r.stdout
    r = subprocess.run([sys.executable, "-c", "import sys, t2i_cli.cli; print('torch' in sys.modules)"],
                       capture_output=True, text=True, timeout=60)
    assert r.stdout.strip() == "False", "importing the CLI must not import torch (t2i --help stays instant)"


@pytest.mark.parametrize("args, says", [
    (["generate", "--bogus"], "No such option: --bogus; see"),  # not "(Possible options: --out)"
    (["generate", "--seeed", "3"], "No such option: --seeed (Possible options: --seed); see"),
    (["generate", "a red bird", "--n", "abc"], "Invalid value for '--n'"),
    (["export"], "Missing argument"),
    (["bogus"], "No such command 'bogus'"),
    (["data", "bogus"], "No such command 'bogus'"),
    (["generate", "a red bird", "--device"], "'--device' requires an argument"),
])
def test_a_command_line_click_cannot_parse_is_one_error_line_and_exit_2(args, says):
    """Click's own parse errors were a framed five-line box; now one line like every other refusal."""
    r = run(*args)
    assert r.exit_code == 2, (r.stdout, r.stderr, r.exception)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0], r.stderr
    assert "╭" not in r.stderr and "Usage:" not in r.stderr and r.stdout == ""
    if args[0] == "generate" and ("--bogus" in args or args[-1] == "--device"):
        assert lines[0].endswith("; see 'root generate --help'")  # CliRunner's program name is "root"


def test_the_console_script_prints_one_line_for_a_parse_error_and_help_without_arguments():
    command = [sys.executable, "-c", "import sys; sys.argv[0] = 't2i'; from t2i_cli.cli import main; main()"]
    r = subprocess.run([*command, "generate", "--bogus"], capture_output=True, text=True, timeout=60)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and r.stdout == "" and len(lines) == 1, r.stderr
    assert lines[0].startswith("error: No such option: --bogus") and lines[0].endswith("see 't2i generate --help'")
    r = subprocess.run(command, capture_output=True, text=True, timeout=60)  # no arguments: the help
    assert r.returncode == 2 and "Usage: t2i" in r.stdout and "generate" in r.stdout and "error" not in r.stderr
    for flag in ("--help", "--version"):
        r = subprocess.run([*command, flag], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and r.stdout.strip() and r.stderr == "", (flag, r.stderr)


def test_cli_sampling_defaults_match_the_library():
    from t2i_cli.cli import SAMPLING_DEFAULTS
    from t2i_cli.sampling import SamplingConfig

    lib = SamplingConfig()
    assert (SAMPLING_DEFAULTS.temperature, SAMPLING_DEFAULTS.top_k, SAMPLING_DEFAULTS.top_p,
            SAMPLING_DEFAULTS.guidance, SAMPLING_DEFAULTS.regional) == (lib.temperature, lib.top_k, lib.top_p,
                                                                        lib.guidance, lib.regional)
    # every sampling option of generate, vary and eval defaults to the library's value (cli.sampling_of passes
    # the options by name), and generate has an option for every field but use_cache
    import typer

    from t2i_cli.cli import app

    commands = typer.main.get_command(app).commands
    for name in ("generate", "vary", "eval"):
        options = {p.name: p.default for p in commands[name].params}
        shared = {f.name for f in dataclasses.fields(SamplingConfig)} & set(options)
        assert all(options[k] == getattr(lib, k) for k in shared), (name, {k: options[k] for k in shared})
        if name == "generate":
            assert shared == {f.name for f in dataclasses.fields(SamplingConfig)} - {"use_cache"}


def test_generate_encodes_the_prompt_and_checks_the_settings_once(tiny_weights, tmp_path, monkeypatch):
    """--n 20 spans two decode batches (MAX_BATCH 16), yet the prompt is tokenized once and the sampling
    settings are checked against the model once per `generate` call."""
    from t2i_cli.models.tokenizer import TextTokenizer
    from t2i_cli.pipeline import MAX_BATCH
    from t2i_cli.sampling import SamplingConfig

    calls = {"encode": 0, "check": 0}
    real_encode, real_check = TextTokenizer.encode, SamplingConfig.check_vocab

    def encode(self, text, text_len):
        calls["encode"] += 1
        return real_encode(self, text, text_len)

    def check(self, vocab):
        calls["check"] += 1
        return real_check(self, vocab)

    monkeypatch.setattr(TextTokenizer, "encode", encode)
    monkeypatch.setattr(SamplingConfig, "check_vocab", check)
    assert MAX_BATCH < 20
    r = generate(tiny_weights, tmp_path / "o", "--n", "20", "--quiet")
    assert r.exit_code == 0, r.output
    assert len(pngs(tmp_path / "o")) == 20
    assert calls == {"encode": 1, "check": 1}


@pytest.mark.parametrize("command", [["generate", "a red bird"], ["vary", "SRC"], ["rerank", "OUT"],
                                     ["eval", "--n", "1"]])
def test_threads_sets_torchs_thread_count_or_is_refused(tiny_weights, tmp_path, command):
    import torch

    out = tmp_path / "out"
    made = run("generate", "a red bird", "--weights", tiny_weights, "--out", out, "-q")
    args = [{"SRC": made.stdout.strip(), "OUT": out}.get(a, a) for a in command]
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        to = ["--out", out] if command[0] in ("generate", "vary") else []
        r = run(*args, "--threads", 1, "--weights", tiny_weights, *to)
        assert torch.get_num_threads() == 1, r.stderr
    finally:
        torch.set_num_threads(before)
    r = run(*args, "--threads", 0, "--weights", tiny_weights)
    assert r.exit_code == 2 and "--threads must be between 1 and" in r.stderr


def test_without_threads_a_busy_machine_keeps_the_thread_count_and_sleeps_instead(tiny_weights, tmp_path,
                                                                                   monkeypatch):
    """0.6.0-0.13.1 took one thread less per task running as the command started, and a seed's bytes can depend
    on the thread count (BENCHMARKS.md "Plain decoding at another thread count"): the same command drew other
    images on a busy machine. Now the count is torch's own (the cores) whatever the load; a busy start lets
    OpenMP's threads sleep at once instead (bound_spinning, given other_running_tasks)."""
    import torch

    import t2i_cli.cli as cli

    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    looked = []
    monkeypatch.setattr(cli, "bound_spinning", lambda busy: looked.append(busy))
    monkeypatch.setattr(cli, "other_t2i_inferring", lambda: 0)  # (another t2i on this machine would count)
    try:
        for busy in (0, 1, 5):
            torch.set_num_threads(3)
            monkeypatch.setattr(cli, "other_running_tasks", lambda busy=busy: busy)
            r = generate(tiny_weights, tmp_path / f"o{busy}", "-q")
            assert r.exit_code == 0, r.output
            assert torch.get_num_threads() == 3, busy
            assert looked[-1]() == busy  # the load reaches the spinning's choice, not the thread count
        torch.set_num_threads(3)
        r = generate(tiny_weights, tmp_path / "given", "-q", "--threads", "2")  # --threads is taken as given
        assert r.exit_code == 0 and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_running_tasks_are_read_from_proc_stat_less_this_one(tmp_path):
    from t2i_cli.cli import other_running_tasks

    stat = tmp_path / "stat"
    stat.write_text("cpu  1 2 3\nintr 5\nprocs_running 4\nprocs_blocked 0\n")
    assert other_running_tasks(stat=str(stat)) == 3
    stat.write_text("cpu  1 2 3\nprocs_running 1\n")
    assert other_running_tasks(stat=str(stat)) == 0
    assert other_running_tasks(stat=str(tmp_path / "missing")) == 0  # not Linux: nothing known, nothing changed
    stat.write_text("procs_running many\n")
    assert other_running_tasks(stat=str(stat)) == 0


def test_inference_bounds_openmp_spinning_unless_the_user_chose(monkeypatch):
    import os
    import sys

    import t2i_cli.cli as cli

    for name in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY", "T2I_OMP"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delitem(sys.modules, "torch")  # as in a fresh process, where libgomp has not loaded yet
    cli.bound_spinning()
    assert os.environ["GOMP_SPINCOUNT"] == cli.SPIN_COUNT == "10000"
    monkeypatch.delenv("GOMP_SPINCOUNT")
    cli.bound_spinning(lambda: 0)  # nothing else running: the bounded spin
    assert os.environ["GOMP_SPINCOUNT"] == cli.SPIN_COUNT
    monkeypatch.delenv("GOMP_SPINCOUNT")
    cli.bound_spinning(lambda: 1)  # busy: sleep at once
    assert os.environ["GOMP_SPINCOUNT"] == cli.BUSY_SPIN_COUNT == "0"
    for own in ({"GOMP_SPINCOUNT": "7"}, {"OMP_WAIT_POLICY": "PASSIVE"}, {"T2I_OMP": "keep"}):
        monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)
        for k, v in own.items():
            monkeypatch.setenv(k, v)
        cli.bound_spinning()
        assert os.environ.get("GOMP_SPINCOUNT") == own.get("GOMP_SPINCOUNT"), own
        for k in own:
            monkeypatch.delenv(k, raising=False)
    monkeypatch.undo()  # torch back in sys.modules: once it is loaded, setting the variable would change nothing
    monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)
    cli.bound_spinning()
    assert "GOMP_SPINCOUNT" not in os.environ


@pytest.mark.parametrize("command", [["generate", "a red bird", "--n", "0"], ["eval", "--n", "0"],
                                     ["train", "--stage", "nonsense"]])
def test_every_command_that_runs_torch_for_long_bounds_openmp_spinning_first(command, monkeypatch):
    import t2i_cli.cli as cli

    calls = []
    monkeypatch.setattr(cli, "bound_spinning", lambda *a, **k: calls.append(True))
    r = run(*command)
    assert r.exit_code != 0 and calls == [True]  # before the options are checked (and before torch loads)


@pytest.mark.parametrize("args, says", [(["--n", "0"], "--n must be in 1..10000, got 0"),
                                        (["--candidates", "0"], "--candidates must be in 1..256, got 0")])
def test_eval_names_the_count_it_refuses(tiny_weights, args, says):
    """It said "--n must be in 1..10000 and --candidates in 1..256" for either, naming no value."""
    assert one_line_failure(run("eval", *args, "--weights", tiny_weights), 2) == f"error: {says}"


def test_eval_draws_the_default_candidates_when_the_weights_have_a_clip(tiny_weights, tmp_path):
    import json

    r = run("eval", "--n", "1", "--weights", tiny_weights, "--json", tmp_path / "a.json", "-q")
    assert r.exit_code == 0, (r.stderr, r.exception)
    assert json.loads((tmp_path / "a.json").read_text())["candidates"] == 4
    folder = build_tiny_folder(tmp_path / "noclip", with_clip=False)
    r = run("eval", "--n", "1", "--weights", folder, "--json", tmp_path / "b.json", "-q")
    assert r.exit_code == 0, (r.stderr, r.exception)
    assert json.loads((tmp_path / "b.json").read_text())["candidates"] == 1


def test_eval_scores_several_seeds_in_one_run_as_each_alone(tiny_weights, tmp_path):
    """--seed 0 --seed 1: each seed's run is the run `--seed S` makes alone (same accuracies, same judge and
    dVAE numbers), the JSON keeps both and their mean; a repeated seed, or several with --data, is refused."""
    both, alone = tmp_path / "both.json", tmp_path / "alone.json"
    common = ["eval", "--n", "2", "--candidates", "1", "--weights", tiny_weights, "-q"]
    r = run(*common, "--seed", "0", "--seed", "1", "--json", both)
    assert r.exit_code == 0, (r.stderr, r.exception)
    assert "seed 0" in r.stdout and "seed 1" in r.stdout and "mean" in r.stdout
    assert run(*common, "--seed", "1", "--json", alone).exit_code == 0
    got, one = json.loads(both.read_text()), json.loads(alone.read_text())
    assert got["seeds"] == [0, 1] and [x["seed"] for x in got["runs"]] == [0, 1]
    # one seed: the JSON it always was, and since 0.13.1 "seeds" and "runs" too (a script reads both alike); several:
    # the device and thread count they share at the top too
    assert one["seed"] == 1 and one["seeds"] == [1] and one["runs"] == [{k: v for k, v in one.items()
                                                                        if k not in ("seeds", "runs")}]
    assert got["threads"] == got["runs"][0]["threads"] == got["runs"][1]["threads"] and got["device"] == "cpu"
    # what the judge columns were measured on is said and recorded (50 renders a task at seed + 1, unsaid before)
    assert [x["judge_checked_on"] for x in got["runs"]] == [{"renders": 50, "seed": 1}, {"renders": 50, "seed": 2}]
    assert "the judge columns: 50 of the world's own renders a task at seed 2" in " ".join(r.stdout.split())
    assert got["runs"][0]["dvae"] != got["runs"][1]["dvae"]  # two seeds really ran (other val scenes)
    second = got["runs"][1]
    for key in ("tasks", "judge_validation", "dvae", "overall"):
        if key == "tasks":
            assert {t: v["passed"] for t, v in second[key].items()} == {t: v["passed"] for t, v in one[key].items()}
        else:
            assert second[key] == one[key], key
    for name, task in got["tasks"].items():
        pair = [x["tasks"][name]["accuracy"] for x in got["runs"]]
        assert task["by_seed"] == pair and task["accuracy"] == pytest.approx(sum(pair) / 2)
    assert got["overall"] == pytest.approx((got["runs"][0]["overall"] + got["runs"][1]["overall"]) / 2)
    # which judge scored is recorded (a folder's own judge.safetensors wins over the shipped one) and shown
    judge = got["judge"]
    assert judge == one["judge"] == got["runs"][0]["judge"]
    assert judge["sha256"] == hashlib.sha256(Path(judge["file"]).read_bytes()).hexdigest()
    assert f"judge {judge['sha256'][:16]}" in " ".join(r.stdout.split())
    for bad, says in ([["--seed", "1", "--seed", "1"], "--seed 1 is given twice"],
                      [[x for seed in range(17) for x in ("--seed", str(seed))], "at most 16 seeds"],
                      [["--seed", "0", "--seed", "-1"], "--seed must be between 0 and"],
                      [["--seed", "0", "--seed", "1", "--data", "world"], "one --seed at a time"]):
        r = run("eval", "--n", "2", "--weights", tiny_weights, *bad)
        assert r.exit_code == 2 and says in r.stderr, r.stderr


@pytest.mark.parametrize("flag,value,recorded,differs,bad", [
    ("--guidance-start", "1", "1.0", False, [["-2"]]),  # (what a schedule does to the codes: test_sampling)
    ("--jacobi", "4", "4", True, [["-1"], ["65"], ["2", "--image", "SRC"]]),  # same distribution, other draws
])
def test_a_sampling_option_is_honoured_recorded_and_redrawn(tiny_weights, tmp_path, flag, value, recorded, differs,
                                                            bad):
    from PIL import Image

    key = flag[2:].replace("-", "_")
    plain = generate(tiny_weights, tmp_path / "a", "--n", "2", "--seed", "4")
    other = generate(tiny_weights, tmp_path / "b", "--n", "2", "--seed", "4", flag, value)
    assert plain.exit_code == 0 and other.exit_code == 0, (plain.stderr, other.stderr)
    a, b = pngs(tmp_path / "a"), pngs(tmp_path / "b")
    assert key not in read_png_text(a[0]) and read_png_text(b[0])[key] == recorded
    if differs:
        with Image.open(a[0]) as x, Image.open(b[0]) as y:
            assert x.tobytes() != y.tobytes()
    again = run("generate", "--from", b[1], "--weights", tiny_weights, "--out", tmp_path / "c", "--device", "cpu")
    assert again.exit_code == 0, again.stderr
    with Image.open(b[1]) as x, Image.open(pngs(tmp_path / "c")[0]) as y:
        assert x.tobytes() == y.tobytes()
    for extra in bad:
        r = generate(tiny_weights, tmp_path / "d", flag, *[str(b[0]) if e == "SRC" else e for e in extra])
        assert r.exit_code == 2 and flag in r.stderr and not (tmp_path / "d").exists(), r.stderr


def test_a_closed_or_full_standard_output_is_one_line_not_a_traceback(tiny_weights, tmp_path):
    """Started with stdout closed (`>&-`), a generate that wrote its PNG ended in a traceback at the final flush
    (exit 1), then said nothing and exited 0, as `--version >&-` did (the version said nowhere); `--version
    >/dev/full` was a traceback; a generate into /dev/full an "internal error", then "the disk is full" (its PNG
    was written: the disk was not). Each is now the line standard output's refusal gets. A closed stderr is no
    error: the PNG's path still reaches stdout."""
    cmd = [sys.executable, "-m", "t2i_cli", "generate", "a red bird", "--weights", str(tiny_weights),
           "--out", str(tmp_path / "out"), "--candidates", "1"]
    env = {**os.environ, "PYTHONPATH": SRC}

    def closed(fd: int, args: list[str]) -> subprocess.CompletedProcess:
        return subprocess.run(args, stdout=subprocess.PIPE if fd == 2 else None, stderr=subprocess.PIPE
                              if fd == 1 else None, timeout=120, env=env, preexec_fn=lambda: os.close(fd),
                              text=True)

    no_stdout = "error: cannot write to standard output: it is closed\n"
    r = closed(1, cmd)
    assert r.returncode == 1 and r.stderr == no_stdout, r.stderr
    r = closed(2, cmd)
    assert r.returncode == 0 and r.stdout.strip().endswith(".png"), r.stdout
    assert len(pngs(tmp_path / "out")) == 2
    for flag in ("--version", "--help"):
        r = closed(1, [sys.executable, "-m", "t2i_cli", flag])
        assert r.returncode == 1 and r.stderr == no_stdout, (flag, r.stderr)
    with open("/dev/full", "w") as full:
        v = subprocess.run([sys.executable, "-m", "t2i_cli", "--version"], stdout=full, stderr=subprocess.PIPE,
                           text=True, timeout=60, env=env)
        h = subprocess.run([sys.executable, "-m", "t2i_cli", "--help"], stdout=full, stderr=subprocess.PIPE,
                           text=True, timeout=60, env=env)
        g = subprocess.run(cmd, stdout=full, stderr=subprocess.PIPE, text=True, timeout=120, env=env)
    assert v.returncode == 1 and v.stderr == "error: cannot write to standard output: No space left on device\n"
    assert h.returncode == 1 and h.stderr == v.stderr, h.stderr
    assert g.returncode == 1 and g.stderr == v.stderr, g.stderr
    assert len(pngs(tmp_path / "out")) == 3


def test_a_process_that_generates_ends_at_once_with_its_output_flushed_and_its_exit_code(tiny_weights, tmp_path):
    """`t2i generate` as its own process (main() skips the interpreter's teardown with os._exit): the PNG is
    whole, the path reaches stdout, and a bad input still exits 2 with its one line on stderr."""
    from PIL import Image

    cmd = [sys.executable, "-m", "t2i_cli", "generate", "a red bird", "--weights", str(tiny_weights),
           "--out", str(tmp_path / "out"), "--candidates", "1"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    (path,) = pngs(tmp_path / "out")
    assert r.stdout.strip() == str(path)
    with Image.open(path) as im:
        im.load()
        assert im.size[0] > 0
    bad = subprocess.run(cmd[:-2] + ["--top-p", "2"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "--top-p" in bad.stderr and "Traceback" not in bad.stderr
    assert bad.stdout == "" and pngs(tmp_path / "out") == [path]


def test_regional_guidance_draws_two_object_prompts_records_its_regions_and_redraws(tmp_path):
    """--regional changes the images of a two-object prompt, records its weight and region prompts, and --from
    redraws them; a one-object prompt, or a model whose tokenizer lacks a region prompt's words, draws exactly
    as without it at the default (and records nothing); a bad weight is one line and exit 2."""
    from PIL import Image

    from conftest import TINY_CAPTIONS, build_tiny_folder

    weights = build_tiny_folder(tmp_path / "w", captions=TINY_CAPTIONS + ["a pink tree on the right and a cat"])
    two = "a red bird and a blue fish"

    def draw(out: str, prompt: str, *extra: str, folder: Path = weights) -> Path:
        r = generate(folder, tmp_path / out, "--n", "1", "--seed", "5", *extra, prompt=prompt)
        assert r.exit_code == 0, r.stderr
        return pngs(tmp_path / out)[0]

    def pixels(path: Path) -> bytes:
        with Image.open(path) as im:
            return im.tobytes()

    off, on = draw("off", two, "--regional", "0"), draw("on", two, "--regional", "2.5")
    meta = read_png_text(on)
    assert meta["regional"] == "2.5" and "regional" not in read_png_text(off)
    assert json.loads(meta["regions"]) == [["a red bird on the left", "left"], ["a blue fish on the right", "right"]]
    assert pixels(on) != pixels(off)
    again = run("generate", "--from", on, "--weights", weights, "--out", tmp_path / "again", "--device", "cpu")
    assert again.exit_code == 0, again.stderr
    assert pixels(pngs(tmp_path / "again")[0]) == pixels(on)
    one_off, one_on = draw("one-off", "a red bird", "--regional", "0"), draw("one-on", "a red bird")  # (the default)
    assert pixels(one_on) == pixels(one_off) and "regional" not in read_png_text(one_on)
    plain_tok = build_tiny_folder(tmp_path / "plain")  # its tokenizer never saw "right"
    p_off = draw("p-off", two, "--regional", "0", folder=plain_tok)
    p_on = draw("p-on", two, folder=plain_tok)  # (an explicit --regional is refused there: test_s40_options)
    assert pixels(p_on) == pixels(p_off) and "regions" not in read_png_text(p_on)
    for bad in ("-1", "101"):
        r = generate(weights, tmp_path / "bad", "--regional", bad, prompt=two)
        assert r.exit_code == 2 and "--regional" in r.stderr and "Traceback" not in r.stderr
    r = run("generate", "--from", on, "--regional", "1", "--weights", weights, "--out", tmp_path / "x")
    assert r.exit_code == 2 and "--regional" in r.stderr


def test_generate_with_nan_weights_is_one_line(tmp_path):
    """A weights folder whose transformer holds a NaN (a diverged run exported before t2i refused those) is one
    error line naming the file, exit 1, not an internal error from inside sampling."""
    from t2i_cli.weights import load_tensors, save_tensors

    folder = build_tiny_folder(tmp_path / "w")
    tensors, meta = load_tensors(folder / "transformer.safetensors")
    name = sorted(k for k, v in tensors.items() if v.is_floating_point())[0]
    tensors[name] = torch.full_like(tensors[name], float("nan"))
    save_tensors(folder / "transformer.safetensors", tensors, meta)
    r = run("generate", "a red bird", "--weights", folder, "--out", tmp_path / "o", "--candidates", "1")
    assert r.exit_code == 1
    assert r.stderr.count("\n") == 1 and "NaN or infinite weights" in r.stderr and "transformer.safetensors" in r.stderr
    assert "Traceback" not in r.output and not (tmp_path / "o").exists()


@pytest.mark.parametrize("desc, total, width, shown", [
    ("train all: transformer 300/3000", 6000, 80, ""),
    ("train all: transformer 300/3000", 6000, 100, "loss=0.1235"),
    ("train all: transformer 300/3000", 6000, 160, "loss=0.1235 recon_l1=0.05679 perplexity=123.4"),
    ("train all: transformer 5600/5600", 16800, 80, ""),  # the large preset's whole run
    ("train all: transformer 5600/5600", 16800, 100, "loss=0.1235"),
    ("train transformer", 3000, 80, "loss=0.1235")])
def test_a_training_bar_keeps_its_count_rate_and_eta_on_a_narrow_terminal(monkeypatch, desc, total, width, shown):
    """At 80 columns the bar of `train --stage all` read `dvae 30/2400 ... 3... 1% 0 steps/s ... 4:0...`: the count
    and the ETA cut to an ellipsis (a 40-wide bar and every metric) and 0.5 steps/s shown as 0. The bar narrows,
    metrics are shown only whole and only where they fit, and a rate under 10 keeps two significant digits."""
    import io
    import re

    from rich.console import Console

    from t2i_cli import cli

    monkeypatch.setattr(cli, "err", Console(file=io.StringIO(), width=width, force_terminal=True))
    bar = cli.progress_bar(False)
    with bar:
        task = bar.add_task(desc, total=total, rate="")
        bar.update(task, completed=30)
        monkeypatch.setattr(type(bar.tasks[task]), "speed", property(lambda self: 0.52))
        said = cli.training_rate(bar, task, {"loss": 0.12345, "recon_l1": 0.056789, "perplexity": 123.4},
                                 ("loss", "recon_l1", "perplexity"))
        bar.update(task, rate=said)
        bar.refresh()
    line = [re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", x) for x in cli.err.file.getvalue().splitlines() if "train" in x][-1]
    assert len(line.rstrip()) <= width and "…" not in line, line
    eta = f"{int((total - 30) / 0.52) // 3600}:{int((total - 30) / 0.52) % 3600 // 60:02d}"
    assert f"30/{total}" in line and "0.52 steps/s" in line and eta in line, line
    assert said == f"0.52 steps/s {shown}".strip() and said in line, line
    assert 1 <= bar.columns[1].bar_width <= 40 and (bar.columns[1].bar_width >= 10 or not shown)
    assert cli.rate_text(type("T", (), {"speed": 1234.5})(), "tokens") == "1,234 tokens/s"


def test_generate_from_a_contact_sheet_is_refused(tiny_weights, tmp_path):
    """A --grid sheet carries the prompt's settings too, but it is not one image: --from it is one line that
    says so, and nothing is drawn."""
    out = tmp_path / "out"
    assert generate(tiny_weights, out, "--n", "3", "--grid").exit_code == 0
    (sheet,) = [p for p in pngs(out) if "-grid" in p.name]
    r = run("generate", "--from", sheet, "--weights", tiny_weights, "--out", tmp_path / "again", "--device", "cpu")
    assert "is a contact sheet" in one_line_failure(r)
    assert pngs(tmp_path / "again") == []


def test_the_first_batch_of_a_seed_draws_from_the_seed_itself():
    """Batch 0 of --seed S is seeded with S itself (later batches with a hash of (S, start)), so one image
    drawn with --seed S is what the generator seeded with S gives."""
    from t2i_cli.pipeline import MAX_BATCH, batch_seed

    assert [batch_seed(s, 0) for s in (0, 1, 7, 2**40)] == [0, 1, 7, 2**40]
    assert batch_seed(7, MAX_BATCH) not in (7, batch_seed(7, 2 * MAX_BATCH))


@pytest.mark.parametrize("args, says", [
    (["generate", "a red bird", "--seed", "1", "--seed", "2"], "--seed 1 and --seed 2 disagree; give one of them"),
    (["generate", "a red bird", "--seed=1", "--seed", "2"], "--seed 1 and --seed 2 disagree"),
    (["generate", "a red bird", "--negative", "-x", "--negative", "y"], "--negative -x and --negative y disagree"),
    (["train", "--stage", "clip", "--hard-negatives", "--no-hard-negatives"],
     "--hard-negatives and --no-hard-negatives disagree"),
    (["data", "preview", "d", "--n", "3", "--n", "4"], "--n 3 and --n 4 disagree"),
    (["generate", "a red bird", "--negative", "a/b", "--negative", "a//b"], "--negative a/b and --negative a//b"),
    (["generate", "a red bird", "--negative", "04", "--negative", "4"], "disagree"),  # text, not numbers
    (["generate", "a red bird", "--seed", "9007199254740993", "--seed", "9007199254740992"], "disagree"),  # exact
])
def test_an_option_given_twice_with_different_values_is_refused(args, says, tmp_path):
    """Click let the last of `--seed 1 --seed 2` win without a word: the user meant one of them."""
    r = run(*args, "--out", tmp_path / "out") if args[0] == "generate" else run(*args)
    assert r.exit_code == 2, (r.stdout, r.stderr, r.exception)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0], r.stderr
    assert not (tmp_path / "out").exists()


def test_an_option_repeated_with_its_value_and_evals_several_seeds_are_accepted(tiny_weights, tmp_path):
    r = generate(tiny_weights, tmp_path / "a", "--n", "1", "--seed", "3", "--seed", "03", "--quiet", "-q",
                 "--out", f"{tmp_path / 'a'}/")  # one value in other spellings, one option by its two names
    assert r.exit_code == 0, r.output
    r = run("data", "world", "--side", "16", "--size", "16", "--n", "1", "--out", tmp_path / "w", "-q")
    assert r.exit_code == 0, r.output
    r = generate(tiny_weights, tmp_path / "c", "--n", "1", "--top-p", "1e-1", "--top-p", "0.1", "-q")
    assert r.exit_code == 0, r.output  # one float in two spellings
    assert generate(tiny_weights, tmp_path / "b", "--n", "1", "--seed", "3").exit_code == 0
    assert snapshot(tmp_path / "a") == snapshot(tmp_path / "b")
    # eval's --seed takes several values: the parser lets it through (the refusal here is the missing folder)
    r = run("eval", "--weights", tmp_path / "missing", "--seed", "0", "--seed", "1")
    assert "disagree" not in r.stderr and r.exit_code != 0


def test_guidance_stop_reaches_the_sampler_is_recorded_and_redrawn(tiny_weights, tmp_path, monkeypatch):
    """generate, --from, vary and eval --data draw with the --guidance-stop given (the tiny random model draws the
    same codes either way, so the sampler's settings are what is checked)."""
    from PIL import Image as PILImage

    from t2i_cli import pipeline

    seen, real = [], pipeline.draw_codes
    monkeypatch.setattr(pipeline, "draw_codes", lambda model, text, uncond, cfg, *a, **k: (
        seen.append(cfg.guidance_stop), real(model, text, uncond, cfg, *a, **k))[1])
    out = tmp_path / "out"
    r = generate(tiny_weights, out, "--n", "2", "--seed", "4", "--guidance-stop", "0.5", "-q")
    assert r.exit_code == 0 and seen and set(seen) == {0.5}, (r.stderr, seen)
    first = Path(r.stdout.split()[0])
    assert read_png_text(first)["guidance_stop"] == "0.5"
    plain = generate(tiny_weights, tmp_path / "plain", "--n", "2", "--seed", "4", "-q")
    assert "guidance_stop" not in read_png_text(Path(plain.stdout.split()[0]))  # plain PNGs keep their text
    seen.clear()
    again = run("generate", "--from", first, "--weights", tiny_weights, "--out", tmp_path / "again", "-q")
    assert again.exit_code == 0 and set(seen) == {0.5}, again.stderr
    assert Path(again.stdout.strip()).read_bytes() == first.read_bytes()
    seen.clear()
    # (0.5: this seed's variation redraws no cell before code 5, so a stop at 0.25, code 4, guided none: refused)
    r = run("vary", first, "--n", "1", "--guidance-stop", "0.5", "--weights", tiny_weights, "--out", out, "-q")
    assert r.exit_code == 0 and set(seen) == {0.5}, r.stderr
    data = tmp_path / "data"
    data.mkdir()
    for i in range(40):
        PILImage.new("RGB", (16, 16), (i * 6, 90, 200 - i * 4)).save(data / f"p{i}.png")
        (data / f"p{i}.txt").write_text("a red bird\n")
    seen.clear()
    r = run("eval", "--data", data, "--n", "2", "--guidance-stop", "0.75", "--weights", tiny_weights,
            "--json", tmp_path / "e.json", "-q", "--threads", "1")
    assert r.exit_code == 0 and set(seen) == {0.75}, r.stderr
    recorded = json.loads((tmp_path / "e.json").read_text())
    assert recorded["sampling"]["guidance_stop"] == 0.75
    # the numbers depend on the thread count (sums grouped by threads), which by default follows the load
    assert recorded["threads"] == 1 and recorded["device"] == "cpu"
    # with --guidance 1 it stops nothing (no val caption draws regional guidance): refused, as generate refuses it
    line = one_line_failure(run("eval", "--data", data, "--n", "2", "--guidance-stop", "0.75", "--guidance", "1",
                                "--weights", tiny_weights, "--json", tmp_path / "e1.json"), 2)
    assert "no val caption draws regional guidance" in line and not (tmp_path / "e1.json").exists(), line
    line = one_line_failure(run("generate", "--from", first, "--guidance-stop", "0.7", "--weights", tiny_weights,
                                "--out", tmp_path / "x"), 2)
    assert "--guidance-stop" in line
    for bad, says in ((["--jacobi", "4"], "does not combine with --jacobi"),
                      (["--guidance", "1", "--regional", "0"], "which --guidance 1 and --regional 0 turn off"),
                      # regional guidance is on by default, but "a red bird" has no regions: it did nothing
                      (["--guidance", "1"], "this prompt draws no regional guidance")):
        line = one_line_failure(generate(tiny_weights, tmp_path / "y", "--guidance-stop", "0.5", *bad), 2)
        assert says in line, line
    (tmp_path / "p.txt").write_text("a red bird\na small purple heart on a white background\n")
    line = one_line_failure(run("generate", "--prompts", tmp_path / "p.txt", "--guidance", "1", "--guidance-stop",
                                "0.5", "--weights", tiny_weights, "--out", tmp_path / "y"), 2)
    assert "no prompt of the file draws regional guidance" in line and not (tmp_path / "y").exists(), line
    seen.clear()  # a prompt of two objects draws regional guidance, which it stops (its tokenizer knows "right")
    from conftest import TINY_CAPTIONS, build_tiny_folder

    knows = build_tiny_folder(tmp_path / "knows", captions=TINY_CAPTIONS + ["a pink tree on the right and a cat"])
    r = run("generate", "a red bird and a blue fish", "--guidance", "1", "--guidance-stop", "0.5",
            "--candidates", "1", "--weights", knows, "--out", tmp_path / "z", "-q")
    assert r.exit_code == 0 and set(seen) == {0.5}, r.stderr
    # A file of both kinds: the two-object line draws with it; the other drew unguided, its PNG recorded it, and
    # `--from` of that PNG (no one had edited it) was refused as an edited setting. It records none now.
    (tmp_path / "mixed.txt").write_text("a red bird and a blue fish\na red bird\n")
    seen.clear()
    r = run("generate", "--prompts", tmp_path / "mixed.txt", "--guidance", "1", "--guidance-stop", "0.5",
            "--candidates", "1", "--weights", knows, "--out", tmp_path / "m", "-q")
    assert r.exit_code == 0 and seen == [0.5, None], (r.stderr, seen)
    two, one = (Path(p) for p in r.stdout.split())
    assert read_png_text(two)["guidance_stop"] == "0.5" and "guidance_stop" not in read_png_text(one)
    for made in (two, one):
        again = run("generate", "--from", made, "--weights", knows, "--out", tmp_path / "m2", "-q")
        assert again.exit_code == 0, again.stderr
        assert Path(again.stdout.strip()).read_bytes() == made.read_bytes()


def test_generate_keeps_candidates_of_equal_score_in_the_order_drawn(tiny_weights, tmp_path, monkeypatch):
    """--candidates N --keep N writes the candidates best first; candidates the reranker scores alike keep the
    order they were drawn in (an unstable sort put index 30 first among 40 equal scores)."""
    from t2i_cli.pipeline import TextToImage

    monkeypatch.setattr(TextToImage, "score", lambda self, images, prompt: torch.zeros(len(images)))
    r = generate(tiny_weights, tmp_path / "o", "--candidates", "40", "--keep", "40", "--quiet")
    assert r.exit_code == 0, r.stderr
    written = [Path(line) for line in r.stdout.split()]
    assert [read_png_text(p)["index"] for p in written] == [str(i) for i in range(40)]
    assert [read_png_text(p)["clip_rank"] for p in written] == [str(i) for i in range(1, 41)]


@pytest.mark.parametrize("args, named", [
    (["generate", "a red caf\udce9"], "PROMPT is not UTF-8 text (it holds the byte 0xe9)"),
    (["generate", "a red bird", "--negative", "\udcff"], "--negative is not UTF-8 text (it holds the byte 0xff)"),
    (["vary", "x.png", "--prompt", "caf\udce9"], "--prompt is not UTF-8 text"),
    (["rerank", ".", "--prompt", "caf\udce9"], "--prompt is not UTF-8 text"),
])
def test_text_that_is_not_utf8_is_refused_in_one_line(args, named):
    """A prompt typed in a Latin-1 terminal reaches Python as lone surrogates: the tokenizer failed on them, an
    internal error ("TextInputSequence must be str")."""
    from conftest import one_line_failure, run

    line = one_line_failure(run(*args), 2)
    assert named in line and "UTF-8" in line, line


def test_utf8_bytes_read_under_an_ascii_locale_are_read_as_utf8(tiny_weights, tmp_path):
    """Under LC_ALL=POSIX (without Python's UTF-8 mode) "a red bïrd" reaches Python as surrogates of its UTF-8
    bytes: it was refused as not UTF-8; it is the prompt it was typed as."""
    r = run("generate", "a red b\udcc3\udcafrd", "--weights", tiny_weights, "--out", tmp_path / "o", "--candidates",
            "1", "-q")
    assert r.exit_code == 0, r.stderr
    assert read_png_text(Path(r.stdout.strip()))["prompt"] == "a red b\u00efrd"


def test_a_data_folder_whose_name_is_not_utf8_previews(tmp_path):
    """Its name went into the sheet's PNG text, which UTF-8 cannot hold: an internal error (UnicodeEncodeError)."""
    from PIL import Image

    from conftest import run

    folder = tmp_path / "caf\udce9"  # the bytes b"caf\xe9" on disk
    folder.mkdir()
    Image.new("RGB", (32, 32), (200, 30, 30)).save(folder / "a.png")
    (folder / "a.txt").write_text("a red square")
    r = run("data", "preview", folder, "--out", tmp_path / "sheet.png")
    assert r.exit_code == 0, r.stderr
    with Image.open(tmp_path / "sheet.png") as im:
        assert "caf\\udce9" in im.text["source"]


def test_paths_with_terminal_escapes_are_printed_escaped(tiny_weights, tmp_path):
    """rerank's and data's lines named files raw: a folder named with ESC [7m switched the terminal to reverse
    video (generate already escaped its paths)."""
    from conftest import run

    folder = tmp_path / "esc\x1b[7m"
    r = run("generate", "a red bird", "--n", "2", "--weights", tiny_weights, "--out", folder, "-q")
    assert r.exit_code == 0 and "\x1b" not in r.stdout, r.stdout
    r = run("rerank", folder, "--top", "1", "--link-best", "--weights", tiny_weights, "-q")
    assert r.exit_code == 0, r.stderr
    assert "\x1b" not in r.stdout and "esc\\x1b[7m" in r.stdout, r.stdout
    r = run("data", "world", "--n", "2", "--side", "16", "--out", tmp_path / "w\x1b[31m")
    assert r.exit_code == 0 and "\x1b" not in r.stdout and "w\\x1b[31m" in r.stdout, r.stdout


@pytest.mark.parametrize("checkout", [True, False])
def test_no_shipped_weights_says_how_to_give_some(tmp_path, monkeypatch, checkout):
    """After `pip install .` (no weights beside the package) t2i said to run `make weights` (there is no Makefile,
    and it trains into runs/default/weights anyway) about a folder inside site-packages, and never named
    T2I_WEIGHTS."""
    from t2i_cli import cli, files

    root = tmp_path / "site"
    (root / "weights").mkdir(parents=True)
    if checkout:
        (root / "pyproject.toml").write_text("")
    monkeypatch.setattr(cli, "REPO_WEIGHTS", root / "weights")
    monkeypatch.setattr(files, "REPO_WEIGHTS", root / "weights")  # (what files.shipped_weights looks in)
    monkeypatch.delenv("T2I_WEIGHTS", raising=False)
    line = one_line_failure(run("generate", "a red bird", "--out", tmp_path / "out"), 1)
    assert "--weights DIR" in line and "T2I_WEIGHTS=DIR" in line, line
    assert ("git checkout -- weights" in line) == checkout and ("this install" in line) != checkout, line
    monkeypatch.setenv("T2I_WEIGHTS", str(tmp_path / "nowhere"))
    line = one_line_failure(run("generate", "a red bird", "--out", tmp_path / "out"), 1)
    assert "does not exist" in line and "unset it" not in line, line


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_the_makefile_keeps_a_venvs_torch_record_only_while_the_venv_is_there(tmp_path):
    """`make TORCH_SPEC=... TORCH_INDEX=...` records the torch a venv got beside it, so that a plain `make test`
    keeps it; the record outlived a deleted venv, and a fresh `make demo` installed the old GPU torch again."""
    shutil.copy(Path(SRC).parent / "Makefile", tmp_path / "Makefile")
    (tmp_path / ".venv-torch-spec").write_text("torch==9.9\n")
    (tmp_path / ".venv-torch-index").write_text("--index-url=https://example.invalid/cu\n")

    default = re.search(r"^TORCH_SPEC \?= (\S+)$", (tmp_path / "Makefile").read_text(), re.M).group(1)
    env = {k: v for k, v in os.environ.items() if k not in ("TORCH_SPEC", "TORCH_INDEX", "VENV", "MAKEFLAGS")}

    def settings(*args: str) -> str:
        r = subprocess.run(["make", "-s", "help", *args], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                           env=env)
        assert r.returncode == 0, r.stderr
        return r.stdout.splitlines()[-1]

    assert settings().startswith(f"TORCH_SPEC={default} TORCH_INDEX= PYTHON"), settings()
    (tmp_path / ".venv").mkdir()
    recorded = "TORCH_SPEC=torch==9.9 TORCH_INDEX=--index-url=https://example.invalid/cu PYTHON"
    assert settings().startswith(recorded), settings()
    assert settings("TORCH_SPEC=torch==1.0").startswith("TORCH_SPEC=torch==1.0 TORCH_INDEX=--index-url=https://ex")


def test_a_path_given_as_an_empty_name_is_named_as_given(tiny_weights, tmp_path):
    """`--image ""`, `vary ""` and the like said "error: . is a folder; give an image file" (a Path reads '' as
    the current folder), and `eval --data ""` looked for pictures in the current folder."""
    for args, named in ((["generate", "a red bird", "--image", ""], "--image"),
                        (["generate", "a red bird", "--image=", "--mask", "m.png"], "--image"),
                        (["generate", "--from", ""], "--from"), (["generate", "a red bird", "--out", ""], "--out"),
                        (["generate", "a red bird", "--weights", ""], "--weights"), (["vary", ""], "SOURCE"),
                        (["rerank", ""], "FOLDER"), (["export", str(tmp_path), "", "--to", "x"], "RUN"),
                        (["train", "--resume", ""], "--resume"),
                        (["eval", "--seed", "0", "--seed", "1", "--json", ""], "--json")):
        line = one_line_failure(run(*args), 2)
        assert line.startswith(f"error: {named} is given an empty file name; give a path"), (args, line)
    line = one_line_failure(run("vary", "--bogus", "", "x.png"), 2)  # an unknown option is named, not the ''
    assert "--bogus" in line and "empty file name" not in line, line
    for args in (["eval", "--data", "", "--weights", tiny_weights], ["data", "preview", "", "--out",
                                                                       tmp_path / "p.png"]):
        line = one_line_failure(run(*args), 1)
        assert line.startswith("error: the data source is an empty name; give a folder"), line
    assert not (tmp_path / "p.png").exists()


def test_eval_judge_that_is_not_a_file_and_info_of_an_escaped_folder_name(tiny_weights, tmp_path):
    """`eval --judge FOLDER` (or a device) said the path "does not exist"; `info` printed a folder's name with
    its terminal escapes raw (its --json escaped them)."""
    for judge in (tmp_path, Path("/dev/null")):
        line = one_line_failure(run("eval", "--n", "1", "--judge", judge, "--weights", tiny_weights), 2)
        assert f"--judge {judge} is not a file; give a judge's safetensors file" in line, line
    odd = tmp_path / "w\x1b[31mred"
    shutil.copytree(tiny_weights, odd)
    r = run("info", "--weights", odd)
    assert r.exit_code == 0 and "\x1b" not in r.stdout and "w\\x1b[31mred" in r.stdout, r.stdout


def test_data_world_stopped_by_sigterm_keeps_whole_scenes_and_says_so(tmp_path):
    """SIGTERM ended `t2i data world` silently (exit 143), leaving a temporary file and a picture without its
    spec; it stops as Ctrl-C does now, each scene's three files written whole or not at all."""
    import os
    import signal
    import time

    out = tmp_path / "w"
    proc = subprocess.Popen([sys.executable, "-m", "t2i_cli", "data", "world", "--n", "5000", "--side", "128",
                             "--out", str(out), "-q"], env={**os.environ, "PYTHONPATH": SRC},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and len(list(out.glob("*.json"))) < 3:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and err.startswith("interrupted:"), (proc.returncode, err)
    files = sorted(p.name for p in out.iterdir())
    assert not [f for f in files if f.startswith(".")], files
    stems = {f.rsplit(".", 1)[0] for f in files}
    assert len(files) == 3 * len(stems) and 3 <= len(stems) < 5000, files[-6:]


def test_eval_of_weights_without_a_reranker_says_it_draws_once(tmp_path):
    """`t2i eval` of a folder without clip.safetensors drew one image a prompt where the default is the best of
    4, silently (generate says so); `eval --data` there printed the footnote of CLIP rows it did not show."""
    from conftest import build_tiny_folder

    folder = build_tiny_folder(tmp_path / "w", with_clip=False)
    r = run("eval", "--n", "1", "--weights", folder)
    assert r.exit_code == 0, r.stderr
    assert [ln for ln in r.stderr.splitlines() if ln.startswith("warning:") and "clip.safetensors" in ln] == [
        f"warning: {folder} has no clip.safetensors, so each prompt is drawn once, not the best of 4 (--candidates "
        f"1 asks for one and silences this)"], r.stderr
    assert "candidates 1" in r.stdout
    assert "clip.safetensors" not in run("eval", "--n", "1", "--candidates", "1", "--weights", folder).stderr
    from PIL import Image

    data = tmp_path / "data"
    data.mkdir()
    for i in range(30):
        Image.new("RGB", (16, 16), (i * 8, 90, 200 - i * 5)).save(data / f"p{i}.png")
        (data / f"p{i}.txt").write_text("a red bird\n")
    r = run("eval", "--data", data, "--n", "2", "--weights", folder)
    assert r.exit_code == 0 and "t2i's own CLIP embeddings" not in r.stdout, r.stdout
    assert "no CLIP cosine or distance (and no picture is drawn" in r.stderr, r.stderr
    r = run("eval", "--data", data, "--n", "2", "--weights", folder, "-q")  # --quiet: no warnings
    assert r.exit_code == 0 and r.stderr == "", r.stderr


def test_keep_alone_writes_the_best_of_the_default_candidates(tiny_weights, tmp_path):
    """`--keep 2` alone was refused ("--keep needs --candidates N") though generate draws 4 candidates by
    default: it writes the best 2 of those 4, the same files as `--candidates 4 --keep 2`."""
    a = run("generate", "a red bird", "--keep", "2", "--weights", tiny_weights, "--out", tmp_path / "a")
    b = run("generate", "a red bird", "--candidates", "4", "--keep", "2", "--weights", tiny_weights, "--out",
            tmp_path / "b")
    assert a.exit_code == 0 and b.exit_code == 0, a.stderr + b.stderr
    got, want = pngs(tmp_path / "a"), pngs(tmp_path / "b")
    assert len(got) == 2 and [p.name for p in got] == [p.name for p in want]
    assert [p.read_bytes() for p in got] == [p.read_bytes() for p in want]
    assert read_png_text(got[0])["n"] == "4"


def test_eval_whose_stderr_is_no_terminal_says_its_progress_in_plain_lines(tiny_weights, tmp_path, monkeypatch):
    """An eval takes 10-20 minutes; into a log file it printed nothing until its table: a plain line every
    PLAIN_PROGRESS_EVERY seconds says the prompts drawn of all, the rate and the time left (-q: none)."""
    from t2i_cli import cli

    monkeypatch.setattr(cli, "PLAIN_PROGRESS_EVERY", 0.0)
    r = run("eval", "--n", "1", "--candidates", "1", "--weights", tiny_weights, "--json", tmp_path / "a.json")
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("eval ")]
    assert r.exit_code == 0 and lines and lines[-1].startswith("eval heldout: prompt 7/7 (100%)"), r.stderr
    r = run("eval", "--n", "1", "--candidates", "1", "--weights", tiny_weights, "--json", tmp_path / "b.json", "-q")
    assert r.exit_code == 0 and not [ln for ln in r.stderr.splitlines() if ln.startswith("eval ")], r.stderr


@pytest.mark.parametrize("command", [[], ["data"], ["generate"], ["train"], ["eval"], ["rerank"],
                                     ["data", "preview"]])
def test_help_names_every_option_whole_at_80_columns(command):
    """At 80 columns (and whenever piped) Rich's option table cut names ("--finetune-decode…", "--image-side,--im…")
    and squeezed each description into ~20 characters: every option of the command is named whole, no line is
    wider than the terminal, and a group lists each command with its whole summary (click's cut each at one line
    with "...")."""
    import typer

    from t2i_cli.cli import app

    cmd = typer.main.get_command(app)
    for name in command:
        cmd = cmd.commands[name]
    r = subprocess.run([sys.executable, "-m", "t2i_cli", *command, "--help"], capture_output=True, text=True,
                       timeout=60, env={**os.environ, "COLUMNS": "80", "PYTHONPATH": SRC})
    assert r.returncode == 0 and "…" not in r.stdout, r.stdout
    assert max(len(line) for line in r.stdout.splitlines()) <= 80, r.stdout
    for param in cmd.params:
        for opt in [*param.opts, *param.secondary_opts]:
            if opt.startswith("--"):
                assert re.search(rf"(^|[\s,/]){re.escape(opt)}([\s,/=]|$)", r.stdout, re.M), (opt, r.stdout)
    flat = " ".join(r.stdout.split())
    for sub in getattr(cmd, "commands", {}).values():
        summary = " ".join(sub.help.split("\n\n")[0].split())
        assert summary and summary in flat, (summary, r.stdout)


def test_eval_of_weights_that_do_not_know_the_worlds_words_says_so(tmp_path):
    """Weights trained on a user's pictures scored 0.0% on every world task with no hint why: eval names the
    world's words their tokenizer lacks and points to `eval --data`; weights that know them get no such line."""
    from conftest import build_tiny_folder

    mine = build_tiny_folder(tmp_path / "mine", with_clip=False)  # a tokenizer of six captions of other words
    r = run("eval", "--n", "1", "--candidates", "1", "--weights", mine)
    said = [ln for ln in r.stderr.splitlines() if "of the world's words are not in" in ln]
    assert r.exit_code == 0 and len(said) == 1 and "`t2i eval --data FOLDER`" in said[0], r.stderr
    from t2i_cli.weights import load_tokenizer
    from t2i_cli.world.evaluate import unknown_words

    shipped = load_tokenizer(Path(__file__).resolve().parents[1] / "weights" / "tokenizer.json")
    assert unknown_words(shipped, 24, 50, 0) == [] and unknown_words(shipped, 24, 50, 1) == []  # no line for it
    assert "brown" in unknown_words(load_tokenizer(mine / "tokenizer.json"), 12, 5, 0)


# A setting of every SamplingConfig field but use_cache, none of them its default (regional with the regions it drew)
NOT_DEFAULT = {"temperature": 0.75, "top_k": 7, "top_p": 0.875, "guidance": 2.5, "guidance_start": 4.0,
               "guidance_stop": 0.5, "jacobi": 3, "regional": 1.5}


def test_every_sampling_setting_a_png_records_is_read_back_by_from(tmp_path):
    """A sampling setting that provenance() writes but recorded_settings() does not read is redrawn at its default
    by --from, other pixels without a word (a researcher's new knob did just that). Every field round-trips; a new
    field fails here until it is added to NOT_DEFAULT (and read back)."""
    from dataclasses import asdict, fields

    from t2i_cli.outputs import provenance, recorded_settings, write_image
    from t2i_cli.pipeline import Generated
    from t2i_cli.sampling import SamplingConfig

    assert {f.name for f in fields(SamplingConfig)} - {"use_cache"} == set(NOT_DEFAULT)
    default = SamplingConfig()
    assert all(getattr(default, k) != v for k, v in NOT_DEFAULT.items())
    g = Generated(torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(0)), "a red bird", 1)
    for apart in ("jacobi", "guidance_stop"):  # the two do not combine: each is read back beside all the rest
        sampling = SamplingConfig(**{k: v for k, v in NOT_DEFAULT.items() if k != apart})
        regions = {"regional": str(sampling.regional), "regions": json.dumps([["left", "a red bird"]])}
        path = write_image(g, tmp_path, provenance(g, 5, 2, sampling, "0" * 16, made_from=regions))
        assert asdict(recorded_settings(path).sampling) == asdict(sampling), apart


def test_from_refuses_a_png_that_records_a_setting_it_does_not_know(tiny_weights, tmp_path):
    """A PNG drawn by a t2i with one more sampling knob (min_p) was redrawn without it: other pixels, no warning.
    --from names the settings it does not know, in one line, and draws nothing; the PNG as t2i wrote it redraws."""
    from PIL import Image

    from t2i_cli.images import encode_png

    assert generate(tiny_weights, tmp_path / "a", "--n", "1", "--seed", "3").exit_code == 0
    (png,) = pngs(tmp_path / "a")
    meta = read_png_text(png)
    settings = json.loads(meta["t2i"]) | {"min_p": "0.2"}
    forked = tmp_path / "forked.png"
    with Image.open(png) as im:
        forked.write_bytes(encode_png(im.convert("RGB"), {**meta, "min_p": "0.2", "t2i": json.dumps(settings)}))
    r = run("generate", "--from", forked, "--weights", tiny_weights, "--out", tmp_path / "b")
    assert r.exit_code == 1 and not (tmp_path / "b").exists(), r.stderr
    assert one_line_failure(r) and "min_p" in r.stderr and "does not know" in r.stderr, r.stderr
    again = run("generate", "--from", png, "--weights", tiny_weights, "--out", tmp_path / "c")
    assert again.exit_code == 0, again.stderr
    for key, value in NOT_DEFAULT.items():  # every sampling setting comes from the PNG: each option is refused
        line = one_line_failure(run("generate", "--from", png, f"--{key.replace('_', '-')}", value, "--weights",
                                    tiny_weights, "--out", tmp_path / "d"), 2)
        assert f"--{key.replace('_', '-')}" in line and not (tmp_path / "d").exists(), line


def test_eval_at_a_side_where_the_judge_fails_on_real_renders_says_its_accuracies_say_little(tiny_weights, tmp_path):
    """A tiny model's 16 px eval printed accuracies as if meaningful while the judge agreed with the world's own
    renders on as little as 2% of a task's (in the table, unremarked). One warning names the tasks where the judge
    agrees or rejects wrong renders less than 90% of the time; the shipped model's eval (128 px) has none."""
    from t2i_cli.cli import JUDGE_TRUSTED, _doubtful_judge

    shipped = json.loads((Path(__file__).resolve().parents[1] / "weights" / "eval.json").read_text())
    assert _doubtful_judge(shipped["runs"]) == []
    fine = {"judge_validation": {"counting": {"agreement": 0.95, "rejects_wrong": 1.0},
                                 "colours": {"agreement": 1.0, "rejects_wrong": 1.0}}}
    poor = {"judge_validation": {"counting": {"agreement": 1.0, "rejects_wrong": JUDGE_TRUSTED - 0.01},
                                 "colours": {"agreement": 1.0, "rejects_wrong": 1.0}}}
    assert _doubtful_judge([fine]) == [] and _doubtful_judge([fine, poor]) == ["counting"]
    r = run("eval", "--n", "1", "--candidates", "1", "--weights", tiny_weights, "--json", tmp_path / "e.json")
    assert r.exit_code == 0, r.stderr
    said = [ln for ln in r.stderr.splitlines() if "the judge is not to be trusted" in ln]
    runs = json.loads((tmp_path / "e.json").read_text())
    assert _doubtful_judge([runs]) and len(said) == 1 and said[0].startswith("warning: at 16 px"), r.stderr
    assert all(task in said[0] for task in _doubtful_judge([runs]))
    r = run("eval", "--n", "1", "--candidates", "1", "--weights", tiny_weights, "--quiet")
    assert r.exit_code == 0 and "trusted" not in r.stderr, r.stderr


@pytest.mark.parametrize("rank", ["0", "1"])
def test_under_torchrun_only_train_runs_and_rank_0_alone_says_what_is_wrong(tiny_weights, tmp_path, monkeypatch, rank):
    """Under a 2-process torchrun, `generate` wrote every image twice and `export` said the second time that the
    folder already held its models: every command but train is refused (exit 2). A command line that does not
    parse was said by each process; rank 0 says it alone, every process exits 2."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", rank)
    png = tmp_path / "a.png"
    from PIL import Image

    Image.new("RGB", (16, 16), (200, 30, 30)).save(png)
    for args in (["generate", "a red bird", "--weights", tiny_weights, "--out", tmp_path / "o"],
                 ["vary", png, "--weights", tiny_weights, "--out", tmp_path / "o"],
                 ["rerank", tmp_path, "--prompt", "a red bird", "--weights", tiny_weights],
                 ["eval", "--n", "1", "--weights", tiny_weights],
                 ["export", tmp_path, "--to", tmp_path / "w"],
                 ["data", "world", "--n", "2", "--out", tmp_path / "d"],
                 ["data", "preview", "--n", "2", "--out", tmp_path / "p.png"],
                 ["info", "--weights", tiny_weights],
                 ["train", "--bogus"]):
        r = run(*args)
        assert r.exit_code == 2, (args, r.stderr)
        if rank == "0":
            line = one_line_failure(r, 2)
            assert ("runs in one process, and 2 were started for it" in line) != (args[-1] == "--bogus"), line
        else:
            assert r.stderr == "", (args, r.stderr)
    assert sorted(p.name for p in tmp_path.iterdir() if p != tiny_weights) == ["a.png"]  # nothing written
