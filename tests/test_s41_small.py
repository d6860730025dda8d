"""Session 41: small defects left from session 40's notes, each with a test that fails without its fix."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from conftest import build_tiny_folder, one_line_failure, run
from t2i_cli.images import read_png_text


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    return build_tiny_folder(tmp_path_factory.mktemp("w") / "w")


def _pngs(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.png")) if folder.exists() else []


def _generate(weights: Path, out: Path, *extra):
    return run("generate", "--weights", weights, "--out", out, "--device", "cpu", "-q", *extra)


# ------------------------------------------------------------------------------------------- --top-k 1 copies
def test_candidates_above_1_are_refused_with_top_k_1(weights, tmp_path):
    """`--top-k 1 --candidates 4` drew four copies of one image (greedy decoding; in bf16 a tie between two codes
    split them into two pairs) for the reranker to choose among, at 4x the time; refused in one line naming both
    options, nothing written. So is --keep K > 1 alone (the best K of the default candidates); --candidates 1 and
    --keep 1 are taken."""
    line = one_line_failure(_generate(weights, tmp_path / "a", "--top-k", "1", "--candidates", "4", "a red bird"), 2)
    assert "--candidates 4 with --top-k 1" in line and "leave --candidates out" in line, line
    assert not (tmp_path / "a").exists()
    line = one_line_failure(_generate(weights, tmp_path / "b", "--top-k", "1", "--keep", "2", "a red bird"), 2)
    assert "--keep 2 with --top-k 1" in line, line
    assert not (tmp_path / "b").exists()
    for extra in (["--candidates", "1"], ["--keep", "1"]):
        r = _generate(weights, tmp_path / "c", "--top-k", "1", *extra, "a red bird")
        assert r.exit_code == 0, r.stderr
    assert len(_pngs(tmp_path / "c")) == 2


def test_top_k_1_draws_one_candidate_by_default(weights, tmp_path):
    """Without --candidates, `generate --top-k 1` drew the default 4 candidates (each the same image) and
    reranked them; it draws one (n 1 in the PNG, no CLIP score), the bytes of `--candidates 1`. --top-k 2 still
    draws the best of 4."""
    assert _generate(weights, tmp_path / "a", "--top-k", "1", "a red bird").exit_code == 0
    (png,) = _pngs(tmp_path / "a")
    text = read_png_text(png)
    assert text["n"] == "1" and "clip_score" not in text, text
    assert _generate(weights, tmp_path / "b", "--top-k", "1", "--candidates", "1", "a red bird").exit_code == 0
    assert png.read_bytes() == _pngs(tmp_path / "b")[0].read_bytes()
    assert _generate(weights, tmp_path / "c", "--top-k", "2", "a red bird").exit_code == 0
    assert read_png_text(_pngs(tmp_path / "c")[0])["n"] == "4"


def test_redraws_with_top_k_1(weights, tmp_path):
    """--mask's redraws (default 4) drew each image K times for the best fit, each the same under --top-k 1: the
    default draws once there, and an explicit --redraws K > 1 is refused."""
    src, mask = tmp_path / "src.png", tmp_path / "mask.png"
    Image.new("RGB", (16, 16), (200, 30, 30)).save(src)
    m = Image.new("L", (16, 16), 0)
    m.paste(255, (0, 0, 8, 8))  # the top-left quarter: kept cells follow it
    m.save(mask)
    image = ["--image", src, "--mask", mask]
    line = one_line_failure(_generate(weights, tmp_path / "a", *image, "--top-k", "1", "--redraws", "3", "a red bird"),
                            2)
    assert "--redraws 3 with --top-k 1" in line, line
    assert _generate(weights, tmp_path / "b", *image, "--top-k", "1", "a red bird").exit_code == 0
    assert read_png_text(_pngs(tmp_path / "b")[0])["redraws"] == "1"
    assert _generate(weights, tmp_path / "c", *image, "--top-k", "2", "a red bird").exit_code == 0
    assert read_png_text(_pngs(tmp_path / "c")[0])["redraws"] == "4"


def test_eval_with_top_k_1_draws_one_candidate(weights, tmp_path, monkeypatch):
    """`eval --top-k 1` drew the default 4 candidates per prompt (each the same image); it draws one, and an
    explicit --candidates N > 1 (or --data's --draws N > 1) is refused."""
    line = one_line_failure(run("eval", "--weights", weights, "--device", "cpu", "--n", "1", "--top-k", "1",
                                "--candidates", "3", "-q"), 2)
    assert "--candidates 3 with --top-k 1" in line, line
    line = one_line_failure(run("eval", "--weights", weights, "--device", "cpu", "--n", "1", "--top-k", "1",
                                "--data", tmp_path, "--draws", "2", "-q"), 2)
    assert "--draws 2 with --top-k 1" in line, line
    from t2i_cli.world import evaluate

    asked = []

    def evaluate_model(pipe, judge, n, seed, sampling, candidates, **kw):
        asked.append(candidates)
        raise KeyboardInterrupt

    monkeypatch.setattr(evaluate, "evaluate_model", evaluate_model)
    run("eval", "--weights", weights, "--device", "cpu", "--n", "1", "--top-k", "1", "-q")
    run("eval", "--weights", weights, "--device", "cpu", "--n", "1", "--top-k", "2", "-q")
    assert asked == [1, 4]


# ------------------------------------------------------------------------------------------- data caption names
@pytest.mark.parametrize("name, caption", [
    ("caf%E9", "café"), ("caf%E9_au_lait", "café au lait"),  # Latin-1 escapes ("caf%e 9", before)
    ("%C9t%E9 %93quoted%94", "été “quoted”"),  # Windows' code page 1252 where it differs from Latin-1
    ("caf%C3%A9 %E9t%E9", "café été"),  # each run of escapes alone: UTF-8's, then Latin-1's
    ("route 66", "route 66"), ("apollo 11", "apollo 11"), ("windows 95", "windows 95"), ("paris 2019", "paris 2019"),
])
def test_caption_of_latin1_escapes_and_numbers_that_are_part_of_a_name(name, caption):
    """A name's percent escapes that are not UTF-8 were left as they were ("caf%E9" -> "caf%e 9"); a number of
    2 to 4 digits after a space that ends a name was dropped as a counter ("route 66" -> "route")."""
    from t2i_cli.name_captions import caption_of

    assert caption_of(name) == caption


def test_data_caption_keeps_a_names_number_but_not_a_series_counter(tmp_path):
    """`t2i data caption` dropped the number of "route 66.png" as a counter's; it keeps it, while a folder's
    series of one name ("beach 1" .. "beach 3") is still captioned without its numbers."""
    pics = tmp_path / "pics"
    pics.mkdir()
    for name in ("route 66", "apollo 11", "apollo 13", "beach 1", "beach 2", "beach 3", "caf%E9"):
        Image.new("RGB", (16, 16), (10, 90, 200)).save(pics / f"{name}.png")
    r = run("data", "caption", pics, "-q")
    assert r.exit_code == 0, r.stderr
    got = {p.stem: p.read_text(encoding="utf-8").strip() for p in pics.glob("*.txt")}
    assert got == {"route 66": "route 66", "apollo 11": "apollo 11", "apollo 13": "apollo 13", "beach 1": "beach",
                   "beach 2": "beach", "beach 3": "beach", "caf%E9": "café"}
    from t2i_cli.name_captions import caption_of

    # counters still go: one digit, parentheses, _ or -, glued, a leading zero, several numbers, a tool's name; and
    # UTF-8's escapes still read as UTF-8, a percent sign before letters of mixed case stays a percent sign
    for name, caption in [("bird2", "bird"), ("bird (12)", "bird"), ("cat12", "cat"), ("untitled-12", None),
                          ("route66", "route"), ("IMG 0012", None), ("photo 12", None), ("bird 2 33", "bird"),
                          ("bird copy 12", "bird"), ("caf%C3%A9", "café"), ("50%Bear", "50%bear")]:
        assert caption_of(name) == caption, name


def test_data_caption_takes_dry_run_with_quiet(tmp_path):
    """`data caption DIR --dry-run -q` was refused (session 41) while a dry run showed no progress bar; since
    session 45 a dry run shows the bar of its check, which -q hides: taken, nothing written; each alone too."""
    pics = tmp_path / "pics"
    pics.mkdir()
    Image.new("RGB", (16, 16), (10, 90, 200)).save(pics / "red bird.png")
    for quiet in ("-q", "--quiet"):
        r = run("data", "caption", pics, "--dry-run", quiet)
        assert r.exit_code == 0 and "red bird.txt: red bird" in r.stdout, r.stderr
    assert not (pics / "red bird.txt").exists()
    dry = run("data", "caption", pics, "--dry-run")
    assert dry.exit_code == 0 and "red bird.txt: red bird" in dry.stdout, dry.stderr
    assert not (pics / "red bird.txt").exists()
    assert run("data", "caption", pics, "-q").exit_code == 0
    assert (pics / "red bird.txt").read_text() == "red bird\n"


# ------------------------------------------------------------------------------------------- tokenizer size note
def _captioned(folder: Path, n: int = 19) -> Path:
    folder.mkdir()
    words = "red blue green bird fish cat star tree".split()
    for i in range(n):
        Image.new("RGB", (16, 16), (i * 13 % 256, 90, 7)).save(folder / f"p{i}.png")
        (folder / f"p{i}.txt").write_text(f"a {words[i % 8]} {words[i * 3 % 8]}\n")
    return folder


def test_a_tokenizer_smaller_than_the_vocab_size_asked_is_noted(tmp_path):
    """`train --stage tokenizer --vocab-size 5000` on 19 captions learned a vocabulary of a few dozen tokens and
    said so only in its summary's numbers; a one-line note beside that summary on stdout (not a warning, exit 0)
    says why. The preset's own size, not asked, is not noted; nor is a size the captions fill."""
    data = _captioned(tmp_path / "d")
    r = run("train", "--stage", "tokenizer", "--data", data, "--vocab-size", "5000", "--out", tmp_path / "a")
    assert r.exit_code == 0 and r.stderr == "", r.stderr
    notes = [line for line in r.stdout.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "not the --vocab-size 5,000 asked" in notes[0], r.stdout
    r = run("train", "--stage", "tokenizer", "--data", data, "--out", tmp_path / "b")
    assert r.exit_code == 0 and "note:" not in r.stdout, r.stdout
    r = run("train", "--stage", "tokenizer", "--data", data, "--vocab-size", "20", "--out", tmp_path / "c")
    assert r.exit_code == 0 and "note:" not in r.stdout, r.stdout


def test_a_whole_run_notes_a_tokenizer_smaller_than_asked(tmp_path):
    data = _captioned(tmp_path / "d")
    r = run("train", "--stage", "all", "--preset", "tiny", "--data", data, "--vocab-size", "5000", "--steps", "1",
            "--out", tmp_path / "run", "-q")
    assert r.exit_code == 0, r.stderr
    assert sum(line.startswith("note:") and "not the --vocab-size 5,000 asked" in line
               for line in r.stdout.splitlines()) == 1, r.stdout


# ------------------------------------------------------------------------------------------- eval --data without a CLIP
def test_eval_data_without_a_clip_says_it_draws_none(tmp_path):
    """`eval --data FOLDER --draws 3` with weights that have no CLIP titled its table "3 draws each" (and its JSON
    recorded draws 3) though it draws nothing; the title says none is drawn, the JSON draws 0, and the warning
    says the sampling options change nothing (since session 42 `--draws 3` there is refused:
    tests/test_s42_refusals). With a CLIP the title still says the draws."""
    data = _captioned(tmp_path / "d", 24)
    bare = build_tiny_folder(tmp_path / "bare", with_clip=False)
    r = run("eval", "--data", data, "--n", "2", "--weights", bare, "--device", "cpu",
            "--json", tmp_path / "bare.json")
    assert r.exit_code == 0, r.stderr
    assert "draws each" not in r.stdout and "none drawn (no CLIP)" in r.stdout, r.stdout
    assert "sampling options change nothing" in r.stderr, r.stderr
    import json

    assert json.loads((tmp_path / "bare.json").read_text())["draws"] == 0
    clip = build_tiny_folder(tmp_path / "clip")
    r = run("eval", "--data", data, "--n", "2", "--draws", "3", "--weights", clip, "--device", "cpu", "-q",
            "--json", tmp_path / "clip.json")
    assert r.exit_code == 0, r.stderr
    assert "3 draws each" in r.stdout and "none drawn" not in r.stdout, r.stdout
    assert json.loads((tmp_path / "clip.json").read_text())["draws"] == 3


# ------------------------------------------------------------------------------------------- --patience at the end
def test_a_patience_stall_at_the_last_step_is_no_early_stop(tmp_path, monkeypatch):
    """A --patience run whose validation loss stalled at its very last step said "stopping early ... the run ends
    here" and recorded an early stop (a resume then said "stopped early by --patience") though it trained every
    step; it finishes as planned, saying nothing of a stop. A stall before the last step still stops it."""
    import json

    from t2i_cli.stages import DVAEStage

    losses = iter([1.0, 0.9, 1.1, 1.2])
    monkeypatch.setattr(DVAEStage, "validate", lambda self: {"val_loss": next(losses)})
    out = tmp_path / "run"
    args = ["--preset", "tiny", "--workers", "0", "--device", "cpu", "--log-every", "1", "--sample-every", "1",
            "--patience", "2", "-q"]
    r = run("train", "--stage", "dvae", "--steps", "4", "--out", out, *args)
    assert r.exit_code == 0, r.stderr
    assert "stopping early" not in r.stderr and "stopped early" not in r.stdout, r.stderr
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert not any("early_stop" in x for x in rows) and any(x.get("finished") for x in rows)
    again = run("train", "--resume", out, "-q", "--workers", "0")
    assert again.exit_code == 0 and "already finished at step 4;" in again.stdout, again.stdout
    assert "stopped early" not in again.stdout

    losses = iter([1.0, 0.9, 1.1, 1.2, 1.3])
    monkeypatch.setattr(DVAEStage, "validate", lambda self: {"val_loss": next(losses)})
    r = run("train", "--stage", "dvae", "--steps", "5", "--out", tmp_path / "early", *args)
    assert r.exit_code == 0 and "step 4:" in r.stderr and "stopping early" in r.stderr, r.stderr


def test_n_above_1_is_refused_with_top_k_1(weights, tmp_path):
    """`generate --n 3 --top-k 1` wrote three copies of one image, as did `vary --strength 1 --top-k 1` (every cell
    redrawn greedily: its default --n 4 too); --n above 1 is refused there in one line, and vary without --n draws
    one. vary below --strength 1 redraws other cells in each variation, so its --n stays."""
    line = one_line_failure(_generate(weights, tmp_path / "a", "--top-k", "1", "--n", "3", "a red bird"), 2)
    assert "--n 3 with --top-k 1" in line, line
    assert not (tmp_path / "a").exists()
    src = tmp_path / "src.png"
    Image.new("RGB", (16, 16), (200, 30, 30)).save(src)
    vary = ["vary", src, "--weights", weights, "--device", "cpu", "-q", "--top-k", "1"]
    line = one_line_failure(run(*vary, "--strength", "1", "--n", "2", "--out", tmp_path / "b"), 2)
    assert "--n 2 with --top-k 1 and --strength 1" in line, line
    assert run(*vary, "--strength", "1", "--out", tmp_path / "c").exit_code == 0
    assert len(_pngs(tmp_path / "c")) == 1
    assert run(*vary, "--strength", "0.5", "--out", tmp_path / "d").exit_code == 0
    assert len(_pngs(tmp_path / "d")) == 4
