"""Every option honoured or refused, never silently ignored (session 40): each test gives an option where it would
change nothing and checks the one-line refusal, and that the same option where it acts is still taken."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from conftest import TINY_CAPTIONS, build_tiny_folder, one_line_failure, run
from t2i_cli.images import read_png_text

TWO = "a red bird and a blue fish"  # two objects in the world's grammar: regional guidance draws it with regions


@pytest.fixture(scope="module")
def regional_weights(tmp_path_factory) -> Path:
    """A tiny weights folder whose tokenizer reads the region prompts of TWO whole ("... on the left")."""
    return build_tiny_folder(tmp_path_factory.mktemp("w") / "w",
                             captions=TINY_CAPTIONS + ["a pink tree on the right and a cat"])


def _pngs(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.png")) if folder.exists() else []


def _generate(weights: Path, out: Path, *extra):
    return run("generate", "--weights", weights, "--out", out, "--device", "cpu", "--n", "1", *extra)


def test_regional_is_refused_where_no_prompt_draws_regional_guidance(regional_weights, tmp_path):
    """`--regional W` (W > 0) on a prompt without two objects, or a --prompts file of none, drew exactly as without
    it, exit 0 and nothing said; it is refused in one line (exit 2), nothing written. --regional 0 (off) is taken
    there, and --regional W still draws a two-object prompt, or a file with one such line, with regions."""
    w = regional_weights
    line = one_line_failure(_generate(w, tmp_path / "one", "--regional", "3", "a red bird"), 2)
    assert "--regional 3" in line and "this prompt has no such pair" in line and "leave --regional out" in line
    assert not (tmp_path / "one").exists()
    assert _generate(w, tmp_path / "off", "--regional", "0", "a red bird").exit_code == 0

    r = _generate(w, tmp_path / "two", "--regional", "3", TWO)
    assert r.exit_code == 0, r.stderr
    assert read_png_text(_pngs(tmp_path / "two")[0])["regional"] == "3.0"

    none, some = tmp_path / "none.txt", tmp_path / "some.txt"
    none.write_text("a red bird\ntwo green cats\n")
    some.write_text(f"a red bird\n{TWO}\n")
    line = one_line_failure(_generate(w, tmp_path / "f1", "--regional", "3", "--prompts", none), 2)
    assert "no prompt of the file has such a pair" in line
    assert _generate(w, tmp_path / "f2", "--regional", "3", "--prompts", some).exit_code == 0
    assert len(_pngs(tmp_path / "f2")) == 2


def test_vary_refuses_regional_where_its_prompt_draws_none(regional_weights, tmp_path):
    """vary --regional W of a picture whose prompt is one object (or the empty prompt) changed nothing, unsaid."""
    src = tmp_path / "src.png"
    Image.new("RGB", (16, 16), (200, 30, 30)).save(src)
    args = ["vary", src, "--weights", regional_weights, "--device", "cpu", "--n", "1", "--out", tmp_path / "v"]
    line = one_line_failure(run(*args, "--prompt", "a red bird", "--regional", "2"), 2)
    assert "--regional 2" in line and "this prompt has no such pair" in line
    assert not (tmp_path / "v").exists()
    r = run(*args, "--prompt", TWO, "--regional", "2")
    assert r.exit_code == 0, r.stderr


def _data_folder(folder: Path, captions: list[str]) -> Path:
    folder.mkdir()
    for i, caption in enumerate(captions):
        Image.new("RGB", (16, 16), (i * 40 % 256, 90, 7 * i % 256)).save(folder / f"p{i}.png")
        (folder / f"p{i}.txt").write_text(caption + "\n")
    return folder


def test_eval_data_refuses_regional_where_no_val_caption_draws_regions(regional_weights, tmp_path):
    """eval --data --regional W of a folder whose val captions hold no two objects drew every picture as without
    it; refused before any picture is read (no --images folder made). With a caption of two objects it is taken."""
    one = _data_folder(tmp_path / "one", ["a red bird"] * 4)
    args = ["eval", "--weights", regional_weights, "--device", "cpu", "--n", "2", "-q"]
    line = one_line_failure(run(*args, "--data", one, "--regional", "2", "--images", tmp_path / "i"), 2)
    assert "no val caption has such a pair" in line
    assert not (tmp_path / "i").exists()
    two = _data_folder(tmp_path / "two", [TWO] * 4)
    r = run(*args, "--data", two, "--regional", "2")
    assert r.exit_code == 0, r.stderr


def test_temperature_and_top_p_are_refused_beside_top_k_1(regional_weights, tmp_path):
    """--top-k 1 keeps the most likely code alone, so --temperature and --top-p beside it drew the very bytes
    they would without them, unsaid; refused on generate, vary and eval (exit 2, nothing written). Their neutral
    values (1) are taken, and so is a temperature with --top-k above 1."""
    w = regional_weights
    line = one_line_failure(_generate(w, tmp_path / "a", "--top-k", "1", "--temperature", "5", "--top-p", "0.5",
                                      "a red bird"), 2)
    assert "--temperature 5 and --top-p 0.5 change nothing with --top-k 1" in line, line
    assert not (tmp_path / "a").exists()
    line = one_line_failure(_generate(w, tmp_path / "b", "--top-k", "1", "--top-p", "0.5", "a red bird"), 2)
    assert line.startswith("error: --top-p 0.5 changes nothing with --top-k 1"), line
    greedy = _generate(w, tmp_path / "c", "--top-k", "1", "--temperature", "1", "--top-p", "1", "a red bird")
    assert greedy.exit_code == 0, greedy.stderr
    assert _generate(w, tmp_path / "d", "--top-k", "2", "--temperature", "5", "a red bird").exit_code == 0

    src = tmp_path / "src.png"
    Image.new("RGB", (16, 16), (200, 30, 30)).save(src)
    line = one_line_failure(run("vary", src, "--weights", w, "--device", "cpu", "--n", "1", "--out", tmp_path / "v",
                                "--top-k", "1", "--temperature", "0.5"), 2)
    assert "--temperature 0.5 changes nothing with --top-k 1" in line
    line = one_line_failure(run("eval", "--weights", w, "--device", "cpu", "--n", "1", "--candidates", "1",
                                "--top-k", "1", "--top-p", "0.9", "--json", tmp_path / "e.json"), 2)
    assert "--top-p 0.9 changes nothing with --top-k 1" in line and not (tmp_path / "e.json").exists()


def test_data_preview_refuses_list_skipped_of_the_world(tmp_path):
    """`data preview world --list-skipped` printed nothing more (the world leaves no file out) and exit 0, as if
    nothing had been asked; refused before the sheet is written. A folder's list is still printed."""
    line = one_line_failure(run("data", "preview", "world:val", "--list-skipped", "--n", "1", "--side", "16",
                                "--out", tmp_path / "w.png", "-q"), 2)
    assert "--list-skipped" in line and "the world" in line
    assert not (tmp_path / "w.png").exists()
    data = tmp_path / "d"
    data.mkdir()
    for i in range(2):
        Image.new("RGB", (16, 16), (i * 90, 20, 20)).save(data / f"p{i}.png")
        (data / f"p{i}.txt").write_text("a red bird\n")
    (data / "loose.png").write_bytes((data / "p0.png").read_bytes())  # no caption: skipped, and listed
    r = run("data", "preview", data, "--list-skipped", "--n", "1", "--side", "16", "--out", tmp_path / "d.png", "-q")
    assert r.exit_code == 0, r.stderr
    assert "loose.png" in r.stdout and (tmp_path / "d.png").is_file()


