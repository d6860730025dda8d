"""Session 46, hA: the inference side's duplications made one (the count checks, the greedy top_p's words, the
decode's block parts, a number's plain form), and what they showed."""

from __future__ import annotations

import pytest
import torch

from t2i_cli.models.transformer import KVCache, Transformer, TransformerConfig
from t2i_cli.sampling import SamplingConfig, draw_codes

CFG = TransformerConfig(text_vocab=40, text_len=6, image_vocab=24, grid=4, n_layer=2, n_head=2, n_embd=32)


def spread() -> Transformer:
    """tests/test_s45_hQ.py's tiny model (the pinned codes below are its draws)."""
    torch.manual_seed(0)
    model = Transformer(CFG).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim > 1:
                p.mul_(5)
    return model


def prompts() -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randint(0, 34, (3, CFG.text_len), generator=torch.Generator().manual_seed(1)), torch.arange(34, 40)


def counting(model: Transformer) -> list[int]:
    """Count the model's decode_layers calls (its reads of every block's parts)."""
    calls, real = [], model.decode_layers
    model.decode_layers = lambda: calls.append(1) or real()
    return calls


# ----------------------------------------------------------------------------- the decode's block parts
def test_a_decode_by_image_logits_reads_the_blocks_parts_once_not_at_every_step():
    """cache.layers was set by draw_codes alone: any other decode over a KV cache (bench/bench_decode.py's loops,
    a script's) read every block's parts again at each of its steps. image_logits' prefill sets them now, so a
    decode reads them once, and draws the logits it drew before (the model's modules read at each step)."""
    model = spread()
    text, _ = prompts()
    codes = torch.randint(0, CFG.image_vocab, (3, CFG.n_image), generator=torch.Generator().manual_seed(5))
    calls = counting(model)
    with torch.inference_mode():
        plain, want = KVCache.for_model(model, 3, torch.device("cpu")), []
        for i in range(CFG.n_image):
            want.append(model.image_logits(text, codes[:, :i], plain))
            plain.layers = None  # (the model's modules read at every step, as before)
        assert len(calls) == CFG.n_image  # (the prefill's read, then one a step)
        calls.clear()
        cache = KVCache.for_model(model, 3, torch.device("cpu"))
        for i in range(CFG.n_image):
            assert torch.equal(model.image_logits(text, codes[:, :i], cache), want[i]), i
    assert len(calls) == 1


@pytest.mark.parametrize("kw", [{}, {"guidance_stop": 0.5}, {"guidance": 1.0}])
def test_a_draw_reads_the_blocks_parts_once(kw):
    """draw_codes (guided, with --guidance-stop's rows leaving the cache, unguided): one read per draw."""
    model = spread()
    text, empty = prompts()
    calls = counting(model)
    draw_codes(model, text, empty, SamplingConfig(**kw), torch.Generator().manual_seed(2))
    assert len(calls) == 1


JACOBI = {  # drawn before the block parts moved to image_logits' prefill (hA's first commit's parent, 7f7bc09)
    "4": ('13 6 3 10 5 13 10 14 5 21 1 18 17 11 10 11',
          '17 20 3 3 19 10 4 14 5 17 3 18 10 0 6 6',
          '13 0 10 10 9 3 5 9 14 2 10 7 11 21 9 3'),
    "3 at 0.8": ('13 11 21 0 9 10 12 6 10 3 0 19 1 1 11 6',
                 '17 9 14 9 14 17 1 3 2 2 17 16 3 21 10 12',
                 '13 4 3 10 10 9 19 2 2 11 10 4 14 11 11 2'),
    "2 unguided": ('14 8 16 2 19 9 10 22 11 1 5 9 22 1 23 17',
                   '8 20 22 0 11 9 1 14 14 3 17 18 10 10 19 1',
                   '13 12 11 20 5 8 20 0 9 3 19 16 0 0 3 19'),
}


@pytest.mark.parametrize("name, kw", [("4", {"jacobi": 4}), ("3 at 0.8", {"jacobi": 3, "temperature": 0.8}),
                                      ("2 unguided", {"jacobi": 2, "guidance": 1.0})])
