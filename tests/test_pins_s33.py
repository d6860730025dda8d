"""Pins found by a mutation audit of rerank.py, weights.py, files.py, data_eval.py and recipe.py: behaviour that
a small change to the code could break without any other test failing."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from PIL import Image, PngImagePlugin

from conftest import build_tiny_folder


def png_with_prompt(path: Path, prompt: str, rgb: tuple[int, int, int] = (200, 30, 30)) -> Path:
    info = PngImagePlugin.PngInfo()
    info.add_text("prompt", prompt)
    Image.new("RGB", (16, 16), rgb).save(path, pnginfo=info)
    return path


@pytest.fixture(scope="module")
def tiny_pipe(tmp_path_factory):
    from t2i_cli.pipeline import TextToImage

    return TextToImage.from_folder(build_tiny_folder(tmp_path_factory.mktemp("s33") / "weights"), "cpu")


# ---------------------------------------------------------------------------------------------------- rerank.py
def test_a_prompt_of_exactly_a_thousand_characters_is_kept_whole_and_one_more_is_cut(tmp_path):
    """The documented bound is 1,000 characters: a prompt of that length is neither cut nor counted as cut, one
    of 1,001 is cut to 1,000 and counted."""
    from t2i_cli.rerank import CUT, collect

    prompt = ("a red circle " * 100)[:1000]
    assert len(prompt) == 1000
    png_with_prompt(tmp_path / "a.png", prompt)
    png_with_prompt(tmp_path / "b.png", prompt + "x")
    items, skipped = collect(tmp_path, None)
    assert [(p.name, t) for p, t in items] == [("a.png", prompt), ("b.png", prompt)]
    assert skipped[CUT] == 1


def test_files_beside_pictures_are_counted_as_what_they_are(tmp_path):
    """Markdown notes are text files (not 'not a picture'); a RIFF file that is not WebP (a WAV) without a suffix
    is not a picture (not an 'unreadable picture'); a WebP without a suffix is a picture."""
    from t2i_cli.rerank import collect

    png_with_prompt(tmp_path / "pic.png", "a red circle")
    (tmp_path / "notes.md").write_text("# notes\n")
    (tmp_path / "sound").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(32))
    Image.new("RGB", (16, 16), (10, 200, 10)).save(tmp_path / "webp", format="WEBP")
    items, skipped = collect(tmp_path, "a green square")
    assert sorted(p.name for p, _ in items) == ["pic.png", "webp"]
    assert dict(skipped) == {"text file": 1, "file not a picture": 1}


def test_rank_folder_reports_progress_against_every_picture_of_every_prompt(tiny_pipe, tmp_path):
    """progress(done, total): total is the folder's pictures, not those of the prompt being scored."""
    from t2i_cli.rerank import rank_folder

    for i in range(3):
        png_with_prompt(tmp_path / f"r{i}.png", "a red bird", (200, 10 * i, 10))
    for i in range(2):
        png_with_prompt(tmp_path / f"f{i}.png", "a blue fish", (10, 10 * i, 200))
    seen: list[tuple[int, int]] = []
    ranked, _ = rank_folder(tiny_pipe, tmp_path, progress=lambda done, total: seen.append((done, total)))
    assert len(ranked) == 5
    assert [t for _, t in seen] == [5] * len(seen) and seen[-1] == (5, 5)


