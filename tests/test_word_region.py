"""The word-region (DAMSM-style) reranker and the hard negatives it trains on (issue 15).

- world.negatives: every kind changes exactly what it names, its caption says so (the caption parser reads
  the negative's spec back), train negatives hold no held-out pair, twins pair up in a training batch;
- models.clip.word_region_scores against a direct loop, and what the attention does with a word that
  matches one region; a word-region CLIP saves, loads and scores as its pair_scores says;
- `t2i rerank --explain` draws one panel per prompt word, which a second rerank does not score;
- `t2i train --stage clip --hard-negatives` trains on twins and refuses what it cannot honour.
"""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from conftest import TEXT_LEN, build_tiny_folder, run
from t2i_cli.data import WorldDataset
from t2i_cli.models.clip import Clip, ClipConfig, word_region_scores
from t2i_cli.train import StepBatches, TrainConfig
from t2i_cli.weights import load_model, load_tokenizer, save_model
from t2i_cli.world.captions import parse_prompt
from t2i_cli.world.negatives import NEGATIVE_KINDS, hard_negative, negative_kinds, twin_caption
from t2i_cli.world.spec import HELDOUT_PAIRS, OPPOSITE, ObjectSpec, SceneSpec
from t2i_cli.world.splits import scene_caption


def pairs(spec: SceneSpec) -> list[tuple[str, str]]:
    return [(o.colour, o.kind) for o in spec.objects]


def comparable(spec: SceneSpec) -> SceneSpec:
    """What a caption says of a spec (the parser cannot know sizes it was not told)."""
    return dataclasses.replace(spec, objects=tuple(dataclasses.replace(o, size="medium") for o in spec.objects))


# ---------------------------------------------------------------------------------------------- negatives
def test_each_kind_changes_exactly_what_it_names():
    two = SceneSpec((ObjectSpec("bird", "red", "small"), ObjectSpec("car", "blue", "medium")), 1, "above", "sky")
    rng = random.Random(0)
    assert set(negative_kinds(two)) == {"swap_colours", "flip_relation", "replace_object", "drop_object", "recolour"}
    swapped = hard_negative(two, "swap_colours", rng)
    assert pairs(swapped) == [("blue", "bird"), ("red", "car")]
    assert [o.size for o in swapped.objects] == ["small", "medium"] and swapped.relation == "above"
    flipped = hard_negative(two, "flip_relation", rng)
    assert flipped.objects == two.objects and flipped.relation == OPPOSITE["above"] == "below"
    dropped = hard_negative(two, "drop_object", rng)
    assert len(dropped.objects) == 1 and dropped.objects[0] in two.objects and dropped.background == "sky"
    replaced = hard_negative(two, "replace_object", rng)
    changed = [(a, b) for a, b in zip(two.objects, replaced.objects, strict=True) if a != b]
    assert len(changed) == 1 and changed[0][0].kind != changed[0][1].kind
    assert changed[0][1].kind not in {"bird", "car"} and changed[0][0].colour == changed[0][1].colour
    recoloured = hard_negative(two, "recolour", rng)
    changed = [(a, b) for a, b in zip(two.objects, recoloured.objects, strict=True) if a != b]
    assert len(changed) == 1 and changed[0][1].colour not in {"red", "blue"}
    assert changed[0][0].kind == changed[0][1].kind

    three = SceneSpec((ObjectSpec("star", "yellow", "medium"),), 3, None, None)
    counts = {hard_negative(three, "count_off", random.Random(s)).count for s in range(20)}
    assert counts == {2, 4}
    one = SceneSpec((ObjectSpec("star", "yellow", "medium"),), 1, None, None)
    assert hard_negative(one, "count_off", rng).count == 2
    placed = SceneSpec((ObjectSpec("star", "yellow", "medium", "left"),), 1, None, None)
    assert "count_off" not in negative_kinds(placed)  # a count has no position in the caption grammar
    with pytest.raises(ValueError, match="no 'swap_colours'"):
        hard_negative(one, "swap_colours", rng)