def test_jacobi_draws_the_codes_it_drew_before(name, kw):
    text, empty = prompts()
    codes = draw_codes(spread(), text, empty, SamplingConfig(**kw), torch.Generator().manual_seed(2))[0]
    assert codes.tolist() == [[int(c) for c in row.split()] for row in JACOBI[name]]


# ----------------------------------------------------------------------------- one count check, one bound
def test_every_count_is_refused_in_one_sentence_and_evals_bound_is_one_number():
    """The count checks of pipe(n=), rerank(keep=), the world's evaluation and evaluate_data kept their own words
    ("n is at most 256 images" beside "n_per_task must be at most 10000"), and cli spelled eval's --n bound as a
    literal 10000 beside world.evaluate.MAX_PER_TASK: sampling_config.check_count and MAX_PER_TASK now."""
    from t2i_cli import cli
    from t2i_cli.errors import UsageError
    from t2i_cli.pipeline import check_count_and_seed
    from t2i_cli.sampling_config import MAX_PER_TASK, check_count
    from t2i_cli.world import evaluate

    assert evaluate.MAX_PER_TASK is MAX_PER_TASK and cli.MAX_PER_TASK is MAX_PER_TASK
    with pytest.raises(UsageError, match=r"^n must be at most 256 images a call \(as --n\), got 257; draw more in "
                                         r"several calls, each with its own seed$"):
        check_count_and_seed(257, 0)
    with pytest.raises(UsageError, match=r"^n must be a whole number of images, 1 or more, got 0$"):
        check_count_and_seed(0, 0)
    with pytest.raises(ValueError, match=r"^scenes must be a whole number, 1 or more, got 2\.5$"):
        check_count(2.5, "scenes")
    with pytest.raises(ValueError, match=r"^n must be at most 10000, got 10001$"):
        evaluate.dvae_metrics(None, 10_001, 0)
    import numpy as np

    assert check_count(np.int64(3), "n", 3) == 3 and type(check_count(np.int64(3), "n", 3)) is int


def test_evaluate_data_bounds_n_as_eval_data_bounds_it():
    """evaluate_data(n=) had no bound where `eval --data --n` stops at 10000 (the API took n=10**5000); it is
    refused now, as the command refuses it, before anything is read."""
    from t2i_cli.data_eval import evaluate_data

    with pytest.raises(ValueError, match=r"^n must be at most 10000 val pictures, got 10001$"):
        evaluate_data(None, "nowhere", 10_001, 0)
    with pytest.raises(ValueError, match=r"^n must be a whole number of val pictures, 1 or more, got 0$"):
        evaluate_data(None, "nowhere", 0, 0)


def test_eval_n_bound_is_said_from_the_one_number(monkeypatch):
    """`eval --n` and `--draws`' help and refusals say MAX_PER_TASK (the literal 10000 stood beside it)."""
    from typer.testing import CliRunner

    from t2i_cli import cli

    monkeypatch.setattr(cli, "MAX_PER_TASK", 20)
    r = CliRunner().invoke(cli.app, ["eval", "--n", "21"])
    assert r.exit_code == 2 and "--n must be in 1..20, got 21" in r.output, r.output


# ----------------------------------------------------------------------------- the greedy draw's words
@pytest.mark.parametrize("kw, greedy, why, other", [
    ({"top_k": 1}, "top_k=1", "top_k=1 always takes the most likely code", "a top_k of 0 or above 1"),
    ({"top_p": 0.01}, "top_p=0.01", "a top_p at or below 1/24, this model's 24 codes, keeps only the most likely code",
     "a top_p above 1/24 (0.04166666666666667)")])
