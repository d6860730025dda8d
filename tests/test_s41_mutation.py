"""Session 41: a mutation audit of the inference core (sampling.py, pipeline.py, rerank.py). Each test here kills a
small change to that code which the rest of the suite let through; tiny models built here, fixed seeds."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from conftest import TINY_CAPTIONS, build_tiny_folder
from t2i_cli.pipeline import TextToImage
from t2i_cli.sampling import SamplingConfig


@pytest.fixture(scope="module")
def region_pipe(tmp_path_factory) -> TextToImage:
    folder = build_tiny_folder(tmp_path_factory.mktemp("w") / "weights",
                               captions=TINY_CAPTIONS + ["a pink tree on the right and a cat"])
    return TextToImage.from_folder(folder, device="cpu")


# ---- sampling.Regions.expand ---------------------------------------------------------------------------------

def test_draw_each_gives_each_candidate_its_own_requests_region_masks_beside_a_prompt_without_regions(region_pipe):
    """Several candidates of a two-object prompt beside several of a plain prompt, in one decode: each row reads
    its own request's region masks (Regions.expand repeats each request's masks n times in a row, as it does its
    ids; masks repeated as a block gave the plain prompt's first candidate the regions' masks), so each request
    draws what it draws alone."""
    strong = SamplingConfig(regional=50.0)  # (a random model's prompts barely differ: weigh the regions up)
    two, one = region_pipe.request("a red bird and a blue fish", strong), region_pipe.request("a red bird", strong)
    assert two.regions and not one.regions
    together = region_pipe.draw_each([two, one], [3, 4], n=2)
    for i, (request, seed) in enumerate(((two, 3), (one, 4))):
        alone = next(region_pipe.batches(request, 2, seed))
        assert all(torch.equal(g.codes, a.codes) for g, a in zip(together[2 * i:2 * i + 2], alone, strict=True)), \
            request.prompt


# ---- sampling.draw_codes -------------------------------------------------------------------------------------

def tiny_transformer(grid: int = 3):
    from t2i_cli.models.transformer import Transformer, TransformerConfig

    torch.manual_seed(0)
    return Transformer(TransformerConfig(text_vocab=20, text_len=5, image_vocab=16, grid=grid, n_layer=1, n_head=2,
                                         n_embd=16)).eval()


def test_an_image_prompt_of_the_wrong_shape_is_refused_not_broadcast_over_the_batch():
    """known and keep must each be (B, N): one row of known codes for two prompts broadcast silently over both (an
    image prompt built for another batch drew without a word), and a keep one position short failed mid-decode."""
    from t2i_cli.sampling import draw_codes

    model = tiny_transformer()
    N = model.cfg.n_image
    text, empty = torch.zeros(2, 5, dtype=torch.long), torch.zeros(5, dtype=torch.long)
    keep = torch.zeros(2, N, dtype=torch.bool)
    keep[:, 1::2] = True  # no leading run kept in every row: the first call reads nothing known
    for known, k in ((torch.ones(1, N, dtype=torch.long), keep), (torch.ones(2, N, dtype=torch.long), keep[:, :-1])):
        with pytest.raises(ValueError, match=r"known and keep must both be \(2, 9\)"):
            draw_codes(model, text, empty, SamplingConfig(), torch.Generator().manual_seed(0), known=known, keep=k)


# ---- rerank.collect, rank_folder, link_best ------------------------------------------------------------------

def png(path: Path, colour: int = 0, **chunks: str) -> Path:
    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    for key, value in chunks.items():
        info.add_text(key, value)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (16, 16), (colour % 256, 90, 200)).save(path, pnginfo=info)
    return path


def test_a_picture_whose_recorded_prompt_is_only_spaces_is_counted_as_without_a_prompt(tmp_path: Path):
    """A PNG whose prompt text is blank is a picture without a prompt (pass --prompt), not one ranked against
    "   "."""
    from t2i_cli.rerank import collect

    png(tmp_path / "a.png", 1, prompt="a red bird")
    png(tmp_path / "b.png", 2, prompt="   \t")
    items, skipped = collect(tmp_path, None)
    assert [p.name for p, _ in items] == ["a.png"]
    assert skipped["picture without a prompt (pass --prompt)"] == 1


def test_a_t2i_picture_of_the_scoring_weights_is_not_counted_as_drawn_by_other_weights(tmp_path: Path):
    """A t2i PNG is drawn by other weights only where neither its weights' identity nor its generator's is the
    scorer's: one that records the scorer's identity (and no generator, or another one) is the scorer's own."""
    from t2i_cli.rerank import OTHER_WEIGHTS, collect

    png(tmp_path / "same.png", 1, prompt="a red bird", t2i="0.14.0", weights="abc")
    png(tmp_path / "same-other-gen.png", 2, prompt="a red bird", t2i="0.14.0", weights="abc", generator="g2")
    png(tmp_path / "same-gen.png", 3, prompt="a red bird", t2i="0.14.0", weights="xyz", generator="g1")
    png(tmp_path / "other.png", 4, prompt="a red bird", t2i="0.14.0", weights="xyz", generator="g2")
    items, skipped = collect(tmp_path, None, scorer=("abc", "g1"))
    assert len(items) == 4 and skipped[OTHER_WEIGHTS] == 1


