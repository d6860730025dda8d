"""Mutation audit (s42, helper hD): tests that kill mutants which survived the suite in world/negatives.py,
world/tasks.py, world/evaluate.py, models/transformer.py, images.py and outputs.py."""

from __future__ import annotations

import json
import random
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image

from t2i_cli import images, outputs
from t2i_cli.errors import DataError
from t2i_cli.models import transformer as tr
from t2i_cli.models.transformer import Int8Linear, KVCache, Transformer, TransformerConfig
from t2i_cli.pipeline import Generated, Request
from t2i_cli.sampling import SamplingConfig
from t2i_cli.world import evaluate as ev
from t2i_cli.world import negatives, tasks
from t2i_cli.world.negatives import NEGATIVE_KINDS, any_hard_negative, hard_negative, negative_kinds, twin_caption
from t2i_cli.world.spec import (
    CLASHES,
    COLOURS,
    HELDOUT_PAIRS,
    OBJECTS,
    OPPOSITE,
    POSITIONS,
    SPATIAL_RELATIONS,
    ObjectSpec,
    SceneSpec,
    in_position,
    position_centre,
)
from t2i_cli.world.splits import sample_spec, scene


# ----------------------------------------------------------------------------- world/negatives.py
def _pairs(spec: SceneSpec) -> set[tuple[str, str]]:
    """Every (colour, kind) a scene shows: its objects' own, and its background colour with each kind."""
    kinds = {o.kind for o in spec.objects}
    return {(o.colour, o.kind) for o in spec.objects} | {(spec.background, k) for k in kinds}


def _train_specs(n: int = 400) -> list[SceneSpec]:
    rng = random.Random(42)
    return [sample_spec(rng, "train") for _ in range(n)]


def test_each_negative_changes_exactly_what_its_kind_says_and_stays_out_of_the_heldout_pairs():
    seen = set()
    for i, spec in enumerate(_train_specs()):
        for kind in negative_kinds(spec):
            neg = hard_negative(spec, kind, random.Random(i))
            seen.add(kind)
            assert neg != spec, (kind, spec)
            assert not _pairs(neg) & HELDOUT_PAIRS, (kind, spec, neg)
            a, b = spec.objects[0], spec.objects[-1]
            if kind == "swap_colours":
                assert [(o.kind, o.colour) for o in neg.objects] == [(a.kind, b.colour), (b.kind, a.colour)]
            elif kind == "flip_relation":
                assert neg.objects == spec.objects and neg.relation == OPPOSITE[spec.relation]
            elif kind == "count_off":
                assert neg.objects == spec.objects and abs(neg.count - spec.count) == 1 and 1 <= neg.count <= 4
            elif kind == "drop_object":
                assert neg.objects[0] in spec.objects and len(neg.objects) == 1
                assert (neg.count, neg.relation, neg.background) == (1, None, spec.background)
            elif kind == "replace_object":
                changed = [(o, n) for o, n in zip(spec.objects, neg.objects, strict=True) if o != n]
                assert len(changed) == 1 and changed[0][1].colour == changed[0][0].colour
                assert changed[0][1].kind not in {o.kind for o in spec.objects}  # a kind the scene does not hold
            else:  # recolour: one object, to a colour the scene can still show
                changed = [(o, n) for o, n in zip(spec.objects, neg.objects, strict=True) if o != n]
                assert len(changed) == 1 and changed[0][1].kind == changed[0][0].kind
                new = changed[0][1].colour
                assert new not in {o.colour for o in spec.objects} and new != spec.background
                assert new not in CLASHES.get(spec.background or "", ())
                assert not (spec.background is None and new == "white")  # white vanishes on plain paper
    assert seen == set(NEGATIVE_KINDS)


def test_negative_kinds_offers_only_negatives_that_differ_in_a_binding():
    def o(kind, colour, position=None):
        return ObjectSpec(kind, colour, "medium", position)

    # two birds of two colours: swapped, they are the same scene; two red objects: swapping changes nothing
    assert "swap_colours" not in negative_kinds(SceneSpec((o("bird", "red"), o("bird", "blue")), 1, "above"))
    assert "swap_colours" not in negative_kinds(SceneSpec((o("bird", "red"), o("fish", "red")), 1, "above"))
    assert "swap_colours" in negative_kinds(SceneSpec((o("bird", "red"), o("fish", "blue")), 1, "above"))
    # a swap that would make a held-out pair (a purple bird, an orange fish) is a train scene's only with leave
    for objs in ((o("bird", "red"), o("fish", "purple")), (o("fish", "purple"), o("bird", "red")),
                 (o("fish", "red"), o("cat", "orange")), (o("cat", "orange"), o("fish", "red"))):
        spec = SceneSpec(objs, 1, "and")
        assert "swap_colours" not in negative_kinds(spec), objs
        assert "swap_colours" in negative_kinds(spec, allow_heldout=True), objs
    # "and" has no opposite
    assert "flip_relation" not in negative_kinds(SceneSpec((o("bird", "red"), o("fish", "blue")), 1, "and"))
    # count_off: a counted scene, or one centred object; never one object in a named place
    assert "count_off" in negative_kinds(SceneSpec((o("bird", "red"),), 1))
    assert "count_off" not in negative_kinds(SceneSpec((o("bird", "red", "left"),), 1))
    assert "count_off" in negative_kinds(SceneSpec((o("bird", "red", "left"),), 2))
    with pytest.raises(ValueError):  # a kind the scene has none of is refused, not made up
        hard_negative(SceneSpec((o("bird", "red"),), 1), "flip_relation", random.Random(0))