def test_the_greedy_words_of_redraws_and_of_copies_are_one_builders(kw, greedy, why, other):
    """sampling.refuse_greedy_copies' redraws branch wrote the greedy setting's words itself, beside
    sampling_config.refuse_greedy_copies' (sampling_config.greedy_words now): the sentences as they were."""
    from types import SimpleNamespace

    from t2i_cli.errors import UsageError
    from t2i_cli.sampling import refuse_greedy_copies
    from t2i_cli.sampling_config import refuse_greedy_copies as refuse_flag

    sampling = SamplingConfig(**kw)
    with pytest.raises(UsageError) as e:
        refuse_greedy_copies(sampling, 1, image=SimpleNamespace(redraws=3), vocab=24)
    assert str(e.value) == (f"redraws=3 with {greedy} draws each image 3 times alike ({why}); build the image prompt "
                            f"with redraws=1, or give {other}")
    with pytest.raises(UsageError) as e:
        refuse_greedy_copies(sampling, 4, name="candidates", vocab=24)
    assert str(e.value) == (f"candidates=4 with {greedy} draws 4 copies of one image ({why}); ask for candidates=1, "
                            f"or give {other} to draw different ones")
    flag = {"top_k": ("--top-k 1", "--top-k 1 always takes the most likely code", "--top-k 0 or above 1"),
            "top_p": ("--top-p 0.01", why.replace("top_p", "--top-p"), other.replace("top_p", "--top-p"))}
    flag = flag[next(iter(kw))]
    with pytest.raises(UsageError) as e:
        refuse_flag("--n", 4, top_p=kw.get("top_p"), vocab=24)
    assert str(e.value) == (f"--n 4 with {flag[0]} draws 4 copies of one image ({flag[1]}); leave --n out for one "
                            f"image, or give {flag[2]} to draw different ones")


# ----------------------------------------------------------------------------- a dVAE's pixel_eps
@pytest.mark.parametrize("eps, said", [(-10 ** 400, "a negative whole number past a float's range"),
                                       (10 ** 400, "a whole number past a float's range"), (-1, "-1"), (0.5, "0.5")])
def test_a_pixel_eps_past_a_floats_range_is_said_truly(eps, said):
    """DVAEConfig(pixel_eps=-10**400) was refused as "a whole number too large for a float": it is below 0, and
    too small, not too large; each sign is said as it is now."""
    from t2i_cli.models.dvae import DVAEConfig

    with pytest.raises(ValueError, match=rf"^pixel_eps must be at least 0 and below 0\.5, got {said}$"):
        DVAEConfig(pixel_eps=eps)
    assert DVAEConfig(pixel_eps=0.1).pixel_eps == 0.1


# ----------------------------------------------------------------------------- a number's plain form
def test_an_image_prompts_numpy_float64_is_written_as_a_plain_number(tmp_path):
    """image_prompt.build kept an np.float64 strength or keep_top as it was (a subclass of float), and its PNG
    provenance said "np.float64(0.5)" (repr under numpy 2): the Real-to-float conversion is sampling_config.
    plain_number's now, SamplingConfig's and the image prompt's, and an ImagePrompt built by hand takes it too."""
    import numpy as np
    from PIL import Image

    from t2i_cli.image_prompt import ImagePrompt, build
    from t2i_cli.models.dvae import DVAE, DVAEConfig

    torch.manual_seed(0)
    dvae = DVAE(DVAEConfig(image_side=16, downsample=4, n_codes=16, n_hid=8, code_dim=8, n_res=0)).eval()
    src = tmp_path / "src.png"
    Image.new("RGB", (16, 16), (200, 30, 30)).save(src)
    vary = build(dvae, src, strength=np.float64(0.5))
    assert vary.provenance()["strength"] == "0.5" and type(vary.strength) is float
    assert build(dvae, src, keep_top=np.float64(0.5)).provenance()["keep_top"] == "0.5"
    assert build(dvae, src, strength=1).provenance()["strength"] == "1"  # (a plain int as it was)
    by_hand = ImagePrompt("vary", vary.codes, vary.image_sha256, strength=np.float64(0.25))
    assert by_hand.provenance()["strength"] == "0.25"
    with pytest.raises(TypeError, match=r"^strength must be a number, got '0\.5'$"):
        ImagePrompt("vary", vary.codes, vary.image_sha256, strength="0.5")
    assert SamplingConfig(top_p=np.float64(0.5)).top_p == 0.5 and type(SamplingConfig(top_p=np.float64(0.5)).top_p) \
        is float