def test_export_refuses_half_of_a_tokenizer_alone(tmp_path):
    """`export TOKENIZER_RUN --to W --half` wrote tokenizer.json as ever (it holds no float tensors) and said
    nothing of --half; refused before the folder is made. Beside a run with a model, --half is taken."""
    data = tmp_path / "d"
    data.mkdir()
    for i, caption in enumerate(TINY_CAPTIONS):
        Image.new("RGB", (16, 16), (i * 40, 20, 20)).save(data / f"p{i}.png")
        (data / f"p{i}.txt").write_text(caption + "\n")
    tok = tmp_path / "tok"
    r = run("train", "--stage", "tokenizer", "--data", data, "--out", tok, "--preset", "tiny", "-q")
    assert r.exit_code == 0, r.stderr
    line = one_line_failure(run("export", tok, "--to", tmp_path / "w", "--half"), 2)
    assert "--half" in line and "tokenizer.json holds none" in line, line
    assert not (tmp_path / "w").exists()
    assert run("export", tok, "--to", tmp_path / "w").exit_code == 0  # without --half: exported
    assert (tmp_path / "w" / "tokenizer.json").is_file()


def test_guidance_stop_before_the_first_code_an_image_prompt_draws_is_refused(regional_weights, tmp_path):
    """`--image SRC --keep-top 0.5 --guidance-stop 0.5` stopped guidance where the first drawn code is: every code
    was drawn unguided, so --guidance (and a --negative) drew the same bytes whatever their values, exit 0. It is
    refused (exit 2, nothing written), as is a mask whose redrawn cells all come after the stop; a stop past the
    first drawn code is taken."""
    w = regional_weights
    src, mask = tmp_path / "src.png", tmp_path / "mask.png"
    Image.new("RGB", (16, 16), (200, 30, 30)).save(src)
    m = Image.new("L", (16, 16), 0)
    m.paste(255, (8, 8, 16, 16))  # the bottom-right quarter: its cells come after the first half of the codes
    m.save(mask)
    line = one_line_failure(_generate(w, tmp_path / "a", "--image", src, "--keep-top", "0.5", "--guidance-stop",
                                      "0.5", "a red bird"), 2)
    assert "--guidance-stop 0.5 stops guidance at code" in line and "give --guidance-stop above 0.5" in line, line
    assert not (tmp_path / "a").exists()
    line = one_line_failure(_generate(w, tmp_path / "b", "--image", src, "--mask", mask, "--redraws", "1",
                                      "--guidance-stop", "0.25", "a red bird"), 2)
    assert "--guidance-stop 0.25" in line and "draws no code before" in line, line
    r = _generate(w, tmp_path / "c", "--image", src, "--keep-top", "0.5", "--guidance-stop", "0.9", "a red bird")
    assert r.exit_code == 0, r.stderr
    assert read_png_text(_pngs(tmp_path / "c")[0])["guidance_stop"] == "0.9"


