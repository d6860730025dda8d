"""Session 42: refusals left over by session 41 (sampling options, the Python API): each said to the caller in
the names the caller used (keywords from Python, flags from the command line), and said before any wait."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from conftest import run
from t2i_cli.errors import UsageError
from t2i_cli.sampling import SamplingConfig

GREEDY = SamplingConfig(top_k=1, guidance=1, regional=0)


@pytest.fixture(scope="module")
def pipe(tmp_path_factory):
    from conftest import build_tiny_folder
    from t2i_cli.pipeline import TextToImage

    return TextToImage.from_folder(build_tiny_folder(tmp_path_factory.mktemp("w") / "weights"), "cpu")


def _picture(folder: Path) -> tuple[Path, Path]:
    """A source picture and a mask (its right half light) for image prompts."""
    src, mask = folder / "src.png", folder / "mask.png"
    Image.new("RGB", (32, 32), (200, 40, 40)).save(src)
    m = Image.new("L", (32, 32), 0)
    m.paste(255, (16, 0, 32, 32))
    m.save(mask)
    return src, mask


def test_the_api_refuses_copies_of_one_greedy_image_in_its_own_keywords(pipe, tmp_path):
    """pipe(prompt, n=4, top_k=1) drew 4 copies of one image, where the command line refuses --n 4 --top-k 1; the
    refusal names the keywords the caller passed (n=4, top_k=1), not the command line's flags."""
    from t2i_cli.image_prompt import build

    with pytest.raises(UsageError) as e:
        pipe("a red bird", n=4, seed=0, sampling=GREEDY)
    assert str(e.value).startswith("n=4 with top_k=1 draws 4 copies of one image") and "--" not in str(e.value)
    assert "n=1" in str(e.value)
    with pytest.raises(UsageError, match="^n=2 with top_k=1"):  # draw_each too (eval's path)
        pipe.draw_each([pipe.request("a red bird", GREEDY)], [0], n=2)
    assert len(pipe("a red bird", n=1, seed=0, sampling=GREEDY)) == 1  # one greedy image is taken
    assert len(pipe("a red bird", n=2, seed=0, sampling=SamplingConfig(top_k=2, guidance=1, regional=0))) == 2
    src, mask = _picture(tmp_path)
    dvae = pipe.bundle.dvae
    with pytest.raises(UsageError, match="^n=3 with top_k=1"):  # a fixed set of kept cells: one image too
        pipe("a red bird", n=3, seed=0, sampling=GREEDY, image=build(dvae, src, keep_top=0.5))
    with pytest.raises(UsageError, match="^n=2 with top_k=1"):  # every cell redrawn: as without an image prompt
        pipe("a red bird", n=2, seed=0, sampling=GREEDY, image=build(dvae, src, strength=1.0))
    with pytest.raises(UsageError, match=r"^redraws=4 with top_k=1 draws each image 4 times alike"):
        pipe("a red bird", n=1, seed=0, sampling=GREEDY, image=build(dvae, src, mask=mask, redraws=4))
    # a variation that keeps a random share of the cells per image draws its own: taken
    assert len(pipe("a red bird", n=2, seed=0, sampling=GREEDY, image=build(dvae, src, strength=0.5))) == 2


def test_api_refusals_of_sampling_and_image_prompt_settings_name_the_keywords_and_the_cli_its_flags(pipe, tmp_path):
    """SamplingConfig, request, from_folder and image_prompt.build said "--top-k must be ...", "--negative works
    through guidance, which --guidance 1 turns off", "--keep-top ...": flags a Python caller never typed."""
    from t2i_cli.image_prompt import build
    from t2i_cli.pipeline import TextToImage

    said = []
    for make in (lambda: SamplingConfig(top_k=-1), lambda: SamplingConfig(temperature=0),
                 lambda: SamplingConfig(guidance_stop=0.5, jacobi=4),
                 lambda: pipe.request("a red bird", SamplingConfig(top_k=999)),
                 lambda: pipe.request("a red bird", SamplingConfig(guidance=1), negative="a dog"),
                 lambda: TextToImage.from_folder(Path("nowhere"), "cpu", precision="fp16"),
                 lambda: build(pipe.bundle.dvae, _picture(tmp_path)[0], keep_top=2.0),
                 lambda: TextToImage.from_folder(Path("nowhere"), "gpu")):
        with pytest.raises(UsageError) as e:
            make()
        said.append(str(e.value))
    assert all("--" not in s for s in said), said
    assert said[0].startswith("top_k must be 0 or more") and "use top_k=1" in said[1], said
    assert said[2].startswith("guidance_stop does not combine with jacobi"), said
    assert said[3].startswith("top_k must be in 0..32") and "which guidance=1 turns off" in said[4], said
    assert said[5].startswith("precision must be one of") and said[6].startswith("keep_top must be in (0, 1)"), said
    assert said[7].startswith("device must be auto, cpu or cuda, got 'gpu'"), said
    # the same checks from the command line name the options as typed
    tiny_weights = pipe.bundle.folder
    for args, says in ((["--top-k", "999"], "error: --top-k must be in 0..32"),
                       (["--negative", "a dog", "--guidance", "1"], "which --guidance 1 turns off"),
                       (["--guidance-stop", "0.5", "--jacobi", "4"], "--guidance-stop does not combine with --jacobi")):
        r = run("generate", "a red bird", *args, "--weights", tiny_weights, "--out", tmp_path / "o", "-q")
        assert r.exit_code == 2 and says in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def _captioned(folder: Path, n: int = 24) -> Path:
    """A folder of n captioned pictures (a val split for eval --data)."""
    folder.mkdir(parents=True)
    for i in range(n):
        Image.new("RGB", (16, 16), (i * 9 % 256, 90, 7 * i % 256)).save(folder / f"p{i}.png")
        (folder / f"p{i}.txt").write_text("a red bird\n")
    return folder


