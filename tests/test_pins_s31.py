"""Pins of session 31's changes that its own tests left loose (found by a mutation audit): each test names
the behaviour it holds in place."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image, ImageDraw, ImageFont

from conftest import TINY_CAPTIONS, build_tiny_folder, one_line_failure, run
from t2i_cli.images import encode_png

EMOJI = "\N{GRINNING FACE}"  # 4 bytes in UTF-8


# ------------------------------------------------------------------------------------------- files


def test_fitted_stem_fills_the_room_a_five_digit_number_leaves_and_no_more():
    """fitted_stem keeps the longest stem whose stem-99999.suffix fits in 255 bytes: exactly 245 bytes for .png
    (not one byte less, nor one more that the largest number write_new gives would push past the limit)."""
    from t2i_cli.files import MAX_NAMES, fitted_stem

    for stem in ("b" * 300, "b" * 246, "é" * 200, EMOJI * 70):
        cut = fitted_stem(stem, ".png")
        longest = f"{cut}-{MAX_NAMES - 1}.png".encode()
        assert stem.startswith(cut) and len(longest) <= 255, (stem[:3], len(longest))
        assert len(f"{stem[:len(cut) + 1]}-{MAX_NAMES - 1}.png".encode()) > 255  # one more letter does not fit
    assert len(fitted_stem("b" * 300, ".png").encode()) == 245
    assert fitted_stem("b" * 245, ".png") == "b" * 245 and fitted_stem("a-red-bird", ".png") == "a-red-bird"
    assert fitted_stem("é" * 200, ".png") == "é" * 122  # 244 bytes: a 123rd letter would make 246


def test_fitted_stem_cuts_a_name_of_undecodable_bytes_by_its_bytes():
    """A picture whose name holds bytes that are not UTF-8 (Python holds them as lone surrogates) is cut as the
    file system counts it, one byte a surrogate, never an encoding error."""
    from t2i_cli.files import fitted_stem

    stem = "\udcff" * 300  # the name of 300 bytes 0xff, as os.listdir gives it
    cut = fitted_stem(stem, ".png")
    assert cut == "\udcff" * 245
    assert len(cut.encode("utf-8", "surrogateescape")) == 245


def test_a_name_of_64_characters_and_244_bytes_is_written_atomically(tmp_path):
    """The temporary beside a file is named from the file's first 64 bytes, not 64 characters: the temporary of
    a 244-byte name of 64 characters (60 emoji and .png) was 258 bytes, past the file system's 255, and the write
    failed although the name itself fits."""
    from t2i_cli.files import atomic_write_bytes

    path = tmp_path / (EMOJI * 60 + ".png")
    assert len(path.name) == 64 and len(path.name.encode()) == 244
    assert atomic_write_bytes(path, b"png").read_bytes() == b"png"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary left behind


# ------------------------------------------------------------------------------------------- images


def test_a_letter_whose_base_is_not_ascii_stays_as_it_is():
    """drawable() draws a mark's base letter only when that base is ASCII: a Cyrillic ё or й stays whole (its
    base is Cyrillic too, no better drawn), not turned into another letter of its script."""
    from t2i_cli.images import drawable

    assert drawable("ёж й") == "ёж й"
    assert drawable("café ё") == "cafe ё"


def _drawn_lines(text: str, width: int) -> list[str]:
    """The lines _draw_label draws for text in a tile `width` pixels wide (the sheets' own font)."""
    from t2i_cli.images import _draw_label

    draw, drawn = ImageDraw.Draw(Image.new("RGB", (width + 8, 40))), []
    draw.text = lambda xy, line, **k: drawn.append(line)  # what it would draw, in order
    _draw_label(draw, ImageFont.load_default(), text, 0, 0, width)
    return drawn


def test_a_label_cut_before_measuring_draws_what_the_whole_word_would():
    """_draw_label cuts a word to width + 1 letters before measuring it (no glyph is under a pixel wide): the
    label drawn is the one of the whole word, for words of the narrowest glyphs too (a cut at fewer letters
    let a too-long word of commas draw as if it fitted, without its "...")."""
    from t2i_cli.images import _fit

    draw, font = ImageDraw.Draw(Image.new("RGB", (10, 10))), ImageFont.load_default()
    for glyph in ("'", ",", ".", "i", "a"):
        for n in (20, 33, 40, 64, 65, 100, 400):
            word = glyph * n
            assert _drawn_lines(word, 64) == [_fit(draw, font, word, 64)], (glyph, n)


def test_a_label_of_three_lines_draws_two_the_second_ending_in_dots():
    """A caption that needs a third line draws two, the second ending in "..." (the rest is not shown); each
    line fits the tile."""
    draw, font = ImageDraw.Draw(Image.new("RGB", (10, 10))), ImageFont.load_default()
    text = "a big yellow star at night above a small purple heart on a white background beside two green cats"
    lines = _drawn_lines(text, 64)
    assert len(lines) == 2 and lines[1].endswith("...") and not lines[0].endswith("..."), lines
    assert all(draw.textlength(ln, font=font) <= 64 for ln in lines), lines
    assert text.startswith(lines[0]) and len(lines[1]) > 5, lines  # the second line holds words, not one
    short = _drawn_lines("a red bird", 64)
    assert short == ["a red bird"]


# ------------------------------------------------------------------------------------------- outputs


def test_every_image_prompt_setting_a_png_records_is_read_back(tmp_path):
    """recorded_settings refuses a PNG with settings t2i does not know: every key an image prompt writes
    (inpaint's mask and redraws, complete's keep_top, vary's strength) is one it knows, and is read back."""
    from t2i_cli.image_prompt import ImagePrompt
    from t2i_cli.outputs import provenance, recorded_settings, write_image
    from t2i_cli.pipeline import Generated
    from t2i_cli.sampling import SamplingConfig

    g = Generated(torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(0)), "a red bird", 0)
    codes, keep = torch.zeros(16, dtype=torch.long), torch.arange(16) < 8
    prompts = {"inpaint": ImagePrompt("inpaint", codes, "a" * 64, keep=keep, mask_sha256="b" * 64, redraws=3),
               "complete": ImagePrompt("complete", codes, "c" * 64, keep=keep, keep_top=0.5),
               "vary": ImagePrompt("vary", codes, "d" * 64, strength=0.25)}
    for mode, ip in prompts.items():
        folder = tmp_path / mode
        path = write_image(g, folder, provenance(g, 5, 1, SamplingConfig(), "0" * 16, made_from=ip.provenance()))
        rec = recorded_settings(path)
        assert (rec.image_mode, rec.image_sha256) == (mode, ip.image_sha256)
        assert (rec.mask_sha256, rec.redraws, rec.keep_top, rec.strength) == (
            ip.mask_sha256, ip.redraws, ip.keep_top, ip.strength), mode


