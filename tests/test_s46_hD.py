"""Option and Python-API wording leftovers (session 46, hD): each defect's test fails without its fix."""

from pathlib import Path

import pytest
from PIL import Image

from conftest import one_line_failure, refused_with_the_pipe_open, run


def plain_picture(path: Path) -> Path:
    """A 16x16 picture that t2i did not draw."""
    Image.new("RGB", (16, 16), (200, 40, 40)).save(path)
    return path


@pytest.fixture
def no_load(monkeypatch):
    """Make loading a weights folder fail loudly: a refusal said before the load never reaches it."""
    from t2i_cli.pipeline import TextToImage

    def refuse(*a, **k):
        raise AssertionError("the weights were loaded before the refusal")

    monkeypatch.setattr(TextToImage, "from_folder", refuse)


def test_vary_greedy_top_p_at_strength_1_is_refused_as_top_k_1_is_before_the_load(tmp_path, tiny_weights, no_load):
    """`vary IMAGE --strength 1 --top-p 1e-9 --n 4` was refused once the weights had loaded, without the " and
    --strength 1" that the `--top-k 1` refusal says, in a mix of flag and keyword words ("a top_p at or below",
    "ask for --n 1"). Now both say the same thing, before the load (the codebook's size read from the transformer
    file's header; the tiny weights' codebook: 32 codes)."""
    src = plain_picture(tmp_path / "src.png")
    vary = ["vary", src, "--prompt", "a red bird", "--weights", tiny_weights, "--n", "4", "--out", tmp_path / "o"]
    by_k = one_line_failure(run(*vary, "--strength", "1", "--top-k", "1"), 2)
    by_p = one_line_failure(run(*vary, "--strength", "1", "--top-p", "1e-9"), 2)
    assert by_k == ("error: --n 4 with --top-k 1 and --strength 1 draws 4 copies of one image (--top-k 1 always takes "
                    "the most likely code); leave --n out for one image, or give --top-k 0 or above 1 to draw "
                    "different ones")
    assert by_p == ("error: --n 4 with --top-p 1e-09 and --strength 1 draws 4 copies of one image (a --top-p at or "
                    "below 1/32, this model's 32 codes, keeps only the most likely code); leave --n out for one "
                    "image, or give a --top-p above 1/32 (0.03125) to draw different ones")
    # a strength that rounds to every cell (0.99 of the tiny dVAE's 16): as --top-k 1's refusal says it
    by_p = one_line_failure(run(*vary, "--strength", "0.99", "--top-p", "1e-9"), 2)
    assert by_p.startswith("error: --n 4 with --top-p 1e-09 and --strength 0.99, which redraws every cell of 16, "
                           "draws 4 copies of one image (a --top-p at or below 1/32"), by_p
    assert not (tmp_path / "o").exists()


def test_generate_greedy_top_p_is_refused_before_the_weights_load(tmp_path, tiny_weights, no_load):
    """`generate "a red bird" --top-p 1e-9 --n 4` loaded the weights (the slow part of a refusal) before it said
    that the four images would be copies; the codebook's size is now read from the transformer's header."""
    line = one_line_failure(run("generate", "a red bird", "--weights", tiny_weights, "--top-p", "1e-9", "--n", "4",
                                "--out", tmp_path / "o"), 2)
    assert line.startswith("error: --n 4 with --top-p 1e-09 draws 4 copies of one image (a --top-p at or below "
                           "1/32, this model's 32 codes"), line
    line = one_line_failure(run("generate", "a red bird", "--weights", tiny_weights, "--top-p", "0.03",
                                "--candidates", "3", "--keep", "1", "--out", tmp_path / "o"), 2)
    assert line.startswith("error: --candidates 3 with --top-p 0.03 draws 3 copies"), line
    assert not (tmp_path / "o").exists()


