"""Pins of the s36 mutation audit of sampling.py (the filters, the decode loop, Jacobi decoding, regional guidance).
Each test fails under a small change of that code which the rest of the suite let through; they use tiny models
made here (or hand-built logits), fixed seeds, and run in seconds."""
from __future__ import annotations

import torch

from t2i_cli.models.transformer import Transformer, TransformerConfig
from t2i_cli.sampling import SamplingConfig, distribution, draw_codes, top_k_filter, top_p_filter

NEG = float("-inf")


def kept(row: torch.Tensor) -> list[int]:
    """Indices of one row that were not set to -inf."""
    return [i for i, v in enumerate(row.reshape(-1).tolist()) if v != NEG]


def column_model(grid: int) -> Transformer:
    """As tests/test_sampling.py's: greedy, its next code is the column it reads plus one (mod grid), so every row
    of its image is 0, 1, .., grid - 1 and its draws never depend on the codes before (a Jacobi iterate is always
    right). Built here so these pins stand alone."""
    cfg = TransformerConfig(text_vocab=8, text_len=3, image_vocab=grid + 2, grid=grid, n_layer=1, n_head=2,
                            n_embd=max(16, grid + 2))
    m = Transformer(cfg).eval()
    with torch.no_grad():
        for p in [*m.blocks.parameters(), m.text_emb.weight, m.text_pos.weight, m.row_emb.weight, m.col_emb.weight,
                  m.image_emb.weight, m.image_head.weight]:
            p.zero_()
        m.text_pos.weight[-1, grid - 1] = 10.0
        for c in range(grid):
            m.col_emb.weight[c, c] = 10.0
            m.image_head.weight[(c + 1) % grid, c] = 1.0
    return m


def column_jacobi(grid: int, w: int, **kw) -> tuple[torch.Tensor, dict]:
    m = column_model(grid)
    text, empty = torch.zeros(1, 3, dtype=torch.long), torch.zeros(3, dtype=torch.long)
    stats: dict = {}
    got, _ = draw_codes(m, text, empty, SamplingConfig(top_k=1, guidance=1.0, jacobi=w, **kw), torch.Generator(),
                        stats=stats)
    assert got.tolist() == [list(range(grid)) * grid]  # greedy Jacobi draws the greedy image whatever the pace
    return got, stats


# ---- the filters ---------------------------------------------------------------------------------------------

def test_top_k_keeps_every_code_tied_with_the_kth():
    """Top-k keeps the codes tied with the k-th largest (as its docstring and Hugging Face's top-k say), so a row
    may keep more than k: [2, 1, 1, 0] at k 2 keeps three codes. (Keeping exactly the k indices topk returns
    would drop one of the tied pair, chosen by the sort.)"""
    logits = torch.tensor([[2.0, 1.0, 1.0, 0.0], [0.5, 0.5, 0.5, 0.5], [3.0, 1.0, 2.0, 2.0]])
    out = top_k_filter(logits, 2)
    assert kept(out[0]) == [0, 1, 2] and kept(out[1]) == [0, 1, 2, 3] and kept(out[2]) == [0, 2, 3]
    assert torch.equal(out[1], logits[1])


def test_a_top_p_of_1_keeps_codes_below_float32_resolution():
    """top-p 1 keeps all (SamplingConfig: "1 keeps all"), also codes whose probability is below float32's
    resolution next to the top code: there the cumulative mass reaches 1.0 after the top code, and a filter run
    at p = 1 would drop every other code."""
    logits = torch.tensor([[0.0, -30.0, -25.0, -40.0]])
    assert float(torch.softmax(logits, -1).cumsum(-1)[0, 0]) == 1.0  # the premise: mass 1.0 after the top code
    assert torch.equal(top_p_filter(logits, 1.0), logits)
    probs = distribution(logits, SamplingConfig())
    assert bool((probs > 0).all())
    assert kept(top_p_filter(logits, 0.999)) == [0]  # any p below 1 keeps the top code alone here


# ---- Jacobi decoding ---------------------------------------------------------------------------------------

