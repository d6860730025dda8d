"""Options and API leftovers (session 45, hE): each defect's test fails without its fix."""

from pathlib import Path

import pytest
from PIL import Image

from conftest import one_line_failure, run


def plain_picture(path: Path) -> Path:
    """A 16x16 picture that t2i did not draw."""
    Image.new("RGB", (16, 16), (200, 40, 40)).save(path)
    return path


@pytest.mark.parametrize("command", [["info", "WEIGHTS"], ["data", "preview", "PICS"], ["data", "caption", "PICS"],
                                     ["data", "caption", "PICS", "--dry-run"], ["data", "world", "--out", "OUT"],
                                     ["export", "WEIGHTS", "--to", "OUT"]])
def test_every_command_that_imports_torch_refuses_an_omp_num_threads_openmp_cannot_read(tmp_path, tiny_weights,
                                                                                        monkeypatch, command):
    """`OMP_NUM_THREADS=abc t2i info weights` (and export, data world, preview, caption) passed the value to
    libgomp, which printed its own warning and took one thread per core, where generate, vary, rerank, eval and
    train refused it in one line. Now each refuses it so, exit 2, before it reads or writes anything."""
    monkeypatch.setenv("OMP_NUM_THREADS", "abc")
    monkeypatch.delenv("T2I_OMP", raising=False)
    pics = tmp_path / "pics"
    pics.mkdir()
    plain_picture(pics / "red-bird.png")
    out = tmp_path / "out"
    args = [{"WEIGHTS": tiny_weights, "PICS": pics, "OUT": out}.get(a, a) for a in command]
    monkeypatch.chdir(tmp_path)  # (data preview's default --out is ./preview.png)
    line = one_line_failure(run(*args), 2)
    assert line == ("error: OMP_NUM_THREADS must be a whole number of threads, 1 or more (or OpenMP's list of "
                    "them, 4,2), got 'abc'; set it to one, or unset it for one thread per core")
    assert not out.exists() and not (tmp_path / "preview.png").exists() and sorted(pics.iterdir()) == [
        pics / "red-bird.png"]


def test_generate_prompts_checks_the_openmp_environment_once(tmp_path, tiny_weights, monkeypatch):
    """`generate --prompts -` checked T2I_OMP and OMP_NUM_THREADS before it read its prompts, and again as its
    inference started."""
    import t2i_cli.cli as cli
    from conftest import RUNNER

    calls = []
    real = cli.check_omp_env
    monkeypatch.setattr(cli, "check_omp_env", lambda: calls.append(1) or real())
    r = RUNNER.invoke(cli.app, ["generate", "--prompts", "-", "--weights", str(tiny_weights), "--out",
                                str(tmp_path / "o"), "-q"], input="a red bird\n")
    assert r.exit_code == 0, r.stderr
    assert (tmp_path / "o" / "a-red-bird-000.png").is_file()
    assert calls == [1]


def _terminal(monkeypatch):
    """cli's stderr console made a terminal's (the bars show only on one); returns what it wrote."""
    import io

    from rich.console import Console

    import t2i_cli.cli as cli

    screen = io.StringIO()
    monkeypatch.setattr(cli, "err", Console(file=screen, force_terminal=True, width=120))
    return screen


@pytest.mark.parametrize("quiet", [[], ["-q"], ["--quiet"]])
def test_data_caption_dry_run_shows_the_bar_of_its_check(tmp_path, monkeypatch, quiet):
    """`data caption FOLDER --dry-run` read every picture's header, as the real run does, under no bar: a large
    folder showed nothing for seconds (the real run showed its "checking pictures" bar). Now a dry run shows it
    too, and -q, refused with --dry-run while a dry run had no bar, hides it; nothing is written either way."""
    screen = _terminal(monkeypatch)
    pics = tmp_path / "pics"
    pics.mkdir()
    plain_picture(pics / "red bird.png")
    r = run("data", "caption", pics, "--dry-run", *quiet)
    assert r.exit_code == 0, (r.stderr, screen.getvalue())
    assert f"{pics / 'red bird.txt'}: red bird" in r.stdout
    assert ("checking pictures" in screen.getvalue()) == (not quiet)
    assert sorted(pics.iterdir()) == [pics / "red bird.png"]


@pytest.mark.parametrize("args, said, code", [
    (["generate", "a red bird", "--out", "./-", "--out", "o"], "error: --out ./- and --out o disagree", 2),
    (["generate", "a red bird", "--out=.//-", "--out", "o"], "error: --out .//- and --out o disagree", 2),
    (["info", "./-", "--weights", "w"], "error: FOLDER ./- and --weights w disagree; give one of them", 2),
    (["info", "./-"], "error: ./- does not exist; give t2i info a weights folder or a training run folder", 2),
    (["generate", "a red bird", "--weights", "./-"], "error: weights folder ./- does not exist; ", 1),
    (["export", "./-", "--to", "w"], "error: ./- does not exist; give export the folders of `t2i train` runs", 2),
    (["data", "caption", ".//-"], "error: .//- is not a folder (it does not exist)", 1),
])
def test_disagreeing_paths_are_named_as_typed(tmp_path, monkeypatch, args, said, code):
    """A path typed to name a file called - (`./-`) is made absolute to keep it one (a Path reads ./- as -,
    standard output's name), and the refusals that named it said that absolute path, one the user never typed:
    "--out /home/me/- and --out o disagree", "/home/me/- does not exist". Now as typed, as the other paths of the
    line are."""
    monkeypatch.chdir(tmp_path)
    line = one_line_failure(run(*args), code)
    assert line.startswith(said) and str(tmp_path) not in line, line
    assert list(tmp_path.iterdir()) == []