def test_a_recoloured_object_stays_visible():
    # On plain paper a white object vanishes; on grass a green one does; the other object's colour is taken.
    for bg, banned in ((None, {"white", "red", "blue"}), ("grass", {"green", "red", "blue"}),
                       ("yellow", {"yellow", "red", "blue"})):
        spec = SceneSpec((ObjectSpec("bird", "red", "small"), ObjectSpec("car", "blue", "medium")), 1, "and", bg)
        for s in range(40):
            neg = hard_negative(spec, "recolour", random.Random(s))
            assert not ({o.colour for o in neg.objects} - {"red", "blue"}) & banned


def test_twins_of_train_scenes_say_what_changed_and_never_hold_a_heldout_pair():
    kinds = set()
    for i in range(400):
        caption, spec = scene_caption("train", i)
        neg_caption, neg, kind = twin_caption("train", i)
        kinds.add(kind)
        assert kind in negative_kinds(spec) and neg != spec and neg_caption != caption
        assert not set(pairs(neg)) & HELDOUT_PAIRS
        assert (neg.background, neg.objects[0].kind) not in HELDOUT_PAIRS
        parsed = parse_prompt(neg_caption)
        assert parsed is not None and comparable(parsed) == comparable(neg), (neg_caption, neg)
        assert twin_caption("train", i) == (neg_caption, neg, kind)  # a pure function of the index
    assert kinds == set(NEGATIVE_KINDS)


def test_twin_caption_uses_the_scene_caption_template():
    # The same template choices: a colour swap changes the colour words (and their articles) and nothing else.
    def words(text: str) -> list[str]:
        return ["a" if w == "an" else w for w in text.split()]

    for i in range(400):
        caption, spec = scene_caption("train", i)
        neg_caption, neg, kind = twin_caption("train", i)
        if kind == "swap_colours":
            a, b = (o.colour for o in spec.objects)
            assert words(neg_caption) == [{a: b, b: a}.get(w, w) for w in words(caption)], (caption, neg_caption)
            return
    pytest.fail("no colour swap among 400 scenes")


def test_twins_sit_side_by_side_in_every_training_batch():
    data = WorldDataset("train", 16, 1000, twins=True)
    assert len(data) == 2000
    cfg = TrainConfig(stage="clip", data="world:train", batch_size=8, steps=3, hard_negatives=True)
    batches = StepBatches(data, cfg, rank=0, n_procs=2, procedural=True)
    for step in range(3):
        _, captions = batches[step]
        first = step * 8
        for j in range(0, 4, 2):
            scene = (first + j) // 2
            assert captions[j] == scene_caption("train", scene)[0]
            assert captions[j + 1] == twin_caption("train", scene)[0]
    image, caption = data[7]
    assert image.shape == (3, 16, 16) and caption == twin_caption("train", 3)[0] == data.captions_at(7)[0]


# ---------------------------------------------------------------------------------------------- the score
def test_word_region_scores_match_a_direct_computation():
    g = torch.Generator().manual_seed(0)
    regions, words = torch.randn(3, 5, 8, generator=g), torch.randn(2, 4, 8, generator=g)
    real = torch.tensor([[True, True, True, False], [True, True, False, False]])
    got = word_region_scores(regions, words, real, sharpness=4.0)
    want = torch.zeros(3, 2)
    for i in range(3):
        for j in range(2):
            total = []
            for t in range(4):
                if not real[j, t]:
                    continue
                w = F.normalize(words[j, t], dim=0)
                r = F.normalize(regions[i], dim=1)
                a = torch.softmax(4.0 * (r @ w), dim=0)
                total.append(F.cosine_similarity((a[:, None] * r).sum(0), w, dim=0))
            want[i, j] = torch.stack(total).mean()
    torch.testing.assert_close(got, want)
    # Padding words do not count, whatever their features.
    words2 = words.clone()
    words2[0, 3] = torch.randn(8, generator=g)
    torch.testing.assert_close(word_region_scores(regions, words2, real, 4.0), got)