def test_jacobi_narrows_an_image_below_28_codes_in_its_first_16_passes():
    """The shipped constants: after JACOBI_CHECK = 16 window passes, an image with fewer than JACOBI_MIN_RATE x 16
    = 28 codes final narrows its window to one code. The column model at window 1 makes 28 codes final in
    those passes on an 11 x 11 grid (kept: 63 passes in all) and 27 on 14 x 14 (narrowed: 1 + 16 passes, then
    one per code left, 196 - 28 more)."""
    _, stats = column_jacobi(11, 1)
    assert stats == {"paces": [28], "narrowed": 0, "passes": 63}
    _, stats = column_jacobi(14, 1)
    assert stats == {"paces": [27], "narrowed": 1, "passes": 1 + 16 + 196 - 28}


def test_a_uniform_of_0_never_keeps_a_draft_the_model_gives_probability_0(monkeypatch):
    """The speculative test refuses a draft d when u q(d) >= p(d): a uniform of exactly 0 (torch.rand's [0, 1)
    holds it) must still refuse a draft of probability 0, which a strict > would keep. With every uniform 0,
    greedy Jacobi decoding of the column model (whose first-row drafts, the code to the left, are always
    wrong) still draws the greedy image."""
    from t2i_cli import sampling

    monkeypatch.setattr(sampling, "_uniform", lambda g, shape, device: torch.zeros(shape, device=device))
    for w in (1, 3):
        column_jacobi(6, w)


# ---- the decode loop: what runs in the batch, and what is scored -----------------------------------------------

TINY = TransformerConfig(text_vocab=20, text_len=5, image_vocab=16, grid=3, n_layer=2, n_head=2, n_embd=32)


def tiny_model() -> Transformer:
    torch.manual_seed(0)
    m = Transformer(TINY).eval()
    with torch.no_grad():  # spread the logits so different inputs really differ
        for p in m.parameters():
            if p.ndim > 1:
                p.mul_(10)
    return m