# ------------------------------------------------------------------------------------------- rerank


def _t2i_png(path: Path, meta: dict[str, str]) -> Path:
    """A small PNG holding the text chunks meta (and, when meta has no "t2i", none)."""
    path.write_bytes(encode_png(Image.new("RGB", (16, 16), (200, 30, 30)), meta))
    return path


def test_rerank_counts_as_other_weights_only_t2i_pngs_of_another_identity_and_generator(tmp_path):
    """collect counts a t2i PNG as drawn by other weights when neither its weights identity nor its generator
    is the scorer's: a PNG of the same weights is not counted though it records no generator (t2i before 0.9.2
    recorded none), nor is a PNG of the same generator with other rerankers; a PNG that is not t2i's (no t2i
    chunk) is not counted whatever it holds; an empty generator matches nothing."""
    from t2i_cli import rerank as rr

    def counted(meta: dict[str, str], scorer=("ident", "gen")) -> int:
        folder = tmp_path / f"f{len(list(tmp_path.iterdir()))}"
        folder.mkdir()
        _t2i_png(folder / "a.png", {"prompt": "a red bird", **meta})
        items, skipped = rr.collect(folder, None, scorer)
        assert len(items) == 1  # ranked all the same
        return skipped[rr.OTHER_WEIGHTS]

    t2i = {"t2i": "{}"}
    assert counted(t2i | {"weights": "ident"}) == 0  # an older t2i's PNG of these weights: no generator recorded
    assert counted(t2i | {"weights": "ident", "generator": "gen"}) == 0
    assert counted(t2i | {"weights": "other", "generator": "gen"}) == 0  # same drawing files, other rerankers
    assert counted(t2i | {"weights": "other", "generator": "else"}) == 1
    assert counted(t2i | {"weights": "other"}) == 1
    assert counted({"weights": "other"}) == 0  # not a t2i PNG: its "weights" is someone else's word
    assert counted(t2i | {"weights": "other"}, scorer=("ident", "")) == 1  # "" is no generator to share


def test_rerank_says_so_when_a_single_picture_was_drawn_by_other_weights(tiny_weights, tmp_path):
    """One picture drawn by other weights is said ("1 of the images ..."), as two or more are."""
    other = build_tiny_folder(tmp_path / "other", seed=3)
    out = tmp_path / "out"
    for folder, n, seed in ((tiny_weights, "2", "1"), (other, "1", "2")):
        r = run("generate", "a red bird", "--weights", folder, "--out", out, "--n", n, "--seed", seed)
        assert r.exit_code == 0, r.stderr
    r = run("rerank", out, "--weights", tiny_weights)
    assert r.exit_code == 0, r.stderr
    said = [ln for ln in r.stderr.splitlines() if "other weights" in ln]
    assert len(said) == 1 and said[0].startswith("warning: 1 of the images were drawn by other weights"), r.stderr