def test_eval_data_refuses_draws_where_no_picture_is_drawn(tmp_path):
    """`eval --data FOLDER --draws 3` of weights without a CLIP drew nothing and went on with a warning (exit 0):
    an option that changes nothing, now refused in one line (exit 2) before any work; --draws 1, the default,
    and weights with a CLIP are taken."""
    from conftest import build_tiny_folder, one_line_failure

    data = _captioned(tmp_path / "d")
    bare = build_tiny_folder(tmp_path / "bare", with_clip=False)
    line = one_line_failure(run("eval", "--data", data, "--n", "2", "--draws", "3", "--weights", bare,
                                "--json", tmp_path / "bare.json"), 2)
    assert line.startswith("error: --draws 3 draws images of each val caption for the CLIP to score") and \
        "has no clip.safetensors" in line and "leave --draws out" in line, line
    assert not (tmp_path / "bare.json").exists()
    r = run("eval", "--data", data, "--n", "2", "--draws", "1", "--weights", bare, "-q")
    assert r.exit_code == 0, r.stderr


def test_guidance_stop_with_nothing_to_stop_is_said_in_one_plain_line(tiny_weights, tmp_path):
    """--guidance 1 --guidance-stop 0.5 on a prompt without regional guidance was refused as "... and regional
    guidance, which this prompt does not draw with (only one of two objects the model reads whole does); leave it
    out": one line now says what it has nothing to stop and what to do, for a prompt, a --prompts file and eval."""
    from conftest import one_line_failure

    line = one_line_failure(run("generate", "a red bird", "--guidance", "1", "--guidance-stop", "0.5", "--weights",
                                tiny_weights, "--out", tmp_path / "o"), 2)
    assert line == ("error: --guidance-stop 0.5 has nothing to stop: --guidance 1 turns guidance off, and this prompt "
                    "draws no regional guidance (only a prompt of two objects in the world's grammar, whose words the "
                    "model knows, draws it); leave --guidance-stop out, or give a --guidance above 1"), line
    (tmp_path / "p.txt").write_text("a red bird\ntwo green cats\n")
    line = one_line_failure(run("generate", "--prompts", tmp_path / "p.txt", "--guidance", "1", "--guidance-stop",
                                "0.25", "--weights", tiny_weights, "--out", tmp_path / "o"), 2)
    assert "--guidance-stop 0.25 has nothing to stop" in line and "no prompt of the file draws regional" in line
    line = one_line_failure(run("eval", "--data", _captioned(tmp_path / "d"), "--n", "2", "--guidance", "1",
                                "--guidance-stop", "0.5", "--weights", tiny_weights), 2)
    assert "has nothing to stop" in line and "no val caption draws regional guidance" in line, line
    assert not (tmp_path / "o").exists()


def test_draw_each_refuses_a_bad_value_as_a_usage_error(pipe):
    """draw_each raised ValueError (a bare `t2i eval` user would read it as an internal error, with a hint at a
    traceback); each bad value is now a UsageError naming what was passed, as every refusal of the API is, and a
    bad seed is refused before torch's manual_seed sees it."""
    request = pipe.request("a red bird", SamplingConfig(guidance=1, regional=0))
    for kwargs, says in (({"batch": 33}, "draw_each decodes 1..32 images at a time, got batch=33"),
                         ({"batch": 2.5}, "got batch=2.5"),
                         ({"n": 17}, "draw_each draws 1..16 images per request, got n=17"),
                         ({"n": True}, "got n=True"),
                         ({"seeds": [0, 1]}, "one seed per request; got 1 requests and 2 seeds"),
                         ({"seeds": [-1]}, "seed must be a whole number in 0..2**63-1, got -1"),
                         ({"requests": ["a red bird"]}, "draw_each takes a list of requests")):
        args = {"requests": [request], "seeds": [0]} | kwargs
        with pytest.raises(UsageError) as e:
            pipe.draw_each(**args)
        assert says in str(e.value), (kwargs, str(e.value))
    assert len(pipe.draw_each([request], [0], n=2)) == 2


@pytest.mark.parametrize("args, says", [
    (["--top-k", "1", "--n", "3"], "error: --n 3 with --top-k 1 draws 3 copies of one image"),
    (["--seed", "-1"], "error: --seed must be"),
    (["--top-k", "1", "--temperature", "0.5"], "error: --temperature 0.5 changes nothing with --top-k 1"),
    (["--mask", "m.png"], "error: --mask needs --image SRC"),
])
def test_generate_prompts_from_a_pipe_refuses_its_options_before_reading_it(tiny_weights, tmp_path, args, says):
    """`printf 'a red bird\\n' | t2i generate --prompts - --top-k 1 --n 3` (and --seed, --top-k 1's other rules,
    --image's flags) was refused only once the pipe had closed: a writer that keeps it open (a long job printing
    prompts as it goes) waited for nothing. The refusal now comes while the pipe is still open."""
    from conftest import refused_with_the_pipe_open

    code, err = refused_with_the_pipe_open(tmp_path, args, tiny_weights)
    assert code == 2 and err.startswith(says) and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "out").exists()