def test_a_word_that_matches_one_region_attends_to_it_and_scores_near_one():
    regions = torch.eye(8)[:6][None] * 3  # six orthogonal regions
    real = torch.tensor([[True, True]])
    matching = torch.eye(8)[[2, 4]][None]  # words equal to regions 2 and 4: each finds its own
    assert float(word_region_scores(regions, matching, real, sharpness=50.0)) > 0.999
    unmatched = torch.eye(8)[[6, 7]][None]  # words no region holds: attention spreads, the match is 0
    assert abs(float(word_region_scores(regions, unmatched, real, sharpness=50.0))) < 1e-6
    half = torch.eye(8)[[2, 7]][None]  # one word matched, one not: the mean counts the unmatched one
    assert abs(float(word_region_scores(regions, half, real, sharpness=50.0)) - 0.5) < 1e-3


def small_cfg(**kw) -> ClipConfig:
    base = dict(image_side=16, text_vocab=140, text_len=TEXT_LEN, n_pad_start=120, n_hid=8, n_embd=32, n_layer=1,
                n_head=2, embed_dim=16)
    return ClipConfig(**(base | kw))


def test_word_region_clip_scores_saves_and_loads(tmp_path):
    torch.manual_seed(0)
    cfg = small_cfg(word_region=True)
    clip = Clip(cfg).eval()
    assert cfg.state_numel() == sum(t.numel() for t in clip.state_dict().values())
    assert small_cfg().state_numel() == sum(t.numel() for t in Clip(small_cfg()).state_dict().values())
    images = torch.rand(4, 3, 16, 16)
    text = torch.randint(0, 140, (4, TEXT_LEN))
    with torch.no_grad():
        pair = clip.pair_scores(images, text)
        assert pair.shape == (4, 4) and float(pair.abs().max()) <= 2
        torch.testing.assert_close(clip.score(images, text), pair.diagonal())
        torch.testing.assert_close(clip.score(images, text[:1]), pair[:, 0])
        # Images at twice the side are shrunk to the model's (area average): the same score as shrunk by hand.
        big = images.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
        torch.testing.assert_close(clip.score(big, text), clip.score(images, text))
        attn, match = clip.word_attention(images[0], text[0])
    assert attn.shape == (TEXT_LEN, 2, 2) and torch.allclose(attn.sum((1, 2)), torch.ones(TEXT_LEN))
    assert match.shape == (TEXT_LEN,)
    save_model(clip, tmp_path / "clip.safetensors", "clip")
    back = load_model(tmp_path / "clip.safetensors", "clip")
    assert back.cfg.word_region
    with torch.no_grad():
        torch.testing.assert_close(back.score(images, text), clip.score(images, text))
    with pytest.raises(ValueError, match="word-region head"):
        Clip(small_cfg()).word_attention(images[0], text[0])