# ------------------------------------------------------------------------------------------- export


def _transformer_run(folder: Path, dvae_tensors: dict, meta: dict) -> Path:
    """A run folder that export takes for a transformer run trained on the dVAE of dvae_tensors."""
    from dataclasses import asdict

    from t2i_cli.train import RUN_CONFIG, TrainConfig
    from t2i_cli.weights import save_tensors

    folder.mkdir(parents=True)
    (folder / RUN_CONFIG).write_text(json.dumps(asdict(TrainConfig(stage="transformer", data="world:train"))))
    save_tensors(folder / "dvae.safetensors", dvae_tensors, meta)
    return folder


def test_export_refuses_a_dvae_whose_codebook_differs_though_its_encoder_is_the_same(tmp_path):
    """A dVAE fits beside a transformer only when it encodes the same codes: its encoder AND its codebook are
    the transformer's dVAE's (a decoder fine-tune); a codebook that differs (same encoder) maps the codes to
    other vectors and is refused, a decoder that differs is not."""
    from t2i_cli.errors import UsageError
    from t2i_cli.models.dvae import DVAE, DVAEConfig
    from t2i_cli.train import _refuse_other_codes
    from t2i_cli.weights import load_tensors, save_model, save_tensors

    torch.manual_seed(0)
    save_model(DVAE(DVAEConfig(image_side=16, downsample=4, n_codes=32, n_hid=8, code_dim=8)),
               tmp_path / "base.safetensors", "dvae")
    tensors, meta = load_tensors(tmp_path / "base.safetensors")
    assert any(k.startswith("codebook.") for k in tensors) and any(k.startswith("decoder.") for k in tensors)
    tr = _transformer_run(tmp_path / "tr", tensors, meta)
    for part, refused in (("decoder.", False), ("codebook.", True), ("encoder.", True)):
        changed = {k: v + 0.5 if k.startswith(part) and v.is_floating_point() else v for k, v in tensors.items()}
        save_tensors(tmp_path / f"{part}safetensors", changed, meta)
        planned = {"dvae.safetensors": tmp_path / f"{part}safetensors"}
        if refused:
            with pytest.raises(UsageError, match="encodes other codes"):
                _refuse_other_codes(planned, [tr])
        else:
            _refuse_other_codes(planned, [tr])


# ------------------------------------------------------------------------------------------- cli


def test_the_judge_is_doubted_below_90_percent_and_trusted_at_it():
    """eval's warning names a task where the judge agrees (or rejects wrong renders) on less than 90% of the
    world's own renders: 89% is doubted, 90% exactly is not, whatever the other measure."""
    from t2i_cli.cli import _doubtful_judge

    def run_of(agreement: float, rejects: float) -> dict:
        return {"judge_validation": {"counting": {"agreement": agreement, "rejects_wrong": rejects},
                                     "colours": {"agreement": 1.0, "rejects_wrong": 1.0}}}

    assert _doubtful_judge([run_of(0.9, 0.9)]) == []
    assert _doubtful_judge([run_of(0.89, 1.0)]) == ["counting"]
    assert _doubtful_judge([run_of(1.0, 0.88)]) == ["counting"]
    assert _doubtful_judge([run_of(0.9, 1.0), run_of(0.86, 1.0)]) == ["counting"]


TWO = "a red bird and a blue fish"  # a caption of two objects: regional guidance draws it with regions


def test_generate_draws_with_every_sampling_option_it_is_given(tmp_path):
    """generate builds its SamplingConfig from its options by name (cli.sampling_of): every option given
    reaches the sampler and the PNG records it (none left at its default)."""
    from t2i_cli.outputs import recorded_settings

    weights = build_tiny_folder(tmp_path / "w", captions=TINY_CAPTIONS + ["a pink tree on the right and a cat"])
    given = {"temperature": 0.75, "top_k": 7, "top_p": 0.875, "guidance": 2.5, "guidance_start": 4.0,
             "guidance_stop": 0.5, "jacobi": 3, "regional": 1.5}
    for apart in ("jacobi", "guidance_stop"):  # the two do not combine
        options = [x for k, v in given.items() if k != apart for x in (f"--{k.replace('_', '-')}", str(v))]
        out = tmp_path / apart
        r = run("generate", TWO, "--weights", weights, "--out", out, "--n", "1", "--seed", "5", *options)
        assert r.exit_code == 0, r.stderr
        (png,) = out.glob("*.png")
        sampling = recorded_settings(png).sampling
        assert {k: getattr(sampling, k) for k in given if k != apart} == {
            k: v for k, v in given.items() if k != apart}, apart