def test_a_greedy_top_p_with_an_image_prompt_is_taken_as_top_k_1_is(tmp_path, tiny_weights, monkeypatch):
    """`generate --image SRC --mask MASK --top-p 1e-9` (no --redraws) was refused as "--redraws 4 with top_p ...",
    an option never given, where --top-k 1 draws once; a --redraws or --n given above 1 was refused only once the
    weights had loaded, in the pipeline's mixed words ("a top_p at or below ...", "ask for --n 1"). Now a greedy
    --top-p is taken as --top-k 1 is: one draw, and the refusals of --top-k 1's words before the load."""
    src = plain_picture(tmp_path / "src.png")
    mask = Image.new("L", (16, 16), 0)
    mask.paste(255, (0, 0, 8, 8))
    mask.save(tmp_path / "mask.png")
    gen = ["generate", "a red bird", "--weights", tiny_weights, "--image", src, "--top-p", "1e-9", "-q"]
    r = run(*gen, "--mask", tmp_path / "mask.png", "--out", tmp_path / "a")
    assert r.exit_code == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["a-red-bird-000.png"]
    from t2i_cli.pipeline import TextToImage

    monkeypatch.setattr(TextToImage, "from_folder", lambda *a, **k: pytest.fail("loaded before the refusal"))
    line = one_line_failure(run(*gen, "--mask", tmp_path / "mask.png", "--redraws", "2", "--out", tmp_path / "o"), 2)
    assert line == ("error: --redraws 2 with --top-p 1e-09 draws 2 copies of one image (a --top-p at or below 1/32, "
                    "this model's 32 codes, keeps only the most likely code); leave --redraws out for one image, or "
                    "give a --top-p above 1/32 (0.03125) to draw different ones")
    line = one_line_failure(run(*gen, "--n", "3", "--out", tmp_path / "o"), 2)
    assert line.startswith("error: --n 3 with --top-p 1e-09 draws 3 copies of one image") \
        and line.endswith("leave --n out for one image, or give a --top-p above 1/32 (0.03125) to draw different "
                          "ones"), line
    assert not (tmp_path / "o").exists()


def test_the_pipelines_greedy_top_p_refusal_names_the_flag_on_the_command_line():
    """The pipeline's refusal of a greedy top_p said "--top-p 1e-09" beside "a top_p at or below ..." where the
    command line spoke (SPEAKING): the flag throughout there, the keyword from Python."""
    from t2i_cli import errors
    from t2i_cli.errors import UsageError
    from t2i_cli.sampling import SamplingConfig, refuse_greedy_copies

    with pytest.raises(UsageError, match=r"^n=3 with top_p=1e-09 draws 3 copies of one image \(a top_p at or below "
                                         r"1/32, .*or give a top_p above 1/32 \(0.03125\) to draw different ones$"):
        refuse_greedy_copies(SamplingConfig(top_p=1e-9), 3, vocab=32)
    errors.SPEAKING["cli"] = True
    try:
        with pytest.raises(UsageError) as e:
            refuse_greedy_copies(SamplingConfig(top_p=1e-9), 3, vocab=32)
        assert "top_p" not in str(e.value) and "(a --top-p at or below 1/32" in str(e.value), str(e.value)
        assert "give a --top-p above 1/32" in str(e.value), str(e.value)
    finally:
        errors.SPEAKING["cli"] = False