def test_a_captions_embedding_and_score_do_not_depend_on_the_padding_after_it():
    """The text embedding is the mean over real tokens: a caption read with 2 or 9 padding tokens after it
    (the same ids at the same positions) has the same sentence embedding and the same score. An empty caption
    (padding only) still pools over its first position: a finite score, not 0 / 0."""
    torch.manual_seed(0)
    cfg = small_cfg()
    images = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    caption = [5, 17, 42]
    padded = torch.tensor([caption + [cfg.n_pad_start + p for p in range(len(caption), TEXT_LEN)]])  # (1, 12)
    short = padded[:, :5]  # the caption and two of its padding ids
    empty = torch.tensor([[cfg.n_pad_start + p for p in range(TEXT_LEN)]])
    for word_region in (False, True):
        clip = Clip(dataclasses.replace(cfg, word_region=word_region)).eval()
        with torch.no_grad():
            long_emb, short_emb = clip.text_encoder(padded), clip.text_encoder(short)
            torch.testing.assert_close(long_emb, short_emb, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(clip.score(images, padded), clip.score(images, short), atol=1e-5, rtol=1e-5)
            other = torch.tensor([caption[:2] + [cfg.n_pad_start + p for p in range(2, TEXT_LEN)]])
            assert not torch.allclose(clip.text_encoder(other), long_emb, atol=1e-3)  # a real token does count
            blank = clip.score(images, empty)
        assert blank.shape == (2,) and bool(torch.isfinite(blank).all()), (word_region, blank)


def test_word_attention_gives_the_cosines_the_word_region_score_averages():
    """word_attention (what --explain draws) and word_region_scores (what ranks) are one computation: each
    token's attention is softmax(sharpness x cosine) over the regions, and its cosine with what it attended to
    is the term the score averages (token t alone, by a mask that keeps only it)."""
    torch.manual_seed(0)
    clip = Clip(small_cfg(word_region=True, attn_sharpness=5.0)).eval()
    image = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(2))
    text = torch.randint(0, 120, (TEXT_LEN,), generator=torch.Generator().manual_seed(3))
    attn, match = clip.word_attention(image, text)
    with torch.no_grad():
        (_, regions), (_, words, _) = clip.features(image[None], text[None])
    r, w = F.normalize(regions[0], dim=-1), F.normalize(words[0], dim=-1)
    torch.testing.assert_close(attn.view(TEXT_LEN, -1), torch.softmax(5.0 * w @ r.t(), dim=-1))
    for t in range(TEXT_LEN):
        alone = torch.zeros(1, TEXT_LEN, dtype=torch.bool)
        alone[0, t] = True
        torch.testing.assert_close(match[t], word_region_scores(regions, words, alone, 5.0)[0, 0])
    assert float(match.std()) > 1e-3  # the tokens really differ: the check is not of one repeated number


SHIPPED = Path(__file__).resolve().parents[1] / "weights"


@pytest.mark.skipif(not (SHIPPED / "clip.safetensors").is_file(), reason="no shipped reranker")
def test_the_shipped_reranker_scores_a_fixed_input_as_it_did():
    """Pins the architecture's arithmetic (the text mean over real tokens, the image map's mean and max pools,
    the word-region term) on the shipped weights/clip.safetensors: a red square on white against one prompt.
    Update the number when the shipped reranker (or its architecture, on purpose) changes."""
    clip = load_model(SHIPPED / "clip.safetensors", "clip")
    tok = load_tokenizer(SHIPPED / "tokenizer.json")
    image = torch.ones(3, 64, 64)
    image[1:, 12:36, 20:44] = 0.0  # a red square, off centre, on white
    image[:, 44:52, 8:16] = torch.tensor([0.0, 0.0, 1.0])[:, None, None]  # and a small blue one
    ids = torch.tensor([tok.encode("a red square above a small blue square", clip.cfg.text_len).ids])
    with torch.no_grad():
        got = float(clip.score(image[None], ids)[0])
    assert abs(got - 1.1206) < 1e-3, got  # 1.120589 when pinned (CPU, float32)


# ---------------------------------------------------------------------------------------------- the CLI
@pytest.fixture(scope="module")
def word_region_weights(tmp_path_factory):
    folder = build_tiny_folder(tmp_path_factory.mktemp("wr") / "weights")
    tok = load_tokenizer(folder / "tokenizer.json")
    torch.manual_seed(0)
    cfg = ClipConfig(image_side=16, text_vocab=tok.vocab_size(TEXT_LEN), text_len=TEXT_LEN, n_pad_start=tok.n_bpe,
                     n_hid=8, n_embd=32, n_layer=1, n_head=2, embed_dim=16, word_region=True)
    save_model(Clip(cfg), folder / "clip.safetensors", "clip")
    return folder


