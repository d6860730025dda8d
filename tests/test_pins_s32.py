"""Pins from the s32 mutation audit of sampling, the transformer's KV cache, the pipeline, outputs, prompt files
and image prompts: each test fails under a mutant the rest of the suite let through."""

from __future__ import annotations

import pytest
import torch

from t2i_cli.sampling import SamplingConfig, distribution, sample_next

PROBS5 = torch.tensor([0.5, 0.3, 0.1, 0.06, 0.04])


def test_temperature_reshapes_the_distribution_before_top_p_chooses_its_codes():
    """Temperature divides the logits before top-p measures their mass, so a sharper (or flatter) distribution
    keeps fewer (or more) codes: at temperature 0.5 the top code holds 0.70 of the mass and top-p 0.6 keeps it
    alone; at temperature 2 top-p 0.75 keeps three codes (0.35 + 0.27 + 0.16). Filtering first and dividing after
    kept two in both cases."""
    logits = PROBS5.log()[None]
    sharp = distribution(logits, SamplingConfig(temperature=0.5, top_p=0.6))[0]
    assert torch.allclose(sharp, torch.tensor([1.0, 0, 0, 0, 0])), sharp
    flat = distribution(logits, SamplingConfig(temperature=2.0, top_p=0.75))[0]
    root = PROBS5.sqrt()[:3]
    assert torch.allclose(flat, torch.cat([root / root.sum(), torch.zeros(2)]), atol=1e-6), flat
    # and what sample_next draws from: only the top code at 0.5
    draws = sample_next(logits.expand(400, -1), SamplingConfig(temperature=0.5, top_p=0.6),
                        torch.Generator().manual_seed(0))
    assert set(draws.tolist()) == {0}


def test_a_draw_that_rounding_lands_on_a_zero_weight_code_takes_the_next_code_not_the_last(monkeypatch):
    """On a GPU a parallel cumsum can grow by an ulp over a code of weight 0, and the search for u then lands on
    it: such a draw takes the next code of nonzero weight (the code the exact sum gives), not the last one of
    the row. The landing is simulated by a search that answers the zero-weight code."""
    from t2i_cli import sampling

    weights = torch.tensor([[1.0, 0.0, 1.0, 1.0, 0.0], [1.0, 1.0, 0.0, 0.0, 2.0]])
    monkeypatch.setattr(torch, "searchsorted", lambda cdf, u, right=False: torch.tensor([[1], [2]]))
    got = sampling._draw(weights, torch.Generator().manual_seed(0))
    assert got.tolist() == [2, 4]


def test_a_list_of_generators_must_give_one_per_row():
    """sample_next with a list of generators draws row r from generator[r]: a list of another length is refused
    (without the check, two generators for three rows drew two codes, and four drew from an empty slice)."""

    logits = torch.randn(3, 8, generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(1)
    for gens in ([g, g], [g, g, g, g]):
        with pytest.raises(ValueError, match=f"{len(gens)} generators for 3 rows"):
            sample_next(logits, SamplingConfig(), gens)
    assert sample_next(logits, SamplingConfig(), [g, g, g]).shape == (3,)


TINY = dict(text_vocab=20, text_len=5, image_vocab=16, grid=3, n_layer=2, n_head=2, n_embd=32)


def tiny_model(seed: int = 0, **changes):
    from t2i_cli.models.transformer import Transformer, TransformerConfig

    torch.manual_seed(seed)
    m = Transformer(TransformerConfig(**{**TINY, **changes})).eval()
    with torch.no_grad():  # spread the logits so different inputs really differ
        for p in m.parameters():
            if p.ndim > 1:
                p.mul_(10)
    return m


def test_an_image_prompt_reads_the_run_every_row_keeps_in_one_pass_and_draws_the_same():
    """complete (--keep-top) keeps the top rows in every image: the decode reads them with the text in its first
    pass and runs one pass per code after them (stats["passes"]), drawing what a decode from code 0 draws."""
    from t2i_cli import sampling

    model = tiny_model()
    N = model.cfg.n_image
    text = torch.randint(0, 15, (2, 5), generator=torch.Generator().manual_seed(4))
    empty = torch.arange(15, 20)
    known = torch.randint(0, 16, (2, N), generator=torch.Generator().manual_seed(5))
    keep = torch.zeros(2, N, dtype=torch.bool)
    keep[:, :4] = True  # the first row and a code more in both images
    keep[1, 4] = True  # one more in the second alone: not part of the run both keep
    stats: dict = {}
    codes, _ = sampling.draw_codes(model, text, empty, SamplingConfig(), torch.Generator().manual_seed(3), known=known,
                                   keep=keep, stats=stats)
    assert stats["passes"] == N - 4
    assert torch.equal(codes[keep], known[keep])
    recomputed, _ = sampling.draw_codes(model, text, empty, SamplingConfig(use_cache=False),
                                        torch.Generator().manual_seed(3), known=known, keep=keep)
    assert torch.equal(codes, recomputed)


# ------------------------------------------------------------------------------------------ outputs


def png_with(tmp_path, name: str, ip=None, **changes: str | None):
    """A t2i PNG (provenance as generate writes it) whose recorded settings are changed as given (None: removed)."""
    import json

    from t2i_cli.outputs import provenance, write_image
    from t2i_cli.pipeline import Generated

    g = Generated(torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(0)), "a red bird", 1)
    meta = provenance(g, 5, 2, SamplingConfig(), "0" * 16, made_from=None if ip is None else ip.provenance())
    settings = {k: v for k, v in (json.loads(meta["t2i"]) | changes).items() if v is not None}
    meta["t2i"] = json.dumps(settings, sort_keys=True)
    return write_image(g, tmp_path / name, meta)