def test_eval_data_says_what_is_true_of_a_word_the_tokenizer_reads_as_pieces(tmp_path):
    """`eval --data` said the tokenizer "has no token for" a word it reads as several of its tokens ("reddish" as
    red d i sh, every piece a token): false of such a word. It now says what is true of it and of an unknown
    one: the tokenizer did not learn it whole, and why that means the model saw it rarely or never."""
    from conftest import build_tiny_folder
    from t2i_cli.weights import load_tokenizer

    folder = build_tiny_folder(tmp_path / "w", with_clip=False)
    tok = load_tokenizer(folder / "tokenizer.json")
    assert tok.unread_words("a reddish bird") == ([], 3)  # every character known: "reddish" is only split
    assert tok.encode("a reddish bird", 12).unknown_words == ["reddish"]
    data = tmp_path / "data"
    data.mkdir()
    for i in range(10):
        Image.new("RGB", (16, 16), (i * 8, 90, 200 - i * 5)).save(data / f"p{i}.png")
        (data / f"p{i}.txt").write_text("a reddish bird\n")
    r = run("eval", "--data", data, "--n", "2", "--weights", folder)
    assert r.exit_code == 0, r.stderr
    said = [ln for ln in r.stderr.splitlines() if "tokenizer" in ln]
    assert said == [f"warning: {data}: the val captions hold 1 word that {folder}'s tokenizer did not learn whole "
                    f"(e.g. reddish; each read as several pieces, or as unknown): a tokenizer learns the words of its "
                    f"training captions whole, the most frequent first, so its model saw these rarely or never in "
                    f"training, and these scores say how little it reads of such captions"], r.stderr


def test_draw_each_of_no_requests_is_refused_as_no_images_are(tiny_weights):
    """`pipe.draw_each([], [])` returned [] silently, where the API refuses every other request for no images
    (`pipe(p, n=0)`, `draw_each(..., n=0)`, `rerank([], keep)`). Now refused alike, in a UsageError."""
    from t2i_cli.errors import UsageError
    from t2i_cli.pipeline import TextToImage

    pipe = TextToImage.from_folder(tiny_weights, "cpu")
    with pytest.raises(UsageError, match=r"^draw_each needs at least one request \(it draws n images for each\)$"):
        pipe.draw_each([], [])
    with pytest.raises(UsageError, match="one seed per request; got 0 requests and 1 seeds"):
        pipe.draw_each([], [0])  # (the mismatch is what is wrong there)
    assert len(pipe.draw_each([pipe.request("a red bird")], [0])) == 1


@pytest.mark.parametrize("p", [1e-9, 1 / 32])
def test_a_top_p_up_to_one_over_the_codebook_draws_the_top_k_1_image_as_help_says(tiny_weights, p):
    """--help says a --top-p up to 1/codebook keeps only the most likely code, as --top-k 1 does (measured in
    BENCHMARKS.md "Near-greedy sampling": nothing breaks, the draws are copies): each of its draws is the top_k=1
    image, finite, of codes in the codebook. (The tiny weights' codebook: 32 codes.)"""
    import torch

    from t2i_cli.pipeline import TextToImage
    from t2i_cli.sampling import SamplingConfig

    pipe = TextToImage.from_folder(tiny_weights, "cpu")
    greedy = pipe("a red bird", n=1, seed=0, sampling=SamplingConfig(top_k=1))[0]
    # (one a seed: n=3 of such a p is refused as n=3 of top_k=1 is, s45 hL)
    drawn = [pipe("a red bird", n=1, seed=s, sampling=SamplingConfig(top_p=p, guidance=100))[0] for s in (5, 6, 7)]
    greedy_100 = pipe("a red bird", n=1, seed=0, sampling=SamplingConfig(top_k=1, guidance=100))[0]
    for g in drawn:
        assert torch.equal(g.codes, greedy_100.codes) and torch.isfinite(g.image).all()
    assert not torch.equal(greedy.codes, greedy_100.codes)  # (guidance 100 changes the image: the check can fail)
    assert int(greedy_100.codes.max()) < 32
    from t2i_cli.cli import DRAW_TOP_P

    assert "a p up to 1/the codebook's size keeps only the most likely code, as --top-k 1 does" in DRAW_TOP_P.help