def test_count_off_stays_within_one_to_four():
    bird = (ObjectSpec("bird", "red", "medium"),)
    assert {hard_negative(SceneSpec(bird, 4), "count_off", random.Random(s)).count for s in range(20)} == {3}
    assert {hard_negative(SceneSpec(bird, 1), "count_off", random.Random(s)).count for s in range(20)} == {2}
    assert {hard_negative(SceneSpec(bird, 2), "count_off", random.Random(s)).count for s in range(20)} == {1, 3}


def test_negatives_keep_a_held_out_pair_out_through_the_background_too():
    # a red cat on purple: replaced by a bird it would be a purple-bird scene; a bird on purple can take no colour
    cat = SceneSpec((ObjectSpec("cat", "red", "medium"),), 1, None, "purple")
    for s in range(60):
        assert hard_negative(cat, "replace_object", random.Random(s)).objects[0].kind != "bird"
    assert negatives._free_colours(SceneSpec((ObjectSpec("bird", "red", "medium"),), 1, None, "purple"),
                                   ObjectSpec("bird", "red", "medium"), False) == []
    fish = SceneSpec((ObjectSpec("fish", "purple", "medium"),), 1)  # a purple bird is held out
    for s in range(60):
        assert hard_negative(fish, "replace_object", random.Random(s)).objects[0].kind != "bird"
    bird = SceneSpec((ObjectSpec("bird", "red", "medium"),), 1)
    colours = {hard_negative(bird, "recolour", random.Random(s)).objects[0].colour for s in range(200)}
    assert "purple" not in colours and "white" not in colours and "red" not in colours
    assert "purple" in {hard_negative(bird, "recolour", random.Random(s), allow_heldout=True).objects[0].colour
                        for s in range(200)}


def test_any_hard_negative_draws_every_kind_a_scene_has():
    spec = SceneSpec((ObjectSpec("bird", "red", "medium"), ObjectSpec("fish", "blue", "medium")), 1, "above")
    kinds = {any_hard_negative(spec, random.Random(s))[0] for s in range(200)}
    assert kinds == set(negative_kinds(spec)) and len(kinds) == 5


def test_twin_captions_of_train_scenes_hold_no_held_out_pair():
    kinds = set()
    for i in range(400):
        _, neg, kind = twin_caption("train", i)
        kinds.add(kind)
        assert not _pairs(neg) & HELDOUT_PAIRS, (i, kind, neg)
    assert {"recolour", "replace_object"} <= kinds


def test_twin_scene_is_drawn_with_the_scenes_own_layout():
    for i in range(40):
        caption, neg, kind = twin_caption("train", i)
        if kind == "recolour":
            break
    image, _, spec = scene("train", i, 64)
    twin, twin_text, twin_spec, twin_kind = negatives.twin_scene("train", i, 64)
    assert (twin_text, twin_spec, twin_kind) == (caption, neg, kind)
    same = (np.asarray(image) == np.asarray(twin)).all(axis=2).mean()
    assert same > 0.5, same  # only the recoloured object's pixels change: same background, same places


def test_twin_caption_pins():
    """The hard negatives of the first train scenes, pinned: the negative's draw (its own seeded stream) is part
    of what a training run's data is, so a change to it changes every trained model."""
    assert [twin_caption("train", i)[:3:2] for i in range(6)] == [
        ("two gray trees", "recolour"),
        ("a tiny orange cat below a brown circle on a yellow background", "swap_colours"),
        ("an image of a pink bird in the top left corner on an orange background", "recolour"),
        ("a picture of two black houses", "count_off"),
        ("a tiny brown bird above a purple car", "recolour"),
        ("a drawing of a red car in the bottom left corner", "recolour")]


# ----------------------------------------------------------------------------- world/tasks.py


