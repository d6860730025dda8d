"""Sampling: the filters on hand-computed cases, guidance, validation, and the decode loop (cache == no cache)."""

from __future__ import annotations

import math
import re

import pytest
import torch

from t2i_cli.errors import UsageError
from t2i_cli.models.transformer import Transformer, TransformerConfig
from t2i_cli.sampling import (
    Regions,
    SamplingConfig,
    draw_codes,
    generate_codes,
    guide,
    region_mask,
    sample_next,
    top_k_filter,
    top_p_filter,
)

NEG = float("-inf")
CFG = TransformerConfig(text_vocab=20, text_len=5, image_vocab=16, grid=3, n_layer=2, n_head=2, n_embd=32)


def kept(logits: torch.Tensor) -> list[int]:
    """Indices of a single row that were not set to -inf."""
    return [i for i, v in enumerate(logits.reshape(-1).tolist()) if v != NEG]


# ---- top-k ---------------------------------------------------------------------------------------------

def test_top_k_hand_computed():
    logits = torch.tensor([[1.0, 3.0, 2.0, 0.0]])
    out = top_k_filter(logits, 2)
    assert kept(out) == [1, 2]
    assert out[0, 1] == 3.0 and out[0, 2] == 2.0  # kept values untouched
    assert kept(top_k_filter(logits, 1)) == [1]
    assert kept(top_k_filter(logits, 3)) == [0, 1, 2]


def test_top_k_off_and_rows_independent():
    logits = torch.tensor([[1.0, 3.0, 2.0, 0.0], [5.0, -1.0, 0.5, 4.0]])
    assert torch.equal(top_k_filter(logits, 0), logits)
    assert torch.equal(top_k_filter(logits, 4), logits)
    out = top_k_filter(logits, 2)
    assert kept(out[0]) == [1, 2] and kept(out[1]) == [0, 3]


# ---- top-p: "keep the smallest set of most likely codes whose mass reaches p" ---------------------------

PROBS = [0.5, 0.3, 0.15, 0.05]


@pytest.mark.parametrize("p, expected", [
    (0.5, [0]),            # 0.5 alone reaches 0.5
    (0.7, [0, 1]),         # 0.5 < 0.7 <= 0.8
    (0.8, [0, 1]),         # 0.5 + 0.3 = 0.8 reaches 0.8 exactly: the third is not needed
    (0.81, [0, 1, 2]),     # 0.8 < 0.81 <= 0.95
    (0.95, [0, 1, 2]),
    (0.96, [0, 1, 2, 3]),
    (1.0, [0, 1, 2, 3]),
])
def test_top_p_hand_computed(p, expected):
    logits = torch.tensor([PROBS]).log()
    out = top_p_filter(logits, p)
    assert kept(out) == expected
    assert torch.equal(out[0, expected], logits[0, expected])


def test_top_p_with_exact_binary_probabilities():
    logits = torch.tensor([[0.5, 0.25, 0.125, 0.125]]).log()
    assert kept(top_p_filter(logits, 0.75)) == [0, 1]
    assert kept(top_p_filter(logits, 0.76)) == [0, 1, 2]


def test_top_p_works_on_unsorted_rows_independently():
    # the same distribution permuted, and a second row of a different shape
    logits = torch.tensor([[0.05, 0.5, 0.15, 0.3], [0.1, 0.1, 0.1, 0.7]]).log()
    out = top_p_filter(logits, 0.7)
    assert kept(out[0]) == [1, 3]
    assert kept(out[1]) == [3]


@pytest.mark.parametrize("p", [1e-9, 0.01])
def test_top_token_always_kept(p):
    logits = torch.tensor([[0.0, 0.1, 5.0, 0.2], [2.0, 1.999, 0.0, 0.0]])
    out = top_p_filter(logits, p)
    assert kept(out[0]) == [2] and kept(out[1]) == [0]


# ---- temperature and sampling ----------------------------------------------------------------------------

def test_temperature_divides_logits_before_sampling():
    logits = torch.randn(64, 10, generator=torch.Generator().manual_seed(0))
    for t in (0.5, 2.0):
        a = sample_next(logits, SamplingConfig(temperature=t), torch.Generator().manual_seed(1))
        b = sample_next(logits / t, SamplingConfig(temperature=1.0), torch.Generator().manual_seed(1))
        assert torch.equal(a, b)


def test_low_temperature_concentrates_on_the_top_code():
    logits = torch.tensor([[1.0, 2.0, 0.5, 1.5]]).expand(2000, -1)
    cold = sample_next(logits, SamplingConfig(temperature=0.01), torch.Generator().manual_seed(0))
    assert bool((cold == 1).all())
    shares = {}
    for t in (0.5, 4.0):
        draws = sample_next(logits, SamplingConfig(temperature=t), torch.Generator().manual_seed(0))
        shares[t] = float((draws == 1).float().mean())
        expected = float(torch.softmax(logits[0] / t, dim=0)[1])  # 0.644 at 0.5, 0.299 at 4.0
        assert abs(shares[t] - expected) < 0.04, (t, shares[t], expected)
    assert shares[0.5] > shares[4.0] + 0.25


