"""Session 46, hG: the README checked command by command against the code; the fixes its reading found."""

from __future__ import annotations

from pathlib import Path


def test_a_greedy_top_p_is_named_by_its_flag_on_every_command(tmp_path: Path):
    """A --top-p at or below 1/codebook is greedy (as --top-k 1 is), and drawing copies with it is refused. generate's
    own check said '--top-p', but vary's --n, eval's --candidates and --draws, and generate --mask's --redraws reach
    the rule through the Python API's check, whose words were its keyword: 'a top_p at or below 1/512 ...; give a
    top_p above 1/512', and 'build the image prompt with --redraws 1' (ImagePrompt's build, not the command's)."""
    import numpy as np
    from PIL import Image

    from conftest import build_tiny_folder, one_line_failure, run
    from t2i_cli.errors import UsageError
    from t2i_cli.pipeline import TextToImage
    from t2i_cli.sampling_config import SamplingConfig

    weights = build_tiny_folder(tmp_path / "w")
    common = ["--top-p", "1e-9", "--seed", "0", "--weights", weights, "--threads", "1"]
    src = tmp_path / "src.png"
    Image.fromarray(np.full((32, 32, 3), 200, dtype=np.uint8)).save(src)
    mask = tmp_path / "mask.png"
    pixels = np.zeros((32, 32), dtype=np.uint8)
    pixels[:8, :8] = 255  # a region with kept cells after it, so --redraws compares
    Image.fromarray(pixels).save(mask)
    lines = [
        one_line_failure(run("vary", src, "--strength", "1", "--n", "2", "--prompt", "a red bird", *common,
                             "--out", tmp_path / "v"), 2),
        one_line_failure(run("eval", "--candidates", "2", "--n", "1", "-q", *common), 2),
        one_line_failure(run("eval", "--data", "world", "--draws", "2", "--n", "1", "-q", *common), 2),
        one_line_failure(run("generate", "a red bird", "--image", src, "--mask", mask, "--redraws", "2", *common,
                             "--out", tmp_path / "g"), 2),
    ]
    for line in lines:
        assert ("with --top-p 1e-09 draws" in line or "with --top-p 1e-09 and --strength 1 draws" in line) \
            and "a --top-p at or below 1/" in line, line
        assert "a --top-p above 1/" in line and "top_p" not in line, line
    assert "leave --redraws out" in lines[3] and "build the image prompt" not in lines[3], lines[3]  # (as --top-k 1)
    # the Python API keeps its keywords
    pipe = TextToImage.from_folder(weights)
    request = pipe.request("a red bird", SamplingConfig(top_p=1e-9))
    try:
        next(pipe.batches(request, 2, 0))
    except UsageError as e:
        said = str(e)
    else:
        raise AssertionError("n=2 of a greedy top_p was drawn")
    assert "n=2 with top_p=1e-09" in said and "a top_p above 1/" in said and "--top-p" not in said, said


def test_vary_help_says_a_greedy_top_p_draws_one_variation_at_strength_1():
    """Since 875b281 a --top-p at or below 1/codebook, like --top-k 1, draws one variation by default where every cell
    is redrawn; vary --help's --n named --top-k 1 alone."""
    from conftest import run

    r = run("vary", "--help")
    assert r.exit_code == 0, r.stdout
    said = " ".join(r.stdout.split())
    assert "1 with --top-k 1, or a --top-p up to 1/the codebook's size, at a --strength that redraws" in said, said