def test_json_paths_of_a_folder_called_dash_are_as_typed(tmp_path, tiny_weights, monkeypatch):
    """`generate "a red bird" --json --out ./-` printed the absolute path (/home/me/-/a-red-bird-000.png) where
    its human line says ./-/a-red-bird-000.png and `--json --out sub` prints sub/...; `info ./- --json` said the
    folder as /home/me/-. A JSON now holds each path as the user gave it, as the human lines do."""
    import json
    import shutil

    monkeypatch.chdir(tmp_path)
    gen = ["generate", "a red bird", "--weights", tiny_weights, "--candidates", "1", "-q"]
    r = run(*gen, "--json", "--out", "./-")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["path"] == "./-/a-red-bird-000.png"
    assert (tmp_path / "-" / "a-red-bird-000.png").is_file()
    r = run(*gen, "--out", "./-")
    assert r.stdout.strip() == "./-/a-red-bird-001.png"
    r = run(*gen, "--json", "--out", "sub")
    assert json.loads(r.stdout)["path"] == "sub/a-red-bird-000.png"
    shutil.rmtree(tmp_path / "-")
    shutil.copytree(tiny_weights, tmp_path / "-")
    r = run("info", "./-", "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["folder"] == "./-"


@pytest.mark.parametrize(("model", "said"), [
    ({"n_hid": True}, "n_hid is True, not an integer"),  # (it said "true", JSON's spelling, to a Python caller)
    ({"n_hid": "8"}, "n_hid is '8', not an integer"),
    ({"pixel_eps": "x"}, "pixel_eps is 'x', not a number"),  # (it said "must be real number, not str", no key)
    ({"n_hid": 10**5000}, "n_hid is a whole number of 5,001 digits, above 1048576, the largest dimension t2i builds"),
    ({"n_hid": 2**21}, "n_hid is 2097152, above 1048576"),  # (both said "a dimension is negative or above
    # 1048576", no key)
])
def test_a_python_model_setting_refusal_names_its_key_in_python_words(model, said):
    """A TrainConfig's model={...} refused by the model's checks: a Python value said as Python spells it, and a
    whole number past a dimension's bound said with the key it was given for."""
    from t2i_cli.errors import UsageError
    from t2i_cli.stages import dvae_model_config
    from t2i_cli.train import TrainConfig

    with pytest.raises(UsageError) as e:
        dvae_model_config(TrainConfig(stage="dvae", data="world:train", model=model))
    assert str(e.value).startswith(f"cannot build the dvae model from these settings: {said}"), str(e.value)


def test_a_weights_file_config_is_still_said_in_json_words(tmp_path):
    """A model file's config is JSON, and is said so: a bool where an integer belongs is `true` there."""
    from t2i_cli.models.dvae import DVAEConfig
    from t2i_cli.weights import check_budget

    with pytest.raises(ValueError, match="^n_hid is true, not an integer$"):
        check_budget(DVAEConfig(image_side=16, n_hid=True))
    from t2i_cli.models.classifier import JudgeConfig

    with pytest.raises(ValueError, match=r"^widths holds 2097152, above 1048576, the largest dimension t2i builds$"):
        check_budget(JudgeConfig(widths=(16, 2**21)))


@pytest.mark.parametrize(("setting", "said"), [
    ({"lr": float("nan")}, "lr must be a finite number above 0 and at most 1, got nan"),
    ({"val_fraction": float("inf")}, "val_fraction must be a finite number between 0.0 and 0.5, got inf"),
    ({"weight_decay": float("nan")}, "weight_decay must be a finite number 0.0 or more, got nan"),
    ({"weight_decay": -1.0}, "weight_decay must be 0.0 or more, got -1.0"),  # (it said "between 0.0 and inf")
])
def test_a_non_finite_training_number_is_told_its_range(setting, said):
    """TrainConfig(lr=float('nan')) was refused as "lr must be a finite number, got nan; choose a value in range",
    naming no range; now the range is said."""
    from t2i_cli.errors import UsageError
    from t2i_cli.stages import check_run_config
    from t2i_cli.train import TrainConfig

    with pytest.raises(UsageError) as e:
        check_run_config(TrainConfig(stage="dvae", data="world:train", **setting))
    assert str(e.value).startswith(said), str(e.value)


XPM = "/* XPM */\nstatic char *x[] = {\n\"2 2 2 1\",\n\"a c COLOUR\",\n\"b c #0000FF\",\n\"ab\",\n\"ba\"\n};\n"


def test_an_xpm_pillow_cannot_open_is_said_as_pillows_limit(tmp_path, tiny_weights):
    """An XPM that names a colour (`c white`, as /usr/share/pixmaps/openjdk-17.xpm does) cannot be opened by Pillow:
    `vary` said "cannot read this XPM file; give a complete PNG, JPEG, ... file", as if it were damaged, and a
    folder's advice to convert it could not be followed with Pillow. Now it is said as Pillow's limit, with programs
    that read it; an XPM Pillow reads is still varied."""
    bad = tmp_path / "named.xpm"
    bad.write_text(XPM.replace("COLOUR", "white"))
    for args in (["vary", bad], ["generate", "a red bird", "--image", bad]):
        line = one_line_failure(run(*args, "--weights", tiny_weights, "--out", tmp_path / "o"))
        assert line == (f"error: cannot read image {bad}: Pillow, which t2i reads XPM pictures with, cannot read this "
                        f"one (cannot read this XPM file); save it as PNG or JPEG with a program that opens it (GIMP, "
                        f"ImageMagick), or give another picture")
    assert not (tmp_path / "o").exists()
    good = tmp_path / "hex.xpm"
    good.write_text(XPM.replace("COLOUR", "#FF0000"))
    r = run("vary", good, "--weights", tiny_weights, "--n", "1", "-q", "--out", tmp_path / "o")
    assert r.exit_code == 0, r.stderr
    damaged = tmp_path / "cut.png"
    damaged.write_bytes(plain_picture(tmp_path / "whole.png").read_bytes()[:60])
    line = one_line_failure(run("vary", damaged, "--weights", tiny_weights, "--out", tmp_path / "p"))
    assert line.endswith("give a complete PNG, JPEG, WebP, BMP, GIF, TIFF or AVIF file"), line


def test_help_of_the_greedy_rules_is_true_of_vary_and_of_a_greedy_top_p():
    """vary's --top-k help said "every draw is one image: one candidate is drawn, not the best of several", of
    variations that differ below --strength 1 (and vary draws no candidates); generate's --n, --redraws and
    --candidates, and vary's --n, named only --top-k 1 where a --top-p up to 1/codebook acts alike."""
    import re

    def helped(*command: str) -> str:
        return " ".join(re.sub(r"[│╭╮╰╯─]", " ", run(*command, "--help").stdout).split())

    vary, gen = helped("vary"), helped("generate")
    assert "candidate" not in vary and "variations then differ only in the cells each redraws" in vary
    assert "prompt's draws" not in vary
    assert "not above 1 with --top-k 1 or a --top-p up to 1/the codebook's size" in gen
    assert "--top-k 1, or a --top-p up to 1/the codebook's size, draws once" in gen
    assert "neither --n, --top-k 1 (or a --top-p up to 1/the codebook's size) nor an image prompt" in gen
    assert "1 with --top-k 1, or a --top-p up to 1/the codebook's size, at a --strength" in vary


def test_eval_with_a_greedy_top_p_draws_one_candidate_as_top_k_1_does(tiny_weights, tmp_path, monkeypatch):
    """`t2i eval --top-p 1e-9` (no --candidates) was refused as "--candidates 4 with --top-p 1e-09 ...; ask for
    --candidates 1", an option never given, once the weights had loaded.
    As at --top-k 1 it now draws one candidate, and a --candidates or --draws given above 1 is refused before the
    load in --top-k 1's words."""
    from t2i_cli.pipeline import TextToImage
    from t2i_cli.world import evaluate

    real = TextToImage.from_folder
    loads = []
    monkeypatch.setattr(TextToImage, "from_folder", lambda *a, **k: loads.append(1) or real(*a, **k))
    base = ["eval", "--weights", tiny_weights, "--device", "cpu", "--n", "1", "--top-p", "1e-9", "-q"]
    line = one_line_failure(run(*base, "--candidates", "3"), 2)
    assert line.startswith("error: --candidates 3 with --top-p 1e-09 draws 3 copies of one image (a --top-p at or "
                           "below 1/32") and line.endswith("leave --candidates out for one image, or give a --top-p "
                                                           "above 1/32 (0.03125) to draw different ones"), line
    line = one_line_failure(run(*base, "--data", tmp_path, "--draws", "2"), 2)
    assert line.startswith("error: --draws 2 with --top-p 1e-09 draws 2 copies"), line
    assert loads == []
    asked = []

    def evaluate_model(pipe, judge, n, seed, sampling, candidates, **kw):
        asked.append(candidates)
        raise KeyboardInterrupt

    monkeypatch.setattr(evaluate, "evaluate_model", evaluate_model)
    run(*base)
    run(*base[:-3], "--top-p", "0.5", "-q")
    assert asked == [1, 4]


def test_rerank_link_best_without_top_names_what_is_missing_alone(tmp_path):
    """`rerank FOLDER --link-best` (no --top) was told "--top must be 0 or more, and --link-best needs --top K with
    K >= 1": the first half of a --top never given. Each refusal now says its own problem."""
    folder = tmp_path / "pics"
    folder.mkdir()
    plain_picture(folder / "a.png")
    line = one_line_failure(run("rerank", folder, "--link-best"), 2)
    assert line == ("error: --link-best needs --top K with K from 1 to 256 (it copies the best K of each prompt into "
                    "FOLDER/best/); add --top K, or leave --link-best out")  # (worded so in session 47, hD)
    line = one_line_failure(run("rerank", folder, "--top", "-1"), 2)
    assert line == "error: --top must be in 0..256 (0 = no sheet), got -1"
    assert sorted(p.name for p in folder.iterdir()) == ["a.png"]


def test_keep_alone_with_a_greedy_top_p_is_taken_as_with_top_k_1(tmp_path, tiny_weights):
    """`generate "a red bird" --top-p 1e-9 --keep 2` was refused as "--candidates 4 with --top-p ...", an option
    never given, and `--keep 1` (one image, as `--top-k 1 --keep 1` draws) was refused the same way. Now --keep 2
    is refused by its own name, as with --top-k 1, and --keep 1 draws the one image."""
    gen = ["generate", "a red bird", "--weights", tiny_weights, "--top-p", "1e-9", "-q", "--out", tmp_path / "o"]
    line = one_line_failure(run(*gen, "--keep", "2"), 2)
    assert line.startswith("error: --keep 2 with --top-p 1e-09 draws 2 copies of one image (a --top-p at or below "
                           "1/32"), line
    assert line.endswith("leave --keep out for one image, or give a --top-p above 1/32 (0.03125) to draw different "
                         "ones"), line
    assert not (tmp_path / "o").exists()
    r = run(*gen, "--keep", "1")
    assert r.exit_code == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["a-red-bird-000.png"]


@pytest.mark.parametrize("args", [["--n", "2"], ["--keep", "2"], ["--candidates", "3"]])
def test_a_greedy_top_p_count_is_refused_before_a_prompts_pipe_is_read(tmp_path, tiny_weights, args):
    """`generate --prompts - --top-p 1e-9 --n 2` read its pipe to the end (a `tail -f` writer kept it waiting for
    ever) before it said the images would be copies, where `--top-k 1 --n 2` is refused at once."""
    code, err = refused_with_the_pipe_open(tmp_path, ["--top-p", "1e-9", *args], tiny_weights)
    assert code == 2 and err.startswith(f"error: {args[0]} {args[1]} with --top-p 1e-09 draws {args[1]} copies"), err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "out").exists()