def test_prompts_the_model_reads_alike_are_ranked_as_one_prompt_named_as_first_met(tmp_path: Path, region_pipe):
    """"A Red bird" and "a red  bird" are one prompt to the model (prompt_file.as_read): their pictures are ranked
    together, 1 and 2, under the prompt as first met, not as two prompts each with a picture of rank 1."""
    from t2i_cli.rerank import rank_folder

    png(tmp_path / "pics" / "a.png", 10, prompt="A Red bird")
    png(tmp_path / "pics" / "b.png", 200, prompt="a red  bird")
    ranked, _ = rank_folder(region_pipe, tmp_path / "pics")
    assert sorted(r.rank for r in ranked) == [1, 2] and {r.prompt for r in ranked} == {"A Red bird"}


def test_a_second_recorded_copy_of_one_picture_is_removed_as_a_spare(tmp_path: Path):
    """best/ keeps one copy of each best picture: where t2i's record names two copies of the same bytes (each
    unchanged), a later --link-best keeps the first and removes the other, as it removes any spare copy of a
    picture the folder still holds."""
    import json

    from t2i_cli.rerank import BEST_RECORD, Ranked, link_best

    pic = png(tmp_path / "a.png", 1, prompt="a red bird")
    ranked = [Ranked(pic, "a red bird", 1.0, 1)]
    (first,), new = link_best(tmp_path, ranked, 1)
    assert new == 1 and first.read_bytes() == pic.read_bytes()
    spare = first.with_name("a-spare.png")
    spare.write_bytes(first.read_bytes())
    record = tmp_path / "best" / BEST_RECORD
    copies = json.loads(record.read_text())
    record.write_text(json.dumps({**copies, spare.name: copies[first.name]}))
    held: dict = {}
    copies, new = link_best(tmp_path, ranked, 1, held)
    assert copies == [first] and new == 0 and held == {pic: first}
    assert not spare.exists() and sorted(json.loads(record.read_text())) == [first.name]


# ---- pipeline.TextToImage.rerank -----------------------------------------------------------------------------

def test_rerank_refuses_a_keep_that_is_not_a_whole_number_of_0_or_more(region_pipe):
    """pipe.rerank(results, keep) returns the best keep: a keep of -1 returned all but the worst and True the best
    one, without a word; each is refused as a UsageError naming it (0 too, as `--keep 0` is: it returned [], since
    session 44). More than were drawn is honoured."""
    from t2i_cli.errors import UsageError

    results = region_pipe("a red bird", n=3, seed=0)
    for keep in (-1, True, 1.5, 0):
        with pytest.raises(UsageError, match=f"keep must be a whole number of results, 1 or more, got {keep!r}"):
            region_pipe.rerank(results, keep)
    assert len(region_pipe.rerank(results, 1)) == 1 and len(region_pipe.rerank(results, 5)) == 3
    assert sorted(g.rank for g in results) == [1, 2, 3]


# ---- sampling._jacobi_codes ----------------------------------------------------------------------------------