def test_nothing_to_rank_names_what_was_left_out_but_not_the_prompts_it_cut(tiny_pipe, tmp_path):
    """A cut prompt is not a picture left out: the error lists only the files that were."""
    import io

    from t2i_cli.errors import DataError
    from t2i_cli.rerank import rank_folder

    g = torch.Generator().manual_seed(0)
    noise = torch.randint(0, 256, (128 * 128 * 3,), generator=g, dtype=torch.uint8).numpy().tobytes()
    buf = io.BytesIO()
    Image.frombytes("RGB", (128, 128), noise).save(buf, format="JPEG")
    data = buf.getvalue()
    (tmp_path / "cut-short.jpg").write_bytes(data[:len(data) // 2])  # its header reads, its pixels do not
    with pytest.raises(DataError) as e:
        rank_folder(tiny_pipe, tmp_path, prompt="a red bird " * 100)
    assert str(e.value) == f"nothing to rank in {tmp_path}: no readable image with a prompt (1 unreadable picture)"


def test_link_best_refuses_a_best_that_is_a_link_to_nothing_before_any_work(tmp_path):
    """DIR/best a dangling link: refused up front (a mkdir there fails only after the ranking was written)."""
    from t2i_cli.errors import UsageError
    from t2i_cli.rerank import check_outputs

    (tmp_path / "best").symlink_to(tmp_path / "gone")
    check_outputs(tmp_path, link_best=False)  # without --link-best best/ is not used
    with pytest.raises(UsageError, match="best is a file; --link-best"):
        check_outputs(tmp_path, link_best=True)
    assert not (tmp_path / "gone").exists()


def test_a_foreign_record_in_best_is_refused_only_when_link_best_would_use_it(tmp_path):
    """best/t2i-copies.json that t2i did not write stops --link-best (without --force); a rerank without
    --link-best never touches best/ and is not refused for it."""
    from t2i_cli.errors import UsageError
    from t2i_cli.rerank import BEST_RECORD, check_outputs

    (tmp_path / "best").mkdir()
    (tmp_path / "best" / BEST_RECORD).write_text('{"mine.png": "not a digest"}')
    check_outputs(tmp_path, link_best=False)
    check_outputs(tmp_path, link_best=True, force=True)
    with pytest.raises(UsageError, match="is not the record of t2i's copies"):
        check_outputs(tmp_path, link_best=True)


def test_ranking_json_holds_scores_to_six_decimals(tmp_path):
    import json

    from t2i_cli.rerank import Ranked, write_ranking

    png_with_prompt(tmp_path / "a.png", "a red bird")
    write_ranking(tmp_path, [Ranked(tmp_path / "a.png", "a red bird", 0.123456789, 1),
                             Ranked(tmp_path / "b.png", "a red bird", -0.5, 2)])
    rows = json.loads((tmp_path / "ranking.json").read_text())
    assert rows == [{"rank": 1, "score": 0.123457, "file": "a.png", "prompt": "a red bird"},
                    {"rank": 2, "score": -0.5, "file": "b.png", "prompt": "a red bird"}]


def test_the_top_sheet_has_at_most_eight_columns(tmp_path):
    """--top 10 of one prompt with 10 pictures: two rows of 8 columns (the second filled out with blank tiles)."""
    from t2i_cli.rerank import Ranked, write_top_sheet

    ranked = [Ranked(png_with_prompt(tmp_path / f"p{i}.png", "a red bird", (20 * i, 0, 0)), "a red bird",
                     1.0 - i / 10, i + 1) for i in range(10)]
    side = 16
    with Image.open(write_top_sheet(tmp_path, ranked, 10, side)) as sheet:
        assert sheet.size == (8 * (side + 4) + 4, 2 * (side + 14 + 4) + 4)
    with Image.open(write_top_sheet(tmp_path, ranked, 3, side)) as sheet:
        assert sheet.size == (3 * (side + 4) + 4, side + 14 + 4 + 4)


def test_a_sheet_of_the_same_size_but_other_bytes_is_not_taken_for_this_rankings(tmp_path):
    """The same ranking's sheet is not written twice, but a file of the same name pattern and size that holds
    other bytes is not that sheet: a new one is written beside it, the old one left as it is."""
    from t2i_cli.rerank import Ranked, write_top_sheet

    ranked = [Ranked(png_with_prompt(tmp_path / f"p{i}.png", "a red bird", (60 * i, 0, 0)), "a red bird",
                     1.0 - i / 10, i + 1) for i in range(3)]
    first = write_top_sheet(tmp_path, ranked, 3, 16)
    assert write_top_sheet(tmp_path, ranked, 3, 16) == first  # the same ranking: the same file
    data = bytearray(first.read_bytes())
    data[-20] ^= 0xFF
    first.write_bytes(bytes(data))
    second = write_top_sheet(tmp_path, ranked, 3, 16)
    assert second != first and second.name == "ranking-top-001.png"
    assert first.read_bytes() == bytes(data) and second.stat().st_size == len(data)


@pytest.mark.parametrize("digest", ["abc123", "0" * 63, "0" * 65, "A" * 64])
def test_a_record_whose_digests_are_not_sha256_is_not_t2is(tmp_path, digest):
    from t2i_cli.errors import UsageError
    from t2i_cli.rerank import BEST_RECORD, check_outputs, is_record

    assert is_record({"a.png": "0" * 64}) and not is_record({"a.png": digest})
    (tmp_path / "best").mkdir()
    (tmp_path / "best" / BEST_RECORD).write_text(f'{{"a.png": "{digest}"}}')
    with pytest.raises(UsageError, match="is not the record of t2i's copies"):
        check_outputs(tmp_path, link_best=True)


def test_only_a_numbered_sheet_is_taken_for_the_one_written_before(tmp_path):
    """A user's ranking-top-keep.png holding the same bytes as the sheet is theirs: a new numbered sheet is
    written, and theirs is not reported as the sheet."""
    import shutil

    from t2i_cli.rerank import Ranked, write_top_sheet

    ranked = [Ranked(png_with_prompt(tmp_path / "p.png", "a red bird"), "a red bird", 0.5, 1)]
    first = write_top_sheet(tmp_path, ranked, 1, 16)
    shutil.move(first, tmp_path / "ranking-top-keep.png")
    again = write_top_sheet(tmp_path, ranked, 1, 16)
    assert again.name == "ranking-top-000.png"
    assert again.read_bytes() == (tmp_path / "ranking-top-keep.png").read_bytes()


def test_a_copy_in_best_replaced_by_a_link_is_the_users_and_left_alone(tmp_path):
    """A link the user put in best/ in place of t2i's copy (same bytes through the link) is not t2i's copy: a
    later --link-best that no longer wants that picture leaves it, and copies the one it wants."""
    from t2i_cli.rerank import BEST, Ranked, link_best

    a = png_with_prompt(tmp_path / "a.png", "a red bird", (200, 0, 0))
    b = png_with_prompt(tmp_path / "b.png", "a red bird", (0, 0, 200))
    (copy,), new = link_best(tmp_path, [Ranked(a, "a red bird", 0.9, 1), Ranked(b, "a red bird", 0.1, 2)], 1)
    assert new == 1 and copy.read_bytes() == a.read_bytes()
    copy.unlink()
    copy.symlink_to(a)
    (best_b,), new = link_best(tmp_path, [Ranked(b, "a red bird", 0.9, 1), Ranked(a, "a red bird", 0.1, 2)], 1)
    assert new == 1 and best_b.read_bytes() == b.read_bytes()
    assert copy.is_symlink() and copy.resolve() == a.resolve()
    assert sorted(p.name for p in (tmp_path / BEST).iterdir()) == sorted([copy.name, best_b.name, "t2i-copies.json"])


# --------------------------------------------------------------------------------------------------- weights.py
def test_a_config_of_exactly_max_depth_blocks_is_allowed_and_one_more_is_not():
    from t2i_cli.models.clip import ClipConfig
    from t2i_cli.weights import MAX_DEPTH, check_budget

    assert MAX_DEPTH == 256
    cfg = dict(image_side=16, text_vocab=30, text_len=6, n_pad_start=24, n_hid=8, n_embd=16, n_head=2, embed_dim=8)
    check_budget(ClipConfig(**cfg, n_layer=MAX_DEPTH))
    with pytest.raises(ValueError, match="n_layer stacks 257 blocks, above the limit of 256"):
        check_budget(ClipConfig(**cfg, n_layer=MAX_DEPTH + 1))


def test_a_tokenizer_file_of_exactly_the_bound_is_read(tmp_path, monkeypatch):
    import t2i_cli.weights as weights_mod
    from t2i_cli.errors import WeightsError
    from t2i_cli.models.tokenizer import TextTokenizer

    path = tmp_path / "tokenizer.json"
    path.write_text(TextTokenizer.train(["a red bird", "a blue fish"] * 5, vocab_size=60).to_json())
    size = path.stat().st_size
    monkeypatch.setattr(weights_mod, "MAX_TOKENIZER_FILE", size)
    assert weights_mod.load_tokenizer(path).n_bpe > 0
    monkeypatch.setattr(weights_mod, "MAX_TOKENIZER_FILE", size - 1)
    with pytest.raises(WeightsError, match=f"holds {size:,} bytes, more than"):
        weights_mod.load_tokenizer(path)


def test_a_float_setting_given_as_true_is_refused_at_load(tmp_path):
    """`dropout: true` in a file's config is not a number (JSON's true would otherwise be read as 1.0)."""
    import dataclasses
    import json

    from t2i_cli.errors import WeightsError
    from t2i_cli.models.transformer import Transformer, TransformerConfig
    from t2i_cli.weights import FORMAT, load_model, save_tensors

    torch.manual_seed(0)
    cfg = TransformerConfig(text_vocab=30, text_len=6, image_vocab=32, grid=4, n_layer=1, n_head=2, n_embd=16)
    model = Transformer(cfg)
    meta = {"format": FORMAT, "kind": "transformer", "config": json.dumps({**dataclasses.asdict(cfg), "dropout": True})}
    path = save_tensors(tmp_path / "t.safetensors", model.state_dict(), meta)
    with pytest.raises(WeightsError, match="dropout is true, not a number"):
        load_model(path, "transformer")
    meta["config"] = json.dumps({**dataclasses.asdict(cfg), "dropout": 0})  # an integer is a number
    path = save_tensors(tmp_path / "u.safetensors", model.state_dict(), meta)
    assert load_model(path, "transformer").cfg.dropout == 0


def test_a_config_far_larger_than_its_file_is_refused_before_the_model_is_built(tmp_path, monkeypatch):
    """A small file whose config describes 50 M parameters (within every bound): the model is never built (it
    would allocate them) before its tensors are found not to match."""
    import dataclasses
    import json

    import t2i_cli.weights as weights_mod
    from t2i_cli.errors import WeightsError
    from t2i_cli.models.transformer import Transformer, TransformerConfig

    torch.manual_seed(0)
    cfg = TransformerConfig(text_vocab=30, text_len=6, image_vocab=32, grid=4, n_layer=1, n_head=2, n_embd=16)
    big = dataclasses.replace(cfg, n_embd=2048)
    assert weights_mod.MAX_UNBACKED < big.state_numel() < weights_mod.MAX_PARAMS
    meta = {"format": weights_mod.FORMAT, "kind": "transformer", "config": json.dumps(dataclasses.asdict(big))}
    path = weights_mod.save_tensors(tmp_path / "t.safetensors", Transformer(cfg).state_dict(), meta)
    built = []
    monkeypatch.setitem(weights_mod.MODELS, "transformer", (lambda c: built.append(c), TransformerConfig))
    with pytest.raises(WeightsError, match=f"its config describes {big.state_numel():,} parameters, its tensors hold"):
        weights_mod.load_model(path, "transformer")
    assert built == []


def test_a_cast_leaves_integer_tensors_as_they_are(tmp_path):
    """The judge's batch norms count batches in int64: a bf16 cast of every tensor ("") casts the floating ones
    only (a count of 1,000,003 is not a bf16 number)."""
    from t2i_cli.models.classifier import JudgeConfig, ObjectClassifier
    from t2i_cli.weights import load_model, save_model

    torch.manual_seed(0)
    judge = ObjectClassifier(JudgeConfig(crop=16, widths=(4, 8)))
    counts = [k for k, v in judge.state_dict().items() if not v.is_floating_point()]
    assert counts
    for k in counts:
        judge.state_dict()[k].fill_(1_000_003)
    loaded = load_model(save_model(judge, tmp_path / "judge.safetensors", "judge"), "judge",
                        cast={"": torch.bfloat16}).state_dict()
    for k, v in loaded.items():
        assert v.dtype == (torch.int64 if k in counts else torch.bfloat16), k
    assert all(int(loaded[k]) == 1_000_003 for k in counts)


def test_the_generator_hash_covers_only_the_files_that_draw(tmp_path):
    """(identity, generator): a new reranker changes the identity, never the generator (pictures it drew are
    still the same weights' for rerank); a new transformer changes both."""
    import shutil

    from t2i_cli.models.clip import Clip
    from t2i_cli.weights import SECOND_CLIP, folder_hashes, load_model, save_model

    folder = build_tiny_folder(tmp_path / "w")
    identity, generator = folder_hashes(folder)
    assert identity != generator
    clip = load_model(folder / "clip.safetensors", "clip")
    torch.manual_seed(5)
    save_model(Clip(clip.cfg), folder / "clip.safetensors", "clip")
    identity2, generator2 = folder_hashes(folder)
    assert identity2 != identity and generator2 == generator
    shutil.copy(folder / "clip.safetensors", folder / SECOND_CLIP)
    identity3, generator3 = folder_hashes(folder)
    assert identity3 not in (identity, identity2) and generator3 == generator
    for name in ("clip.safetensors", SECOND_CLIP):
        (folder / name).unlink()
    assert folder_hashes(folder) == (generator, generator)  # nothing but the files that draw


def test_a_reranker_of_another_tokenizer_is_refused_first_or_second(tmp_path):
    """A CLIP whose padding starts elsewhere (another tokenizer of the same size) reads prompts wrongly: refused as
    clip.safetensors and as clip-2.safetensors (named)."""
    from t2i_cli.errors import WeightsError
    from t2i_cli.models.clip import Clip
    from t2i_cli.weights import SECOND_CLIP, load_folder, load_model, misfits, save_model

    folder = build_tiny_folder(tmp_path / "w")
    bundle = load_folder(folder)
    good = load_model(folder / "clip.safetensors", "clip")
    other = dataclasses.replace(good.cfg, n_pad_start=good.cfg.n_pad_start - 1)
    assert other.text_vocab == good.cfg.text_vocab
    assert misfits(bundle.tokenizer, None, None, [good.cfg]) == []
    assert misfits(bundle.tokenizer, None, None, [other]) == ["the CLIP model was trained with another tokenizer"]
    torch.manual_seed(1)
    save_model(Clip(other), folder / SECOND_CLIP, "clip")
    with pytest.raises(WeightsError, match=r"trained with another tokenizer \(clip-2.safetensors\)"):
        load_folder(folder)


def test_advice_for_an_unfinished_whole_run_suggests_an_export_only_with_a_transformer(tmp_path):
    from t2i_cli.models.clip import Clip
    from t2i_cli.weights import _missing_advice, load_model, save_model

    weights = build_tiny_folder(tmp_path / "w")
    run_dir = tmp_path / "run"
    (run_dir / "clip").mkdir(parents=True)
    (run_dir / "all.json").write_text("{}")
    save_model(Clip(load_model(weights / "clip.safetensors", "clip").cfg), run_dir / "clip" / "clip.safetensors",
               "clip")
    advice = _missing_advice(run_dir, "tokenizer.json")
    assert advice.startswith("it is a --stage all run that has not finished") and "t2i export" not in advice
    (run_dir / "transformer").mkdir()
    (weights / "transformer.safetensors").rename(run_dir / "transformer" / "transformer.safetensors")
    advice = _missing_advice(run_dir, "tokenizer.json")
    assert f"export what it has: `t2i export {run_dir / 'transformer'} {run_dir / 'clip'} --to" in advice


def test_a_weights_folder_with_a_picture_beside_its_files_is_called_incomplete(tmp_path):
    """A weights folder missing a file but holding a picture too (a sample saved there) is an incomplete weights
    folder, not 'a folder of pictures'."""
    from t2i_cli.weights import _missing_advice

    folder = build_tiny_folder(tmp_path / "w")
    (folder / "dvae.safetensors").unlink()
    Image.new("RGB", (8, 8)).save(folder / "sample.png")
    assert _missing_advice(folder, "dvae.safetensors").startswith("it is not a complete t2i weights folder")
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    Image.new("RGB", (8, 8)).save(pictures / "a.png")
    assert _missing_advice(pictures, "dvae.safetensors").startswith("it holds pictures, not a t2i model")


def test_a_file_of_another_format_version_or_with_non_string_metadata_is_refused(tmp_path):
    import json

    from safetensors.torch import save_file

    from t2i_cli.errors import WeightsError
    from t2i_cli.models.dvae import DVAE, DVAEConfig
    from t2i_cli.weights import META_KEY, load_model, read_header, save_model

    torch.manual_seed(0)
    model = DVAE(DVAEConfig(image_side=16, downsample=4, n_codes=32, n_hid=8, code_dim=8))
    config = json.dumps(dataclasses.asdict(model.cfg))
    path = tmp_path / "dvae.safetensors"
    save_file(model.state_dict(), str(path), metadata={META_KEY: json.dumps(
        {"format": "t2i/2", "kind": "dvae", "config": config})})
    with pytest.raises(WeightsError, match="is not a t2i dvae file \\(format 't2i/2', kind 'dvae'\\)"):
        load_model(path, "dvae")
    save_file(model.state_dict(), str(path), metadata={META_KEY: json.dumps(
        {"format": "t2i/1", "kind": "dvae", "config": dataclasses.asdict(model.cfg)})})  # an object, not a string
    with pytest.raises(WeightsError, match="has unreadable t2i metadata; re-export it"):
        read_header(path)
    assert load_model(save_model(model, path, "dvae"), "dvae").cfg == model.cfg


# ----------------------------------------------------------------------------------------------------- files.py
def test_a_link_to_nothing_is_replaced_only_with_force(tmp_path):
    """A dangling link where t2i writes ranking.json is the user's: refused without --force."""
    from t2i_cli.errors import UsageError
    from t2i_cli.files import check_replaceable

    path = tmp_path / "ranking.json"
    path.symlink_to(tmp_path / "elsewhere.json")
    with pytest.raises(UsageError, match="is a link to .*elsewhere.json, which does not exist .*; move it away, or "
                                         "add --force"):  # (it said "exists and is not a ranking")
        check_replaceable(path, lambda obj: True, str(path), "a ranking", force=False)
    assert check_replaceable(path, lambda obj: True, str(path), "a ranking", force=True) == path
    assert check_replaceable(tmp_path / "new.json", lambda obj: False, "new", "a ranking", force=False)


def test_a_stem_cut_to_its_length_does_not_end_in_a_dash():
    from t2i_cli.files import safe_stem

    assert safe_stem("abcd efgh", max_len=5) == "abcd"
    assert safe_stem("a" * 60) == "a" * 48
    assert safe_stem("Ünïcödé  — only!", max_len=48) == "unicode-only"
    assert safe_stem("???") == "image"


def test_a_name_is_cut_to_whole_characters_of_at_most_the_room():
    from t2i_cli.files import cut_to_bytes, fitted_stem

    assert cut_to_bytes("abcdef", 6) == "abcdef" and cut_to_bytes("abcdef", 5) == "abcde"
    assert cut_to_bytes("aé" * 3, 6) == "aéaé"  # 3 bytes a pair: 6 bytes exactly
    assert cut_to_bytes("aé" * 3, 5) == "aéa"  # no half of an é
    stem = fitted_stem("x" * 300, ".png")
    assert len(stem) == 255 - len("-99999") - len(".png")
    assert len(fitted_stem("x" * 300, ".pñg").encode()) == 255 - len("-99999") - len(".pñg".encode())


def test_a_temporary_names_the_file_it_was_made_for():
    from t2i_cli.files import temporary_of

    assert temporary_of(".model.safetensors.abc123de.tmp") == "model.safetensors"
    assert temporary_of(".all.json.x_y_z_w0.tmp") == "all.json"
    assert temporary_of("model.safetensors.abc123.tmp") is None  # not hidden: not one of t2i's
    assert temporary_of(".a.tmp") is None and temporary_of(".tmp") is None


def test_only_temporaries_unchanged_for_idle_seconds_and_not_links_are_removed(tmp_path):
    import os
    import time

    from t2i_cli.files import remove_temporaries

    old, fresh = tmp_path / ".a.png.old1old1.tmp", tmp_path / ".b.png.new1new1.tmp"
    old.write_bytes(b"x")
    fresh.write_bytes(b"y")
    hour_ago = time.time() - 3600
    os.utime(old, (hour_ago, hour_ago))
    target = tmp_path / "mine.txt"
    target.write_bytes(b"the user's")
    os.utime(target, (hour_ago, hour_ago))
    link = tmp_path / ".c.png.lnk1lnk1.tmp"
    link.symlink_to(target)
    assert remove_temporaries(tmp_path, idle=60.0) == [old]
    assert fresh.exists() and link.is_symlink() and target.read_bytes() == b"the user's"


def test_an_output_file_in_a_folder_that_cannot_be_written_is_refused(tmp_path, monkeypatch):
    """(os.access stands in for a read-only folder: as root every folder is writable.)"""
    import os

    from t2i_cli import files
    from t2i_cli.errors import UsageError

    folder = tmp_path / "ro"
    folder.mkdir()
    assert files.check_output_file(folder / "results.json", "--json") == folder / "results.json"
    real = os.access
    monkeypatch.setattr(files.os, "access", lambda p, mode: False if Path(p) == folder else real(p, mode))
    with pytest.raises(UsageError, match="cannot be written to; choose another path"):
        files.check_output_file(folder / "results.json", "--json")


# ------------------------------------------------------------------------------------------------- data_eval.py
@pytest.fixture(scope="module")
def unknown_data(tmp_path_factory) -> Path:
    """100 captioned pictures (a val split of several) whose captions hold a word the tokenizer has no token for,
    the same in each ("blorp"), and two of their own (zqa0 zqb0, zqa1 zqb1, ...), and one picture that cannot be
    read."""
    folder = tmp_path_factory.mktemp("unknown") / "pics"
    folder.mkdir()
    for i in range(100):
        Image.new("RGB", (20, 20), (i, 250 - i, (37 * i) % 256)).save(folder / f"p{i:03d}.png")
        (folder / f"p{i:03d}.txt").write_text(f"a blorp zqa{i} zqb{i}\n")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(40))
    (folder / "broken.txt").write_text("a red bird\n")
    return folder


def test_eval_data_names_each_unknown_word_once_and_what_it_skipped(tiny_pipe, unknown_data):
    from t2i_cli.data_eval import evaluate_data

    result = evaluate_data(tiny_pipe, str(unknown_data), 6, seed=0)
    count = result["n"]
    assert count == min(6, result["val_size"]) >= 2
    unknown = result["unknown_words"]
    assert unknown["words"] == 3 * count  # every caption's three
    assert unknown["examples"][0] == "blorp" and len(unknown["examples"]) == 5
    assert len(set(unknown["examples"])) == 5 and all(w.startswith("zq") for w in unknown["examples"][1:])
    assert "skipped 1 item" in result["skipped"] and "broken.png" in result["skipped"]


def test_eval_data_of_two_captions_measures_a_frechet_distance(tiny_pipe, unknown_data):
    """Two images have a covariance: the distance is measured from two on (only one gives JSON null)."""
    import math

    from t2i_cli.data_eval import evaluate_data

    two = evaluate_data(tiny_pipe, str(unknown_data), 2, seed=0)
    assert two["n"] == 2 and math.isfinite(two["clip"]["frechet_distance"])
    assert evaluate_data(tiny_pipe, str(unknown_data), 1, seed=0)["clip"]["frechet_distance"] is None


@pytest.mark.parametrize("draws", [0, -1, 17])
def test_eval_data_refuses_draws_outside_1_to_max_batch_before_reading_a_picture(tiny_pipe, tmp_path, draws):
    from t2i_cli.data_eval import evaluate_data
    from t2i_cli.pipeline import MAX_BATCH

    assert MAX_BATCH == 16
    with pytest.raises(ValueError, match=f"draws must be in 1..16, got {draws}"):
        evaluate_data(tiny_pipe, str(tmp_path / "no-such-folder"), 2, seed=0, draws=draws)


@pytest.mark.parametrize("source", ["world:", "world:all", "world:VAL"])
def test_eval_data_names_an_unknown_world_split(source):
    from t2i_cli.data_eval import _val
    from t2i_cli.errors import DataError

    with pytest.raises(DataError, match=f"unknown world split {source.partition(':')[2]!r}; use world, world:val"):
        _val(source, 16)


# ---------------------------------------------------------------------------------------------------- recipe.py
def write_plan(run_dir: Path, recorded: object) -> None:
    import json

    from t2i_cli.files import PLAN

    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / PLAN).write_text(json.dumps(recorded))


