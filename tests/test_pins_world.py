"""Pins of the procedural world (world/*): behaviour a mutation audit found that no test pinned down (each test
fails on a mutant the audit made of the line it names)."""

from __future__ import annotations

import importlib
import random

import numpy as np
import pytest
import torch

from t2i_cli.world import judge as jd
from t2i_cli.world import segment as seg
from t2i_cli.world.captions import parse_prompt
from t2i_cli.world.negatives import hard_negative
from t2i_cli.world.spec import POSITIONS, SIZES, SPATIAL_RELATIONS, ObjectSpec, SceneSpec
from t2i_cli.world.tasks import task_prompts, wrong_spec

render = importlib.import_module("t2i_cli.world.render")  # the package exports a function of that name

RED_BIRD_AND_BLUE_FISH = SceneSpec((ObjectSpec("bird", "red", "medium"), ObjectSpec("fish", "blue", "medium")),
                                   relation="and")


def test_a_and_b_is_drawn_in_either_order():
    """"a red bird and a blue fish" would always put the bird on the left, a bias the model would learn."""
    left = sum(a.x < b.x for a, b in (render._layout(RED_BIRD_AND_BLUE_FISH, random.Random(f"layout:{s}"))
                                      for s in range(200)))
    assert 60 <= left <= 140, left


@pytest.mark.parametrize("size", ["small", "medium"])
def test_an_object_in_a_side_third_stays_on_the_canvas(size):
    """An object "on the left" that fits its third would be drawn partly off the canvas."""
    half = SIZES[size] / 2
    for s in range(200):
        rng = random.Random(s)
        assert render._in_third(0, half, rng) - half >= 0
        assert render._in_third(2, half, rng) + half <= 1


@pytest.mark.parametrize("spec,seed", [
    (SceneSpec((ObjectSpec("car", "white", "medium"),), 3), 1386),
    (SceneSpec((ObjectSpec("bird", "orange", "medium"),), 4), 1495),
    (SceneSpec((ObjectSpec("car", "purple", "medium"), ObjectSpec("bird", "yellow", "medium")), 1, "and", "night"),
     1448),
])
def test_the_masks_of_a_small_render_are_pairwise_disjoint(spec, seed):
    """At 16 px neighbouring objects share pixels; each pixel must belong to one object (the later, drawn on top),
    or the judge's per-object checks count it twice."""
    _, masks = render.render_with_masks(spec, seed, 16)
    assert len(masks) >= 2 and all(m.any() for m in masks)
    for i in range(len(masks)):
        for j in range(i + 1, len(masks)):
            assert not (masks[i] & masks[j]).any(), (i, j)


def test_one_with_a_plural_noun_is_not_understood():
    """"one red birds" would parse as one bird (or "red birds" as some), a prompt that says neither."""
    assert parse_prompt("one red birds") is None
    assert parse_prompt("red birds") is None
    assert parse_prompt("two red birds").count == 2


def test_little_means_small():
    """"a little red bird" would not be understood, or drawn at another size."""
    assert parse_prompt("a little red bird").objects[0].size == "small"


def test_dropping_an_object_keeps_either_one():
    """A hard negative that always dropped the second object would teach a CLIP to read only the first noun."""
    kept = {hard_negative(RED_BIRD_AND_BLUE_FISH, "drop_object", random.Random(s)).objects[0].kind for s in range(40)}
    assert kept == {"bird", "fish"}


def det(kind: str, colour: str, x: float, y: float = 0.5) -> jd.Detection:
    return jd.Detection(seg.Region(colour, np.zeros((1, 1), bool), 1, (x, y), (0, 0, 1, 1)), kind, 0.9)


def test_a_right_a_and_b_image_has_no_failure():
    """A correct "a and b" picture (no position check) would be counted as a wrong relation."""
    assert jd.failure_kind([det("bird", "red", 0.2), det("fish", "blue", 0.8)], RED_BIRD_AND_BLUE_FISH) is None
    assert jd.failure_kind([det("bird", "red", 0.8), det("fish", "blue", 0.2)], RED_BIRD_AND_BLUE_FISH) is None


def test_torch_threads_restores_the_thread_count():
    """The judge's one-thread block would leave eval, and everything after it, on one thread."""
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        with jd.torch_threads(1):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with pytest.raises(RuntimeError), jd.torch_threads(1):
            raise RuntimeError
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_the_counting_task_asks_for_2_3_and_4():
    """The counting task would never ask for four objects."""
    assert {spec.count for _, spec in task_prompts("counting", 6, 0)} == {2, 3, 4}


def test_the_position_task_covers_every_position_and_relation():
    """Half of the named positions (every odd one) would never be asked for."""
    specs = [spec for _, spec in task_prompts("position", 2 * len(POSITIONS), 0)]
    assert {s.objects[0].position for s in specs if s.relation is None} == set(POSITIONS)
    assert {s.relation for s in specs if s.relation is not None} == set(SPATIAL_RELATIONS)


def test_a_wrong_colour_is_another_colour():
    """The judge's self-check could be handed the right colour as the "wrong" one and fail a correct judge."""
    for seed in range(20):
        for _, spec in task_prompts("colours", 10, seed):
            assert wrong_spec("colours", spec, random.Random(seed)).objects[0].colour != spec.objects[0].colour