def test_explain_draws_one_panel_per_word_and_is_not_ranked_again(word_region_weights, tmp_path):
    from PIL import Image

    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, rgb in enumerate(((220, 30, 30), (30, 30, 220), (30, 200, 30))):
        Image.new("RGB", (16, 16), rgb).save(folder / f"img-{i}.png")
    prompt = "a red bird above a blue car"
    r = run("rerank", folder, "--prompt", prompt, "--explain", "--weights", word_region_weights, "--device", "cpu")
    assert r.exit_code == 0, (r.stderr, r.exception)
    strips = sorted(folder.glob("explain-*.png"))
    assert len(strips) == 1 and "where each word looks" in r.stdout
    best = json.loads((folder / "ranking.json").read_text())[0]["file"]
    assert strips[0].name.startswith(f"explain-{best[:-4]}-")
    with Image.open(strips[0]) as im:
        width, height = im.size
    words = len(prompt.split())
    assert width == 4 + (words + 1) * (128 + 4)  # the image and one 128 px panel per word
    assert height == 4 + 128 + 26 + 4
    r2 = run("rerank", folder, "--prompt", prompt, "--weights", word_region_weights, "--device", "cpu")
    assert r2.exit_code == 0 and len(json.loads((folder / "ranking.json").read_text())) == 3


def test_explain_with_a_sentence_level_clip_says_why_there_are_no_maps(tiny_weights, tmp_path):
    from PIL import Image

    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.new("RGB", (16, 16), (200, 30, 30)).save(folder / "a.png")
    r = run("rerank", folder, "--prompt", "a red bird", "--explain", "--weights", tiny_weights, "--device", "cpu")
    assert r.exit_code == 0 and "no word-region head" in r.stderr
    assert not list(folder.glob("explain-*"))
    r = run("rerank", folder, "--prompt", "a red bird", "--explain", "--weights", tiny_weights, "--device", "cpu",
            "--quiet", "--force")
    assert r.exit_code == 0 and r.stderr == "" and "word contributions" in r.stdout  # --quiet: no warnings


def test_train_clip_with_hard_negatives_logs_how_often_it_prefers_the_scene(tmp_path):
    run("train", "--stage", "tokenizer", "--preset", "tiny", "--out", tmp_path / "tok", "-q")
    r = run("train", "--stage", "clip", "--preset", "tiny", "--tokenizer", tmp_path / "tok", "--out", tmp_path / "c",
            "--steps", "4", "--hard-negatives", "--model", "word_region=true", "-q")
    assert r.exit_code == 0, (r.stderr, r.exception)
    cfg = json.loads((tmp_path / "c" / "train_config.json").read_text())
    assert cfg["hard_negatives"] is True and cfg["model"]["word_region"] is True
    vals = [json.loads(ln) for ln in (tmp_path / "c" / "metrics.jsonl").read_text().splitlines() if "val_hard" in ln]
    assert vals and 0 <= vals[-1]["val_hard"] <= 1
    assert load_model(tmp_path / "c" / "clip.safetensors", "clip").cfg.word_region


@pytest.mark.parametrize("args,needle", [
    (("--stage", "clip", "--data", "FOLDER", "--hard-negatives"), "needs --data world"),
    (("--stage", "clip", "--hard-negatives", "--batch-size", "7"), "must be even"),
    (("--stage", "dvae", "--hard-negatives"), "does not apply to the dvae stage"),
    (("--stage", "clip", "--model", "word_region=maybe"), "takes true or false"),
])
def test_train_refuses_what_hard_negatives_cannot_honour(tmp_path, args, needle):
    (tmp_path / "pics").mkdir()
    run("train", "--stage", "tokenizer", "--preset", "tiny", "--out", tmp_path / "tok", "-q")
    args = [str(tmp_path / "pics") if a == "FOLDER" else a for a in args]
    extra = ["--tokenizer", tmp_path / "tok"] if "clip" in args else []
    r = run("train", *args, *extra, "--preset", "tiny", "--out", tmp_path / "run", "-q")
    assert r.exit_code == 2 and needle in r.stderr, (r.exit_code, r.stderr)
    assert "Traceback" not in r.stderr and not (tmp_path / "run").exists()