def test_rows_sharing_a_generator_draw_as_one_batch_of_their_own():
    """A list of generators may repeat one for consecutive rows (a prompt's candidates): those rows draw in
    one call, exactly as the same rows would from that generator alone."""
    logits = torch.randn(5, 12, generator=torch.Generator().manual_seed(0)) * 3
    g, h = torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)
    got = sample_next(logits, SamplingConfig(), [g, g, g, h, h])
    want_g = sample_next(logits[:3], SamplingConfig(), torch.Generator().manual_seed(1))
    want_h = sample_next(logits[3:], SamplingConfig(), torch.Generator().manual_seed(2))
    assert torch.equal(got, torch.cat([want_g, want_h]))


def test_sample_next_respects_top_k_and_top_p():
    logits = torch.tensor([[1.0, 3.0, 2.0, 0.0]]).expand(500, -1)
    draws = sample_next(logits, SamplingConfig(top_k=2), torch.Generator().manual_seed(0))
    assert set(draws.tolist()) == {1, 2}
    draws = sample_next(torch.tensor([PROBS]).log().expand(500, -1), SamplingConfig(top_p=0.7),
                        torch.Generator().manual_seed(0))
    assert set(draws.tolist()) == {0, 1}


def test_guide_formula():
    cond = torch.tensor([[1.0, -2.0, 0.5]])
    uncond = torch.tensor([[0.0, 1.0, 0.5]])
    assert torch.equal(guide(cond, uncond, 0.0), uncond)
    assert torch.equal(guide(cond, uncond, 1.0), cond)
    torch.testing.assert_close(guide(cond, uncond, 3.0), torch.tensor([[3.0, -8.0, 0.5]]))


# ---- validation ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, flag", [
    ({"temperature": 0.0}, "^temperature"),  # (from Python, the keyword; the command line names --temperature)
    ({"temperature": -1.0}, "^temperature"),
    ({"temperature": math.nan}, "^temperature"),
    ({"temperature": math.inf}, "^temperature"),
    ({"top_k": -1}, "^top_k"),
    ({"top_k": 17}, "^top_k"),
    ({"top_p": 0.0}, "^top_p"),
    ({"top_p": 1.5}, "^top_p"),
    ({"top_p": math.nan}, "^top_p"),
    ({"guidance": -1.0}, "^guidance"),
    ({"guidance": math.nan}, "^guidance"),
])
def test_validate_rejects(kwargs, flag):
    with pytest.raises(UsageError, match=flag):
        SamplingConfig(**kwargs).check_vocab(16)


@pytest.mark.parametrize("kwargs", [{}, {"top_k": 16}, {"top_k": 0}, {"top_p": 1.0}, {"top_p": 0.01},
                                    {"guidance": 0.0}, {"guidance": 7.5}, {"temperature": 0.01}])
def test_validate_accepts(kwargs):
    SamplingConfig(**kwargs).check_vocab(16)


def test_config_without_vocab_accepts_any_nonnegative_top_k():
    SamplingConfig(top_k=10_000)  # bounded by the codebook only once a model is known (check_vocab)
    with pytest.raises(UsageError):
        SamplingConfig(top_k=-1)


# ---- the decode loop ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def model() -> Transformer:
    torch.manual_seed(0)
    m = Transformer(CFG).eval()
    with torch.no_grad():  # spread the logits so different texts and seeds really differ
        for p in m.parameters():
            if p.ndim > 1:
                p.mul_(10)
    return m