def test_each_task_cycles_through_what_it_varies():
    specs = {t: [s for _, s in tasks.task_prompts(t, 24, 5)] for t in tasks.TASKS}
    assert [s.objects[0].kind for s in specs["single_object"][:len(OBJECTS)]] == list(OBJECTS)
    assert [s.objects[0].colour for s in specs["colours"][:len(COLOURS)]] == list(COLOURS)
    assert [(s.objects[0].colour, s.objects[0].kind) for s in specs["heldout"][:len(HELDOUT_PAIRS)]] \
        == sorted(HELDOUT_PAIRS)
    assert all(s.background is None for s in specs["heldout"])  # a held-out pair on paper: nothing else to read
    assert [s.count for s in specs["counting"][:6]] == [2, 3, 4, 2, 3, 4]
    pos = specs["position"]
    assert [s.objects[0].position for s in pos[0:16:2]] == list(POSITIONS)  # even prompts: one object, placed
    assert [s.relation for s in pos[1:16:2]] == list(SPATIAL_RELATIONS) * 2  # odd ones: two, in a relation
    assert all(len(s.objects) == 1 and s.relation is None for s in pos[0::2])
    sizes = {s.objects[0].size for s in specs["single_object"]}
    assert sizes == {"small", "medium", "big"}  # single objects come in every size


def test_two_object_prompts_name_two_kinds_and_attribution_two_colours():
    for seed in range(6):
        for task in ("two_objects", "colour_attribution", "position"):
            for _, s in tasks.task_prompts(task, 16, seed):
                if len(s.objects) == 2:
                    assert s.objects[0].kind != s.objects[1].kind, (task, s)
                    if task == "colour_attribution":
                        assert s.objects[0].colour != s.objects[1].colour, s
        for task in tasks.TASKS:  # no held-out pair outside "heldout", as an object or a background
            if task != "heldout":
                for _, s in tasks.task_prompts(task, 24, seed):
                    assert not _pairs(s) & HELDOUT_PAIRS, (task, s)


def test_wrong_specs_differ_in_exactly_what_each_task_judges():
    both = set()
    for seed in range(8):
        rng = random.Random(seed)
        for task in tasks.TASKS:
            for _, s in tasks.task_prompts(task, 16, seed):
                w = tasks.wrong_spec(task, s, rng)
                a, wa = s.objects[0], w.objects[0]
                if task == "colour_attribution":
                    b = s.objects[1]
                    assert [(o.kind, o.colour) for o in w.objects] == [(a.kind, b.colour), (b.kind, a.colour)]
                elif task == "two_objects":
                    assert wa == a and w.objects[1].kind not in (a.kind, s.objects[1].kind)
                elif task == "position" and s.relation is not None:
                    assert w.objects == s.objects and w.relation != s.relation
                    same_axis = {s.relation, OPPOSITE[s.relation]}
                    assert w.relation == OPPOSITE[s.relation] or w.relation not in same_axis
                elif task == "position":  # a place whose centre is not inside the named one
                    assert not in_position(position_centre(wa.position), a.position), (a.position, wa.position)
                elif task == "counting":
                    assert w.count != s.count and 1 <= w.count <= 4
                elif task == "single_object" or (task == "heldout" and wa.kind != a.kind):
                    assert wa.kind != a.kind and wa.colour == a.colour
                    if task == "heldout":
                        both.add("kind")
                else:  # colours (and half of heldout): another colour that the scene can still show
                    assert wa.kind == a.kind and wa.colour != a.colour
                    assert wa.colour != s.background and wa.colour not in CLASHES.get(s.background or "", ())
                    assert not (s.background is None and wa.colour == "white")
                    if task == "heldout":
                        both.add("colour")
    assert both == {"kind", "colour"}  # heldout's wrong scenes change the object or its colour


def test_image_seeds_are_31_bit_and_per_task_and_index():
    seeds = {tasks.image_seed(0, t, i) for t in tasks.TASKS for i in range(50)}
    assert len(seeds) == 50 * len(tasks.TASKS) and max(seeds) < 2 ** 31 and max(seeds) >= 2 ** 30


# ----------------------------------------------------------------------------- world/evaluate.py


class CountingPipe:
    """Stands in for TextToImage: each image is a constant picture that says which prompt and candidate it is
    (prompt number / 100 + candidate / 1000); CLIP's favourite is candidate 1. It records every decode."""

    def __init__(self):
        self.decodes, self.calls = [], []

    def request(self, prompt, sampling=SamplingConfig(), warn=True):
        return Request(prompt, None, sampling)

    def _images(self, prompt, n, seed):
        k = self.prompts.index(prompt)
        return [Generated(torch.full((3, 4, 4), k / 100 + i / 1000), prompt, i, score=float(i == 1))
                for i in range(n)]

    def draw_each(self, requests, seeds, n=1, batch=16):
        self.decodes.append((len(requests), n, batch))
        return [g for r, s in zip(requests, seeds, strict=True) for g in self._images(r.prompt, n, s)]

    def __call__(self, prompt, n=1, seed=0, sampling=SamplingConfig()):
        self.calls.append((prompt, n, seed))
        return self._images(prompt, n, seed)

    def rerank(self, results, keep):
        return sorted(results, key=lambda g: -g.score)[:keep]