def test_a_plan_from_before_flip_crop_and_ema_continues_without_them(tmp_path):
    """An all.json of an older t2i records no flip, crop or ema: the same command (which names none of them)
    continues it, with what that run trained with (no flip, no crop, no averaging)."""
    from t2i_cli.recipe import plan_settings

    write_plan(tmp_path, {"data": "world:train", "seed": 1})
    same = {"data": "world:train", "seed": 1, "flip": None, "crop": None, "ema": None}
    assert plan_settings(tmp_path, same) == {"data": "world:train", "seed": 1, "flip": False, "crop": 1.0, "ema": 0.0}
    assert plan_settings(tmp_path, {})["flip"] is False  # --resume RUN


def test_a_plan_that_recorded_its_folder_as_typed_continues_from_the_absolute_path(tmp_path, monkeypatch):
    """Before t2i 0.12.1 --data was recorded as typed ("pics"); the same command now gives its absolute path."""
    from t2i_cli.recipe import plan_settings

    monkeypatch.chdir(tmp_path)
    write_plan(tmp_path / "run", {"data": "pics", "flip": False, "crop": 1.0, "ema": 0.0})
    now = {"data": str(tmp_path / "pics"), "flip": False, "crop": 1.0, "ema": 0.0}
    assert plan_settings(tmp_path / "run", now)["data"] == "pics"