def test_a_patience_that_cannot_stop_a_new_run_is_said(tmp_path):
    """`train --patience 2` on a run whose --sample-every leaves it two validations or fewer to look at (a short
    run at the preset's 500) trained every step as without it, unsaid; it warns once (in metrics.jsonl too), as a
    decay --ema cannot reach is said. A run with enough validations says nothing of it."""
    import json

    data = tmp_path / "d"
    data.mkdir()
    for i in range(24):  # (a twentieth, at least one, is held out for validation)
        Image.new("RGB", (16, 16), (i * 10, 20, 200 - i * 8)).save(data / f"p{i}.png")
        (data / f"p{i}.txt").write_text(TINY_CAPTIONS[i % len(TINY_CAPTIONS)] + "\n")
    args = ["train", "--stage", "dvae", "--preset", "tiny", "--data", data, "--workers", "0", "--device", "cpu", "-q",
            "--steps", "4", "--patience", "2"]
    r = run(*args, "--out", tmp_path / "short")
    assert r.exit_code == 0, r.stderr
    said = [line for line in r.stderr.splitlines() if "--patience 2" in line]
    assert len(said) == 1 and "looks at 0 validations: it cannot stop early" in said[0], r.stderr
    assert "give --sample-every at most 1 for it to act" in said[0], said
    logged = [json.loads(line) for line in (tmp_path / "short" / "metrics.jsonl").read_text().splitlines()]
    assert any("--patience 2" in row.get("warning", "") for row in logged)
    r = run(*args, "--sample-every", "1", "--out", tmp_path / "enough")
    assert r.exit_code == 0, r.stderr
    assert "cannot stop early" not in r.stderr, r.stderr