def test_from_refuses_an_index_equal_to_n_as_an_edit(tmp_path):
    """index is 0..n-1: a PNG recording index == n (image 2 of 2) was read as valid, and --from then failed on
    the command line's terms ("index 2 is not among the 2 images drawn") instead of naming the edited PNG."""

    from t2i_cli.errors import DataError
    from t2i_cli.outputs import recorded_settings

    assert recorded_settings(png_with(tmp_path, "ok")).index == 1
    with pytest.raises(DataError, match="its recorded seed, n or index is out of range; was the PNG edited"):
        recorded_settings(png_with(tmp_path, "bad", index="2"))


def test_from_refuses_a_recorded_prompt_or_negative_longer_than_t2i_redraws(tmp_path, monkeypatch):
    """A recorded prompt (or negative) over MAX_RECORDED_PROMPT characters is refused as an edit before it reaches
    the tokenizer (whose time grows with the square of its length); one of exactly that length is read."""

    from t2i_cli import outputs
    from t2i_cli.errors import DataError

    monkeypatch.setattr(outputs, "MAX_RECORDED_PROMPT", 20)
    assert outputs.recorded_settings(png_with(tmp_path, "ok", prompt="x" * 20)).prompt == "x" * 20
    for key in ("prompt", "negative"):
        with pytest.raises(DataError, match=f"its recorded {key} is 21 characters long, more than the 20"):
            outputs.recorded_settings(png_with(tmp_path, key, **{key: "y" * 21}))


# ------------------------------------------------------------------------------------------ the KV cache


def test_a_half_precision_models_cache_on_the_cpu_is_fp32_even_with_amx(monkeypatch):
    """AMX makes a bf16 cache the faster one on the CPU, not an fp16 one: an fp16 model's cache stays fp32 on
    any CPU (and a bf16 model's follows AMX)."""
    from t2i_cli.models import transformer
    from t2i_cli.models.transformer import KVCache

    model = tiny_model()
    for amx in (False, True):
        monkeypatch.setattr(transformer, "amx_tiles", lambda amx=amx: amx)
        assert KVCache.for_model(model.half(), 1, torch.device("cpu")).k.dtype == torch.float32
        bf16 = KVCache.for_model(model.to(torch.bfloat16), 1, torch.device("cpu")).k.dtype
        assert bf16 == (torch.bfloat16 if amx else torch.float32)


def test_a_ragged_window_may_fill_the_cache_to_its_last_position():
    """A finished image riding along in a Jacobi batch reads its window of W at code n_image - 1 from a cache of
    slack W, and its last key goes in the cache's last position (block_size + slack - 1): allowed, written
    there, and the same first logits as a cache with room to spare; one position further is refused."""

    from t2i_cli.models.transformer import KVCache

    model = tiny_model()
    cfg = model.cfg
    text = torch.randint(0, 15, (1, cfg.text_len), generator=torch.Generator().manual_seed(1))
    image = torch.randint(0, 16, (1, cfg.n_image), generator=torch.Generator().manual_seed(2))
    W, start = 3, cfg.n_image - 1
    window = torch.cat([image[:, -1:], torch.zeros(1, W - 1, dtype=torch.long)], dim=1)
    got = {}
    with torch.inference_mode():
        for slack in (W, cfg.n_image):
            cache = KVCache(cfg, 1, torch.device("cpu"), torch.float32, slack=slack)
            model.image_logits(text, image[:, :start], cache)  # the text and codes 0..N-2 cached
            got[slack] = model.ragged_window_logits(window, torch.tensor([start]), cache)
            if slack == W:
                assert start + W + cfg.text_len == cache.k.shape[3]
                assert float(cache.k[:, :, :, -1].abs().sum()) > 0  # the window's last key went in
                with pytest.raises(ValueError, match="passes the cache"):
                    model.ragged_window_logits(window, torch.tensor([start + 1]), cache)
    assert got[W].shape == (1, W, cfg.image_vocab)
    torch.testing.assert_close(got[W][:, 0], got[cfg.n_image][:, 0])


