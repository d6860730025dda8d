"""`t2i rerank DIR`: CLIP scores per prompt, ranking.json, contact sheet, best/ copies, --explain, clean errors.

A tiny CLIP is trained inside the test (a few seconds on one thread) to tell "a red circle" from
"a blue circle" on solid-colour images, so "matching images rank first" is checked on a model that knows.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, PngImagePlugin

from conftest import TEXT_LEN, TINY_CAPTIONS, bomb_png, build_tiny_folder, one_line_failure, run
from t2i_cli import pipeline
from t2i_cli.images import read_png_text, tensor_from_image
from t2i_cli.models.clip import Clip, ClipConfig
from t2i_cli.pipeline import TextToImage
from t2i_cli.weights import load_tokenizer, save_model

RED, BLUE = "a red circle", "a blue circle"


def colour_image(rgb: tuple[int, int, int], side: int = 16) -> Image.Image:
    return Image.new("RGB", (side, side), rgb)


def red_shade(g: torch.Generator) -> tuple[int, int, int]:
    r = torch.randint(170, 256, (1,), generator=g).item()
    return r, *torch.randint(0, 70, (2,), generator=g).tolist()


def blue_shade(g: torch.Generator) -> tuple[int, int, int]:
    b = torch.randint(170, 256, (1,), generator=g).item()
    return *torch.randint(0, 70, (2,), generator=g).tolist(), b


def train_colour_clip(tok, steps: int = 150) -> Clip:
    """A tiny CLIP trained contrastively on red vs blue solid images with their captions."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    cfg = ClipConfig(image_side=16, text_vocab=tok.vocab_size(TEXT_LEN), text_len=TEXT_LEN, n_pad_start=tok.n_bpe,
                     n_hid=8, n_embd=32, n_layer=1, n_head=2, embed_dim=16)
    clip = Clip(cfg)
    text = torch.tensor([tok.encode(RED, TEXT_LEN).ids, tok.encode(BLUE, TEXT_LEN).ids])  # (2, T)
    opt = torch.optim.Adam(clip.parameters(), lr=3e-3)
    for _ in range(steps):
        images = torch.stack([tensor_from_image(colour_image(red_shade(g))),
                              tensor_from_image(colour_image(blue_shade(g)))])
        _, loss = clip(images, text)
        opt.zero_grad()
        loss.backward()
        opt.step()
    clip.eval()
    with torch.no_grad():  # it learned the task: each colour scores higher with its own caption
        red, blue = tensor_from_image(colour_image((230, 20, 20))), tensor_from_image(colour_image((20, 20, 230)))
        s = clip.score(torch.stack([red, red, blue, blue]), text[[0, 1, 0, 1]])
    assert s[0] > s[1] + 0.2 and s[3] > s[2] + 0.2, s
    return clip


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    """The tiny folder (its tokenizer also knows RED's and BLUE's words) with its random CLIP replaced by one
    that tells red from blue."""
    folder = build_tiny_folder(tmp_path_factory.mktemp("rerank") / "weights", captions=[*TINY_CAPTIONS, RED, BLUE])
    tok = load_tokenizer(folder / "tokenizer.json")
    save_model(train_colour_clip(tok), folder / "clip.safetensors", "clip")
    return folder