class ReadingJudge:
    """Passes every check but those named in `fails`; records which image (prompt, candidate) it saw."""

    def __init__(self, fails=()):
        self.fails, self.seen = set(fails), []

    def check(self, image, spec):
        v = round(float(image[0, 0, 0]) * 1000)
        self.seen.append((v // 10, v % 10))
        return {c: c not in self.fails for c in ("object", "colour", "count", "position", "both", "attribution")}


@pytest.mark.parametrize("candidates", [1, 3, ev.EVAL_BATCH, ev.EVAL_BATCH + 1])
def test_eval_decodes_within_its_batch_and_scores_each_prompts_own_favourite(candidates):
    n, pipe, judge, kept = 7, CountingPipe(), ReadingJudge(), []
    pipe.prompts = [p for p, _ in tasks.task_prompts("counting", n, 4)]
    got = ev.evaluate_model(pipe, judge, n, 4, candidates=candidates, tasks=("counting",),
                            keep=lambda task, i, seed, g, checks: kept.append((i, seed, g.prompt)))
    assert ev.decode_batch(pipe) == ev.EVAL_BATCH  # a pipe without a transformer's config: 16, as before
    for rows, each, batch in pipe.decodes:
        assert each == candidates and rows * each <= batch == ev.EVAL_BATCH
    if candidates > ev.EVAL_BATCH:  # more than a decode holds: one prompt at a time, as `pipe(prompt, n)` draws
        assert [c[:2] for c in pipe.calls] == [(p, candidates) for p in pipe.prompts] and not pipe.decodes
    else:
        assert sum(rows for rows, _, _ in pipe.decodes) == n and not pipe.calls
    assert judge.seen == [(k, 0 if candidates == 1 else 1) for k in range(n)]  # each prompt's favourite
    assert kept == [(i, tasks.image_seed(4, "counting", i), pipe.prompts[i]) for i in range(n)]
    r = got["tasks"]["counting"]
    assert (r["passed"], r["n"], r["accuracy"], r["checks"]) == (n, n, 1.0, {"count": 1.0})
    assert got["overall"] == 1.0  # the mean over the tasks scored
    assert got["images_per_second"] * got["seconds"] == pytest.approx(n * candidates)


def test_a_prompt_passes_only_when_every_check_of_its_task_passes():
    pipe, n = CountingPipe(), 4
    pipe.prompts = [p for t in ("heldout", "colours") for p, _ in tasks.task_prompts(t, n, 0)]
    got = ev.evaluate_model(pipe, ReadingJudge(fails={"colour"}), n, 0, tasks=("heldout", "colours"))
    for task in ("heldout", "colours"):  # the right object in the wrong colour is no pass
        assert got["tasks"][task]["accuracy"] == 0.0
        assert got["tasks"][task]["checks"] == {"object": 1.0, "colour": 0.0}
    assert got["overall"] == 0.0
    for bad in (0, 2.5, True):  # (2.5 was a TypeError deep in the loop, True one candidate)
        with pytest.raises(ValueError, match="candidates must be a whole number, 1 or more"):
            ev.evaluate_model(pipe, ReadingJudge(), n, 0, candidates=bad, tasks=("heldout",))
    for bad in (True, 0):  # (True is an int: it was one prompt a task)
        with pytest.raises(ValueError, match="n_per_task must be a whole number, 1 or more"):
            ev.evaluate_model(pipe, ReadingJudge(), bad, 0, tasks=("heldout",))


class YesJudge:
    def __init__(self):
        self.images = []

    def passes(self, task, image, spec):
        self.images.append(np.asarray(image))
        return True


def test_validate_judge_scores_out_of_each_tasks_prompts_and_degrades_only_when_asked():
    from t2i_cli.world.render import render

    judge = YesJudge()
    got = ev.validate_judge(judge, 1, 3, 32)
    assert got == {t: {"agreement": 1.0, "rejects_wrong": 0.0} for t in tasks.TASKS}
    spec = tasks.task_prompts(tasks.TASKS[0], 1, 3)[0][1]
    clean = np.asarray(render(spec, tasks.image_seed(3, tasks.TASKS[0], 0), 32, jitter=True))
    assert np.array_equal(judge.images[0], clean)
    degraded = YesJudge()
    ev.validate_judge(degraded, 1, 3, 32, is_degraded=True)
    assert not np.array_equal(degraded.images[0], clean)


def test_dvae_metrics_of_two_seeds_read_other_scenes(monkeypatch):
    from t2i_cli.models.dvae import DVAE, DVAEConfig

    torch.manual_seed(0)
    dvae = DVAE(DVAEConfig(image_side=16, downsample=4, n_codes=16, n_hid=8, code_dim=8)).eval()
    read, real = [], ev.scene
    monkeypatch.setattr(ev, "scene", lambda split, i, side: (read.append((split, i)), real(split, i, side))[1])
    ev.dvae_metrics(dvae, 3, 0, batch=2)
    ev.dvae_metrics(dvae, 3, 1, batch=2)
    assert len(read) == 6 and len(set(read)) == 6 and {s for s, _ in read} == {"val"}


# ----------------------------------------------------------------------------- models/transformer.py


TCFG = TransformerConfig(text_vocab=20, text_len=5, image_vocab=16, grid=3, n_layer=2, n_head=2, n_embd=16)


def tiny_transformer(seed: int = 0) -> Transformer:
    torch.manual_seed(seed)
    return Transformer(TCFG).eval()


def test_activation_bytes_are_the_fp32_kv_cache_of_one_sequence():
    cache = KVCache(TCFG, 1, torch.device("cpu"), torch.float32)
    assert TCFG.activation_bytes() == (cache.k.numel() + cache.v.numel()) * 4


def test_a_kv_caches_slack_is_bounded_by_the_image():
    assert KVCache(TCFG, 1, torch.device("cpu"), torch.float32, slack=TCFG.n_image).k.shape[3] \
        == TCFG.block_size + TCFG.n_image
    for slack in (-1, TCFG.n_image + 1):
        with pytest.raises(ValueError, match="slack"):
            KVCache(TCFG, 1, torch.device("cpu"), torch.float32, slack=slack)


@pytest.mark.parametrize("amx", [False, True])
def test_a_bf16_models_cache_on_the_cpu_is_fp32_without_amx_and_bf16_with_it(monkeypatch, amx):
    monkeypatch.setattr(tr, "amx_tiles", lambda: amx)
    model = tiny_transformer().to(torch.bfloat16)
    assert KVCache.for_model(model, 2, torch.device("cpu")).k.dtype == (torch.bfloat16 if amx else torch.float32)
    assert KVCache.for_model(tiny_transformer(), 2, torch.device("cpu")).k.dtype == torch.float32


def test_heads_that_do_not_divide_the_width_are_refused():
    with pytest.raises(ValueError, match="multiple of n_head"):
        Transformer(TransformerConfig(text_vocab=20, text_len=5, image_vocab=16, grid=3, n_layer=1, n_head=3,
                                      n_embd=16))


def test_ragged_windows_refuse_a_start_before_the_image_and_a_window_past_the_cache():
    model = tiny_transformer()
    cache = KVCache(TCFG, 2, torch.device("cpu"), torch.float32, slack=2)  # room: text_len + n_image + 1
    codes = torch.zeros(2, 3, dtype=torch.long)
    with pytest.raises(ValueError, match="one start"):
        model.ragged_window_logits(codes, torch.tensor([-1, 0]), cache)
    room = cache.k.shape[3] - TCFG.text_len - 3  # the last start whose window fits
    assert model.ragged_window_logits(codes, torch.tensor([room, 0]), cache).shape == (2, 3, TCFG.image_vocab)
    with pytest.raises(ValueError, match="passes the cache"):
        model.ragged_window_logits(codes, torch.tensor([room + 1, 0]), cache)


def test_a_cache_holding_positions_refuses_a_window_of_several_codes():
    model, text = tiny_transformer(), torch.zeros(1, TCFG.text_len, dtype=torch.long)
    cache = KVCache(TCFG, 1, torch.device("cpu"), torch.float32)
    model.image_logits(text, torch.zeros(1, 0, dtype=torch.long), cache)
    with pytest.raises(ValueError, match="one code at a time"):
        model.hidden(model.embed_image(torch.zeros(1, 2, dtype=torch.long), start=0), cache)


def test_an_int8_layer_with_an_all_zero_channel_gives_zeros_there_not_nan():
    lin = nn.Linear(16, 4)
    with torch.no_grad():
        lin.weight[2] = 0
    out = Int8Linear(lin)(torch.randn(3, 16)).float()
    assert torch.isfinite(out).all()
    assert torch.allclose(out[:, 2], lin.bias[2].bfloat16().float().expand(3))


def test_forward_refuses_text_of_another_length_than_the_models():
    model = tiny_transformer()
    codes = torch.zeros(2, TCFG.n_image, dtype=torch.long)
    for length in (TCFG.text_len - 1, TCFG.text_len + 1):
        with pytest.raises(ValueError, match="the transformer reads text"):
            model(torch.zeros(2, length, dtype=torch.long), codes)


def test_state_numel_counts_the_models_state_and_keep_rows_keeps_keys_and_values_alike():
    assert TCFG.state_numel() == sum(t.numel() for t in tiny_transformer().state_dict().values())
    cache = KVCache(TCFG, 3, torch.device("cpu"), torch.float32)
    cache.k[:, :, 0, 0, 0] = torch.tensor([0.0, 1.0, 2.0])
    cache.v[:, :, 0, 0, 0] = torch.tensor([10.0, 11.0, 12.0])
    cache.keep_rows(torch.tensor([2, 0]))
    assert cache.k[0, :, 0, 0, 0].tolist() == [2.0, 0.0] and cache.v[0, :, 0, 0, 0].tolist() == [12.0, 10.0]


# ----------------------------------------------------------------------------- images.py


def test_a_16_bit_grey_pngs_transparent_level_is_the_background_and_black_stays_black(tmp_path):
    """A 16-bit grey PNG may mark one grey level transparent (tRNS, in its 16-bit values). Scaled to 8 bits, the
    level stayed in the picture's info and was applied to the 8-bit picture: its pixels read as dark grey, and
    pure black ones (level 4096's low byte, 0) as the white background."""
    a = np.full((4, 4), 30000, np.uint16)
    a[0, 0], a[3, 3] = 4096, 0
    Image.fromarray(a).save(tmp_path / "g16.png", transparency=4096)
    with Image.open(tmp_path / "g16.png") as im:
        assert im.mode == "I;16" and im.info["transparency"] == 4096
        got = np.asarray(images.to_rgb(im))
    assert got[0, 0].tolist() == [255, 255, 255]  # the transparent level: the background
    assert got[3, 3].tolist() == [0, 0, 0]  # black
    assert (got[1:3] == 116).all()  # 30000 of 65535
    assert np.asarray(images.load_rgb(tmp_path / "g16.png", 4)).tolist() == got.tolist()
    big = np.full((1100, 1000), 30000, np.uint16)  # more than a band of pixels: made RGB a band at a time
    big[:, :200] = 4096
    Image.fromarray(big).save(tmp_path / "big.png", transparency=4096)
    with Image.open(tmp_path / "big.png") as im:
        assert np.asarray(images.square_rgb(im, 16)).tolist() \
            == np.asarray(images.square(images.to_rgb(im), 16)).tolist()
        assert np.asarray(images.square_rgb(im, 16))[0, 0].tolist() == [255, 255, 255]


def test_one_code_run_through_the_blocks_after_cached_positions_sees_every_cached_key():
    """hidden() over one new position after a cache's positions equals decode_step's arithmetic (a single query
    needs no mask; a causal one, aligned at the top left, would see the first cached key alone)."""
    model, gen = tiny_transformer(), torch.Generator().manual_seed(3)
    text = torch.randint(0, TCFG.text_vocab, (2, TCFG.text_len), generator=gen)
    codes = torch.randint(0, TCFG.image_vocab, (2, 3), generator=gen)
    a, b = (KVCache(TCFG, 2, torch.device("cpu"), torch.float32) for _ in range(2))
    with torch.no_grad():
        model.image_logits(text, codes[:, :2], a)
        model.image_logits(text, codes[:, :2], b)
        want = model.decode_step(codes[:, 2], a)
        got = model.image_head(model.hidden(model.embed_image(codes[:, 2:], start=2), b)[:, -1])
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    assert a.length == b.length == TCFG.text_len + 3


# ----------------------------------------------------------------------------- outputs.py


def _g(score=None, rank=None) -> Generated:
    return Generated(torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(0)), "a red bird", 1, score=score,
                     rank=rank)


def _png(tmp_path, name: str, **changes: str | None):
    """A t2i PNG as generate writes it, its recorded settings changed as given (None: removed)."""
    g = _g()
    meta = outputs.provenance(g, 5, 2, SamplingConfig(), "0" * 16)
    settings = {k: v for k, v in (json.loads(meta["t2i"]) | changes).items() if v is not None}
    meta["t2i"] = json.dumps(settings, sort_keys=True)
    return outputs.write_image(g, tmp_path / name, meta)


def test_a_sheet_is_known_by_its_mark_or_an_older_t2is_grid_name_and_nothing_else(tmp_path):
    t2i = {"t2i": "{}", "prompt": "a red bird"}
    assert outputs.is_t2i_sheet({outputs.SHEET_KEY: "top"}, tmp_path / "best.png")  # marked: any name
    assert outputs.is_t2i_sheet(t2i, tmp_path / "a-red-bird-grid-000.png")  # an older t2i's unmarked grid
    assert outputs.is_t2i_sheet(t2i, tmp_path / "a-red-bird-grid-1234.png")
    assert not outputs.is_t2i_sheet(t2i, tmp_path / "a-red-bird-000.png")  # an image of that prompt
    assert not outputs.is_t2i_sheet({"prompt": "a red bird"}, tmp_path / "a-red-bird-grid-000.png")  # not t2i's
    sheet = outputs.write_sheet([_g(0.5, 0), _g(0.25, 1)], tmp_path / "s", {"prompt": "a red bird"})
    assert sheet.name == "a-red-bird-grid-000.png" and images.read_png_text(sheet)[outputs.SHEET_KEY] == "grid"
    with Image.open(sheet) as im:
        assert im.size == (2 * (8 + 4) + 4, 8 + 14 + 4 + 4)  # each tile labelled with its index and score
    preview = tmp_path / "preview.png"
    images.save_png(Image.new("RGB", (4, 4)), preview, {outputs.SHEET_KEY: "preview"})
    with pytest.raises(DataError, match="its pictures are a data source's"):
        outputs.read_provenance(preview)
    with pytest.raises(DataError, match="contact sheet"):
        outputs.read_provenance(sheet)


def test_provenance_records_what_drew_an_image_and_leaves_out_what_did_not():
    meta = outputs.provenance(_g(0.4321, 2), 5, 4, SamplingConfig(regional=2.0), "w")
    assert "jacobi" not in meta and "regional" not in meta  # plain decoding; no regions drawn
    assert (meta["clip_score"], meta["clip_rank"]) == ("0.432100", "2")
    assert json.loads(meta["t2i"])["clip_score"] == "0.432100"
    assert outputs.provenance(_g(), 5, 4, SamplingConfig(jacobi=3), "w")["jacobi"] == "3"
    plain = SimpleNamespace(negative=None, regions=(), sampling=SamplingConfig())
    assert outputs.made_from(plain) == {} and outputs.made_from(plain, precision="bf16") == {"precision": "bf16"}
    regional = SimpleNamespace(negative="night", regions=(("a red bird", "left"),),
                               sampling=SamplingConfig(regional=2.0))
    assert outputs.made_from(regional) == {"negative": "night", "regional": "2.0",
                                           "regions": json.dumps([["a red bird", "left"]])}
    meta = outputs.provenance(_g(), 5, 4, SamplingConfig(), "w", made_from=outputs.made_from(regional))
    assert json.loads(meta["t2i"])["negative"] == "night"  # --from reads it from the t2i chunk
    assert outputs.sheet_label(3, 0.4449) == "#3 (0.445)" and outputs.sheet_label(3, None) == "#3"
    assert outputs._stem_without_hash("a" * 47 + " bird") == "a" * 47  # (cut at 48, no dash left at the end)


def test_recorded_settings_refuse_what_t2i_never_writes(tmp_path):
    rec = outputs.recorded_settings(_png(tmp_path, "ok", n="256", index="255"))
    assert rec.n == 256 and rec.sampling.jacobi == 0  # the largest --n; plain decoding (no jacobi recorded)
    for i, change in enumerate([{"n": "257", "index": "0"}, {"seed": str(2 ** 63)}, {"seed": " 5"},
                                {"later_setting": "1"}, {"redraws": "0"}, {"redraws": "99"},
                                {"image_mode": "vary", "strength": "0.5"},
                                {"image_mode": "vary", "image_sha256": "ab", "strength": "0.5", "keep_top": "0.5"},
                                {"image_mode": "vary", "image_sha256": "ab", "strength": "1.5"}, {"device": "tpu"},
                                {"temperature": " 1.0"}]):
        with pytest.raises(DataError):
            outputs.recorded_settings(_png(tmp_path, f"bad{i}", **change))


def test_a_mask_cell_is_redrawn_by_a_pixel_lighter_than_127_and_transparent_pixels_are_black(tmp_path):
    a = np.zeros((8, 8), np.uint8)
    a[0, 0], a[0, 7], a[7, 7] = 127, 128, 255
    Image.fromarray(a).save(tmp_path / "m.png")
    cells = images.load_mask_cells(tmp_path / "m.png", 4)
    assert cells.tolist() == [[False, False, False, True], [False] * 4, [False] * 4, [False, False, False, True]]
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., :3] = 255  # white everywhere, but opaque only in the bottom row
    rgba[7, :, 3] = 255
    Image.fromarray(rgba).save(tmp_path / "layer.png")
    assert images.load_mask_cells(tmp_path / "layer.png", 4).tolist() == [[False] * 4] * 3 + [[True] * 4]