# ------------------------------------------------------------------------------------------ prompt files


def test_a_prompt_file_of_exactly_the_byte_bound_is_read_and_one_byte_more_is_refused(tmp_path, monkeypatch):

    from t2i_cli import prompt_file
    from t2i_cli.errors import DataError

    monkeypatch.setattr(prompt_file, "MAX_PROMPT_FILE", 8)
    f = tmp_path / "p.txt"
    f.write_text("ab\ncd\nef")  # 8 bytes
    assert [p.prompt for p in prompt_file.read_prompts(f).prompts] == ["ab", "cd", "ef"]
    f.write_text("ab\ncd\nefg")  # 9
    with pytest.raises(DataError, match="split it"):
        prompt_file.read_prompts(f)


def test_the_repeats_warning_names_the_first_five_repeated_lines_alone(tmp_path):
    """17 lines repeat: the warning names five (line 4 (line 1) .. line 8 (line 2)) and counts the other 12."""
    from t2i_cli.prompt_file import read_prompts

    f = tmp_path / "many.txt"
    f.write_text("".join(f"a red bird {i % 3}\n" for i in range(20)))
    msg = read_prompts(f).repeats_message()
    shown = msg.split(": ", 1)[1]
    assert shown == ("line 4 (line 1), line 5 (line 2), line 6 (line 3), line 7 (line 1), line 8 (line 2) "
                     "and 12 more"), msg


# ------------------------------------------------------------------------------------------ image prompts


def test_an_image_prompt_takes_exactly_one_of_keep_top_mask_and_strength(tmp_path):
    """build() refuses none of them (which made a vary prompt without a strength, failing later with a
    TypeError) as it refuses two, before it reads any file."""

    from t2i_cli.errors import UsageError
    from t2i_cli.image_prompt import build

    for kw in ({}, {"keep_top": 0.5, "strength": 0.5}, {"keep_top": 0.5, "mask": tmp_path / "m.png"}):
        with pytest.raises(UsageError, match="takes one of keep_top, mask or strength"):
            build(None, tmp_path / "missing.png", **kw)


def test_a_cache_holding_positions_refuses_a_plain_window_of_several():
    """After a prefill, several positions at once through the plain (not ragged) path would be masked from the
    top left by SDPA's is_causal (each query seeing the first keys, not its own): refused, not computed wrong."""

    from t2i_cli.models.transformer import KVCache

    model = tiny_model()
    text = torch.randint(0, 15, (1, model.cfg.text_len), generator=torch.Generator().manual_seed(1))
    cache = KVCache.for_model(model, 1, torch.device("cpu"))
    with torch.inference_mode():
        model.image_logits(text, torch.zeros(1, 0, dtype=torch.long), cache)
        x = model.embed_image(torch.tensor([[3, 4]]))
        with pytest.raises(ValueError, match="reads one code at a time, or ragged windows"):
            model.hidden(x, cache)
        assert model.hidden(x[:, :1], cache).shape == (1, 1, model.cfg.n_embd)  # one position is fine


# ------------------------------------------------------------------------------------------ the pipeline


@pytest.fixture(scope="module")
def pipe(tmp_path_factory):
    from conftest import build_tiny_folder
    from t2i_cli.pipeline import TextToImage

    return TextToImage.from_folder(build_tiny_folder(tmp_path_factory.mktemp("w") / "weights"), "cpu")


def test_redraw_takes_an_index_among_the_n_images_alone(pipe):
    """redraw(index) is image index of the n drawn: index n (one past the last) is refused as a UsageError
    naming it, as -1 is; the last one redraws what the whole draw gave."""
    from t2i_cli.errors import UsageError

    request = pipe.request("a red bird")
    for index in (-1, 3):
        with pytest.raises(UsageError, match=f"index {index} is not among the 3 images drawn"):
            pipe.redraw(request, 3, 0, index)
    assert torch.equal(pipe.redraw(request, 3, 0, 2).image, pipe("a red bird", n=3, seed=0)[2].image)


def test_a_negative_under_guidance_below_1_is_refused_when_asked_and_still_redraws_from_a_png(pipe):
    """Asked for now, --negative with a guidance (or a guidance start) below 1 is refused; a PNG that recorded
    one (t2i 0.12.4 drew it) goes through request() and redraws."""
    from t2i_cli.errors import UsageError
    from t2i_cli.pipeline import check_negative

    for cfg in (SamplingConfig(guidance=0.5), SamplingConfig(guidance=3.0, guidance_start=0.5)):
        with pytest.raises(UsageError, match="is below 1, where guidance draws toward the negative text"):
            check_negative("a blue bird", cfg, asked=True)
        check_negative("a blue bird", cfg)  # a recorded setting: not refused
        request = pipe.request("a red bird", cfg, negative="a blue bird")
        assert request.negative == "a blue bird" and len(pipe.batches(request, 1, 0).__next__()) == 1


