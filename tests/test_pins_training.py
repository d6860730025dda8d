"""Pins of training options (train_options.py), stages (stages.py), `t2i eval --data` (data_eval.py) and option
checks of cli.py: behaviour a mutation audit found that no test pinned down (each test fails on a mutant the audit
made of the line it names)."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from PIL import Image

from conftest import build_tiny_folder, run
from t2i_cli.errors import DataError, UsageError
from t2i_cli.models.clip import Clip, ClipConfig
from t2i_cli.models.dvae import DVAE, DVAEConfig
from t2i_cli.models.tokenizer import TextTokenizer
from t2i_cli.train_options import bad_setting, resume_config, same_tokenizer, train_config
from t2i_cli.weights import save_model

OPTS = {k: None for k in ("steps", "batch_size", "lr", "image_side", "text_len", "vocab_size", "seed", "precision",
                          "ckpt_every", "sample_every", "log_every", "recon_loss", "hard_negatives", "patience", "flip",
                          "crop", "ema", "workers", "dvae", "tokenizer", "init")} | {"model": [],
                                                                                      "finetune_decoder": False}


def pictures(folder: Path, n: int, caption=lambda i: f"a red bird {i}") -> Path:
    """n distinct pictures with a caption each."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.new("RGB", (20, 20), (i % 256, 250 - i % 250, (37 * i) % 256)).save(folder / f"p{i:03d}.png")
        (folder / f"p{i:03d}.txt").write_text(caption(i) + "\n")
    return folder


# ----------------------------------------------------------------------------- train_options.py
def test_a_whole_runs_recorded_crop_of_1_as_an_int_is_a_float_setting():
    """An all.json holding "crop": 1 (as JSON writes 1.0 back, or a hand edit) would refuse to continue the run."""
    assert bad_setting({"crop": 1, "ema": 0}) is None
    assert bad_setting({"crop": 0.8}) is None
    assert bad_setting({"crop": "1"}) is not None


def test_a_whole_run_recording_no_data_is_refused_naming_it():
    """"data": null in all.json would fail deep in training instead of a line naming data."""
    assert "data" in (bad_setting({"data": None}) or "")
    assert "preset" in (bad_setting({"preset": None}) or "")
    assert bad_setting({"seed": None}) is None  # other settings may be unset


def test_init_refuses_a_same_size_tokenizer_of_other_bytes(tmp_path):
    """--init a CLIP with a --tokenizer of the same size but other tokens would index its embeddings wrongly."""
    (tmp_path / "init").mkdir()
    (tmp_path / "init" / "tokenizer.json").write_text('{"a": 1}')
    (tmp_path / "other.json").write_text('{"b": 2}')
    (tmp_path / "same.json").write_text('{"a": 1}')
    same_tokenizer(str(tmp_path / "init"), str(tmp_path / "same.json"))
    with pytest.raises(UsageError, match="another tokenizer"):
        same_tokenizer(str(tmp_path / "init"), str(tmp_path / "other.json"))


def test_sample_every_0_turns_off_the_presets_patience(tmp_path):
    """`--sample-every 0` on a folder's default transformer would be refused for a patience the user never gave."""
    cfg = train_config("transformer", str(tmp_path / "pics"), "default", OPTS | {"sample_every": 0})
    assert (cfg.patience, cfg.sample_every) == (0, 0)


def test_the_default_transformer_on_a_folder_stops_after_2_validations_without_gain(tmp_path):
    """The default preset's patience on a folder is 2 (measured, BENCHMARKS.md); on the world there is none."""
    assert train_config("transformer", str(tmp_path / "pics"), "default", OPTS).patience == 2
    assert train_config("transformer", "world:train", "default", OPTS).patience == 0


def test_finetuning_a_logit_laplace_dvae_keeps_its_loss(tmp_path):
    """Fine-tuning the decoder of a logit-Laplace dVAE with l1 would train its pixel mapping against another loss."""
    torch.manual_seed(0)
    save_model(DVAE(DVAEConfig(image_side=16, downsample=4, n_codes=32, n_hid=8, code_dim=8, pixel_eps=0.1)),
               tmp_path / "dvae.safetensors", "dvae")
    cfg = train_config("dvae", str(tmp_path / "pics"), "tiny",
                       OPTS | {"finetune_decoder": True, "dvae": str(tmp_path / "dvae.safetensors")})
    assert cfg.recon_loss == "logit_laplace"


