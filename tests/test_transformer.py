"""Transformer: shapes, the weighted loss, causality, KV cache == full recompute, 2-D position embeddings."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from t2i_cli.models import transformer
from t2i_cli.models.transformer import KVCache, Transformer, TransformerConfig

CFG = TransformerConfig(text_vocab=20, text_len=5, image_vocab=16, grid=3, n_layer=2, n_head=2, n_embd=32,
                        text_loss_weight=0.3)


def tiny(cfg: TransformerConfig = CFG, seed: int = 0) -> Transformer:
    torch.manual_seed(seed)
    model = Transformer(cfg).eval()
    with torch.no_grad():  # the 0.02-std init makes every logit almost equal; spread them so changes show
        for p in model.parameters():
            if p.ndim > 1:
                p.mul_(10)
    return model


def inputs(b: int = 2, seed: int = 1, cfg: TransformerConfig = CFG) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    text = torch.randint(0, cfg.text_vocab, (b, cfg.text_len), generator=g)
    image = torch.randint(0, cfg.image_vocab, (b, cfg.n_image), generator=g)
    return text, image


def test_forward_shapes():
    model = tiny()
    text, image = inputs(b=3)
    logits, loss = model(text, image)
    assert CFG.block_size == CFG.text_len + CFG.n_image - 1
    assert logits.shape == (3, CFG.n_image, CFG.image_vocab)
    assert loss.ndim == 0 and torch.isfinite(loss)


def test_loss_is_the_weighted_sum_of_text_and_image_cross_entropy():
    model = tiny()
    text, image = inputs(b=3)
    with torch.no_grad():
        logits, loss = model(text, image)
        x = torch.cat([model.embed_text(text), model.embed_image(image[:, :-1])], dim=1)
        h = model.hidden(x)
    T = CFG.text_len
    assert h.shape == (3, T + CFG.n_image - 1, CFG.n_embd)
    text_logits = model.text_head(h[:, : T - 1])  # position t predicts text t+1
    image_logits = model.image_head(h[:, T - 1:])  # last text position predicts image code 0
    torch.testing.assert_close(logits, image_logits)
    text_ce = F.cross_entropy(text_logits.reshape(-1, CFG.text_vocab), text[:, 1:].reshape(-1))
    image_ce = F.cross_entropy(logits.reshape(-1, CFG.image_vocab), image.reshape(-1))
    assert abs(text_ce - image_ce) > 0.05  # otherwise any weighting would pass
    w = CFG.text_loss_weight
    torch.testing.assert_close(loss, w * text_ce + (1 - w) * image_ce, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("w", [0.0, 1.0])
def test_loss_weight_extremes_select_one_term(w):
    cfg = TransformerConfig(**{**CFG.__dict__, "text_loss_weight": w})
    model = tiny(cfg)
    text, image = inputs()
    with torch.no_grad():
        logits, loss = model(text, image)
        if w == 0.0:
            expected = F.cross_entropy(logits.reshape(-1, cfg.image_vocab), image.reshape(-1))
        else:
            h = model.hidden(torch.cat([model.embed_text(text), model.embed_image(image[:, :-1])], dim=1))
            tl = model.text_head(h[:, : cfg.text_len - 1])
            expected = F.cross_entropy(tl.reshape(-1, cfg.text_vocab), text[:, 1:].reshape(-1))
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("j", [0, 4, CFG.n_image - 2])
def test_changing_image_code_j_leaves_logits_up_to_j_unchanged(j):
    model = tiny()
    text, image = inputs()
    changed = image.clone()
    changed[:, j] = (changed[:, j] + 1) % CFG.image_vocab
    with torch.no_grad():
        a, _ = model(text, image)
        b, _ = model(text, changed)
    # logits i predict code i from codes < i: positions 0..j never see code j
    torch.testing.assert_close(a[:, : j + 1], b[:, : j + 1], rtol=0, atol=1e-6)
    assert not torch.allclose(a[:, j + 1], b[:, j + 1], atol=1e-4)  # the next position does see it


def test_last_image_code_is_never_an_input():
    model = tiny()
    text, image = inputs()
    changed = image.clone()
    changed[:, -1] = (changed[:, -1] + 1) % CFG.image_vocab
    with torch.no_grad():
        torch.testing.assert_close(model(text, image)[0], model(text, changed)[0], rtol=0, atol=0)


def test_changing_the_text_changes_every_image_logit():
    model = tiny()
    text, image = inputs()
    other = text.clone()
    other[:, 0] = (other[:, 0] + 1) % CFG.text_vocab
    with torch.no_grad():
        a, _ = model(text, image)
        b, _ = model(other, image)
    diff = (a - b).abs().amax(dim=-1)  # (B, N)
    assert bool((diff > 1e-4).all())


def test_full_recompute_image_logits_match_forward():
    model = tiny()
    text, image = inputs()
    with torch.no_grad():
        full, _ = model(text, image)
        for i in range(CFG.n_image):
            step = model.image_logits(text, image[:, :i])
            torch.testing.assert_close(step, full[:, i], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("b", [1, 3])
def test_cached_incremental_logits_equal_full_recompute(b):
    model = tiny()
    text, image = inputs(b=b)
    cache = KVCache(CFG, b, torch.device("cpu"), torch.float32)
    with torch.no_grad():
        for i in range(CFG.n_image):
            cached = model.image_logits(text, image[:, :i], cache)
            full = model.image_logits(text, image[:, :i])
            assert cache.length == CFG.text_len + i
            torch.testing.assert_close(cached, full, rtol=0, atol=1e-5)
    assert cache.length == CFG.block_size


@pytest.mark.parametrize("width", [1, 3, 4])
def test_ragged_windows_give_each_row_the_full_forward_logits_at_its_own_place(width):
    """ragged_window_logits reads, for each row, several codes after its own first starts[r] cached codes
    (the mask lets query t of row r see keys up to its own position): every row's logits are those of the
    full forward at its positions, whatever the cache holds past them; windows running past the grid give
    padding there and the right logits before it; a later window may overwrite an earlier one."""
    model = tiny()
    text, image = inputs(b=4)
    starts = torch.tensor([0, 2, 5, CFG.n_image - 2])  # the last row's window runs past the grid for width > 2
    cache = KVCache(CFG, 4, torch.device("cpu"), torch.float32, slack=width)
    with torch.no_grad():
        full, _ = model(text, image)  # full[:, i] predicts code i
        model.image_logits(text, image, cache)  # text and every code: rows hold more than their windows' past
        padded = torch.cat([image, torch.zeros(4, width, dtype=torch.long)], dim=1)
        window = torch.stack([padded[r, s:s + width] for r, s in enumerate(starts.tolist())])
        got = model.ragged_window_logits(window, starts, cache)
        assert got.shape == (4, width, CFG.image_vocab)
        for r, s in enumerate(starts.tolist()):
            n = min(width, CFG.n_image - 1 - s)  # positions whose next code is on the grid
            torch.testing.assert_close(got[r, :n], full[r, s + 1:s + 1 + n], rtol=0, atol=1e-5)
        back = starts.clamp(min=1) - 1  # one code back: read again over what the last window wrote
        window = torch.stack([padded[r, s:s + width] for r, s in enumerate(back.tolist())])
        again = model.ragged_window_logits(window, back, cache)
        for r, s in enumerate(back.tolist()):
            n = min(width, CFG.n_image - 1 - s)
            torch.testing.assert_close(again[r, :n], full[r, s + 1:s + 1 + n], rtol=0, atol=1e-5)
        assert cache.ragged is None and cache.length == CFG.block_size + 1  # length: the prefill's alone
        with pytest.raises(ValueError, match="slack"):
            model.ragged_window_logits(window, torch.full_like(back, CFG.n_image), cache)
        with pytest.raises(ValueError, match="one start"):
            model.ragged_window_logits(window, back[:2], cache)


def test_row_embeddings_are_used_at_the_right_positions():
    model = tiny()
    text, image = inputs()
    side = CFG.grid
    with torch.no_grad():
        before, _ = model(text, image)
        # a random (not constant: LayerNorm removes a constant shift) change to grid row 1 (indices side..2*side-1)
        model.row_emb.weight[1] += torch.randn(CFG.n_embd, generator=torch.Generator().manual_seed(2))
        after, _ = model(text, image)
    # logits i see input codes 0..i-1; the first code of row 1 is index `side`, seen from logits side+1 on
    torch.testing.assert_close(before[:, : side + 1], after[:, : side + 1], rtol=0, atol=1e-6)
    assert not torch.allclose(before[:, side + 1:], after[:, side + 1:], atol=1e-4)


def test_col_embeddings_are_used_at_the_right_positions():
    model = tiny()
    text, image = inputs()
    with torch.no_grad():
        before, _ = model(text, image)
        # column 2 first occurs at grid index 2
        model.col_emb.weight[2] += torch.randn(CFG.n_embd, generator=torch.Generator().manual_seed(2))
        after, _ = model(text, image)
    torch.testing.assert_close(before[:, :3], after[:, :3], rtol=0, atol=1e-6)
    assert not torch.allclose(before[:, 3], after[:, 3], atol=1e-4)


def test_2d_position_is_row_plus_column():
    model = tiny()
    codes = torch.zeros(1, CFG.n_image, dtype=torch.long)
    with torch.no_grad():
        emb = model.embed_image(codes)[0]  # (N, C)
        side = CFG.grid
        for k in range(CFG.n_image):
            expected = model.image_emb.weight[0] + model.row_emb.weight[k // side] + model.col_emb.weight[k % side]
            torch.testing.assert_close(emb[k], expected)
        # an offset start gives the same embedding as the same index in a full sequence
        torch.testing.assert_close(model.embed_image(codes[:, :2], start=4)[0], emb[4:6])


@pytest.mark.parametrize("amx", [False, True])
def test_a_bf16_model_on_the_cpu_decodes_what_its_forward_gives_over_the_cache_of_its_cpu(monkeypatch, amx):
    """On a CPU without AMX a bf16 model's KV cache is fp32 (PyTorch's attention over bf16 converts there and
    is slower): q, k and v are cast into it and the attention's output back to bf16. With AMX the cache is
    bf16. Either way one code at a time and a window give the logits of the model's own full forward, up to
    bf16 rounding; an fp32 model's cache is fp32 on any CPU."""
    monkeypatch.setattr(transformer, "amx_tiles", lambda: amx)
    fp32 = tiny()
    assert KVCache.for_model(fp32, 2, torch.device("cpu")).k.dtype == torch.float32
    model = tiny().to(torch.bfloat16)
    text, image = inputs(b=2)
    cache = KVCache.for_model(model, 2, torch.device("cpu"))
    want = torch.bfloat16 if amx else torch.float32
    assert cache.k.dtype == cache.v.dtype == want and cache.k.shape[1] == 2
    with torch.no_grad():
        full = model(text, image)[0].float()  # full[:, i] predicts code i; no cache, all in bf16
        scale = float(full.abs().max())
        for i in range(4):
            step = model.image_logits(text, image[:, :i], cache)
            assert step.dtype == torch.bfloat16
            torch.testing.assert_close(step.float(), full[:, i], rtol=0, atol=0.03 * scale)
        window = model.ragged_window_logits(image[:, 3:7], torch.tensor([3, 3]), cache).float()
        torch.testing.assert_close(window, full[:, 4:8], rtol=0, atol=0.03 * scale)
        assert float(cache.k[:, :, :, CFG.text_len + 6].abs().sum()) > 0  # the window's keys went in


def test_a_kv_cache_and_a_ragged_window_refuse_what_would_write_outside_the_cache():
    """The cache's slack is at most one image's codes, and a ragged window starts at code 0 or later: a start
    of -1 would write its keys over the text's cached positions."""
    cfg = TransformerConfig(text_vocab=40, text_len=6, image_vocab=24, grid=4, n_layer=1, n_head=2, n_embd=16)
    with pytest.raises(ValueError, match="slack is 0..16"):
        KVCache(cfg, 1, torch.device("cpu"), torch.float32, slack=cfg.n_image + 1)
    model = Transformer(cfg).eval()
    cache = KVCache(cfg, 2, torch.device("cpu"), torch.float32, slack=4)
    codes = torch.zeros(2, 3, dtype=torch.long)
    with torch.inference_mode(), pytest.raises(ValueError, match="one start \\(0 or more\\) per row"):
        model.ragged_window_logits(codes, torch.tensor([-1, 0]), cache)
    with torch.inference_mode():
        assert model.ragged_window_logits(codes, torch.tensor([0, 2]), cache).shape == (2, 3, 24)