def prompts(b: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    text = torch.randint(0, 15, (b, CFG.text_len), generator=torch.Generator().manual_seed(4))
    empty = torch.arange(15, 15 + CFG.text_len)  # per-position padding ids
    return text, empty


def codes(model, cfg: SamplingConfig, seed: int = 0, b: int = 3) -> torch.Tensor:
    text, empty = prompts(b)
    return generate_codes(model, text, empty, cfg, torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("guidance", [1.0, 0.0, 3.0])
@pytest.mark.parametrize("extra", [{}, {"top_k": 5, "top_p": 0.9, "temperature": 0.8}])
def test_cache_and_no_cache_give_identical_codes(model, guidance, extra):
    cached = codes(model, SamplingConfig(guidance=guidance, use_cache=True, **extra), seed=11)
    full = codes(model, SamplingConfig(guidance=guidance, use_cache=False, **extra), seed=11)
    assert cached.shape == (3, CFG.n_image) and cached.dtype == torch.long
    assert int(cached.min()) >= 0 and int(cached.max()) < CFG.image_vocab
    assert torch.equal(cached, full)


def test_same_seed_same_codes_different_seed_different_codes(model):
    cfg = SamplingConfig()
    a, b, c = codes(model, cfg, seed=1), codes(model, cfg, seed=1), codes(model, cfg, seed=2)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert not torch.equal(a[0], a[1])  # rows of a batch draw their own codes


def greedy(model: Transformer, text: torch.Tensor, empty: torch.Tensor, guidance: float,
           start: float | None = None) -> torch.Tensor:
    """An independent greedy loop: full recompute each step, argmax of the (guided) logits; with start, the
    scale of step i is start + (guidance - start) * i / (N - 1)."""
    out = torch.empty(text.shape[0], 0, dtype=torch.long)
    uncond_text = empty.expand(text.shape[0], -1)
    n = CFG.n_image
    with torch.no_grad():
        for i in range(n):
            scale = guidance if start is None else start + (guidance - start) * i / (n - 1)
            logits = model.image_logits(text, out)
            if guidance != 1.0 or start is not None:
                uncond = model.image_logits(uncond_text, out)
                logits = uncond + scale * (logits - uncond)
            out = torch.cat([out, logits.argmax(dim=-1, keepdim=True)], dim=1)
    return out


@pytest.mark.parametrize("guidance", [1.0, 2.5])
@pytest.mark.parametrize("use_cache", [True, False])
def test_top_k_1_is_greedy(model, guidance, use_cache):
    text, empty = prompts()
    expected = greedy(model, text, empty, guidance)
    for seed in (0, 1):
        got = generate_codes(model, text, empty, SamplingConfig(top_k=1, guidance=guidance, use_cache=use_cache),
                             torch.Generator().manual_seed(seed))
        assert torch.equal(got, expected)


@pytest.mark.parametrize("start,end", [(6.0, 2.0), (1.0, 3.0), (3.0, 1.0)])
def test_a_guidance_schedule_moves_linearly_from_start_to_end(model, start, end):
    text, empty = prompts()
    expected = greedy(model, text, empty, end, start)
    got = generate_codes(model, text, empty, SamplingConfig(top_k=1, guidance=end, guidance_start=start),
                         torch.Generator().manual_seed(0))
    assert torch.equal(got, expected)
    assert not torch.equal(got, greedy(model, text, empty, end))  # the schedule is not the constant end scale


def test_a_schedule_that_starts_where_it_ends_is_the_constant_scale(model):
    for seed in (0, 3):
        assert torch.equal(codes(model, SamplingConfig(guidance=2.0, guidance_start=2.0), seed),
                           codes(model, SamplingConfig(guidance=2.0), seed))
    with pytest.raises(UsageError, match="^guidance_start"):
        SamplingConfig(guidance_start=-1.0)


def test_guidance_changes_the_codes(model):
    a = codes(model, SamplingConfig(top_k=1, guidance=1.0))
    b = codes(model, SamplingConfig(top_k=1, guidance=4.0))
    assert not torch.equal(a, b)


def test_progress_reports_every_step(model):
    seen: list[int] = []
    text, empty = prompts(1)
    generate_codes(model, text, empty, SamplingConfig(), torch.Generator().manual_seed(0), seen.append)
    assert seen == list(range(1, CFG.n_image + 1))


# ---- speculative Jacobi decoding ------------------------------------------------------------------------

def jacobi_codes(model, cfg: SamplingConfig, b: int, seed: int = 0) -> tuple[torch.Tensor, int]:
    text, empty = prompts(1)
    stats: dict = {}
    got, _ = draw_codes(model, text.expand(b, -1), empty, cfg, torch.Generator().manual_seed(seed), stats=stats)
    return got, stats["passes"]


def position_histograms(codes: torch.Tensor) -> torch.Tensor:
    """(N, V): how often each code is drawn at each position, as a share of the rows."""
    return torch.stack([torch.bincount(codes[:, i], minlength=CFG.image_vocab) for i in range(codes.shape[1])]
                       ).float() / codes.shape[0]


@pytest.mark.parametrize("narrow", [None, "all", "some"])
@pytest.mark.parametrize("extra", [{"guidance": 1.0}, {"guidance": 3.0, "top_k": 6, "temperature": 0.9}])
def test_jacobi_draws_what_plain_decoding_draws(model, extra, narrow, monkeypatch):
    """The speculative test keeps the model's distribution: over 3,000 draws of one prompt, Jacobi decoding's
    histograms of each position's code and of each pair of neighbouring codes (what a wrong prefix would
    break) are as far from plain decoding's as a second plain run is (sampling noise), and it copies the
    code to its left as often as plain decoding does (a decoder that kept every copied draft would not).
    So too when images narrow their windows to one code after two passes (every image, or the slow ones)."""
    from t2i_cli import sampling

    if narrow:  # after 2 passes: every image narrows (rate 100), or those with under 5 codes final (rate 2.5)
        monkeypatch.setattr(sampling, "JACOBI_CHECK", 2)
        monkeypatch.setattr(sampling, "JACOBI_MIN_RATE", 100.0 if narrow == "all" else 2.5)
    rows = 3000
    plain, plain_passes = jacobi_codes(model, SamplingConfig(**extra), rows, seed=0)
    again, _ = jacobi_codes(model, SamplingConfig(**extra), rows, seed=2)
    stats: dict = {}
    text, empty = prompts(1)
    fast, _ = draw_codes(model, text.expand(rows, -1), empty, SamplingConfig(jacobi=4, **extra),
                         torch.Generator().manual_seed(1), stats=stats)
    fast_passes = stats["passes"]
    assert plain_passes == CFG.n_image and fast_passes <= CFG.n_image  # a batch moves at its slowest row
    if narrow == "all":
        assert stats["narrowed"] > 0.9 * rows  # all but those done within two passes
    elif narrow == "some":
        assert 0.05 * rows < stats["narrowed"] < 0.95 * rows
        assert stats["narrowed"] == sum(pace < 5 for pace in stats["paces"])  # codes final after 2 passes
    else:
        assert stats["narrowed"] == 0
    assert int(fast.min()) >= 0 and int(fast.max()) < CFG.image_vocab

    def tv(a: torch.Tensor, b: torch.Tensor, bins: int) -> float:
        return 0.5 * float((torch.bincount(a, minlength=bins) - torch.bincount(b, minlength=bins)).abs().sum()) / rows

    pair = lambda c, i: c[:, i] * CFG.image_vocab + c[:, i + 1]  # noqa: E731
    for i in range(CFG.n_image - 1):
        noise = tv(pair(plain, i), pair(again, i), CFG.image_vocab ** 2)
        assert tv(pair(plain, i), pair(fast, i), CFG.image_vocab ** 2) < noise + 0.04, i
        noise = tv(plain[:, i], again[:, i], CFG.image_vocab)
        assert tv(plain[:, i], fast[:, i], CFG.image_vocab) < noise + 0.03, i
    copies = lambda c: float((c[:, 1:] == c[:, :-1]).float().mean())  # noqa: E731
    assert abs(copies(fast) - copies(plain)) < abs(copies(again) - copies(plain)) + 0.02


def test_a_wider_window_takes_fewer_passes_and_the_same_seed_the_same_codes(model):
    cfg = SamplingConfig(top_k=2, guidance=2.0)  # peaked: drafts are often right
    passes = [sum(jacobi_codes(model, SamplingConfig(top_k=2, guidance=2.0, jacobi=w), 1, seed=s)[1]
                  for s in range(16)) for w in (1, 4, 8)]  # each image moves at its own pace: passes per image
    assert 16 * CFG.n_image > passes[0] > passes[1] >= passes[2] >= 16
    a, b, c = (jacobi_codes(model, SamplingConfig(jacobi=4), 4, seed=s)[0] for s in (5, 5, 6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    greedy_plain = jacobi_codes(model, SamplingConfig(top_k=1, guidance=2.0), 2)[0]
    for w in (1, 3, 8, CFG.n_image, 64):  # greedy drafts are either the argmax or refused: Jacobi greedy is plain
        # greedy (a window as wide as the grid, or wider, reads every code after the last final one)
        assert torch.equal(jacobi_codes(model, SamplingConfig(top_k=1, guidance=2.0, jacobi=w), 2)[0], greedy_plain)
    assert cfg.jacobi == 0
    alone = [jacobi_codes(model, SamplingConfig(jacobi=4), 1, seed=s)[1] for s in range(20)]
    assert sum(alone) < 20 * CFG.n_image  # sampling at temperature 1, one row: fewer passes than codes


@pytest.mark.parametrize("narrow", [False, True])
def test_jacobi_images_of_a_batch_draw_what_each_draws_alone(model, narrow, monkeypatch):
    """Each image's window moves at its own pace: decoded together (4 requests of 2 images, each request's
    pair on one generator, as t2i eval batches them; with regions, four rows per image; images that finish
    leave the batch while others still draw), every request's codes are those it draws alone, and the batch
    takes as many passes as its slowest request. So too when some images narrow their windows to one code
    (those with under 3 codes final after 2 passes): a narrowed image draws the same codes whether the
    pass is as wide as another image's window or one code wide."""
    from t2i_cli import sampling

    if narrow:
        monkeypatch.setattr(sampling, "JACOBI_CHECK", 2)
        monkeypatch.setattr(sampling, "JACOBI_MIN_RATE", 1.5)
    b = 8
    text, empty, regions = region_setup(b)
    cfg = SamplingConfig(jacobi=3, regional=2.0)
    gens = [torch.Generator().manual_seed(20 + i) for i in range(b // 2)]
    stats: dict = {}
    together, _ = draw_codes(model, text, empty, cfg, [g for g in gens for _ in range(2)], regions=regions,
                             stats=stats)
    passes, narrowed = [], []
    for i in range(b // 2):
        pair, alone_stats = slice(2 * i, 2 * i + 2), {}
        g = torch.Generator().manual_seed(20 + i)
        alone, _ = draw_codes(model, text[pair], empty, cfg, [g, g], stats=alone_stats,
                              regions=Regions(regions.ids[:, pair], regions.masks[:, pair]))
        assert torch.equal(together[pair], alone), i
        passes.append(alone_stats["passes"])
        narrowed.append(alone_stats["narrowed"])
    assert len(set(passes)) > 1 and stats["passes"] == max(passes)  # they finish at different passes
    assert stats["narrowed"] == sum(narrowed)
    if narrow:  # some requests narrowed both images, some neither: passes of both widths were compared
        assert 0 in narrowed and 2 in narrowed, narrowed


def test_draws_follow_the_weights_and_never_take_a_code_of_weight_zero(monkeypatch):
    """sampling._draw, the inverse of the cumulative sum at a uniform draw: frequencies follow unnormalised
    weights, and a draw at either end of [0, 1] (rounding) still lands on a code of nonzero weight."""
    from t2i_cli import sampling

    weights = torch.tensor([0.0, 2.0, 0.0, 1.0, 1.0, 0.0])
    got = sampling._draw(weights.expand(20000, -1), torch.Generator().manual_seed(0))
    share = torch.bincount(got, minlength=6).float() / 20000
    assert share[[0, 2, 5]].sum() == 0 and torch.allclose(share, weights / 4, atol=0.015)
    for u in (0.0, 1.0):  # the bottom (past the leading zero) and the total itself (past the last nonzero)
        monkeypatch.setattr(sampling, "_uniform", lambda g, shape, device, u=u: torch.full(shape, u))
        assert sampling._draw(weights[None], torch.Generator()).tolist() == [1 if u == 0.0 else 4]


def test_jacobi_reports_progress_and_is_refused_with_an_image_prompt(model):
    text, empty = prompts(1)
    seen: list[int] = []
    generate_codes(model, text, empty, SamplingConfig(jacobi=3), torch.Generator().manual_seed(0), seen.append)
    assert seen == sorted(seen) and seen[-1] == CFG.n_image and len(seen) < CFG.n_image
    keep = torch.zeros(1, CFG.n_image, dtype=torch.bool)
    keep[:, :3] = True
    with pytest.raises(UsageError, match="^jacobi"):
        draw_codes(model, text, empty, SamplingConfig(jacobi=3), torch.Generator(),
                   known=torch.zeros(1, CFG.n_image, dtype=torch.long), keep=keep)
    with pytest.raises(UsageError, match="^jacobi"):
        SamplingConfig(jacobi=-1)
    with pytest.raises(UsageError, match="^jacobi"):
        SamplingConfig(jacobi=65)


# ---- regional guidance -------------------------------------------------------------------------------------

def test_region_masks_cover_their_half_of_the_raster_grid():
    left, right, top, bottom = (region_mask(p, 4).view(4, 4) for p in ("left", "right", "top", "bottom"))
    assert torch.equal(left[:, :2], torch.ones(4, 2)) and torch.equal(left[:, 2:], torch.zeros(4, 2))
    assert torch.equal(left + right, torch.ones(4, 4)) and torch.equal(top + bottom, torch.ones(4, 4))
    assert torch.equal(top, left.T) and torch.equal(bottom, right.T)
    assert region_mask("left", 3).view(3, 3)[:, 0].tolist() == [1, 1, 1] and region_mask("left", 3).sum() == 3
    with pytest.raises(ValueError, match="left, right, top, bottom"):
        region_mask("centre", 4)


def region_setup(b: int = 3) -> tuple[torch.Tensor, torch.Tensor, Regions]:
    """Prompts, the empty prompt, and two regions per row: other prompts, on the left and right halves."""
    text, empty = prompts(b)
    subs = torch.randint(0, 15, (2, b, CFG.text_len), generator=torch.Generator().manual_seed(9))
    masks = torch.stack([region_mask("left", CFG.grid), region_mask("right", CFG.grid)])[:, None].expand(2, b, -1)
    return text, empty, Regions(subs, masks.clone())


def greedy_regional(model: Transformer, text, empty, regions: Regions, guidance: float, weight: float):
    """An independent greedy loop: full recompute of every prompt each step, argmax of
    u + guidance (c - u) + weight sum_r mask_r (s_r - u)."""
    out = torch.empty(text.shape[0], 0, dtype=torch.long)
    with torch.no_grad():
        for i in range(CFG.n_image):
            c = model.image_logits(text, out)
            u = model.image_logits(empty.expand(text.shape[0], -1), out)
            logits = u + guidance * (c - u)
            for r in range(regions.ids.shape[0]):
                logits = logits + weight * regions.masks[r, :, i:i + 1] * (model.image_logits(regions.ids[r], out) - u)
            out = torch.cat([out, logits.argmax(dim=-1, keepdim=True)], dim=1)
    return out


@pytest.mark.parametrize("extra", [{}, {"use_cache": False}, {"jacobi": 3}])
def test_regional_guidance_adds_each_regions_prompt_in_its_own_half(model, extra):
    text, empty, regions = region_setup()
    expected = greedy_regional(model, text, empty, regions, 2.0, 4.0)
    cfg = SamplingConfig(top_k=1, guidance=2.0, regional=4.0, **extra)
    got, _ = draw_codes(model, text, empty, cfg, torch.Generator().manual_seed(0), regions=regions)
    assert torch.equal(got, expected)
    plain = generate_codes(model, text, empty, SamplingConfig(top_k=1, guidance=2.0), torch.Generator())
    assert not torch.equal(got, plain)  # the regions changed the picture
    right = Regions(regions.ids[1:], regions.masks[1:])  # ... and a region speaks only in its own half:
    got, _ = draw_codes(model, text, empty, cfg, torch.Generator().manual_seed(0), regions=right)
    assert torch.equal(got, greedy_regional(model, text, empty, right, 2.0, 4.0))
    assert torch.equal(got[:, 0], plain[:, 0])  # code 0 is in the left column, outside the right half


def test_regional_guidance_at_weight_zero_or_with_empty_masks_decodes_as_before(model):
    """Sampling (not greedy), same seed: a weight of 0, no regions, or regions whose masks are all zero draw
    exactly the codes of plain guidance."""
    text, empty, regions = region_setup()
    plain = generate_codes(model, text, empty, SamplingConfig(), torch.Generator().manual_seed(3))
    for cfg, reg in ((SamplingConfig(regional=0.0), regions), (SamplingConfig(regional=2.0), None),
                     (SamplingConfig(regional=2.0), Regions(regions.ids, torch.zeros_like(regions.masks)))):
        got, _ = draw_codes(model, text, empty, cfg, torch.Generator().manual_seed(3), regions=reg)
        assert torch.equal(got, plain)
    # a region that is the prompt itself over the whole grid is guidance raised by the weight
    whole = Regions(text[None], torch.ones(1, 3, CFG.n_image))
    raised = generate_codes(model, text, empty, SamplingConfig(top_k=1, guidance=3.5), torch.Generator())
    got, _ = draw_codes(model, text, empty, SamplingConfig(top_k=1, guidance=2.0, regional=1.5),
                        torch.Generator(), regions=whole)
    assert torch.equal(got, raised)


def test_regions_must_match_the_batch(model):
    text, empty, regions = region_setup(3)
    with pytest.raises(ValueError, match="regions for"):
        draw_codes(model, text[:2], empty, SamplingConfig(regional=1.0), torch.Generator(), regions=regions)
    with pytest.raises(ValueError, match="ids"):
        Regions(regions.ids[0], regions.masks)
    assert Regions(regions.ids, regions.masks).expand(2).ids.shape == (2, 6, CFG.text_len)
    with pytest.raises(UsageError, match="^regional"):
        SamplingConfig(regional=-1.0)


# ---- mutation-audit pins: the filter chain, the Jacobi schedule and drafts -------------------------------

def test_a_top_p_that_rounds_to_zero_in_float32_still_keeps_the_top_code():
    """p = 1e-50 is 0 in float32, so every code's mass before it "reaches" p: the top code must stay anyway
    (else every logit is -inf and sampling has nothing to draw)."""
    logits = torch.tensor([[0.3, 2.0, -1.0, 1.5], [4.0, 0.0, 3.9, -2.0]])
    out = top_p_filter(logits, 1e-50)
    assert kept(out[0]) == [1] and kept(out[1]) == [0]
    assert out[0, 1] == 2.0 and out[1, 0] == 4.0  # the kept logit is untouched (finite)
    draws = sample_next(logits.repeat(100, 1), SamplingConfig(top_p=1e-50), torch.Generator().manual_seed(0))
    assert draws.tolist() == [1, 0] * 100  # the argmax of each row, every time


def test_top_p_applies_to_what_top_k_kept():
    """Top-k first, then top-p over the renormalised survivors: with probabilities .4 .3 .2 .1, top-k 2 leaves
    .57 and .43, and top-p 0.5 then keeps the first alone. (Top-p first would keep .4 and .3, both.)"""
    logits = torch.tensor([[0.4, 0.3, 0.2, 0.1]]).log().expand(500, -1)
    draws = sample_next(logits, SamplingConfig(top_k=2, top_p=0.5), torch.Generator().manual_seed(0))
    assert draws.tolist() == [0] * 500
    both = sample_next(logits, SamplingConfig(top_k=2, top_p=0.6), torch.Generator().manual_seed(0))
    assert set(both.tolist()) == {0, 1}  # .57 < 0.6: the second survivor is needed, and drawn


@pytest.mark.parametrize("start", [0.0, 8.0])
def test_jacobi_follows_the_guidance_schedule_code_by_code(model, start):
    """Greedy (top-k 1) with a guidance schedule: each code of a Jacobi window is guided at its own scale,
    so Jacobi decoding draws exactly the codes plain decoding draws (a scale one code off would not)."""
    text, empty = prompts()
    cfg = SamplingConfig(top_k=1, guidance=3.0, guidance_start=start)
    plain = generate_codes(model, text, empty, cfg, torch.Generator().manual_seed(0))
    assert torch.equal(plain, greedy(model, text, empty, 3.0, start))
    for w in (1, 4):
        got = generate_codes(model, text, empty, SamplingConfig(top_k=1, guidance=3.0, guidance_start=start,
                                                                jacobi=w), torch.Generator().manual_seed(0))
        assert torch.equal(got, plain), w


def column_model(grid: int) -> Transformer:
    """A transformer whose next code is the column it reads plus one, modulo grid (and code 0 after the text),
    whatever the codes before: its greedy image has every row 0, 1, .., grid - 1, so each code equals the one
    above it and never the one to its left. The blocks are zeroed (the residual stream is the embedding), a
    column's embedding is a spike at channel c, and the image head reads channel c as code c + 1."""
    cfg = TransformerConfig(text_vocab=8, text_len=3, image_vocab=grid + 2, grid=grid, n_layer=1, n_head=2,
                            n_embd=16)
    m = Transformer(cfg).eval()
    with torch.no_grad():
        for p in [*m.blocks.parameters(), m.text_emb.weight, m.text_pos.weight, m.row_emb.weight, m.col_emb.weight,
                  m.image_emb.weight, m.image_head.weight]:
            p.zero_()
        m.text_pos.weight[-1, grid - 1] = 10.0  # after the text: read as column grid - 1, so code 0 comes next
        for c in range(grid):
            m.col_emb.weight[c, c] = 10.0
            m.image_head.weight[(c + 1) % grid, c] = 1.0
    return m


def test_jacobi_drafts_each_code_from_the_one_above_it(monkeypatch):
    """A draft is the code above it (the left one only on the first row). On an image whose rows repeat, once
    the first row is final every draft is right (the window, narrower than a row, drafts from final codes;
    this model's iterates are right whatever they read), so each pass makes a whole window final: at most
    1 + (grid - 1) + ceil((N - grid) / (W + 1)) passes. Drafting from the left, where no code repeats, takes
    more (35 here, against 23)."""
    from t2i_cli import sampling

    monkeypatch.setattr(sampling, "JACOBI_MIN_RATE", 0.0)  # no narrowing: this is about the drafts alone
    grid, w = 10, 4
    m = column_model(grid)
    text, empty = torch.zeros(1, 3, dtype=torch.long), torch.zeros(3, dtype=torch.long)
    plain = generate_codes(m, text, empty, SamplingConfig(top_k=1, guidance=1.0), torch.Generator())
    assert plain.tolist() == [list(range(grid)) * grid]
    stats: dict = {}
    got, _ = draw_codes(m, text, empty, SamplingConfig(top_k=1, guidance=1.0, jacobi=w), torch.Generator(),
                        stats=stats)
    assert torch.equal(got, plain)
    assert stats["passes"] <= grid + math.ceil((grid * grid - grid) / (w + 1)), stats  # 28


def test_guidance_stop_drops_the_unconditional_rows_after_its_share_of_the_codes(model, monkeypatch):
    """--guidance-stop F: guided for the first ceil(F x N) codes, then the prompt rows alone (here half the
    batch); the same codes with or without the cache; F = 1 is plain guidance exactly."""
    import math

    plain = codes(model, SamplingConfig(), seed=5)
    assert torch.equal(codes(model, SamplingConfig(guidance_stop=1.0), seed=5), plain)
    rows, real = [], model.image_logits
    monkeypatch.setattr(model, "image_logits", lambda text, c, cache: (rows.append(text.shape[0]),
                                                                        real(text, c, cache))[1])
    stopped = codes(model, SamplingConfig(guidance_stop=0.5), seed=5)
    half = math.ceil(0.5 * CFG.n_image)
    assert rows == [6] * half + [3] * (CFG.n_image - half)  # 3 prompts: 6 rows guided, then 3
    monkeypatch.undo()
    assert stopped.shape == plain.shape and int(stopped.max()) < CFG.image_vocab
    assert torch.equal(stopped, codes(model, SamplingConfig(guidance_stop=0.5, use_cache=False), seed=5))
    assert not torch.equal(stopped, plain)
    # the guided part is plain guidance's: the first codes agree until the first unguided draw differs
    assert torch.equal(stopped[:, :half], plain[:, :half])


@pytest.mark.parametrize("bad, says", [({"guidance_stop": 0.0}, "guidance_stop must be in (0, 1]"),
                                       ({"guidance_stop": 1.5}, "guidance_stop must be in (0, 1]"),
                                       ({"guidance_stop": 0.5, "jacobi": 4}, "does not combine with jacobi")])
def test_guidance_stop_is_checked(bad, says):
    with pytest.raises(UsageError, match=re.escape(says)):
        SamplingConfig(**bad)


def test_jacobi_window_distribution_applies_temperature_top_k_and_top_p():
    """Each code of a Jacobi window is drawn from the distribution sample_next would use: probabilities
    0.5 / 0.3 / 0.1 / 0.06 / 0.04 with top-p 0.75 keep the first two (0.625 / 0.375); with top-k 1 the first
    alone; temperature 2 flattens them. (Dropping top-p from the window path drew from all five, and no test
    noticed.)"""
    from t2i_cli.sampling import _window_probs

    probs = torch.tensor([0.5, 0.3, 0.1, 0.06, 0.04])
    logits = probs.log().view(1, 1, 5).expand(1, 2, 5)  # one row, a window of two codes
    pos, scales = torch.tensor([[0, 1]]), torch.ones(4)

    def window(**kw) -> torch.Tensor:
        return _window_probs(logits, 1, SamplingConfig(guidance=1.0, **kw), pos, scales)[0]

    for row in window(top_p=0.75):
        assert torch.allclose(row, torch.tensor([0.625, 0.375, 0, 0, 0]), atol=1e-6), row
    for row in window(top_k=1):
        assert torch.allclose(row, torch.tensor([1.0, 0, 0, 0, 0])), row
    flat = probs.sqrt() / probs.sqrt().sum()
    for row in window(temperature=2.0):
        assert torch.allclose(row, flat, atol=1e-6), row


BF16_CFG = TransformerConfig(text_vocab=40, text_len=6, image_vocab=24, grid=4, n_layer=2, n_head=2, n_embd=32)


def test_plain_decoding_of_a_bf16_model_guides_in_float32(monkeypatch):
    """Classifier-free guidance sums scaled logits: in bf16 that rounds by up to 0.25 (and ties codes top-k then
    keeps), so plain decoding, like Jacobi windows and regional guidance, guides the bf16 logits in float32."""
    import t2i_cli.sampling as sampling

    torch.manual_seed(0)  # (no oneDNN packing needed: this runs on every CPU, emulated bf16 where it must)
    plain = Transformer(BF16_CFG).eval()
    with torch.no_grad():
        for p in plain.parameters():
            if p.ndim > 1:
                p.mul_(5)
    plain = plain.to(torch.bfloat16)
    text = torch.randint(0, 34, (2, BF16_CFG.text_len), generator=torch.Generator().manual_seed(1))
    seen, drawn = [], []
    model_logits = plain.image_logits
    monkeypatch.setattr(plain, "image_logits", lambda *a: seen.append(model_logits(*a)) or seen[-1])
    sample = sampling.sample_next
    monkeypatch.setattr(sampling, "sample_next", lambda logits, *a: drawn.append(logits) or sample(logits, *a))
    cfg = SamplingConfig(guidance=3.0)
    generate_codes(plain, text, torch.arange(34, 40), cfg, torch.Generator().manual_seed(2))
    assert len(drawn) == len(seen) == BF16_CFG.n_image and seen[0].dtype == torch.bfloat16
    for i, (logits, guided) in enumerate(zip(seen, drawn, strict=True)):  # rows 0-1 the prompts, 2-3 the unconditional
        want = logits[2:].float() + 3.0 * (logits[:2].float() - logits[2:].float())
        assert guided.dtype == torch.float32 and torch.equal(guided, want), i


def test_a_temperature_of_0_is_refused_pointing_to_greedy_drawing():
    """--temperature 0 (greedy, to many) is out of range; the refusal names what draws the most likely code."""
    with pytest.raises(UsageError, match=r"^temperature must be between 0.001 and 100, got 0.0; try 1.0; for the "
                                         r"most likely code at every step, use top_k=1$"):
        SamplingConfig(temperature=0.0)
    with pytest.raises(UsageError, match=r"got 500.0; try 1.0$"):  # (too hot: greedy is no hint there)
        SamplingConfig(temperature=500.0)