def test_init_without_image_side_trains_at_the_clips_side(tmp_path):
    """A CLIP started from a 24 px --init trains at 24 px, not the preset's 16."""
    tok = TextTokenizer.train(["a red bird", "a blue fish"] * 5, vocab_size=120)
    torch.manual_seed(0)
    ccfg = ClipConfig(image_side=24, text_vocab=tok.vocab_size(12), text_len=12, n_pad_start=tok.n_bpe, n_hid=8,
                      n_embd=32, n_layer=1, n_head=2, embed_dim=16)
    save_model(Clip(ccfg), tmp_path / "clip.safetensors", "clip")
    cfg = train_config("clip", "world:train", "tiny", OPTS | {"init": str(tmp_path / "clip.safetensors")})
    assert cfg.image_side == 24


def test_a_transformer_takes_its_image_side_from_its_dvae(tmp_path):
    """A transformer on a 32 px dVAE trains at 32 px unasked (the preset's 16 would refuse at start)."""
    torch.manual_seed(0)
    save_model(DVAE(DVAEConfig(image_side=32, downsample=4, n_codes=32, n_hid=8, code_dim=8)),
               tmp_path / "dvae.safetensors", "dvae")
    cfg = train_config("transformer", "world:train", "tiny", OPTS | {"dvae": str(tmp_path / "dvae.safetensors")})
    assert cfg.image_side == 32


def test_resuming_a_tokenizer_run_refuses_options_it_does_not_use(tmp_path):
    """--resume TOKENIZER_RUN --steps N would be taken and do nothing (a tokenizer has no steps)."""
    cfg = train_config("tokenizer", "world:train", "tiny", OPTS)
    (tmp_path / "tok").mkdir()
    (tmp_path / "tok" / "train_config.json").write_text(json.dumps(cfg.to_json()))
    params = {"resume": str(tmp_path / "tok"), "steps": "5000"}
    with pytest.raises(UsageError, match="does not apply to the tokenizer stage"):
        resume_config(tmp_path / "tok", {"resume", "steps"}, params)


def test_per_stage_values_belong_to_stage_all(tmp_path):
    """`--stage transformer --steps dvae=5` would silently train the preset's steps."""
    with pytest.raises(UsageError, match="per-stage values belong to --stage all"):
        train_config("transformer", "world:train", "tiny", OPTS | {"steps": "dvae=5"})


# ----------------------------------------------------------------------------- stages.py
def test_only_world_and_world_colon_sources_are_the_world():
    """A folder named worlds/ or world_pics/ would be read as the procedural world, not as pictures."""
    from t2i_cli.stages import is_world

    assert is_world("world") and is_world("world:train") and is_world("world:val")
    assert not is_world("worlds") and not is_world("world_pics")


def test_a_same_size_file_of_the_users_in_out_is_not_a_leftover_copy(tmp_path):
    """An --out holding the user's own tokenizer.json (same size, other bytes) would be overwritten by the run."""
    from t2i_cli.stages import check_new_folder

    (tmp_path / "src.json").write_text('{"a": 1}')
    out = tmp_path / "out"
    out.mkdir()
    (out / "tokenizer.json").write_text('{"b": 2}')
    own = [(tmp_path / "src.json", "tokenizer.json")]
    with pytest.raises(UsageError, match="holds other files"):
        check_new_folder(out, own=own)
    assert (out / "tokenizer.json").read_text() == '{"b": 2}'
    (out / "tokenizer.json").write_text('{"a": 1}')  # a killed start's copy: the run starts there
    check_new_folder(out, own=own)


def test_an_out_with_a_leftover_copy_and_a_file_of_the_users_is_refused(tmp_path):
    """notes.txt beside a killed start's copy would be overwritten or mixed into the run."""
    from t2i_cli.stages import check_new_folder

    (tmp_path / "src.json").write_text('{"a": 1}')
    out = tmp_path / "out"
    out.mkdir()
    (out / "tokenizer.json").write_text('{"a": 1}')
    (out / "notes.txt").write_text("mine")
    with pytest.raises(UsageError, match="holds other files"):
        check_new_folder(out, own=[(tmp_path / "src.json", "tokenizer.json")])