def prompts(b: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randint(0, 15, (b, 5), generator=torch.Generator().manual_seed(4)), torch.arange(15, 20)


def rows_per_step(model: Transformer, monkeypatch, cfg: SamplingConfig, **kw) -> list[int]:
    """The rows of every image_logits call of one plain decode of two prompts."""
    rows, real = [], model.image_logits
    monkeypatch.setattr(model, "image_logits", lambda text, c, cache=None: (rows.append(text.shape[0]),
                                                                             real(text, c, cache))[1])
    text, empty = prompts()
    draw_codes(model, text, empty, cfg, torch.Generator().manual_seed(0), **kw)
    monkeypatch.undo()
    return rows


def test_a_schedule_from_1_to_1_and_a_regional_weight_of_0_add_no_rows(monkeypatch):
    """guidance 1 with --guidance-start 1 is no guidance at all (SamplingConfig.guided is False): each step runs
    the prompts alone, and a --negative is refused as it is at plain --guidance 1. A regional weight of 0 turns
    regional guidance off: the region prompts do not join the batch (they would add nothing but cost)."""
    from t2i_cli.errors import UsageError
    from t2i_cli.pipeline import check_negative
    from t2i_cli.sampling import Regions, region_mask

    model, n = tiny_model(), TINY.n_image
    flat = SamplingConfig(guidance=1.0, guidance_start=1.0)
    assert not flat.guided and SamplingConfig(guidance=1.0, guidance_start=2.0).guided
    assert rows_per_step(model, monkeypatch, flat) == [2] * n
    try:
        check_negative("a blue bird", flat)
    except UsageError as e:
        assert "guidance=1 turns off" in str(e)  # (from Python: the keyword; the command line says --guidance 1)
    else:
        raise AssertionError("a negative prompt was accepted without guidance")
    masks = torch.stack([region_mask("left", 3), region_mask("right", 3)])[:, None].expand(2, 2, -1).clone()
    regions = Regions(torch.randint(0, 15, (2, 2, 5), generator=torch.Generator().manual_seed(9)), masks)
    assert rows_per_step(model, monkeypatch, SamplingConfig(regional=0.0), regions=regions) == [4] * n
    assert rows_per_step(model, monkeypatch, SamplingConfig(guidance=1.0, regional=0.0), regions=regions) == [2] * n
    assert rows_per_step(model, monkeypatch, SamplingConfig(regional=1.0), regions=regions) == [8] * n


def test_the_kept_codes_log_probability_is_at_temperature_1_whatever_the_temperature():
    """draw_codes scores the kept codes after a row's first draw under the guided distribution at temperature 1
    (its docstring), not under the sampling temperature or filters. With code 0 drawn greedily (top-k 1: the same
    code at any temperature) and the rest kept, the score is the same at temperature 0.5 as at 1, and equals a
    hand-summed log-softmax of the guided logits."""
    model, n = tiny_model(), TINY.n_image
    text, empty = prompts()
    known = torch.randint(0, 16, (2, n), generator=torch.Generator().manual_seed(5))
    keep = torch.ones(2, n, dtype=torch.bool)
    keep[:, 0] = False
    got = {}
    for t in (1.0, 0.5, 3.0):
        codes, got[t] = draw_codes(model, text, empty, SamplingConfig(top_k=1, temperature=t),
                                   torch.Generator().manual_seed(0), known=known, keep=keep)
    assert torch.allclose(got[0.5], got[1.0], atol=1e-5) and torch.allclose(got[3.0], got[1.0], atol=1e-5)
    want = torch.zeros(2)
    with torch.no_grad():
        for i in range(1, n):
            c, u = model.image_logits(text, codes[:, :i]), model.image_logits(empty.expand(2, -1), codes[:, :i])
            want += torch.log_softmax(u + 3.0 * (c - u), -1).gather(1, known[:, i:i + 1]).squeeze(1)
    assert torch.allclose(got[1.0], want, atol=1e-4), (got[1.0], want)


# ---- the settings' edges ---------------------------------------------------------------------------------------

def test_the_settings_accept_their_stated_bounds_and_a_one_code_schedule():
    """The messages say "between 0.001 and 100" and "between 0 and 100": both ends are valid settings. A guidance
    schedule over a single code (a 1 x 1 grid) is the end scale, not a division by zero."""
    for kw in ({"temperature": 1e-3}, {"temperature": 100.0}, {"guidance": 100.0}, {"guidance_start": 100.0},
               {"regional": 100.0}, {"top_p": 1.0}, {"jacobi": 64}, {"guidance_stop": 1.0},
               {"guidance_stop": 0.5, "regional": 0.0}, {"guidance_stop": 0.5, "guidance": 1.0}):
        SamplingConfig(**kw)
    cfg = SamplingConfig(guidance=3.0, guidance_start=1.0)
    assert cfg.guidance_at(0, 1) == 3.0 and cfg.guidance_at(0, 2) == 1.0 and cfg.guidance_at(1, 2) == 3.0


def test_a_draw_takes_the_code_whose_half_open_interval_holds_u(monkeypatch):
    """sampling._draw maps u to the first code whose cumulative weight passes u x total: code k owns
    [cdf[k - 1], cdf[k]), so u exactly at a boundary belongs to the code after it (weights 1, 1, 2 at u = 0.25
    and 0.5: codes 1 and 2), as inverting a CDF over half-open intervals does."""
    from t2i_cli import sampling

    weights = torch.tensor([[1.0, 1.0, 2.0]])
    for u, want in ((0.0, 0), (0.2, 0), (0.25, 1), (0.49, 1), (0.5, 2), (0.99, 2)):
        monkeypatch.setattr(sampling, "_uniform", lambda g, shape, device, u=u: torch.full(shape, u))
        assert sampling._draw(weights, torch.Generator()).tolist() == [want], u


def test_rows_sharing_a_generator_form_one_run():
    """sampling._runs groups consecutive rows of one generator into one run (first row, end), so they draw in one
    call as in a batch of their own; on a GPU that is not the same stream as one call per row (on the CPU it is,
    so the draws alone cannot tell)."""
    from t2i_cli.sampling import _runs

    g, h = torch.Generator(), torch.Generator()
    assert _runs([g, g, g, h, h]) == [(g, 0, 3), (h, 3, 5)]
    assert _runs([g, h, g]) == [(g, 0, 1), (h, 1, 2), (g, 2, 3)]  # only neighbours share a run
    assert _runs([h]) == [(h, 0, 1)] and _runs([]) == []


def test_a_draft_at_the_start_of_a_row_is_the_code_above_it(monkeypatch):
    """The first code of the second row (grid index `grid`) is drafted from the code above it, index 0, like
    every later row's codes, not from the code to its left (the end of the first row). On the column model that
    draft is right, and the exact pass counts (narrowing off) hold; drafting it from the left costs a pass in
    some of these (9 -> 10 passes on 4 x 4 at window 1, 10 -> 11 on 5 x 5 at window 2, 11 -> 12 on 6 x 6 at 3)."""
    from t2i_cli import sampling

    monkeypatch.setattr(sampling, "JACOBI_MIN_RATE", 0.0)  # no narrowing: this is about the drafts alone
    want = {(4, 1): 9, (5, 2): 10, (6, 3): 11, (10, 4): 23, (4, 8): 4}
    assert {(g, w): column_jacobi(g, w)[1]["passes"] for g, w in want} == want


def test_an_image_that_finished_before_the_check_is_not_counted_as_narrowed():
    """stats["narrowed"] counts the images still drawing at the check that narrow, never a finished one riding
    along in the batch (its last code is final; it narrows nothing). On a 5 x 5 grid (25 codes, under the
    28 of the check) a batch of 8 at window 1 has one image finished by the check: 7 paces, 7 narrowed."""
    cfg = TransformerConfig(text_vocab=20, text_len=5, image_vocab=16, grid=5, n_layer=2, n_head=2, n_embd=32)
    torch.manual_seed(0)
    m = Transformer(cfg).eval()
    with torch.no_grad():
        for p in m.parameters():
            if p.ndim > 1:
                p.mul_(10)
    text = torch.randint(0, 15, (8, 5), generator=torch.Generator().manual_seed(4))
    stats: dict = {}
    gens = [torch.Generator().manual_seed(10 + i) for i in range(8)]
    draw_codes(m, text, torch.arange(15, 20), SamplingConfig(jacobi=1, top_k=2, guidance=2.0), gens, stats=stats)
    assert len(stats["paces"]) == 7 and all(p < 28 for p in stats["paces"]), stats
    assert stats["narrowed"] == 7, stats


def test_jacobi_windows_apply_regional_guidance_without_classifier_free_guidance():
    """--guidance 1 with regions still guides each region's half (u + (c - u) + w sum_r m_r (s_r - u)): Jacobi
    windows must read the region rows then too, not only when guidance is on. Greedy, Jacobi decoding draws what
    plain decoding draws, and the regions change the picture."""
    from t2i_cli.sampling import Regions, region_mask

    model = tiny_model()
    text, empty = prompts(3)
    masks = torch.stack([region_mask("left", 3), region_mask("right", 3)])[:, None].expand(2, 3, -1).clone()
    regions = Regions(torch.randint(0, 15, (2, 3, 5), generator=torch.Generator().manual_seed(9)), masks)
    cfg = dict(top_k=1, guidance=1.0, regional=4.0)
    plain, _ = draw_codes(model, text, empty, SamplingConfig(**cfg), torch.Generator(), regions=regions)
    alone, _ = draw_codes(model, text, empty, SamplingConfig(**cfg), torch.Generator())
    assert not torch.equal(plain, alone)
    for w in (1, 4):
        got, _ = draw_codes(model, text, empty, SamplingConfig(jacobi=w, **cfg), torch.Generator(), regions=regions)
        assert torch.equal(got, plain), w


def test_a_finished_image_riding_along_draws_nothing_from_its_requests_generator():
    """A Jacobi batch keeps a finished image's rows until a quarter of the batch has finished; meanwhile that image
    draws no uniforms, so its pair-mate on the same generator (a request's images share one, as t2i eval batches
    them) draws what it draws in a batch of its own, where the finished image leaves at once. 4 requests of 2
    images at window 4: every request's codes are those it draws alone."""
    model = tiny_model()
    text = torch.randint(0, 15, (8, 5), generator=torch.Generator().manual_seed(4))
    empty, cfg = torch.arange(15, 20), SamplingConfig(jacobi=4)
    for seed in (0, 10):
        gens = [torch.Generator().manual_seed(seed + i) for i in range(4)]
        together, _ = draw_codes(model, text, empty, cfg, [g for g in gens for _ in range(2)])
        for i in range(4):
            g = torch.Generator().manual_seed(seed + i)
            alone, _ = draw_codes(model, text[2 * i:2 * i + 2], empty, cfg, [g, g])
            assert torch.equal(together[2 * i:2 * i + 2], alone), (seed, i)