def test_eval_draws_one_per_prompt_at_a_greedy_top_p_as_at_top_k_1(tmp_path: Path):
    """README: `t2i eval --top-k 1` draws one per prompt, and so does a --top-p at or below 1/codebook. eval's default
    --candidates 4 was not lowered for such a top-p: `t2i eval --top-p 0.001` was refused as '--candidates 4 with
    --top-p 0.001 draws 4 copies of one image; ask for --candidates 1', a flag the user never gave."""
    import json

    from conftest import build_tiny_folder, one_line_failure, run

    weights = build_tiny_folder(tmp_path / "w")
    assert (weights / "clip.safetensors").is_file()  # (so the default would be the best of 4)
    common = ["--top-p", "1e-9", "--n", "1", "--seed", "0", "--weights", weights, "--threads", "1", "-q"]
    r = run("eval", *common, "--json", tmp_path / "e.json")
    assert r.exit_code == 0, (r.stdout, r.stderr, r.exception)
    assert json.loads((tmp_path / "e.json").read_text())["candidates"] == 1
    line = one_line_failure(run("eval", *common, "--candidates", "2"), 2)  # asked for: still refused
    assert line.startswith("error: --candidates 2 with --top-p 1e-09 draws 2 copies of one image"), line


def test_generate_help_says_a_greedy_top_p_draws_one_candidate():
    """generate --candidates' help gave its default of 4 as lowered by --n, --top-k 1 or an image prompt alone; a
    --top-p at or below 1/codebook (greedy) draws one too, and above 1 is refused with it (53f5650)."""
    from conftest import run

    r = run("generate", "--help")
    assert r.exit_code == 0, r.stdout
    said = " ".join(r.stdout.split())
    assert "neither --n, --top-k 1 (or a --top-p up to 1/the codebook's size) nor an image prompt" in said, said


def test_inpainting_at_a_greedy_top_p_draws_once_by_default_as_at_top_k_1(tmp_path: Path):
    """README: --redraws K (default 4) ... 'so does --top-k 1, whose K draws are one image' (the default draws once).
    A --top-p at or below 1/codebook is as greedy, but its default --redraws 4 was refused: 'error: --redraws 4 with
    --top-p ... draws each image 4 times alike', though --redraws was never given."""
    import numpy as np
    from PIL import Image

    from conftest import build_tiny_folder, one_line_failure, run

    weights = build_tiny_folder(tmp_path / "w")
    src = tmp_path / "src.png"
    Image.fromarray(np.full((32, 32, 3), 200, dtype=np.uint8)).save(src)
    mask = tmp_path / "mask.png"
    pixels = np.zeros((32, 32), dtype=np.uint8)
    pixels[:8, :8] = 255  # kept cells after the region: the default would redraw 4 times
    Image.fromarray(pixels).save(mask)
    common = ["a red bird", "--image", src, "--mask", mask, "--seed", "0", "--weights", weights, "--threads", "1"]
    r = run("generate", *common, "--top-k", "1", "--out", tmp_path / "k")
    assert r.exit_code == 0, (r.stdout, r.stderr)
    r = run("generate", *common, "--top-p", "1e-9", "--out", tmp_path / "p")
    assert r.exit_code == 0, (r.stdout, r.stderr)
    drawn = sorted((tmp_path / "p").glob("*.png"))
    assert len(drawn) == 1 and Image.open(drawn[0]).text["redraws"] == "1"
    assert Image.open(drawn[0]).text["redraws"] == Image.open(next((tmp_path / "k").glob("*.png"))).text["redraws"]
    line = one_line_failure(run("generate", *common, "--top-p", "1e-9", "--redraws", "2", "--out", tmp_path / "q"), 2)
    assert line.startswith("error: --redraws 2 with --top-p 1e-09 draws 2 copies of one image"), line  # (as --top-k
    # 1's: refused before the load, in the same words)
    said = " ".join(run("generate", "--help").stdout.split())  # (and --redraws' help says so)
    assert "--top-k 1, or a --top-p up to 1/the codebook's size, draws once" in said, said