def test_a_caption_cut_by_one_token_counts_as_long(tmp_path):
    """A caption losing its last token would go unreported ("0 caption(s)" cut)."""
    from t2i_cli.data import PairDataset
    from t2i_cli.stages import long_captions

    caption = "a red bird above a blue fish"
    tok = TextTokenizer.train([caption] * 5, vocab_size=120)
    n = sum(i < tok.n_bpe for i in tok.encode(caption, 64).ids)  # its tokens
    data = PairDataset([(tmp_path / "p.png", [caption]), (tmp_path / "q.png", ["a bird"])], 16, {})
    stage = SimpleNamespace(tok=tok, cfg=SimpleNamespace(text_len=n - 1))
    assert long_captions(stage, data) == 1
    assert long_captions(SimpleNamespace(tok=tok, cfg=SimpleNamespace(text_len=n)), data) == 0


@pytest.mark.parametrize("text,value", [("yes", True), ("no", False), ("true", True), ("0", False)])
def test_model_bool_settings_read_yes_and_no(text, value):
    """--model word_region=yes would be refused or read as false."""
    from t2i_cli.stages import parse_model_overrides

    assert parse_model_overrides("clip", [f"word_region={text}"])["word_region"] is value


@pytest.mark.parametrize("text", ["nan", "inf", "-inf"])
def test_model_float_settings_must_be_finite(text):
    """--model dropout=nan would train a model of NaNs."""
    from t2i_cli.stages import parse_model_overrides

    with pytest.raises(UsageError, match="a finite number"):
        parse_model_overrides("transformer", [f"dropout={text}"])


def test_a_clip_that_scores_every_image_alike_has_hard_negative_accuracy_0():
    """A CLIP that cannot tell a scene from its twin would score 100% (ties counted as wins)."""
    from t2i_cli.stages import hard_negative_accuracy

    class Constant:
        def score(self, images, text):
            return torch.zeros(len(images))

    tok = TextTokenizer.train(["a red bird above a blue fish"] * 5, vocab_size=120)
    result = hard_negative_accuracy(Constant(), tok, 12, 16, range(4), "cpu")
    assert result["n"] == 4 and result["accuracy"] == 0


def world_stage_cfg(stage: str, **over):
    from t2i_cli.data import open_source

    cfg = train_config(stage, "world:train", "tiny", OPTS | over)
    return cfg, open_source("world:train", 16, n_scenes=10), open_source("world:val", 16, n_scenes=10)


def test_the_dvae_sample_sheet_shows_validation_pictures():
    """The sample grid would reconstruct training pictures, which flatter an overfitting dVAE."""
    from t2i_cli.stages import DVAEStage
    from t2i_cli.train import Dist

    cfg, train, val = world_stage_cfg("dvae")
    stage = DVAEStage(cfg, Path("unused"), Dist(), train, True, val)
    assert torch.equal(stage.fixed, torch.stack([val[i][0] for i in range(8)]))


def test_the_transformer_samples_the_first_validation_captions(tmp_path):
    """The sample grid would draw training captions, which flatter a memorising transformer."""
    from t2i_cli.stages import TransformerStage
    from t2i_cli.train import Dist

    folder = build_tiny_folder(tmp_path / "w")
    cfg, train, val = world_stage_cfg("transformer", dvae=str(folder), tokenizer=str(folder))
    stage = TransformerStage(cfg, folder, Dist(), train, True, val)
    assert stage.prompts == [val[i][1] for i in range(4)] != [train[i][1] for i in range(4)]


def test_a_transformer_at_another_side_than_its_dvae_is_refused(tmp_path):
    """--image-side 32 with a 16 px dVAE would train on codes of pictures resized twice; the line names 16."""
    from t2i_cli.stages import TransformerStage
    from t2i_cli.train import Dist

    folder = build_tiny_folder(tmp_path / "w")
    cfg, train, val = world_stage_cfg("transformer", dvae=str(folder), tokenizer=str(folder))
    with pytest.raises(UsageError, match="image_side=16"):  # (from Python: the field; t2i train: --image-side 16)
        TransformerStage(replace(cfg, image_side=32), folder, Dist(), train, True, val)