def test_a_mask_smaller_than_the_grid_gives_every_cell_a_pixel_and_a_wide_one_is_read_at_its_centre(tmp_path):
    a = np.zeros((2, 2), np.uint8)
    a[1, 1] = 255
    Image.fromarray(a).save(tmp_path / "small.png")
    cells = images.load_mask_cells(tmp_path / "small.png", 4)
    assert cells.tolist() == [[False] * 4] * 2 + [[False, False, True, True]] * 2
    wide = np.zeros((4, 12), np.uint8)
    wide[:, 4] = 255  # the centre square's first column; and light pixels left of it, outside
    wide[:, 0] = 255
    Image.fromarray(wide).save(tmp_path / "wide.png")
    assert images.load_mask_cells(tmp_path / "wide.png", 2).tolist() == [[True, False], [True, False]]
    assert not images.mask_light_outside(tmp_path / "wide.png")  # light inside too: read
    wide[:, 4] = 0
    Image.fromarray(wide).save(tmp_path / "outside.png")
    assert images.mask_light_outside(tmp_path / "outside.png")


@pytest.mark.parametrize("orientation", [5, 6, 7, 8])
def test_image_size_is_turned_for_every_quarter_turn_orientation(tmp_path, orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.new("RGB", (30, 20)).save(tmp_path / "o.jpg", exif=exif)
    assert images.image_size(tmp_path / "o.jpg") == (20, 30)


def test_image_from_tensor_rounds_to_the_nearest_level_and_clamps():
    x = torch.tensor([-0.5, 254.6 / 255, 1.5]).view(3, 1, 1)
    assert list(images.image_from_tensor(x).getpixel((0, 0))) == [0, 255, 255]
    assert list(images.image_from_tensor(torch.full((3, 1, 1), 100.6 / 255)).getpixel((0, 0))) == [101] * 3


def test_a_sheet_of_fewer_images_than_columns_is_as_wide_as_its_images():
    sheet = images.contact_sheet([Image.new("RGB", (10, 10))] * 2, columns=4)
    assert sheet.size == (2 * 14 + 4, 14 + 4)
    labelled = images.contact_sheet([Image.new("RGB", (10, 10))] * 5, ["a"] * 5, columns=4, label_height=6)
    assert labelled.size == (4 * 14 + 4, 2 * (10 + 6 + 4) + 4)


def test_drawable_drops_a_mark_no_letter_composes_with_and_escape_keeps_newlines_and_tabs():
    assert images.drawable("q\u0301 caf\u00e9") == "q cafe"
    assert images._escape("a\nb\tc\x00") == "a\nb\tc\\x00"


def test_from_an_older_t2is_unmarked_grid_is_refused_as_a_contact_sheet(tmp_path):
    g = _g()
    meta = outputs.provenance(g, 5, 2, SamplingConfig(), "0" * 16)
    grid = outputs.write_image(g, tmp_path, meta, stem="a-red-bird-grid")  # as an older t2i named its grids
    assert outputs.SHEET_KEY not in images.read_png_text(grid)
    with pytest.raises(DataError, match="is a contact sheet; pass --from one of the images it shows"):
        outputs.read_provenance(grid)


def test_png_text_keeps_lone_surrogates_and_long_keys_readable(tmp_path):
    images.save_png(Image.new("RGB", (2, 2)), tmp_path / "t.png", {"k" * 100: "x", "path": "a\udc80b\ud800"})
    text = images.read_png_text(tmp_path / "t.png")
    assert text == {"k" * 79: "x", "path": "a\\udc80b\\ud800"}


def test_a_float_picture_without_a_finite_value_reads_as_black_and_a_fitting_label_is_not_cut():
    nan = Image.fromarray(np.full((4, 4), np.nan, np.float32), mode="F")
    assert np.asarray(images.to_rgb(nan)).max() == 0
    from PIL import ImageDraw, ImageFont

    draw, font = ImageDraw.Draw(Image.new("RGB", (64, 16))), ImageFont.load_default()
    width = draw.textlength("a red bird", font=font)
    assert images._fit(draw, font, "a red bird", width) == "a red bird"
    assert images._fit(draw, font, "a red bird", width - 1).endswith("...")
    assert images._fit(draw, font, "a red bird", draw.textlength("a red ...", font=font)) == "a red..."


def test_an_attention_panel_dims_what_the_map_does_not_weigh_but_leaves_it_visible():
    strip = images.attention_strip(torch.ones(3, 8, 8), [("bird", torch.tensor([[1.0, 0.0], [0.0, 0.0]]))], side=8)
    panel = np.asarray(strip)[4:12, 16:24]  # the second tile (4 px margins)
    assert panel.max() == 255 and 30 <= panel.min() <= 45  # 15% of white where the map is 0


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_a_large_jpeg_read_reduced_is_turned_as_its_exif_says(tmp_path, orientation):
    from PIL import ImageOps

    a = np.zeros((800, 1200, 3), np.uint8)
    a[:400, :600] = (255, 0, 0)  # a red quarter at the top left, as stored
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(a).save(tmp_path / "big.jpg", exif=exif, quality=95)
    got = np.asarray(images.load_rgb(tmp_path / "big.jpg", 32)).astype(int)  # decoded at a quarter or less
    with Image.open(tmp_path / "big.jpg") as im:
        want = np.asarray(images.square(ImageOps.exif_transpose(im).convert("RGB"), 32)).astype(int)
    assert np.abs(got - want).mean() < 4