def test_jacobi_progress_is_the_codes_every_image_of_the_batch_has_made_final():
    """Jacobi progress reports the codes every image still drawing has made final (the slowest image's): in a batch
    each image moves at its own pace, as it does alone, so the batch's report after each pass is the least of what
    each image reports alone then (a finished one counts its N); the fastest image's count ran ahead of the batch."""
    from itertools import zip_longest

    from t2i_cli.sampling import draw_codes

    model = tiny_transformer(grid=4)
    with torch.no_grad():  # spread the logits so images' drafts are kept at different paces
        for p in model.parameters():
            if p.ndim > 1:
                p.mul_(10)
    N = model.cfg.n_image
    text = torch.randint(0, 20, (2, 5), generator=torch.Generator().manual_seed(4))
    empty = torch.arange(15, 20)
    cfg = SamplingConfig(jacobi=3)

    def progress(rows: torch.Tensor, seeds: list[int]) -> tuple[list[int], torch.Tensor]:
        seen: list[int] = []
        gens = [torch.Generator().manual_seed(s) for s in seeds]
        got, _ = draw_codes(model, rows, empty, cfg, gens, progress=seen.append)
        return seen, got

    both, codes = progress(text, [1, 2])
    (first, a), (second, b) = progress(text[:1], [1]), progress(text[1:], [2])
    assert torch.equal(codes, torch.cat([a, b]))  # each image draws what it draws alone
    assert first != second  # (the two images do move at different paces)
    assert both == [min(x, y) for x, y in zip_longest(first, second, fillvalue=N)]


def test_rerank_orders_results_of_equal_scores_as_they_were_drawn(region_pipe):
    """Results of equal score keep the order they were drawn in (a stable sort): among 17 results of two pictures
    (each repeated), the better picture's results come first, each group in drawn order, ranked 1.. in that order
    (an unstable sort put tied results of 17 or more in another order)."""
    from t2i_cli.pipeline import Generated

    one, two = (g.image for g in region_pipe("a red bird", n=2, seed=0))
    results = [Generated(one if i % 2 else two, "a red bird", i) for i in range(17)]
    scores = region_pipe.score(torch.stack([two, one]), "a red bird")
    assert float(scores[0]) != float(scores[1])
    best = 0 if float(scores[0]) > float(scores[1]) else 1  # 0: the even results' picture is better
    expected = [i for i in range(17) if i % 2 == best] + [i for i in range(17) if i % 2 != best]
    ranked = region_pipe.rerank(results, 17)
    assert [g.index for g in ranked] == expected and [g.rank for g in ranked] == list(range(1, 18))


# ---- pipeline.check_negative ---------------------------------------------------------------------------------

@pytest.mark.parametrize("guidance, start", [(3.0, 1.0), (1.0, 3.0), (1.0000001, None)])
def test_a_negative_is_taken_where_guidance_never_goes_below_1(guidance: float, start: float | None):
    """Only a guidance (or a guidance start) below 1 draws toward the negative: a schedule that starts or ends at
    exactly 1 pushes away from it at every other code, and is taken when asked for."""
    from t2i_cli.pipeline import check_negative

    check_negative("a blue bird", SamplingConfig(guidance=guidance, guidance_start=start), asked=True)


# ---- pipeline.draw_each and batches ----------------------------------------------------------------------------

def test_draw_each_numbers_each_requests_images_from_0_as_batches_does(region_pipe):
    """Generated.index is an image's place among those drawn for its prompt and seed: draw_each's images of each
    request are 0..n-1, as batches() numbers them (not their place in the decode)."""
    requests = [region_pipe.request(p) for p in ("a red bird", "two green cats")]
    together = region_pipe.draw_each(requests, [3, 4], n=2)
    assert [g.index for g in together] == [0, 1, 0, 1]
    assert [g.index for g in next(region_pipe.batches(requests[1], 2, 4))] == [0, 1]


def test_each_batch_draws_from_its_own_seed_so_a_later_batch_is_not_the_first_again(region_pipe, monkeypatch):
    """Batches after the first draw from their own generator (batch_seed): with two images a batch, images 2 and 3
    of a seed are not images 0 and 1 again."""
    from t2i_cli import pipeline

    monkeypatch.setattr(pipeline, "MAX_BATCH", 2)
    got = region_pipe("a red bird", n=4, seed=0)
    assert [g.index for g in got] == [0, 1, 2, 3]
    assert not torch.equal(torch.stack([g.codes for g in got[:2]]), torch.stack([g.codes for g in got[2:]]))


