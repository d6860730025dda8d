"""The eval judge and tasks: segmentation on known renders, the judge's yes and no, prompt sets, the eval loop."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import pairs, run
from t2i_cli import weights, world
from t2i_cli.errors import UsageError, WeightsError
from t2i_cli.models.classifier import JudgeConfig, ObjectClassifier
from t2i_cli.models.dvae import DVAE, DVAEConfig
from t2i_cli.pipeline import Generated, Request, TextToImage
from t2i_cli.sampling import SamplingConfig
from t2i_cli.world import ObjectSpec, SceneSpec, tasks
from t2i_cli.world import evaluate as ev
from t2i_cli.world import judge as jd
from t2i_cli.world import judge_training as jt
from t2i_cli.world import segment as seg

SMALL = JudgeConfig(crop=24, widths=(16, 32, 32))  # with is_robust=False, a clean-render judge in seconds


def one(kind: str, colour: str, size: str = "medium", position: str | None = None, **kw) -> SceneSpec:
    return SceneSpec((ObjectSpec(kind, colour, size, position),), **kw)


def regions_of(spec: SceneSpec, side: int = 64, seed: int = 1) -> tuple[list[seg.Region], list[np.ndarray]]:
    img, masks = world.render_with_masks(spec, seed, side)
    return seg.segment(np.asarray(img), spec.background), masks


@pytest.fixture(scope="module")
def judge() -> jd.Judge:
    """A small judge for clean renders, trained once for this module (about 8 s on two busy cores)."""
    return jd.Judge(jt.train_judge(steps=300, seed=0, side=64, n_images=400, batch=32, cfg=SMALL, is_robust=False))


# ----------------------------------------------------------------------------- segmentation
def test_components_counts_blobs_and_keeps_diagonals_together():
    mask = np.zeros((8, 8), bool)
    mask[0, 0] = mask[1, 1] = True  # diagonal neighbours: one 8-connected blob
    mask[5:7, 5:8] = True
    mask[0, 6] = True
    lab = seg.components(mask)
    assert len(np.unique(lab[mask])) == 3 and (lab[~mask] == -1).all() and lab[0, 0] == lab[1, 1]


@pytest.mark.parametrize("side", [64, 128])
def test_segment_finds_colour_and_centroid_of_each_object(side):
    cases = [one("circle", "red", "small", "left"), one("bird", "black", background="sky"),
             one("house", "white", background="night"),
             one("tree", "pink", "small", "bottom right", background="grass"),
             SceneSpec((ObjectSpec("car", "yellow", "small"), ObjectSpec("cat", "purple", "medium")), relation="above")]
    for spec in cases:
        regions, masks = regions_of(spec, side)
        assert len(regions) == len(masks), spec
        for obj, mask in zip(spec.objects, masks, strict=True):
            r = max(regions, key=lambda r: (r.mask & mask).sum())
            ys, xs = np.nonzero(mask)
            assert r.colour == obj.colour, (spec, r.colour)
            assert math.dist(r.centroid, ((xs.mean() + .5) / side, (ys.mean() + .5) / side)) < 0.03
            x0, y0, x1, y1 = r.bbox
            assert r.area == r.mask.sum() and r.mask[y0:y1, x0:x1].sum() == r.area


def test_segment_counts_copies_and_ignores_bare_backgrounds():
    for count, colour, bg in ((2, "black", None), (3, "blue", "grass"), (4, "white", "red"), (4, "gray", None)):
        regions, _ = regions_of(one("star", colour, count=count, background=bg))
        assert [r.colour for r in regions] == [colour] * count
    for bg in (None, "grass", "night", "yellow"):
        bare = np.asarray(world.render(one("circle", "red", background=bg), 0, 64))
        plate = seg.background_plate(bare, bg).round().astype(np.uint8)
        assert seg.segment(plate, bg) == []


# ----------------------------------------------------------------------------- the checks (no classifier)
def detection(kind: str, colour: str, x: float, y: float) -> jd.Detection:
    mask = np.zeros((8, 8), bool)
    return jd.Detection(seg.Region(colour, mask, 10, (x, y), (0, 0, 1, 1)), kind, 0.9)


def test_checks_follow_the_spec():
    red_cat_left = detection("cat", "red", 0.2, 0.5)
    assert jd.judge_checks([red_cat_left], one("cat", "red", "small", "left")) == {
        "object": True, "colour": True, "position": True}
    assert jd.judge_checks([red_cat_left], one("cat", "blue", "small", "top"))["colour"] is False
    assert jd.judge_checks([red_cat_left], one("cat", "red", "small", "top"))["position"] is False
    two = [detection("bird", "red", 0.2, 0.3), detection("bird", "red", 0.7, 0.3)]
    assert jd.judge_checks(two, one("bird", "red", count=2))["count"]
    assert not jd.judge_checks(two, one("bird", "red", count=3))["count"]
    assert not jd.judge_checks(two[:1] + [detection("bird", "blue", .7, .3)], one("bird", "red", count=2))["count"]
    pair = [detection("car", "blue", 0.5, 0.2), detection("tree", "green", 0.5, 0.8)]
    spec = SceneSpec((ObjectSpec("car", "blue", "medium"), ObjectSpec("tree", "green", "medium")), relation="above")
    assert jd.judge_checks(pair, spec) == {"object": True, "both": True, "attribution": True, "position": True}
    swapped = SceneSpec((ObjectSpec("car", "green", "medium"), ObjectSpec("tree", "blue", "medium")), relation="below")
    assert jd.judge_checks(pair, swapped) == {"object": True, "both": True, "attribution": False, "position": False}
    assert jd.judge_checks(pair[:1], spec)["both"] is False


# ----------------------------------------------------------------------------- prompt sets
def test_task_prompts_are_deterministic_grammatical_and_hold_out_only_heldout():
    for task in tasks.TASKS:
        prompts = tasks.task_prompts(task, 40, seed=3)
        assert prompts == tasks.task_prompts(task, 40, seed=3) and prompts != tasks.task_prompts(task, 40, seed=4)
        for prompt, spec in prompts:
            assert world.parse_prompt(prompt) == spec, prompt
            assert not (spec.background is None and any(o.colour == "white" for o in spec.objects))
            bg_pairs = {(spec.background, o.kind) for o in spec.objects}
            held = (pairs(spec) | bg_pairs) & world.HELDOUT_PAIRS
            assert bool(held) == (task == "heldout"), (task, prompt)
    with pytest.raises(ValueError, match="unknown task"):
        tasks.task_prompts("nope", 1, 0)


def test_wrong_specs_differ_in_what_the_task_judges():
    rng = random.Random(0)
    for task in tasks.TASKS:
        for _, spec in tasks.task_prompts(task, 12, seed=0):
            assert tasks.wrong_spec(task, spec, rng) != spec


# ----------------------------------------------------------------------------- the trained judge
def test_judge_accepts_real_renders_and_rejects_wrong_ones(judge):
    result = ev.validate_judge(judge, n_per_task=6, seed=5, side=64)
    assert set(result) == set(tasks.TASKS)
    for task, r in result.items():
        assert r["agreement"] >= 5 / 6 and r["rejects_wrong"] >= 5 / 6, (task, r)


def test_a_judge_that_always_says_yes_fails_validation():
    class YesJudge(jd.Judge):
        def check(self, image, spec):
            return {c: True for checks in tasks.TASK_CHECKS.values() for c in checks}

    result = ev.validate_judge(YesJudge(ObjectClassifier(SMALL)), n_per_task=3, seed=0, side=64)
    assert all(r["agreement"] == 1.0 and r["rejects_wrong"] == 0.0 for r in result.values())


def test_judge_saves_loads_and_trains_deterministically(tmp_path: Path, judge):
    a = jt.train_judge(steps=3, seed=7, side=64, n_images=6, cfg=SMALL)
    b = jt.train_judge(steps=3, seed=7, side=64, n_images=6, cfg=SMALL)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))
    weights.save_model(judge.classifier, tmp_path / "judge.safetensors", "judge")
    loaded = jd.load_judge(tmp_path / "judge.safetensors")
    assert loaded.classifier.cfg == SMALL
    crops = torch.rand(5, 3, SMALL.crop, SMALL.crop)
    with torch.no_grad():
        assert torch.allclose(loaded.classifier(crops), judge.classifier(crops))


def test_a_judge_of_other_object_kinds_is_refused_at_load(tmp_path: Path):
    torch.manual_seed(0)
    path = weights.save_model(ObjectClassifier(JudgeConfig(crop=16, widths=(4,), n_classes=len(world.OBJECTS) + 1)),
                              tmp_path / "judge.safetensors", "judge")
    with pytest.raises(WeightsError, match=f"tells {len(world.OBJECTS) + 1} object kinds apart, the world has "
                                           f"{len(world.OBJECTS)}; it is not a judge of this world"):
        jd.load_judge(path)


@pytest.mark.parametrize("change, named", [({"widths": []}, "widths takes a non-empty list of integers"),
                                           ({"crop": 16.0}, "crop is 16.0, not an integer")])
def test_eval_with_a_judge_whose_config_is_malformed_is_one_line(tiny_weights: Path, tmp_path: Path, change, named):
    """`widths: []` was an internal error (IndexError) and a float crop one only once the judge ran."""
    torch.manual_seed(0)
    model = ObjectClassifier(JudgeConfig(crop=16, widths=(4, 8)))
    meta = {"format": weights.FORMAT, "kind": "judge", "config": json.dumps({**model.cfg.__dict__, **change})}
    bad = weights.save_tensors(tmp_path / "judge.safetensors", model.state_dict(), meta)
    r = run("eval", "--weights", tiny_weights, "--judge", bad, "--n", 1, "--candidates", 1, "-q")
    assert r.exit_code == 1, (r.stdout, r.stderr, r.exception)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and named in lines[0], r.stderr
    assert "internal error" not in r.stderr and "Traceback" not in r.stderr


# ----------------------------------------------------------------------------- the eval loop
class RenderingPipe:
    """Stands in for TextToImage: 'generates' the world's own render of the prompt (a perfect model)."""

    def __call__(self, prompt, n=1, seed=0, sampling=SamplingConfig()):
        spec = world.parse_prompt(prompt)
        images = [world.render(spec, seed + i, 64) for i in range(n)]
        return [Generated(torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1).float() / 255, prompt, i)
                for i, im in enumerate(images)]

    def rerank(self, results, keep):
        return results[:keep]

    def request(self, prompt, sampling=SamplingConfig(), warn=True):
        return Request(prompt, None, sampling)

    def draw_each(self, requests, seeds, n=1, batch=16):
        return [g for r, s in zip(requests, seeds, strict=True) for g in self(r.prompt, n, s, r.sampling)]