def test_a_repeated_command_with_other_settings_names_every_setting_that_differs(tmp_path):
    from t2i_cli.errors import UsageError
    from t2i_cli.recipe import plan_settings

    write_plan(tmp_path, {"data": "world:train", "seed": 1, "flip": False, "crop": 1.0, "ema": 0.0})
    with pytest.raises(UsageError, match=r"other settings \(patience 0 \(not given\) in the run, 3 here; seed 1 in "
                                         r"the run, 2 here\); continue it as it is with --resume"):
        plan_settings(tmp_path, {"data": "world:train", "seed": 2, "flip": False, "crop": 1.0, "ema": 0.0,
                                 "patience": 3})


def test_resume_of_a_folder_without_a_plan_says_it_is_no_whole_run(tmp_path):
    from t2i_cli.errors import UsageError
    from t2i_cli.recipe import plan_settings

    with pytest.raises(UsageError, match="is not a --stage all run \\(no all.json\\); check the --resume path"):
        plan_settings(tmp_path, {})
    assert plan_settings(tmp_path, {"data": "world:train"}) == {"data": "world:train"}  # a new run: its own


def test_a_stopped_whole_run_names_the_last_stage_that_started(tmp_path):
    from t2i_cli.files import shell_word
    from t2i_cli.recipe import _interrupted
    from t2i_cli.train import RUN_CONFIG, Interrupted

    resume = (f"finished stages are kept. Resume with: t2i train --resume {shell_word(tmp_path)} (or the same "
              f"command again)")
    assert str(_interrupted(tmp_path, Interrupted("stopped", step=7))) == f"interrupted at step 7; {resume}"
    for stage in ("tokenizer", "dvae"):
        (tmp_path / stage).mkdir()
        (tmp_path / stage / RUN_CONFIG).write_text("{}")
    assert str(_interrupted(tmp_path, Interrupted("stopped", step=7))) == \
        f"interrupted in the dvae stage at step 7; checkpoint saved; {resume}"
    assert str(_interrupted(tmp_path, KeyboardInterrupt())) == f"interrupted; {resume}"