def test_a_seed_is_taken_up_to_2_63_minus_1_and_refused_from_2_63():
    """A seed is a whole number in 0..2**63-1 (what a PNG records and --seed takes): 2**63 is refused, not handed
    to torch.Generator, which would take it."""
    from t2i_cli.errors import UsageError
    from t2i_cli.pipeline import check_count_and_seed

    check_count_and_seed(1, 2 ** 63 - 1)
    with pytest.raises(UsageError, match=r"seed must be a whole number in 0..2\*\*63-1, got 9223372036854775808"):
        check_count_and_seed(1, 2 ** 63)


def test_bits_refuses_a_code_one_past_the_codebook(region_pipe):
    """pipe.bits takes codes in 0..vocab-1: a code equal to the codebook's size is refused as a UsageError (it
    reached the transformer's embedding, a raw index error)."""
    from t2i_cli.errors import UsageError

    cfg = region_pipe.bundle.transformer.cfg
    codes = torch.zeros(1, cfg.n_image, dtype=torch.long)
    assert region_pipe.bits(["a red bird"], codes).shape == (1, cfg.n_image)
    codes[0, -1] = cfg.image_vocab
    with pytest.raises(UsageError, match=f"codes must be integers in 0..{cfg.image_vocab - 1}"):
        region_pipe.bits(["a red bird"], codes)


def test_a_batch_of_image_prompt_redraws_holds_max_batch_rows_not_max_batch_images(region_pipe, tmp_path: Path):
    """An image of K redraws takes K decode rows: a batch holds MAX_BATCH // K images (16 // 4 = 4), not MAX_BATCH
    images of K rows each."""
    from PIL import Image

    from t2i_cli.image_prompt import build
    from t2i_cli.pipeline import MAX_BATCH

    mask = Image.new("L", (16, 16), 0)
    mask.paste(255, (0, 0, 16, 8))  # redraw the top half; the kept bottom half follows it
    mask.save(tmp_path / "mask.png")
    image = build(region_pipe.bundle.dvae, png(tmp_path / "src.png", 40), mask=tmp_path / "mask.png", redraws=4)
    assert image.redraws == 4
    assert region_pipe.per_batch(image) == MAX_BATCH // 4 and region_pipe.per_batch() == MAX_BATCH


def test_best_said_names_the_first_three_shared_copies_then_counts_the_rest(tmp_path: Path):
    """Where best pictures share copies, the line names three of them and counts the rest ("; and 1 more")."""
    from t2i_cli.rerank import best_said

    best = tmp_path / "best"
    copies = {tmp_path / f"p{i}.png": best / "p0.png" for i in range(5)}  # four pictures share p0's copy
    said = best_said(tmp_path, copies, 1)
    assert said.startswith(f"{best} holds the best 5 in 1 file (1 copied now; p1.png is the same picture as p0.png")
    assert said.count("is the same picture as") == 3 and said.endswith("; and 1 more)")


def test_an_image_prompts_fit_is_the_mean_log_probability_of_the_kept_codes_after_the_drawn_ones(region_pipe,
                                                                                                  tmp_path: Path):
    """Generated.fit is the mean (not the sum) of the kept codes' log-probabilities after the first drawn code: with
    guidance off, each is -bits * ln 2 of that code under the prompt (pipe.bits, an independent pass), averaged over
    the kept bottom half below a redrawn top half."""
    import math

    from PIL import Image

    from t2i_cli.image_prompt import build

    mask = Image.new("L", (16, 16), 0)
    mask.paste(255, (0, 0, 16, 8))  # redraw the top half; keep the bottom half
    mask.save(tmp_path / "mask.png")
    image = build(region_pipe.bundle.dvae, png(tmp_path / "src.png", 40), mask=tmp_path / "mask.png", redraws=1)
    (g,) = region_pipe("a red bird", n=1, seed=0, sampling=SamplingConfig(guidance=1.0), image=image)
    N = region_pipe.bundle.transformer.cfg.n_image
    bits = region_pipe.bits(["a red bird"], g.codes[None])[0]
    assert g.fit == pytest.approx(float(-bits[N // 2:].mean()) * math.log(2), rel=1e-4, abs=1e-5)