def test_an_accuracy_comes_with_its_95_percent_wilson_interval():
    """At the small n an eval is often run at an accuracy says little alone: 2 of 2 is 34-100%."""
    low, high = ev.wilson(2, 2)
    assert round(low, 3) == 0.342 and high == 1.0
    low, high = ev.wilson(0, 2)
    assert low == 0.0 and round(high, 3) == 0.658
    low, high = ev.wilson(36, 50)  # 72%: about 58-83%
    assert (round(low, 3), round(high, 3)) == (0.583, 0.825)
    assert ev.wilson(0, 0) == [0.0, 1.0]
    widths = [ev.wilson(n // 2, n)[1] - ev.wilson(n // 2, n)[0] for n in (4, 16, 64, 256)]
    assert widths == sorted(widths, reverse=True)  # narrower with more prompts


def test_eval_loop_scores_a_perfect_model_high(judge):
    seen = []
    result = ev.evaluate_model(RenderingPipe(), judge, n_per_task=4, seed=2, candidates=2,
                               progress=lambda task, done, total: seen.append((task, done, total)))
    assert set(result["tasks"]) == set(tasks.TASKS)
    assert {(t, 4, 4) for t in tasks.TASKS} <= set(seen)  # progress reaches every task's end
    for task, r in result["tasks"].items():
        assert r["n"] == 4 and r["accuracy"] >= 0.75, (task, r)
        assert set(r["checks"]) == set(tasks.TASK_CHECKS[task])
        assert r["ci95"] == ev.wilson(r["passed"], 4) and r["ci95"][0] < r["accuracy"] <= r["ci95"][1]
    assert result["overall"] >= 0.85
    one = ev.evaluate_model(RenderingPipe(), judge, n_per_task=4, seed=2, candidates=1)
    assert one["overall"] >= 0.85 and all(r["n"] == 4 for r in one["tasks"].values())


def test_eval_batches_prompts_and_gives_the_images_of_one_prompt_at_a_time(tiny_weights: Path, judge):
    """Scoring 1 candidate decodes many prompts together; each draws what it would alone (its own seed)."""
    pipe = TextToImage.from_folder(tiny_weights, device="cpu")
    prompts = [p for p, _ in tasks.task_prompts("two_objects", 5, 0)]
    seeds = [tasks.image_seed(0, "two_objects", i) for i in range(5)]
    together = pipe.draw_each([pipe.request(p) for p in prompts], seeds)
    for g, p, s in zip(together, prompts, seeds, strict=True):
        alone = pipe(p, n=1, seed=s)[0]
        assert torch.allclose(g.image, alone.image, atol=1e-6) and g.prompt == p


def test_candidates_of_many_prompts_decoded_together_are_those_each_prompt_draws_alone(tiny_weights: Path):
    """With candidates, eval decodes several prompts' candidates in one batch; prompt i's n candidates share
    its generator as they would in `pipe(prompt, n)`, so they are the same images, in the same order."""
    pipe = TextToImage.from_folder(tiny_weights, device="cpu")
    prompts = [p for p, _ in tasks.task_prompts("colour_attribution", 5, 1)]
    seeds = [tasks.image_seed(1, "colour_attribution", i) for i in range(5)]
    together = pipe.draw_each([pipe.request(p) for p in prompts], seeds, n=3)  # 15 rows: two decodes (16 // 3 = 5)
    assert len(together) == 15
    for i, (p, s) in enumerate(zip(prompts, seeds, strict=True)):
        alone = pipe(p, n=3, seed=s)
        for j, g in enumerate(together[3 * i:3 * i + 3]):
            assert torch.allclose(g.image, alone[j].image, atol=1e-6) and (g.prompt, g.index) == (p, j)
    assert not torch.allclose(together[0].image, together[1].image)  # candidates differ from each other
    jacobi = SamplingConfig(jacobi=3)  # each image's Jacobi window moves at its own pace, on its request's stream
    together = pipe.draw_each([pipe.request(p, jacobi) for p in prompts], seeds, n=2)  # 10 rows in one decode
    for i, (p, s) in enumerate(zip(prompts, seeds, strict=True)):
        alone = pipe(p, n=2, seed=s, sampling=jacobi)
        for g, a in zip(together[2 * i:2 * i + 2], alone, strict=True):
            assert torch.allclose(g.image, a.image, atol=1e-6) and torch.equal(g.codes, a.codes)
    with pytest.raises(UsageError):
        pipe.draw_each([pipe.request(prompts[0])], [0], n=17)
    with pytest.raises(UsageError, match="one sampling setting for every request"):  # one decode, one setting
        pipe.draw_each([pipe.request(prompts[0]), pipe.request(prompts[1], SamplingConfig(temperature=0.5))], [0, 1])


def test_eval_decodes_32_images_at_a_time_where_their_state_is_small_and_draws_the_same(tiny_weights: Path,
                                                                                         monkeypatch):
    from t2i_cli.pipeline import MAX_EVAL_BATCH

    pipe = TextToImage.from_folder(tiny_weights, device="cpu")
    assert ev.decode_batch(pipe) == ev.LARGE_EVAL_BATCH == 32 <= MAX_EVAL_BATCH  # draw_each takes it
    monkeypatch.setattr(ev, "DECODE_MEMORY", 4 * 32 * pipe.bundle.transformer.cfg.activation_bytes() - 1)
    assert ev.decode_batch(pipe) == ev.EVAL_BATCH == 16  # a model whose 32 images would not fit: 16, as before
    prompts = [p for p, _ in tasks.task_prompts("two_objects", 10, 0)]
    seeds = [tasks.image_seed(0, "two_objects", i) for i in range(10)]
    requests = [pipe.request(p) for p in prompts]
    by16 = pipe.draw_each(requests, seeds, n=3)  # 5 prompts a decode
    by32 = pipe.draw_each(requests, seeds, n=3, batch=32)  # 10 prompts a decode
    assert len(by16) == len(by32) == 30
    assert all(torch.equal(a.codes, b.codes) and (a.prompt, a.index) == (b.prompt, b.index)
               for a, b in zip(by16, by32, strict=True))
    with pytest.raises(UsageError, match="1..32 images at a time"):
        pipe.draw_each(requests[:1], seeds[:1], batch=33)


def test_eval_runs_end_to_end_on_a_tiny_random_model(tiny_weights: Path, judge):
    pipe = TextToImage.from_folder(tiny_weights, device="cpu")
    result = ev.evaluate_model(pipe, judge, n_per_task=1, seed=0, candidates=2)
    assert set(result["tasks"]) == set(tasks.TASKS) and result["candidates"] == 2
    for r in result["tasks"].values():
        assert 0.0 <= r["accuracy"] <= 1.0 and r["n"] == 1 and r["passed"] in (0, 1)
    assert 0.0 <= result["overall"] <= 1.0 and result["seconds"] > 0
    metrics = ev.dvae_metrics(pipe.bundle.dvae, n=6, seed=0)
    assert math.isfinite(metrics["psnr"]) and 1 <= metrics["codes_used"] <= pipe.bundle.dvae.cfg.n_codes
    assert 1.0 <= metrics["perplexity"] <= metrics["codes_used"] + 1e-3


def test_dvae_metrics_are_deterministic_and_see_the_dvae_size():
    torch.manual_seed(0)
    dvae = DVAE(DVAEConfig(image_side=32, downsample=4, n_codes=16, n_hid=8, code_dim=8)).eval()
    a, b = ev.dvae_metrics(dvae, n=5, seed=1), ev.dvae_metrics(dvae, n=5, seed=1)
    assert a == b and a["n"] == 5


# ----------------------------------------------------------------------------- failure breakdown
def det(kind: str, colour: str, x: float = 0.5, y: float = 0.5) -> jd.Detection:
    region = seg.Region(colour, np.zeros((1, 1), bool), 1, (x, y), (0, 0, 1, 1))
    return jd.Detection(region, kind, 0.9)


RED_BIRD_ABOVE_BLUE_FISH = SceneSpec((ObjectSpec("bird", "red", "medium"), ObjectSpec("fish", "blue", "medium")),
                                     relation="above")


@pytest.mark.parametrize("found,kind", [
    ([det("bird", "red", y=0.2), det("fish", "blue", y=0.8)], None),
    ([det("bird", "red", y=0.2), det("fish", "blue", y=0.8), det("cat", "green")], None),  # extras pass
    ([det("cat", "green")], "both missing"),
    ([], "both missing"),
    ([det("bird", "red"), det("car", "blue")], "wrong class"),  # a blue thing, but not a fish
    ([det("bird", "red"), det("car", "green")], "object missing"),
    ([det("bird", "blue", y=0.2), det("fish", "red", y=0.8)], "colours swapped"),
    ([det("bird", "red", y=0.2), det("fish", "green", y=0.8)], "wrong colour"),
    ([det("bird", "blue", y=0.2), det("fish", "blue", y=0.8)], "wrong colour"),  # one colour for both
    ([det("bird", "red", y=0.8), det("fish", "blue", y=0.2)], "wrong relation"),
])
def test_failure_kind(found, kind):
    assert jd.failure_kind(found, RED_BIRD_ABOVE_BLUE_FISH) == kind
    checks = jd.judge_checks(found, RED_BIRD_ABOVE_BLUE_FISH)
    assert (kind is None) == (checks["attribution"] and checks["position"])  # a failure exactly when it fails
    with pytest.raises(ValueError):
        jd.failure_kind(found, SceneSpec((ObjectSpec("bird", "red", "medium"),)))


def test_across_seeds_means_each_task_and_refuses_runs_that_are_not_one_evaluation():
    def run(seed: int, acc: dict, **over) -> dict:
        base = {"seed": seed, "weights": "w", "n_per_task": 2, "candidates": 1, "precision": "fp32",
                "sampling": {"guidance": 3.0}, "seconds": 1.5,
                "tasks": {t: {"accuracy": a} for t, a in acc.items()}, "overall": sum(acc.values()) / len(acc)}
        return base | over

    from t2i_cli.world import evaluate as ev

    a, b = run(0, {"colours": 1.0, "counting": 0.5}), run(3, {"colours": 0.5, "counting": 0.0})
    got = ev.across_seeds([a, b])
    assert got["seeds"] == [0, 3] and got["runs"] == [a, b] and got["seconds"] == 3.0
    assert got["tasks"] == {"colours": {"accuracy": 0.75, "by_seed": [1.0, 0.5]},
                            "counting": {"accuracy": 0.25, "by_seed": [0.5, 0.0]}}
    assert got["overall"] == pytest.approx(0.5)
    for bad in ([a], [a, run(0, {"colours": 1.0, "counting": 1.0})], [a, run(1, {"colours": 1.0}, weights="v")],
                [a, run(1, {"colours": 1.0}, candidates=4)], [a, run(1, {"colours": 1.0})]):
        with pytest.raises(ValueError):
            ev.across_seeds(bad)


@pytest.mark.parametrize("candidates", [1, 2, ev.EVAL_BATCH + 1])
def test_eval_draws_with_the_sampling_settings_it_is_given(tiny_weights: Path, judge, monkeypatch, candidates):
    """Every decode of `t2i eval` uses the given sampling (its --json records them): with one candidate the
    prompts were requested with the defaults, and no test noticed."""
    from t2i_cli import pipeline

    seen, real = [], pipeline.draw_codes
    monkeypatch.setattr(pipeline, "draw_codes", lambda model, text, uncond, cfg, *a, **k: (
        seen.append(cfg), real(model, text, uncond, cfg, *a, **k))[1])
    pipe = TextToImage.from_folder(tiny_weights, device="cpu")
    sampling = SamplingConfig(temperature=0.7, top_k=5, guidance=2.0)
    ev.evaluate_model(pipe, judge, n_per_task=2, seed=0, sampling=sampling, candidates=candidates,
                      tasks=("single_object",))
    assert seen and all(cfg == sampling for cfg in seen), seen


def test_a_prompt_without_regions_decoded_beside_one_with_them_draws_what_it_draws_alone(tmp_path: Path):
    """In one decode, a prompt of two objects adds region rows, and a prompt without regions fills its rows
    with its own prompt under a zero mask: it draws what it draws alone (a mask of ones guided it by its own
    prompt everywhere, so an eval's scores depended on which prompts shared its batch)."""
    from conftest import TINY_CAPTIONS, build_tiny_folder

    folder = build_tiny_folder(tmp_path / "w", captions=TINY_CAPTIONS + ["a pink tree on the right and a cat"])
    pipe = TextToImage.from_folder(folder, device="cpu")
    strong = SamplingConfig(regional=50.0)  # (a random model's prompts barely differ: weigh the regions up)
    two, one = pipe.request("a red bird and a blue fish", strong), pipe.request("a red bird", strong)
    assert two.regions and not one.regions
    together = pipe.draw_each([two, one], [3, 4])
    for g, request, seed in zip(together, (two, one), (3, 4), strict=True):
        alone = pipe.draw_each([request], [seed])[0]
        assert torch.equal(g.codes, alone.codes), request.prompt