def test_progress_counts_every_code_of_every_image_of_the_batch(pipe):
    """batches() reports progress in codes over all n images: after the last step of 3 images, 3 x n_image."""
    seen: list[int] = []
    pipe("a red bird", n=3, seed=0, progress=seen.append)
    N = pipe.bundle.transformer.cfg.n_image
    assert seen[-1] == 3 * N and seen == sorted(seen) and seen[0] == 3


def test_a_batch_of_redraws_fits_the_decode_memory_of_all_its_rows(pipe, monkeypatch):
    """An image of K redraws takes K decode rows: the images one batch takes are bounded by DECODE_MEMORY over
    all K rows of each (eight images' memory holds two images of four redraws)."""
    from t2i_cli import pipeline

    monkeypatch.setattr(pipeline, "DECODE_MEMORY", 8 * pipe.image_bytes())
    assert pipe.fit(16) == 8 and pipe.fit(16, rows=4) == 2 and pipe.fit(16, rows=16) == 1


def test_draw_each_pushes_each_request_away_from_its_own_negative(pipe):
    """draw_each gives request i the images batches() draws for it: with a negative prompt, guidance pushes
    away from that negative (not the empty prompt), beside a request without one."""
    sampling = SamplingConfig(guidance=8.0)
    neg = pipe.request("a red bird", sampling, negative="two green cats")
    plain = pipe.request("a red bird", sampling)
    together = pipe.draw_each([neg, plain], [3, 3], n=2)
    for i, request in enumerate((neg, plain)):
        alone = next(pipe.batches(request, 2, 3))
        assert all(torch.equal(g.codes, a.codes) for g, a in zip(together[2 * i:2 * i + 2], alone, strict=True))
    assert not all(torch.equal(a.codes, b.codes) for a, b in zip(together[:2], together[2:], strict=True))


def test_an_image_prompts_fit_averages_over_the_kept_codes_after_its_first_drawn_one():
    """Generated.fit is the mean log-probability of the kept codes after a row's first drawn code: the count it
    divides by leaves out the kept codes before that draw (which the log-probability never sums)."""
    from t2i_cli.pipeline import _kept_after_drawn

    keep = torch.tensor([[True, True, False, True, False, True],
                         [False, True, True, True, True, True],
                         [True, True, True, True, True, False]])
    assert _kept_after_drawn(keep).tolist() == [2, 5, 0]


def test_draw_each_gives_every_candidate_of_a_two_object_prompt_its_own_region_prompts(tmp_path):
    """eval draws n candidates per prompt in one decode: each candidate of each two-object prompt is guided by
    its own prompt's region prompts (Regions.expand repeats each row's regions n times in a row), so the images
    are those generate draws for each prompt alone (n images of one batch, each with the regions)."""
    from conftest import TINY_CAPTIONS, build_tiny_folder
    from t2i_cli.pipeline import TextToImage

    folder = build_tiny_folder(tmp_path / "w", captions=TINY_CAPTIONS + ["a pink tree on the right and a cat"])
    pipe = TextToImage.from_folder(folder, device="cpu")
    strong = SamplingConfig(regional=50.0)  # a random model's prompts barely differ: weigh the regions up
    requests = [pipe.request(p, strong) for p in ("a red bird and a blue fish", "a yellow star and a green cat")]
    assert all(r.regions for r in requests)
    together = pipe.draw_each(requests, [3, 4], n=2)
    for i, (request, seed) in enumerate(zip(requests, (3, 4), strict=True)):
        alone = next(pipe.batches(request, 2, seed))  # as generate draws it (two rows of one batch)
        assert all(torch.equal(g.codes, a.codes) for g, a in zip(together[2 * i:2 * i + 2], alone, strict=True))


def test_an_image_prompts_share_is_recorded_to_the_last_digit(tmp_path):
    """--from redraws with the keep_top or strength a PNG records: the float as given, every digit of it (1/3
    recorded as 0.33 would keep round(0.33 x grid) rows, not always those 1/3 kept)."""
    from t2i_cli.image_prompt import ImagePrompt
    from t2i_cli.outputs import recorded_settings

    codes, keep = torch.zeros(16, dtype=torch.long), torch.arange(16) < 4
    complete = ImagePrompt("complete", codes, "c" * 64, keep=keep, keep_top=1 / 3)
    vary = ImagePrompt("vary", codes, "d" * 64, strength=0.123456789)
    assert recorded_settings(png_with(tmp_path, "complete", complete)).keep_top == 1 / 3
    assert recorded_settings(png_with(tmp_path, "vary", vary)).strength == 0.123456789