class FakeStages:
    """train_all with every stage's training and the export replaced: each stage writes its run config (and,
    if asked, a data record) and returns what run_stage would; the calls are recorded."""

    def __init__(self, monkeypatch, skipped: str | None = None):
        from t2i_cli import recipe

        self.calls: list[dict] = []
        self.exports: list[Path] = []

        def run_stage(cfg, sub, resume=False, progress=None, device="auto", warn=None, checking=None,
                      keep_group=False, data_since=None):
            self.calls.append({"stage": cfg.stage, "resume": resume, "since": data_since})
            from t2i_cli.train import RUN_CONFIG

            Path(sub).mkdir(parents=True, exist_ok=True)
            (Path(sub) / RUN_CONFIG).write_text("{}")
            (Path(sub) / "done").write_text("")
            return {"step": cfg.steps, **({"skipped": skipped} if skipped else {})}

        monkeypatch.setattr(recipe, "run_stage", run_stage)
        # (its configs are stand-ins, no models: train_all's check of every model the run builds is the CLI's too)
        monkeypatch.setattr(recipe, "check_whole_run_models", lambda configs, started: None)
        monkeypatch.setattr(recipe, "finished", lambda sub, steps: (Path(sub) / "done").is_file())
        monkeypatch.setattr(recipe, "export_runs",
                            lambda runs, to, force=False, note=None, **_: self.exports.append(to))

    @staticmethod
    def make_config(stage: str, run_dir: Path):
        import types

        return types.SimpleNamespace(stage=stage, steps=4)