def _data_folder(folder: Path, n: int = 30) -> Path:
    folder.mkdir()
    for i in range(n):
        Image.new("RGB", (16, 16), (i % 256, 90, 7 * i % 256)).save(folder / f"p{i}.png")
        (folder / f"p{i}.txt").write_text("a red bird\n")
    return folder


def test_eval_data_without_a_clip_does_not_refuse_guidance_stop(tmp_path):
    """eval --data of weights without clip.safetensors draws no picture: its --guidance-stop with --guidance 1
    is not refused as having nothing to stop (nor is anything drawn); since session 43 (tests/test_s43_refusals)
    both are refused as changing nothing there, in one line."""
    folder = build_tiny_folder(tmp_path / "w", with_clip=False)
    data = _data_folder(tmp_path / "data")
    r = run("eval", "--data", data, "--n", "2", "--weights", folder, "--guidance", "1", "--guidance-stop", "0.5",
            "--json", tmp_path / "e.json")
    assert r.exit_code == 2 and "has nothing to stop" not in r.stderr, r.stderr
    assert "--guidance 1 and --guidance-stop 0.5 change nothing with --data" in r.stderr, r.stderr
    assert not (tmp_path / "e.json").exists()


def test_eval_data_takes_guidance_stop_when_a_later_val_caption_draws_regions(tmp_path):
    """eval --data refuses --guidance-stop with --guidance 1 only when no val caption it draws has regions:
    every one of the n captions is looked at, not the first alone (a second caption of two objects draws
    regional guidance, which the option stops)."""
    from t2i_cli.data_eval import _val
    from t2i_cli.pipeline import TextToImage
    from t2i_cli.sampling import SamplingConfig

    weights = build_tiny_folder(tmp_path / "w", captions=TINY_CAPTIONS + [TWO, "a pink tree on the right and a cat"])
    sampling = SamplingConfig(guidance=1.0, guidance_stop=0.5, regional=2.0)
    assert TextToImage.from_folder(weights, device="cpu").request(TWO, sampling).regions  # it draws with regions
    data = _data_folder(tmp_path / "data", 120)  # (a twentieth of the pictures is val)
    val = _val(str(data), 16)
    second = val.pairs[1][0]
    second.with_suffix(".txt").write_text(TWO + "\n")
    assert _val(str(data), 16).captions_at(1) == [TWO] and _val(str(data), 16).captions_at(0) == ["a red bird"]
    args = ["eval", "--data", data, "--n", "2", "--weights", weights, "--guidance", "1", "--guidance-stop", "0.5",
            "--regional", "2", "-q"]
    r = run(*args)
    assert r.exit_code == 0, r.stderr
    second.with_suffix(".txt").write_text("a red bird\n")  # none draws regions: refused
    line = one_line_failure(run(*args), 2)
    assert "no val caption draws regional guidance" in line, line


# ------------------------------------------------------------------------------------------- whole runs


def test_a_whole_run_resumed_under_a_count_that_cannot_split_names_counts_that_divide_every_stage(
        tmp_path, monkeypatch):
    """A whole run's resume under a process count that cannot split a stage's batch names the counts that
    divide every stage's batch (dVAE 8, transformer 12, CLIP 8: 1, 2 and 4), not those of the first stage
    alone (8 would then fail at the transformer)."""
    import t2i_cli.recipe as recipe

    out, kept = tmp_path / "run", tmp_path / "plan.json"

    def killed(cfg, sub, **k):  # what SIGKILL at the first stage's start leaves: the plan alone
        shutil.copy(sub.parent / "all.json", kept)
        raise KeyboardInterrupt

    monkeypatch.setattr(recipe, "run_stage", killed)
    r = run("train", "--stage", "all", "--preset", "tiny", "--steps", "4,clip=3", "--batch-size", "8,transformer=12",
            "--workers", "0", "-q", "--device", "cpu", "--out", out)
    assert r.exit_code == 130 and kept.is_file(), r.stderr
    out.mkdir()
    shutil.copy(kept, out / "all.json")
    monkeypatch.setenv("WORLD_SIZE", "3")
    line = one_line_failure(run("train", "--resume", out, "-q"), 2)
    assert "batch of 8 cannot be split over 3 processes" in line and line.endswith("every stage's batch (1, 2, 4)"), \
        line
    assert (out / "all.json").read_bytes() == kept.read_bytes()