def test_a_clip_run_can_start_from_a_trained_clip_at_another_side(tmp_path):
    """--init: the new run keeps the trained CLIP's architecture and weights (here at twice its side) and
    trains on from them; it resumes; what it cannot honour is one line and leaves no run folder."""
    run("train", "--stage", "tokenizer", "--preset", "tiny", "--out", tmp_path / "tok", "-q")
    clip = ["--stage", "clip", "--preset", "tiny", "--tokenizer", tmp_path / "tok", "-q", "--workers", "0"]
    r = run("train", *clip, "--out", tmp_path / "a", "--steps", "3", "--model", "word_region=true", "--model",
            "n_hid=16")
    assert r.exit_code == 0, r.stderr
    a = load_model(tmp_path / "a" / "clip.safetensors", "clip")
    r = run("train", *clip, "--out", tmp_path / "b", "--steps", "1", "--lr", "1e-9", "--init", tmp_path / "a",
            "--image-side", "32")
    assert r.exit_code == 0, r.stderr
    b = load_model(tmp_path / "b" / "clip.safetensors", "clip")
    assert b.cfg == dataclasses.replace(a.cfg, image_side=32)  # n_hid=16 and the word-region head came along
    fresh = Clip(b.cfg)
    for name, t in b.state_dict().items():  # one step at lr 1e-9: still the trained weights, not a new init
        assert torch.allclose(t, a.state_dict()[name], atol=1e-5), name
    assert any(not torch.allclose(t, fresh.state_dict()[n], atol=1e-3) for n, t in b.state_dict().items())
    cfg = json.loads((tmp_path / "b" / "train_config.json").read_text())
    assert cfg["init"] == str(tmp_path / "a") and cfg["image_side"] == 32
    assert (tmp_path / "b" / "clip_init.safetensors").is_file()
    r = run("train", "--resume", tmp_path / "b", "--steps", "2", "-q", "--workers", "0")
    assert r.exit_code == 0, r.stderr
    assert json.loads((tmp_path / "b" / "train_config.json").read_text())["steps"] == 2
    run("train", "--stage", "tokenizer", "--preset", "tiny", "--vocab-size", "100", "--out", tmp_path / "tok2", "-q")
    lone = tmp_path / "lone" / "clip.safetensors"  # the CLIP file alone: only its vocabulary size can be checked
    lone.parent.mkdir()
    lone.write_bytes((tmp_path / "a" / "clip.safetensors").read_bytes())
    for args, needle in ((("--init", tmp_path / "a", "--model", "n_hid=8"), "--model does not apply with --init"),
                         (("--init", tmp_path / "a", "--text-len", "20"), "reads 12 tokens"),
                         (("--init", tmp_path / "nothing"), "does not exist"),
                         (("--init", ""), "--init needs a path"),
                         (("--init", tmp_path / "a", "--tokenizer", tmp_path / "tok2"),
                          "trained with another tokenizer"),
                         (("--init", lone, "--tokenizer", tmp_path / "tok2"), "another tokenizer's ids")):
        given = clip if "--tokenizer" not in args else clip[:4] + clip[6:]  # the other tokenizer alone
        r = run("train", *given, "--out", tmp_path / "bad", *args)
        assert r.exit_code == 2 and needle in r.stderr, (args, r.stderr)
        assert "Traceback" not in r.stderr and not (tmp_path / "bad").exists()
    for args, needle in ((("--stage", "dvae", "--init", tmp_path / "a"), "does not apply to the dvae stage"),
                         (("--stage", "all", "--init", tmp_path / "a"), "cannot be used with --stage all")):
        r = run("train", *args, "--preset", "tiny", "--out", tmp_path / "bad", "-q")
        assert r.exit_code == 2 and needle in r.stderr, (args, r.stderr)