def snapshot(folder: Path) -> dict[str, str]:
    """sha256 of every file under folder, by relative path."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_only_new_outputs(before: dict[str, str], after: dict[str, str]) -> None:
    """Inputs byte-identical; the only new entries are ranking.json, best/* and ranking-top-*.png."""
    assert {k: after.get(k) for k in before} == before
    new = set(after) - set(before)
    assert all(k == "ranking.json" or k.startswith("best/") or
               (k.startswith("ranking-top-") and k.endswith(".png")) for k in new), new
    assert not [k for k in after if k.endswith(".tmp") or Path(k).name.startswith(".")]


def ranking(folder: Path) -> list[dict]:
    return json.loads((folder / "ranking.json").read_text())


@pytest.fixture
def colour_folder(tmp_path) -> Path:
    """3 red and 3 blue 16x16 PNGs, interleaved by name so file order says nothing about colour."""
    folder = tmp_path / "colours"
    folder.mkdir()
    g = torch.Generator().manual_seed(1)
    for i in range(6):
        colour = red_shade(g) if i % 2 else blue_shade(g)
        colour_image(colour).save(folder / f"img-{i}.png")
    return folder


REDS = {"img-1.png", "img-3.png", "img-5.png"}


# ---------------------------------------------------------------------------------------------- ranking
def test_ranks_per_prompt_writes_ranking_json_and_touches_no_input(weights, tmp_path):
    folder = tmp_path / "mixed"
    for prompt, n in (("a red bird", 3), ("two green cats", 2)):
        r = run("generate", prompt, "--weights", weights, "--out", folder, "--n", n, "--device", "cpu", "-q")
        assert r.exit_code == 0, r.stderr
    (folder / "notes.txt").write_text("not an image")
    (folder / "data.bin").write_bytes(b"not an image either")
    (folder / "corrupt.png").write_bytes(os.urandom(500))
    colour_image((10, 200, 10)).save(folder / "no-prompt.png")
    cats = sorted(folder.glob("two-*.png"))[-1]  # a PNG by its content: named .jpg, it had "no prompt"
    cats.rename(cats.with_suffix(".jpg"))
    before = snapshot(folder)

    r = run("rerank", folder, "--weights", weights, "--device", "cpu")
    assert r.exit_code == 0, (r.stderr, r.exception)
    assert_only_new_outputs(before, snapshot(folder))
    rows = ranking(folder)
    assert len(rows) == 5 and {row["file"] for row in rows} == {k for k in before if k.startswith(("a-red", "two"))}
    for prompt, k in (("a red bird", 3), ("two green cats", 2)):
        group = [row for row in rows if row["prompt"] == prompt]
        assert sorted(row["rank"] for row in group) == list(range(1, k + 1))
        by_rank = sorted(group, key=lambda row: row["rank"])
        assert [row["score"] for row in by_rank] == sorted((row["score"] for row in group), reverse=True)
        assert all(read_png_text(folder / row["file"])["prompt"] == prompt for row in group)
    warnings = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(warnings) == 1 and warnings[0].startswith("warning:"), r.stderr
    # a text file is named as one (a captioned folder's .txt files read as "363 not an image")
    for reason in ("1 file not a picture", "1 text file", "1 unreadable picture",
                   "1 picture without a prompt"):
        assert reason in warnings[0], warnings[0]
    assert "ranking.json" in r.stdout


def test_ranks_matching_images_first(weights, colour_folder):
    before = snapshot(colour_folder)
    r = run("rerank", colour_folder, "--prompt", RED, "--weights", weights, "--device", "cpu")
    assert r.exit_code == 0, (r.stderr, r.exception)
    assert r.stderr.strip() == ""  # nothing skipped, nothing to warn about
    rows = ranking(colour_folder)
    assert [row["rank"] for row in rows] == list(range(1, 7)) and {row["prompt"] for row in rows} == {RED}
    assert {row["file"] for row in rows if row["rank"] <= 3} == REDS
    assert_only_new_outputs(before, snapshot(colour_folder))

    r = run("rerank", colour_folder, "--prompt", BLUE, "--weights", weights, "--device", "cpu")
    assert r.exit_code == 0, r.stderr
    assert {row["file"] for row in ranking(colour_folder) if row["rank"] <= 3} == {f"img-{i}.png" for i in (0, 2, 4)}


def halves(left: tuple[int, int, int], right: tuple[int, int, int], side: int = 16) -> torch.Tensor:
    """(3, side, side): one colour on the left half, another on the right."""
    x = torch.empty(3, side, side)
    x[:, :, :side // 2] = torch.tensor(left).view(3, 1, 1) / 255
    x[:, :, side // 2:] = torch.tensor(right).view(3, 1, 1) / 255
    return x


def test_two_object_prompts_add_each_objects_crop_score_and_tell_swapped_colours_apart(weights, tmp_path):
    """For "a red circle and a blue circle" the score adds CROP_SCORE_WEIGHT x the mean of the left half's
    score against "a red circle" and the right half's against "a blue circle": the picture with the colours
    where the prompt puts them gains, its colour-swapped twin loses. Other prompts, and a tokenizer that does
    not read every word of the objects' captions whole, keep the sentence score."""
    two = "a red circle and a blue circle"
    folder = build_tiny_folder(tmp_path / "w", captions=[*TINY_CAPTIONS, two, RED, BLUE])  # knows "circle", "and"
    save_model(train_colour_clip(load_tokenizer(folder / "tokenizer.json")), folder / "clip.safetensors", "clip")
    red, blue = (230, 20, 20), (20, 20, 230)
    images = torch.stack([halves(red, blue), halves(blue, red)])

    def sentence(pipe: TextToImage, text: str) -> torch.Tensor:
        clip, tok = pipe.bundle.clip, pipe.bundle.tokenizer
        return clip.score(images, torch.tensor([tok.encode(text, clip.cfg.text_len).ids]))

    pipe = TextToImage.from_folder(folder, "cpu", need_clip=True)
    with torch.inference_mode():
        got = pipe.score(images, two)
        crop_term = (got - sentence(pipe, two)) / pipeline.CROP_SCORE_WEIGHT
        assert crop_term[0] > crop_term[1] + 0.2, crop_term  # red left, blue right: both crops match
        clip, tok = pipe.bundle.clip, pipe.bundle.tokenizer
        each = [clip.score(pipeline.crop_place(images, place), torch.tensor([tok.encode(text, clip.cfg.text_len).ids]))
                for text, place in pipeline.object_prompts(two)]
        assert len(each) == 2 and torch.allclose(crop_term, torch.stack(each).mean(0), atol=1e-5)  # both objects
        assert got[0] > got[1], got  # so the reranker keeps the right layout
        assert torch.equal(pipe.score(images, RED), sentence(pipe, RED))  # one object: the sentence score
        plain = build_tiny_folder(tmp_path / "plain")  # its tokenizer splits "circle" and "and"
        other = TextToImage.from_folder(plain, "cpu", need_clip=True)
        assert other.bundle.tokenizer.encode(two, 16).unknown_words
        assert torch.equal(other.score(images, two), sentence(other, two))


def test_crop_place_is_the_objects_box_padded_square_with_its_edge_pixels():
    x = torch.arange(20 * 20, dtype=torch.float32).view(1, 1, 20, 20).expand(2, 3, 20, 20)
    left = pipeline.crop_place(x, "left")  # box x 0..10, y 3..17: 10 wide, 14 tall -> 14 x 14
    assert left.shape == (2, 3, 14, 14)
    assert torch.equal(left[..., 2:12], x[..., 3:17, 0:10])
    assert torch.equal(left[..., 0], x[..., 3:17, 0]) and torch.equal(left[..., 13], x[..., 3:17, 9])
    top = pipeline.crop_place(x, "top")  # x 3..17, y 0..10
    assert top.shape == (2, 3, 14, 14) and torch.equal(top[..., 2:12, :], x[..., 0:10, 3:17])


def test_precision_bf16_runs_the_clip_in_bf16_and_ranks_as_fp32_does(weights, colour_folder):
    """rerank --precision bf16 casts the CLIP; the same reds come first, with scores close to fp32's;
    int8 (the transformer's format) is refused with one line."""
    r = run("rerank", colour_folder, "--prompt", RED, "--weights", weights, "--device", "cpu")
    assert r.exit_code == 0, r.stderr
    fp32 = {row["file"]: row["score"] for row in ranking(colour_folder)}
    r = run("rerank", colour_folder, "--prompt", RED, "--weights", weights, "--device", "cpu", "--precision", "bf16")
    assert r.exit_code == 0, (r.stderr, r.exception)
    rows = ranking(colour_folder)
    assert {row["file"] for row in rows if row["rank"] <= 3} == REDS
    bf16 = {row["file"]: row["score"] for row in rows}
    assert bf16 != fp32 and all(abs(bf16[k] - fp32[k]) < 0.05 for k in fp32)  # other arithmetic, same ranking
    r = run("rerank", colour_folder, "--prompt", RED, "--weights", weights, "--precision", "int8")
    assert r.exit_code == 2 and "int8 quantises the transformer" in r.stderr and "Traceback" not in r.stderr


def test_top_and_link_best_write_a_sheet_and_copies_without_touching_inputs(weights, colour_folder):
    before = snapshot(colour_folder)
    r = run("rerank", colour_folder, "--prompt", RED, "--top", 2, "--link-best", "--weights", weights,
            "--device", "cpu")
    assert r.exit_code == 0, (r.stderr, r.exception)
    after = snapshot(colour_folder)
    assert_only_new_outputs(before, after)
    sheets = sorted(colour_folder.glob("ranking-top-*.png"))
    assert len(sheets) == 1
    with Image.open(sheets[0]) as sheet:
        sheet.load()
        assert sheet.width > 2 * 16  # two images side by side
    best = pictures(colour_folder / "best")
    assert len(best) == 2
    top2 = [row["file"] for row in sorted(ranking(colour_folder), key=lambda row: row["rank"])[:2]]
    assert set(top2) <= REDS
    copied = sorted(hashlib.sha256(p.read_bytes()).hexdigest() for p in best)
    assert copied == sorted(before[name] for name in top2)  # exact copies of the two best inputs
    # The same command again: the same ranking, so the sheet already there is named (each rerun added a copy)
    again = run("rerank", colour_folder, "--prompt", RED, "--top", 2, "--link-best", "--weights", weights,
                "--device", "cpu")
    assert again.exit_code == 0 and sorted(colour_folder.glob("ranking-top-*.png")) == sheets, again.stderr
    assert sheets[0].name in again.stdout


def pictures(folder: Path) -> list[Path]:
    """The files of a best/ folder but t2i's record of what it copied there."""
    return sorted(p for p in folder.iterdir() if p.name != "t2i-copies.json")


def test_a_later_link_best_makes_best_this_rankings_and_keeps_the_users_files(weights, colour_folder):
    """--top 2 then --top 1: best/ held three pictures (the old two and a second copy of the first); now it
    holds the one best picture, under the name it had, and what the user put or changed there stays."""
    def rerank(top: int) -> None:
        r = run("rerank", colour_folder, "--prompt", RED, "--top", top, "--link-best", "--weights", weights)
        assert r.exit_code == 0, r.stderr

    def sha(p: Path) -> str:
        return hashlib.sha256(p.read_bytes()).hexdigest()

    rerank(2)
    first = pictures(colour_folder / "best")
    ranked = [row["file"] for row in sorted(ranking(colour_folder), key=lambda row: row["rank"])]
    (colour_folder / "best" / "mine.txt").write_text("my notes")
    rerank(2)
    assert pictures(colour_folder / "best") == sorted([*first, colour_folder / "best" / "mine.txt"])  # no copies
    rerank(1)
    (kept,) = (p for p in pictures(colour_folder / "best") if p.suffix == ".png")
    assert kept in first and sha(kept) == sha(colour_folder / ranked[0])
    assert (colour_folder / "best" / "mine.txt").read_text() == "my notes"
    with Image.open(kept) as im:  # a copy the user changed is theirs now: a new ranking leaves it
        im.convert("L").save(kept)
    rerank(1)
    pngs = [p for p in pictures(colour_folder / "best") if p.suffix == ".png"]
    assert len(pngs) == 2 and kept in pngs and sha(colour_folder / ranked[0]) in {sha(p) for p in pngs}
    # a copy whose picture is gone from the folder is the only one left: a later ranking never removes it
    top = colour_folder / ranked[0]
    only, picture = top.read_bytes(), top.with_suffix(".moved")
    top.rename(picture)
    rerank(1)
    assert only in {p.read_bytes() for p in pictures(colour_folder / "best")}
    picture.rename(top)
    (colour_folder / "best" / "t2i-copies.json").write_text('{"my": "own file"}')  # not t2i's record: refused
    line = one_line_failure(run("rerank", colour_folder, "--prompt", RED, "--top", 1, "--link-best",
                                "--weights", weights), code=2)
    assert "t2i-copies.json exists and is not the record of t2i's copies" in line, line


def test_a_second_rerank_does_not_rank_its_own_outputs(weights, colour_folder):
    for _ in range(2):
        r = run("rerank", colour_folder, "--prompt", RED, "--top", 2, "--weights", weights, "--device", "cpu")
        assert r.exit_code == 0, r.stderr
    assert {row["file"] for row in ranking(colour_folder)} == {f"img-{i}.png" for i in range(6)}
    assert "skipped" not in r.stderr
    # a picture of the user's named like a sheet is an input (it was passed over, uncounted)
    colour_image((200, 30, 30)).save(colour_folder / "ranking-top-photo.png")
    r = run("rerank", colour_folder, "--prompt", RED, "--weights", weights, "--device", "cpu")
    assert r.exit_code == 0 and "ranking-top-photo.png" in {row["file"] for row in ranking(colour_folder)}, r.stderr


@pytest.mark.parametrize("own", ['{"my": "notes"}\n', "[1, 2, 3]\n", "not json", '[{"file": "x.png"}]\n'])
def test_a_ranking_json_t2i_did_not_write_is_replaced_only_with_force(weights, colour_folder, own):
    (colour_folder / "ranking.json").write_text(own)
    before = snapshot(colour_folder)
    line = one_line_failure(run("rerank", colour_folder, "--prompt", RED, "--top", 2, "--link-best",
                                "--weights", weights, "--device", "cpu"), code=2)
    assert "ranking.json exists and is not a ranking t2i wrote" in line and "--force" in line, line
    assert snapshot(colour_folder) == before  # refused before anything was written: no sheet, no best/
    r = run("rerank", colour_folder, "--prompt", RED, "--weights", weights, "--device", "cpu", "--force")
    assert r.exit_code == 0, r.stderr
    assert {row["file"] for row in ranking(colour_folder)} == {f"img-{i}.png" for i in range(6)}
    r = run("rerank", colour_folder, "--prompt", BLUE, "--weights", weights, "--device", "cpu")  # t2i's own: replaced
    assert r.exit_code == 0, r.stderr
    assert {row["file"] for row in ranking(colour_folder) if row["rank"] <= 3}.isdisjoint(REDS)


def test_a_ranking_json_folder_is_refused_even_with_force(weights, colour_folder):
    (colour_folder / "ranking.json").mkdir()
    for extra in ([], ["--force"]):
        line = one_line_failure(run("rerank", colour_folder, "--prompt", RED, "--weights", weights, *extra), code=2)
        assert "ranking.json is a folder" in line
    assert (colour_folder / "ranking.json").is_dir()


def test_link_best_refuses_a_file_named_best_before_writing_anything(weights, colour_folder):
    (colour_folder / "best").write_text("my own file")
    before = snapshot(colour_folder)
    for extra in ([], ["--force"]):  # --force replaces a ranking.json, never a file of the user's
        line = one_line_failure(run("rerank", colour_folder, "--prompt", RED, "--top", 1, "--link-best",
                                    "--weights", weights, "--device", "cpu", *extra), code=2)
        assert "best is a file" in line and "move or rename it" in line, line
        assert snapshot(colour_folder) == before  # no ranking.json, no sheet, the file untouched
    r = run("rerank", colour_folder, "--prompt", RED, "--top", 1, "--weights", weights, "--device", "cpu")
    assert r.exit_code == 0, r.stderr  # without --link-best the file is in nobody's way


def test_a_write_error_of_rerank_names_no_out_option(weights, colour_folder, monkeypatch):
    """rerank writes into FOLDER: an error there must not say "choose another folder with --out" (it has none)."""
    import t2i_cli.files as files

    monkeypatch.setattr(files, "MAX_NAMES", 1)
    colour_image((200, 30, 30)).save(colour_folder / "ranking-top-000.png")  # a picture of the user's: ranked
    line = one_line_failure(run("rerank", colour_folder, "--prompt", RED, "--top", 1, "--weights", weights))
    assert "holds too many files named ranking-top-*; choose another folder" in line and "--out" not in line, line
    out = colour_folder / "gen"
    out.mkdir()
    (out / "a-red-circle-000.png").write_bytes(b"taken")
    line = one_line_failure(run("generate", RED, "--weights", weights, "--out", out, "--candidates", 1, "-q"))
    assert line.endswith("choose another folder with --out"), line  # generate's folder is its --out


# ---------------------------------------------------------------------------------------------- --explain
def test_explain_prints_one_line_per_prompt_word(weights, colour_folder):
    prompt = "a red circle at night"
    r = run("rerank", colour_folder, "--prompt", prompt, "--explain", "--weights", weights, "--device", "cpu")
    assert r.exit_code == 0, (r.stderr, r.exception)
    lines = r.stdout.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("word contributions"))
    best = min(ranking(colour_folder), key=lambda row: row["rank"])["file"]
    assert best in lines[start]
    contributions = lines[start + 1:]
    assert len(contributions) == len(prompt.split())
    assert [ln.split()[0] for ln in contributions] == prompt.split()
    assert all(ln.split()[1][0] in "+-" and float(ln.split()[1]) == float(ln.split()[1]) for ln in contributions)


def test_explain_gives_each_word_the_score_it_adds(weights):
    """A word's contribution is the score with it less the score without it: on a red picture the colour CLIP
    scores "a red circle" above "a circle", so "red" adds (its sign was flipped, and only the format of the
    lines was tested)."""
    from t2i_cli import rerank as rr

    pipe = TextToImage.from_folder(weights, "cpu", need_clip=True)
    image = tensor_from_image(colour_image((230, 20, 20)))
    with torch.inference_mode():
        got = dict(rr.explain(pipe, image, RED))
        full = float(pipe.score(image[None], RED)[0])
        assert got["red"] == pytest.approx(full - float(pipe.score(image[None], "a circle")[0]), abs=1e-6)
    assert got["red"] > 0 and got["red"] == max(got.values()), got


# ---------------------------------------------------------------------------------------------- failures


@pytest.mark.parametrize("contents", ["empty", "only non-images"])
def test_nothing_to_rank(weights, tmp_path, contents):
    folder = tmp_path / "folder"
    folder.mkdir()
    if contents == "only non-images":
        (folder / "readme.txt").write_text("hello")
        (folder / "data.json").write_text("{}")
        (folder / "broken.png").write_bytes(b"not a png")
    before = snapshot(folder)
    line = one_line_failure(run("rerank", folder, "--weights", weights, "--device", "cpu"))
    assert "nothing to rank" in line
    assert snapshot(folder) == before  # no ranking.json either


def test_missing_folder(weights, tmp_path):
    line = one_line_failure(run("rerank", tmp_path / "nowhere", "--weights", weights, "--device", "cpu"))
    assert "nowhere" in line
    assert not (tmp_path / "nowhere").exists()


def test_weights_without_clip(tmp_path):
    folder = build_tiny_folder(tmp_path / "no-clip", with_clip=False)
    images = tmp_path / "images"
    images.mkdir()
    colour_image((200, 0, 0)).save(images / "x.png")
    line = one_line_failure(run("rerank", images, "--prompt", RED, "--weights", folder, "--device", "cpu"))
    assert "clip.safetensors" in line


# ---------------------------------------------------------------------------------------------- hostile inputs
@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize("side", [
    20000,  # 400 Mpx: over twice Pillow's limit, refused when opened
    10000,  # 100 Mpx: under the hard limit, refused by the warning turned error
])
def test_decompression_bomb_in_a_rerank_folder_is_skipped_and_never_decoded(weights, colour_folder, decode_spy,
                                                                              side):
    bomb_png(colour_folder / "bomb.png", side, prompt=RED)
    for i in range(6):  # give the generated-style images their prompt, so only the bomb is odd
        path = colour_folder / f"img-{i}.png"
        with Image.open(path) as im:
            im.load()
            info = PngImagePlugin.PngInfo()
            info.add_text("prompt", RED)
            im.save(path, pnginfo=info)
    before = snapshot(colour_folder)
    decode_spy.clear()
    r = run("rerank", colour_folder, "--weights", weights, "--device", "cpu")
    assert r.exit_code == 0, (r.stderr, r.exception)
    assert "1 unreadable picture" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert len(ranking(colour_folder)) == 6
    assert_only_new_outputs(before, snapshot(colour_folder))
    assert all(w * h < 10_000_000 for w, h in decode_spy), decode_spy


@pytest.mark.parametrize("prompt", ["a [/x] bird", "a red \x1b[2J\x1b]0;owned\x07 circle"])
def test_hostile_prompt_chunks_are_printed_harmlessly(weights, tmp_path, prompt):
    folder = tmp_path / "hostile"
    folder.mkdir()
    info = PngImagePlugin.PngInfo()
    info.add_text("prompt", prompt)
    colour_image((200, 20, 20)).save(folder / "x.png", pnginfo=info)
    r = run("rerank", folder, "--explain", "--weights", weights, "--device", "cpu")
    assert r.exit_code == 0 and isinstance(r.exception, (SystemExit, type(None))), (r.stderr, r.exception)
    assert "\x1b" not in r.stdout + r.stderr and "\x07" not in r.stdout + r.stderr
    assert ranking(folder)[0]["prompt"] == prompt  # ranking.json keeps the prompt exactly (JSON escapes it)


def second_clip(folder: Path, seed: int, text_len: int = TEXT_LEN) -> Path:
    """Write another random CLIP of the tiny folder's shape as folder/clip-2.safetensors."""
    from t2i_cli.models.tokenizer import TextTokenizer
    from t2i_cli.weights import save_model

    tok = TextTokenizer.from_json((folder / "tokenizer.json").read_text())
    torch.manual_seed(seed)
    cfg = ClipConfig(image_side=16, text_vocab=tok.vocab_size(text_len), text_len=text_len, n_pad_start=tok.n_bpe,
                     n_hid=8, n_embd=32, n_layer=1, n_head=2, embed_dim=16)
    return save_model(Clip(cfg), folder / "clip-2.safetensors", "clip")


def test_a_second_reranker_is_averaged_with_the_first(tmp_path):
    """With clip-2.safetensors beside clip.safetensors, the score is the mean of the two CLIPs' scores (each
    with its crop scores, for a two-object prompt), the folder's identity changes, and `t2i info` lists it."""
    import shutil

    from t2i_cli.pipeline import TextToImage

    one = build_tiny_folder(tmp_path / "one")
    two = tmp_path / "two"
    shutil.copytree(one, two)
    second_clip(two, seed=7)
    alone = tmp_path / "alone"  # the second CLIP as the only one
    shutil.copytree(one, alone)
    shutil.copyfile(two / "clip-2.safetensors", alone / "clip.safetensors")
    images = torch.rand(5, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    for prompt in ("a red bird", "a red bird and a blue fish"):  # the second has crop scores
        a, b, both = (TextToImage.from_folder(f, "cpu", need_clip=True).score(images, prompt)
                      for f in (one, alone, two))
        assert torch.allclose(both, (a + b) / 2, atol=1e-6), prompt
        assert not torch.allclose(a, b)  # two different rerankers, so the mean is not either one
    from t2i_cli.weights import folder_hash

    assert folder_hash(one) != folder_hash(two)
    r = run("info", "--weights", two)
    assert r.exit_code == 0 and "clip-2" in r.stdout


@pytest.mark.parametrize("case, named", [("no first", "has a clip-2.safetensors but no clip.safetensors"),
                                         ("other text length", "the two rerankers must read prompts alike")])
def test_a_second_reranker_that_cannot_pair_is_refused(tmp_path, case, named):
    folder = build_tiny_folder(tmp_path / "w")
    if case == "no first":
        second_clip(folder, seed=1)
        (folder / "clip.safetensors").unlink()
    else:
        second_clip(folder, seed=1, text_len=TEXT_LEN - 2)
    r = run("generate", "a red bird", "--weights", folder, "--out", tmp_path / "o", "--n", "1")
    assert r.exit_code == 1 and named in r.stderr and "Traceback" not in r.output


def test_link_best_of_a_picture_held_twice_copies_it_once(tmp_path):
    """Two files with the same bytes score alike and sit at ranks 1 and 2: the best picture is copied once (the
    second's rank made it look unwanted, so best/ was left empty)."""
    from t2i_cli import rerank as rr

    folder = tmp_path / "pics"
    folder.mkdir()
    Image.new("RGB", (16, 16), (200, 0, 0)).save(folder / "a.png")
    (folder / "a-copy.png").write_bytes((folder / "a.png").read_bytes())
    Image.new("RGB", (16, 16), (0, 0, 200)).save(folder / "c.png")
    ranked = [rr.Ranked(path=folder / name, prompt="p", score=1.0 - rank / 10, rank=rank)
              for rank, name in ((1, "a.png"), (2, "a-copy.png"), (3, "c.png"))]
    kept, copied = rr.link_best(folder, ranked, 1)
    assert copied == 1 and [p.read_bytes() for p in kept] == [(folder / "a.png").read_bytes()]


def test_a_rerank_folder_that_does_not_exist_or_is_a_file_is_named_as_such(tmp_path):
    r = run("rerank", tmp_path / "nope", "--prompt", "a zebra")  # the one line, before any word of the prompt
    assert r.exit_code == 1 and r.stderr.strip() == (f"error: {tmp_path / 'nope'} does not exist; give the folder "
                                                     "of images to rank"), r.stderr
    (tmp_path / "afile").write_text("x")
    r = run("rerank", tmp_path / "nope", "--prompt", "\u200b")  # a zero-width space alone is no prompt
    assert r.exit_code == 2 and "--prompt is empty" in r.stderr, r.stderr
    r = run("rerank", tmp_path / "afile", "--prompt", "a cat")
    assert r.exit_code == 1 and "afile is not a folder; give the folder of images to rank" in r.stderr, r.stderr


def test_a_weights_folder_without_a_reranker_says_how_to_add_one(tmp_path):
    """rerank on a folder with no clip.safetensors advised exporting a transformer run, which writes no CLIP."""
    weights = build_tiny_folder(tmp_path / "w")
    (weights / "clip.safetensors").unlink()
    (tmp_path / "imgs").mkdir()
    r = run("rerank", tmp_path / "imgs", "--prompt", "a cat", "--weights", weights)
    assert r.exit_code == 1 and f"has no clip.safetensors; it is not a complete t2i weights folder; `t2i export " \
        f"CLIP_RUN --to {weights}` adds one" in r.stderr, r.stderr


def test_a_reader_that_stops_early_still_gets_every_file_written(weights, colour_folder, tmp_path):
    """`t2i rerank DIR | head -2` printed the table, then died on the closed pipe before ranking.json or the --top
    sheet were written (and a `--force` replacement never happened). Files are written first, then printed."""
    import subprocess
    import sys

    from conftest import SRC

    cmd = (f"{sys.executable} -m t2i_cli rerank {colour_folder} --prompt 'a red square' --weights {weights} "
           f"--device cpu --top 2 | true")
    proc = subprocess.run(["bash", "-c", cmd], env={**os.environ, "PYTHONPATH": SRC}, capture_output=True, text=True,
                          timeout=300)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert (colour_folder / "ranking.json").is_file() and len(ranking(colour_folder)) == 6
    assert len(list(colour_folder.glob("ranking-top-*.png"))) == 1


def test_rerank_says_which_words_of_its_prompt_the_tokenizer_does_not_know(weights, colour_folder):
    """generate warned about a prompt's unknown words; rerank --prompt scored "zebra xylophone" without a word."""
    r = run("rerank", colour_folder, "--prompt", "a red zebra xylophone", "--weights", weights, "--device", "cpu")
    assert r.exit_code == 0, r.stderr
    (line,) = [x for x in r.stderr.splitlines() if "vocabulary" in x]
    assert "zebra" in line and "xylophone" in line and "red" not in line.split(":")[-1], line
    r = run("rerank", colour_folder, "--prompt", TINY_CAPTIONS[0], "--weights", weights, "--device", "cpu")
    assert r.exit_code == 0 and "vocabulary" not in r.stderr, r.stderr


def test_a_rerank_that_fails_after_writing_names_what_it_wrote(weights, colour_folder, monkeypatch):
    """Files are written before the table is printed; a failure in --link-best after ranking.json and the --top
    sheet were written named neither (stdout was empty)."""
    from t2i_cli import rerank as rr
    from t2i_cli.errors import OutputError

    def broken(*a, **k):
        raise OutputError("the disk is gone")

    monkeypatch.setattr(rr, "link_best", broken)
    r = run("rerank", colour_folder, "--prompt", RED, "--top", 2, "--link-best", "--weights", weights)
    assert r.exit_code == 1 and "the disk is gone" in r.stderr, r.stderr
    (sheet,) = colour_folder.glob("ranking-top-*.png")
    assert r.stdout.splitlines() == [f"wrote {colour_folder / 'ranking.json'}", f"wrote {sheet}"], r.stdout


def test_a_folder_is_read_and_scored_a_batch_at_a_time_with_the_same_ranking(weights, tmp_path, monkeypatch):
    """Every picture of the folder was decoded before the first score (a folder of 2,178 icons held 4.0 GB); now
    at most SCORE_BATCH are held at once, and the ranking is the one a single batch gives."""
    from t2i_cli import rerank as rr

    folder = tmp_path / "many"
    folder.mkdir()
    g = torch.Generator().manual_seed(3)
    for i in range(7):
        colour_image(red_shade(g) if i % 3 else blue_shade(g)).save(folder / f"img-{i}.png")
    noise = torch.randint(0, 256, (64, 64, 3), generator=g, dtype=torch.uint8).numpy()
    Image.fromarray(noise).save(folder / "img-9-corrupt.jpg")  # a sound header, its data cut short: found
    data = (folder / "img-9-corrupt.jpg").read_bytes()  # unreadable only when its batch is read
    (folder / "img-9-corrupt.jpg").write_bytes(data[:len(data) // 2])
    pipe = TextToImage.from_folder(weights, "cpu")
    whole, skipped_whole = rr.rank_folder(pipe, folder, RED)

    sizes, held, loading = [], [0], rr.load_rgb
    real_score = pipe.score

    def counting_load(path, side):
        held[0] += 1
        return loading(path, side)

    def counting_score(images, text):
        sizes.append(len(images))
        assert held[0] <= 2, held  # no more pictures were decoded than one batch holds
        held[0] = 0
        return real_score(images, text)

    monkeypatch.setattr(rr, "SCORE_BATCH", 2)
    monkeypatch.setattr(rr, "load_rgb", counting_load)
    monkeypatch.setattr(pipe, "score", counting_score)
    seen = []
    batched, skipped = rr.rank_folder(pipe, folder, RED, lambda done, total: seen.append((done, total)))
    assert sizes == [2, 2, 2, 1]  # the corrupt file is the 8th: its batch scores one picture
    assert seen == [(2, 8), (4, 8), (6, 8), (8, 8)]
    assert skipped == skipped_whole == {"unreadable picture": 1}
    assert [(r.path.name, r.rank) for r in batched] == [(r.path.name, r.rank) for r in whole]
    assert [r.score for r in batched] == pytest.approx([r.score for r in whole], abs=1e-5)
    assert {r.path.name for r in batched[:4]} == {f"img-{i}.png" for i in (1, 2, 4, 5)}  # the red ones first


def test_rerank_quiet_prints_no_warning_and_a_batch_of_unreadable_pictures_is_nothing_to_rank(weights, tmp_path):
    folder = tmp_path / "q"
    folder.mkdir()
    colour_image((200, 10, 10)).save(folder / "red.png")
    (folder / "notes.txt").write_text("not an image")
    r = run("rerank", folder, "--weights", weights, "--device", "cpu", "--prompt", RED, "--quiet")
    assert r.exit_code == 0 and r.stderr == "", r.stderr
    assert "red.png" in r.stdout and (folder / "ranking.json").exists()
    r = run("rerank", folder, "--weights", weights, "--device", "cpu", "--prompt", RED, "--force")
    assert "1 text file" in r.stderr and "not a picture" not in r.stderr
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.png").write_bytes(os.urandom(300))
    (bad / "b.jpg").write_bytes(os.urandom(300))
    line = one_line_failure(run("rerank", bad, "--weights", weights, "--device", "cpu", "--prompt", RED))
    assert "nothing to rank" in line and "2 unreadable pictures" in line, line


def test_an_older_unmarked_grid_is_passed_over_and_an_image_of_a_grid_is_ranked(weights, tmp_path):
    """Grids of an older t2i carry no sheet mark, only their name; an image whose prompt ends in "grid" has the
    name such a sheet had (a-grid-000) and was passed over as one."""
    from t2i_cli.outputs import SHEET_KEY

    folder = tmp_path / "out"
    r = run("generate", "a red bird", "--weights", weights, "--out", folder, "--n", 2, "--grid", "--device", "cpu",
            "-q")
    sheet = next(p for p in map(Path, r.stdout.split()) if "grid" in p.name)
    info = PngImagePlugin.PngInfo()
    with Image.open(sheet) as im:
        for k, v in im.text.items():
            if k != SHEET_KEY:
                info.add_text(k, v)
        im.save(sheet, pnginfo=info)  # as an older t2i wrote it
    r = run("generate", "a grid", "--weights", weights, "--out", folder, "--n", 1, "--device", "cpu", "-q")
    assert Path(r.stdout.strip()).name == "a-grid-000.png"
    r = run("rerank", folder, "--weights", weights, "--device", "cpu")
    assert r.exit_code == 0 and "1 contact sheet t2i wrote" in r.stderr, r.stderr
    assert sorted(row["file"] for row in ranking(folder)) == ["a-grid-000.png", "a-red-bird-000.png",
                                                               "a-red-bird-001.png"]


def test_rerank_says_a_heic_picture_cannot_be_read(weights, tmp_path):
    folder = tmp_path / "phone"
    folder.mkdir()
    colour_image((200, 10, 10)).save(folder / "red.png")
    (folder / "photo.HEIC").write_bytes(b"\x00\x00\x00\x18ftypheic" + bytes(64))
    r = run("rerank", folder, "--prompt", RED, "--weights", weights, "--device", "cpu")
    assert r.exit_code == 0 and "1 HEIC picture (t2i cannot read HEIC: convert to JPEG or PNG)" in r.stderr, r.stderr
    assert "not a picture" not in r.stderr


@pytest.mark.parametrize("failure", ["disk full", "ctrl-c"])
def test_a_copy_is_never_left_without_its_record_line(weights, colour_folder, monkeypatch, failure):
    """A full disk on the record after a copy, or a stop between them, left a copy the record did not name:
    the next --link-best copied the same picture again beside it (a-NNN-001.png), for good."""
    import errno
    import signal

    from t2i_cli import files, rerank

    real, writes = files.atomic_write_bytes, []

    def failing_record(path, data):
        if Path(path).name == rerank.BEST_RECORD:
            writes.append(path)
            if len(writes) == 2:  # the first save() is the record as it stands; the second follows a copy
                if failure == "disk full":
                    raise OSError(errno.ENOSPC, "No space left on device", str(path))
                os.kill(os.getpid(), signal.SIGINT)  # held until the copy and its line are both done
        return real(path, data)

    monkeypatch.setattr(files, "atomic_write_bytes", failing_record)
    args = ("rerank", colour_folder, "--prompt", RED, "--top", 2, "--link-best", "--weights", weights)
    r = run(*args)
    assert r.exit_code == (1 if failure == "disk full" else 130), r.stderr
    record = json.loads((colour_folder / "best" / rerank.BEST_RECORD).read_text())
    assert sorted(record) == sorted(p.name for p in pictures(colour_folder / "best")), record  # each copy named
    monkeypatch.undo()
    assert run(*args).exit_code == 0
    copies = pictures(colour_folder / "best")
    assert len(copies) == 2 and len({hashlib.sha256(p.read_bytes()).hexdigest() for p in copies}) == 2, copies


def test_a_link_to_a_missing_picture_is_counted_in_the_warning(weights, colour_folder):
    """A symbolic link whose picture was moved or deleted was passed over silently, outside the count."""
    (colour_folder / "gone.png").symlink_to(colour_folder / "moved-away.png")
    r = run("rerank", colour_folder, "--prompt", RED, "--weights", weights, "--device", "cpu")
    assert r.exit_code == 0, r.stderr
    (warning,) = [ln for ln in r.stderr.splitlines() if ln.startswith("warning:")]
    assert "1 link to a missing file" in warning, warning
    assert "gone.png" not in {row["file"] for row in ranking(colour_folder)}


def test_rerank_scores_a_t2i_picture_as_generate_did(weights, tmp_path):
    """generate scores its pictures at the side it draws them (the CLIP shrinks them by area averaging); rerank
    read the same PNGs at the CLIP's side through a Lanczos resize, so its scores differed from each PNG's
    clip_score, and its best picture could be another one. A dVAE drawing at twice the CLIP's side shows it."""
    from t2i_cli.models.dvae import DVAE, DVAEConfig

    folder = tmp_path / "w"
    shutil.copytree(weights, folder)
    torch.manual_seed(3)
    save_model(DVAE(DVAEConfig(image_side=32, downsample=8, n_codes=32, n_hid=8, code_dim=8)),
               folder / "dvae.safetensors", "dvae")  # the same 4 x 4 codes, drawn at 32 px
    out = tmp_path / "out"
    r = run("generate", RED, "--weights", folder, "--out", out, "--candidates", "6", "--keep", "6", "-q")
    assert r.exit_code == 0, r.stderr
    recorded = {}
    for path in out.glob("*.png"):
        with Image.open(path) as im:
            assert im.size == (32, 32)
            recorded[path.name] = float(im.text["clip_score"])
    r = run("rerank", out, "--weights", folder, "-q")
    assert r.exit_code == 0, r.stderr
    got = {row["file"]: row["score"] for row in json.loads((out / "ranking.json").read_text())}
    assert got.keys() == recorded.keys()
    assert sorted(got, key=got.get) == sorted(recorded, key=recorded.get), (got, recorded)  # as generate ranked
    # what is left is the PNG's 8-bit rounding of the pixels generate scored (this CLIP is sharp: 0.016 at most
    # here, against 0.077 when read at the CLIP's side)
    assert max(abs(got[name] - recorded[name]) for name in got) < 0.025, (got, recorded)


def test_a_prompt_chunk_over_a_thousand_characters_is_cut_and_said(weights, tmp_path):
    """A picture's prompt text is cut to MAX_PROMPT_CHARS before it is tokenized (tokenizing a megabyte took
    minutes), and the warning says how many were cut; ranking.json holds the cut prompt."""
    from t2i_cli import rerank as rr

    folder = tmp_path / "long"
    folder.mkdir()
    info = PngImagePlugin.PngInfo()
    info.add_text("prompt", "a red circle " * 400)  # 5,200 characters
    colour_image((230, 20, 20)).save(folder / "long.png", pnginfo=info)
    r = run("rerank", folder, "--weights", weights, "--device", "cpu")
    assert r.exit_code == 0, r.stderr
    assert f"1 prompt read from PNG text was longer than {rr.MAX_PROMPT_CHARS:,} characters" in r.stderr
    (row,) = ranking(folder)
    assert len(row["prompt"]) == rr.MAX_PROMPT_CHARS


def test_pictures_drawn_by_other_weights_are_said_to_be_scored_by_this_clip(weights, tmp_path):
    """Pictures drawn with one's own weights and reranked without --weights were scored by the shipped CLIP (a
    model of the procedural world), silently. rerank says how many were drawn by other weights than the ones
    scoring them, and ranks them all the same; pictures of the same weights, and pictures t2i did not draw, are
    not counted; --quiet says nothing."""
    other = build_tiny_folder(tmp_path / "other", seed=3, captions=[*TINY_CAPTIONS, RED, BLUE])
    out = tmp_path / "out"
    for folder, seed in ((weights, "1"), (other, "2")):
        r = run("generate", RED, "--weights", folder, "--out", out, "--n", "2", "--seed", seed)
        assert r.exit_code == 0, r.stderr
    colour_image((230, 20, 20)).save(out / "mine.png")  # a picture of the user's: no weights recorded
    r = run("rerank", out, "--weights", weights, "--prompt", RED)
    assert r.exit_code == 0, r.stderr
    said = [ln for ln in r.stderr.splitlines() if "other weights" in ln]
    assert len(said) == 1 and said[0].startswith("warning: 2 of the images were drawn by other weights"), r.stderr
    assert len(ranking(out)) == 5
    r = run("rerank", out, "--weights", other, "--prompt", RED, "--force")
    assert r.exit_code == 0 and "2 of the images were drawn by other weights" in r.stderr, r.stderr
    r = run("rerank", out, "--weights", other, "--prompt", RED, "--force", "--quiet")
    assert r.exit_code == 0 and "other weights" not in r.stderr, r.stderr
    solo = tmp_path / "solo"
    assert run("generate", RED, "--weights", weights, "--out", solo, "--n", "2", "--seed", "1").exit_code == 0
    r = run("rerank", solo, "--weights", weights)
    assert r.exit_code == 0 and "other weights" not in r.stderr, r.stderr


def test_explain_and_link_best_of_a_picture_with_a_long_name(weights, tmp_path):
    """A picture whose name is 254 bytes long (the file system takes 255): --explain and --link-best failed
    with "File name too long; choose a writable folder"; their new names are cut to fit."""
    folder = tmp_path / "long"
    folder.mkdir()
    colour_image((230, 20, 20)).save(folder / ("b" * 250 + ".png"))
    r = run("rerank", folder, "--prompt", RED, "--explain", "--top", "1", "--link-best")
    assert r.exit_code == 0, r.stderr
    made = [p.name for p in folder.iterdir()] + [p.name for p in (folder / "best").iterdir()]
    assert any(n.startswith("explain-bbb") for n in made) and any(n.startswith("bbb") and n.endswith("-000.png")
                                                                   for n in made), made
    # the same again: each rerun wrote another identical strip (and the next rerank counted them as sheets)
    r = run("rerank", folder, "--prompt", RED, "--explain", "--top", "1", "--link-best")
    assert r.exit_code == 0 and sorted(p.name for p in folder.iterdir()) == sorted(
        n for n in made if (folder / n).exists()), r.stderr


def test_explain_explains_the_best_image_of_every_prompt(weights, tmp_path):
    """--explain explained the best image of the folder's first prompt alone; a folder of two prompts left the
    other's best unexplained, unsaid. Each prompt's rank-1 image gets its word contributions (and, from a CLIP
    with a word-region head, its strip: test_explain_and_link_best_of_a_picture_with_a_long_name)."""
    out = tmp_path / "out"
    for prompt, seed in ((RED, "1"), (BLUE, "2")):
        assert run("generate", prompt, "--weights", weights, "--out", out, "--n", "2", "--seed", seed).exit_code == 0
    r = run("rerank", out, "--weights", weights, "--explain")
    assert r.exit_code == 0, r.stderr
    firsts = {row["prompt"]: row["file"] for row in ranking(out) if row["rank"] == 1}
    heads = [ln for ln in r.stdout.splitlines() if ln.startswith("word contributions")]
    assert len(firsts) == 2 and len(heads) == 2 and all(any(f in h for h in heads) for f in firsts.values()), heads
    assert r.stderr.count("no word-region head") == 1  # (this CLIP draws no strips: said once, not per prompt)


def test_the_top_sheet_gives_each_prompt_its_own_row(tmp_path):
    """The --top K sheet laid every prompt's best K out as one flat grid of K columns: a prompt with fewer than K
    pictures shifted every later prompt's pictures into the wrong columns. Each prompt has its own row, filled out
    with blank tiles; the same ranking again names the sheet it wrote (no second copy)."""
    from t2i_cli import rerank as rr

    paths = {}
    for name, colour in (("red", (230, 20, 20)), ("b1", (20, 20, 230)), ("b2", (20, 20, 200)), ("b3", (20, 20, 170))):
        paths[name] = tmp_path / f"{name}.png"
        colour_image(colour).save(paths[name])
    ranked = [rr.Ranked(paths["red"], RED, 0.9, 1)] + [rr.Ranked(paths[f"b{i}"], BLUE, 0.5 - i / 10, i)
                                                       for i in (1, 2, 3)]
    sheet_path = rr.write_top_sheet(tmp_path, ranked, 2, 16)
    sheet = np.asarray(Image.open(sheet_path).convert("RGB")).astype(int)
    tile = lambda row, col: sheet[4 + row * (16 + 14 + 4) + 8, 4 + col * (16 + 4) + 8]  # noqa: E731  (a tile's middle)
    assert sheet.shape[:2] == (4 + 2 * (16 + 14 + 4), 4 + 2 * (16 + 4))  # two rows of two
    assert tile(0, 0)[0] > 200 and (tile(0, 1) == 255).all()  # the red prompt's one picture, then a blank tile
    assert tile(1, 0)[2] > 180 and tile(1, 1)[2] > 180 and tile(1, 0)[0] < 50  # the blue prompt's best two
    assert rr.write_top_sheet(tmp_path, ranked, 2, 16) == sheet_path


def test_the_printed_ranking_keeps_its_columns_with_a_negative_score(capsys):
    """A negative score pushed its file name a column right of the others ("18  -0.0018" under "17  0.0093")."""
    from t2i_cli import rerank as rr
    from t2i_cli.cli import _print_ranking

    _print_ranking([rr.Ranked(Path("a.png"), RED, 0.0093, 17), rr.Ranked(Path("b.png"), RED, -0.0018, 18)])
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.endswith(".png")]
    assert len(lines) == 2 and lines[0].index("a.png") == lines[1].index("b.png"), lines


def test_a_picture_without_a_file_extension_is_ranked_by_its_content(weights, tmp_path):
    """rerank counted a PNG without an extension as "not an image", while vary and --from read the same file by its
    content; a file without an extension that is no picture is still passed over as one."""
    folder = tmp_path / "f"
    folder.mkdir()
    colour_image((230, 20, 20)).save(folder / "red", format="PNG")
    colour_image((20, 20, 230)).save(folder / "blue.png")
    (folder / "README").write_text("notes\n")
    r = run("rerank", folder, "--prompt", RED, "--weights", weights)
    assert r.exit_code == 0 and "skipped 1 file not a picture" in r.stderr, r.stderr
    assert [row["file"] for row in sorted(ranking(folder), key=lambda row: row["rank"])] == ["red", "blue.png"]


def test_a_sheet_tile_label_keeps_its_index_and_score_apart():
    """The built-in font's space is 2 pixels: "#0 0.445" read as one number on --grid and --top sheets."""
    from t2i_cli.outputs import sheet_label

    assert sheet_label(2, 1.15139) == "#2 (1.151)" and sheet_label(0, -0.5) == "#0 (-0.500)"
    assert sheet_label(3, None) == "#3"


def test_explain_scores_each_reading_of_the_prompt_once(weights, monkeypatch):
    """--explain scored the picture once per word: a 400-word prompt encoded it 401 times, though the CLIP reads
    a few dozen tokens (removing a later word changes nothing it reads) and a repeated word's two variants read
    alike. Each distinct reading is scored once, and every word's contribution is what scoring each variant
    gives (words past the CLIP's reading add exactly 0)."""
    from t2i_cli import rerank as rr

    pipe = TextToImage.from_folder(weights, "cpu", need_clip=True)
    image = tensor_from_image(colour_image((230, 20, 20)))
    text_len = pipe.bundle.clip.cfg.text_len
    prompt = RED + " on a a red circle" + " circle" * (2 * text_len)
    words = prompt.split()
    calls = []
    real_score = pipe.score
    monkeypatch.setattr(pipe, "score", lambda images, text, objects=None: calls.append(text)
                        or real_score(images, text, objects))
    with torch.inference_mode():
        got = rr.explain(pipe, image, prompt)
        assert len(calls) == len(set(calls)) < len(words) - text_len
        calls.clear()
        full = float(real_score(image[None], prompt)[0])
        naive = [full - float(real_score(image[None], " ".join(words[:i] + words[i + 1:]))[0])
                 for i in range(len(words))]
    assert [w for w, _ in got] == words and [d for _, d in got] == pytest.approx(naive, abs=1e-6)
    assert all(d == 0 for _, d in got[text_len + 1:]) and any(d != 0 for _, d in got[:3])