def test_a_whole_run_warns_once_a_stage_of_what_it_skipped_and_keeps_it_out_of_the_summary(tmp_path, monkeypatch):
    from t2i_cli.recipe import ORDER, train_all

    fake = FakeStages(monkeypatch, skipped="skipped 2 items (2 unreadable)")
    said: list[str] = []
    summary = train_all(tmp_path / "run", {"data": "world:train"}, fake.make_config, "cpu", warn=said.append)
    assert [c["stage"] for c in fake.calls] == list(ORDER)
    assert said == ["skipped 2 items (2 unreadable)"] * 4  # (the CLI says it once)
    assert summary == {**{s: {"step": 4} for s in ORDER}, "weights": str(tmp_path / "run" / "weights")}
    assert fake.exports == [tmp_path / "run" / "weights"]


def test_a_resumed_stage_compares_its_pictures_with_its_own_record_when_no_stage_before_has_one(tmp_path,
                                                                                              monkeypatch):
    """A run whose tokenizer stage recorded no data (as one before records were written): the dvae stage, resumed,
    is checked against its own record; the later stages against the dvae's (the first stage that has one)."""
    from t2i_cli.data import DATA_RECORD
    from t2i_cli.recipe import train_all
    from t2i_cli.train import RUN_CONFIG

    run_dir = tmp_path / "run"
    write_plan(run_dir, {"data": "world:train"})
    for stage in ("tokenizer", "dvae"):
        (run_dir / stage).mkdir()
        (run_dir / stage / RUN_CONFIG).write_text("{}")
    (run_dir / "tokenizer" / "done").write_text("")
    (run_dir / "tokenizer" / "tokenizer.json").write_text("{}")
    (run_dir / "dvae" / DATA_RECORD).write_text("{}")
    fake = FakeStages(monkeypatch)
    train_all(run_dir, {}, fake.make_config, "cpu")
    assert fake.calls == [{"stage": "dvae", "resume": True, "since": run_dir / "dvae" / DATA_RECORD},
                          {"stage": "transformer", "resume": False, "since": run_dir / "dvae" / DATA_RECORD},
                          {"stage": "clip", "resume": False, "since": run_dir / "dvae" / DATA_RECORD}]


def test_a_whole_run_whose_pictures_are_gone_is_refused_before_a_stage_resumes(tmp_path, monkeypatch):
    from t2i_cli.errors import DataError
    from t2i_cli.recipe import train_all

    gone = tmp_path / "pictures"
    run_dir = tmp_path / "run"
    write_plan(run_dir, {"data": str(gone)})
    fake = FakeStages(monkeypatch)
    with pytest.raises(DataError, match=f"the pictures {run_dir} trains on were at {gone}, which no longer exists"):
        train_all(run_dir, {}, fake.make_config, "cpu")
    assert fake.calls == [] and fake.exports == []