def test_a_tokenizer_learning_every_caption_does_not_say_it_sampled_them(tmp_path):
    """A 3-picture folder's tokenizer summary would claim captions_in_source (as if a sample were taken)."""
    from t2i_cli.data import open_source
    from t2i_cli.stages import train_tokenizer

    data = pictures(tmp_path / "pics", 3)
    cfg = train_config("tokenizer", str(data), "tiny", OPTS)
    summary = train_tokenizer(cfg, tmp_path, open_source(str(data), 16))
    assert summary["captions"] == 3 and "captions_in_source" not in summary


# ----------------------------------------------------------------------------- data_eval.py
@pytest.fixture(scope="module")
def eval_data(tmp_path_factory) -> Path:
    """A folder whose val split holds several pictures."""
    return pictures(tmp_path_factory.mktemp("eval") / "pics", 100, lambda i: ["a red bird", "a blue fish"][i % 2])


def test_eval_data_seeds_each_caption_on_from_the_one_before_across_decodes(tiny_weights, eval_data):
    """With 16 draws a caption (one decode each) every caption would be drawn from the same seed; and each
    caption's seed is hashed from (seed, caption): seed + i made seed 6's caption 0 seed 5's caption 1."""
    from t2i_cli.data_eval import caption_seed, evaluate_data
    from t2i_cli.pipeline import MAX_BATCH, TextToImage

    pipe = TextToImage.from_folder(tiny_weights, "cpu")
    seen = []
    draw_each = pipe.draw_each
    pipe.draw_each = lambda requests, seeds, n=1: seen.append(list(seeds)) or draw_each(requests, seeds, n)
    result = evaluate_data(pipe, str(eval_data), 3, seed=5, draws=MAX_BATCH)
    assert result["n"] == 3 and seen == [[caption_seed(5, i)] for i in range(3)]
    assert len({caption_seed(s, i) for s in range(4) for i in range(50)}) == 200  # no two seeds share a draw
    # bits per code, not per image: a 32-code random model is near log2(32) bits
    assert 0 < result["transformer"]["bits_per_code"] < 2 * math.log2(pipe.bundle.dvae.cfg.n_codes)


def test_eval_data_of_a_folder_without_a_val_split_says_so(tmp_path):
    """A one-picture folder would be scored on nothing (NaN metrics) instead of exit 1 naming the split."""
    from t2i_cli.data_eval import _val

    data = pictures(tmp_path / "one", 1)
    with pytest.raises(DataError, match="no validation split"):
        _val(str(data), 16)


# ----------------------------------------------------------------------------- cli.py
def test_rerank_link_best_needs_a_top_of_1_or_more(tmp_path):
    """`rerank --top 0 --link-best` would link nothing as best and say nothing."""
    (tmp_path / "imgs").mkdir()
    r = run("rerank", tmp_path / "imgs", "--top", "0", "--link-best", "--weights", tmp_path / "none")
    assert r.exit_code == 2 and "--link-best needs --top" in r.stderr, r.stderr


def test_eval_n_is_at_most_10000(tmp_path):
    """`eval --n 10001` would start hours of work past the documented bound."""
    (tmp_path / "empty").mkdir()
    r = run("eval", "--n", "10001", "--weights", tmp_path / "empty", "-q")
    assert r.exit_code == 2 and "--n must be in 1..10000" in r.stderr, r.stderr


def test_eval_takes_16_seeds_and_refuses_17(tmp_path):
    """16 --seed (the documented most) would be refused as too many."""
    (tmp_path / "empty").mkdir()
    seeds = [a for s in range(17) for a in ("--seed", str(s))]
    r = run("eval", *seeds[:32], "--n", "0", "--weights", tmp_path / "empty", "-q")
    assert "at most 16 seeds" not in r.stderr and "--n must be" in r.stderr, r.stderr  # got past the seed check
    r = run("eval", *seeds, "--n", "0", "--weights", tmp_path / "empty", "-q")
    assert r.exit_code == 2 and "at most 16 seeds" in r.stderr, r.stderr