def test_keep_alone_at_a_greedy_top_p_is_said_and_drawn_as_at_top_k_1(tmp_path: Path):
    """--keep K alone keeps the best K of the default 4 candidates. At --top-k 1, --keep 2 is refused naming --keep
    and --keep 1 draws the one image; at a --top-p at or below 1/codebook (as greedy) --keep 2 was refused as
    '--candidates 4 ...; leave --candidates out', a flag not given, and --keep 1 was refused the same way."""
    from PIL import Image

    from conftest import build_tiny_folder, one_line_failure, run

    weights = build_tiny_folder(tmp_path / "w")
    common = ["a red bird", "--seed", "0", "--weights", weights, "--threads", "1"]
    line = one_line_failure(run("generate", *common, "--top-p", "1e-9", "--keep", "2", "--out", tmp_path / "a"), 2)
    assert line.startswith("error: --keep 2 with --top-p 1e-09 draws 2 copies of one image"), line
    assert "leave --keep out for one image" in line and "--candidates" not in line, line
    for option, out in (("--top-k", "k"), ("--top-p", "p")):
        r = run("generate", *common, option, "1" if option == "--top-k" else "1e-9", "--keep", "1", "--out",
                tmp_path / out)
        assert r.exit_code == 0, (r.stdout, r.stderr)
    drawn = [sorted((tmp_path / out).glob("*.png")) for out in ("k", "p")]
    assert [len(d) for d in drawn] == [1, 1]
    assert Image.open(drawn[1][0]).text["n"] == Image.open(drawn[0][0]).text["n"] == "1"
    line = one_line_failure(run("generate", *common, "--top-p", "1e-9", "--candidates", "4", "--keep", "1", "--out",
                                tmp_path / "c"), 2)  # (--candidates asked for: still refused by its name)
    assert line.startswith("error: --candidates 4 with --top-p 1e-09 draws 4 copies of one image"), line


def test_a_temperature_or_top_k_beside_a_greedy_top_p_is_refused_as_beside_top_k_1(tmp_path: Path):
    """--temperature (or --top-p) beside --top-k 1 is refused: it changes nothing. A --top-p at or below 1/codebook
    keeps the most likely code alone too, so a --temperature or a --top-k above 1 beside it drew the same codes,
    unsaid (generate 'a red bird' --top-p 0.001 --temperature 0.5 wrote the pixels of the same command without it).
    Refused on generate, vary and eval (the world's tasks and --data); the neutral values (1, 0) are taken."""
    import numpy as np
    from PIL import Image

    from conftest import build_tiny_folder, one_line_failure, run

    weights = build_tiny_folder(tmp_path / "w")
    common = ["--top-p", "1e-9", "--seed", "0", "--weights", weights, "--threads", "1"]
    src = tmp_path / "src.png"
    Image.fromarray(np.full((32, 32, 3), 200, dtype=np.uint8)).save(src)
    lines = [
        one_line_failure(run("generate", "a red bird", "--temperature", "0.5", *common, "--out", tmp_path / "a"), 2),
        one_line_failure(run("vary", src, "--top-k", "5", "--prompt", "a red bird", *common, "--out", tmp_path / "a"),
                         2),
        one_line_failure(run("eval", "--temperature", "2", "--top-k", "5", "--n", "1", "-q", *common), 2),
        one_line_failure(run("eval", "--data", "world", "--temperature", "2", "--n", "1", "-q", *common), 2),
    ]
    assert lines[0].startswith("error: --temperature 0.5 changes nothing with --top-p 1e-09, which at or below 1/"), \
        lines[0]
    assert lines[1].startswith("error: --top-k 5 changes nothing with --top-p 1e-09"), lines[1]
    assert lines[2].startswith("error: --temperature 2 and --top-k 5 change nothing with --top-p 1e-09"), lines[2]
    assert lines[3].startswith("error: --temperature 2 changes nothing with --top-p 1e-09"), lines[3]
    assert not (tmp_path / "a").exists()
    r = run("generate", "a red bird", "--temperature", "1", "--top-k", "0", *common, "--out", tmp_path / "b")
    assert r.exit_code == 0, (r.stdout, r.stderr)  # (the neutral values ask for nothing)
    r = run("generate", "a red bird", "--top-p", "0.5", "--temperature", "0.5", "--seed", "0", "--weights", weights,
            "--threads", "1", "--out", tmp_path / "c")
    assert r.exit_code == 0, (r.stdout, r.stderr)  # (a nucleus above 1/codebook: the temperature counts)
