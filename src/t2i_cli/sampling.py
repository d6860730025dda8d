"""The decode loop: temperature, top-k and top-p (distribution(), which plain decoding and Jacobi windows both draw
from), classifier-free guidance (a --guidance-start ramp, a --guidance-stop), regional guidance (Regions), the KV
cache, an image prompt's kept codes and their fit (draw_codes), and speculative Jacobi decoding (_jacobi_codes).
SamplingConfig, re-exported here, lives in the torch-free sampling_config.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn.functional as F

from t2i_cli import sampling_config
from t2i_cli.errors import UsageError, option
from t2i_cli.models.transformer import KVCache, Transformer
from t2i_cli.sampling_config import MAX_JACOBI, SamplingConfig  # noqa: F401 (re-exported: it was defined here)

# An image whose drafts the model rarely keeps gains nothing from a window and pays for it (a pass of 17 codes
# for 32 rows costs 3x a step: BENCHMARKS.md): after JACOBI_CHECK window passes, an image that has made fewer
# than JACOBI_MIN_RATE codes final per pass reads one code per pass from then on. In their first 16 passes the
# shipped model's images made 19-150 codes final (2 of 280 under 28), a model trained on 363 icons' 16-29 (277
# of 280 under 28; bench/jacobi_pace.py, BENCHMARKS.md "Jacobi by default?"). The decision rests on the image's
# own codes, so what it draws depends on its own rows alone.
JACOBI_CHECK = 16
JACOBI_MIN_RATE = 1.75
PLACES = ("left", "right", "top", "bottom")  # the halves of the grid a region of regional guidance covers


def refuse_greedy_copies(sampling: SamplingConfig, n: int, image: Any = None, name: str = "n",
                         vocab: int | None = None) -> None:
    """Refuse drawing copies of one image with greedy settings, top_k=1 or a top_p at or below 1/vocab
    (sampling_config.refuse_greedy_copies's rule, in the words of
    a caller of batches, __call__ or draw_each): it takes the most likely code at every step, so n > 1 images of one
    prompt (or of an image prompt that keeps a fixed set of cells, or redraws every cell) are one image, and so are
    an inpainting's redraws. A variation that keeps a random share of cells per image draws its own. name: the
    caller's keyword for n (evaluate_model's candidates, evaluate_data's draws: they were refused as n=4). image: an
    image_prompt.ImagePrompt (not imported: the world's evaluation, a lower tier than the pipeline, calls this).
    vocab: the model's codebook size, where a top_p at or below 1/vocab is greedy too (SamplingConfig.greedy)."""
    if not sampling.greedy(vocab):
        return
    by_p = sampling.top_k != 1  # (greedy by its top_p)
    if image is not None and image.redraws > 1:
        greedy, why, other = sampling_config.greedy_words(True, sampling.top_p if by_p else None, vocab)
        # (the Python API's words alone: generate draws once at a greedy setting, or refuses a --redraws above 1,
        # before the load, so no command reaches this)
        raise UsageError(f"{option('redraws', image.redraws)} with {greedy} draws each image {image.redraws} times "
                         f"alike ({why}); build the image prompt with {option('redraws', 1)}, or give {other}")
    if image is None or image.keep is not None or image.n_redrawn == image.codes.numel():
        sampling_config.refuse_greedy_copies(name, n, keyword=True, top_p=sampling.top_p if by_p else None,
                                             vocab=vocab)


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Set every logit below the k-th largest in its row to -inf (k <= 0 keeps all). Codes tied with the k-th
    stay, so a row may keep more than k (as Hugging Face's top-k does; rare in float32)."""
    if k <= 0 or k >= logits.shape[-1]:
        return logits
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]  # (..., 1)
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Keep the smallest set of most likely logits whose probability mass reaches p; -inf the rest (among
    tied logits at the edge, the sort's order decides which stay)."""
    if p >= 1.0:
        return logits
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    probs = torch.softmax(sorted_logits.float(), dim=-1)
    mass_before = probs.cumsum(dim=-1) - probs  # probability of the codes ranked above each one
    drop_sorted = mass_before >= p
    drop_sorted[..., 0] = False  # the top code always stays, even for a p that rounds to 0 in float32
    drop = drop_sorted.scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


def guide(cond: torch.Tensor, uncond: torch.Tensor, scale: float) -> torch.Tensor:
    """Classifier-free guidance (min-dalle's supercondition): uncond + scale * (cond - uncond)."""
    return uncond + scale * (cond - uncond)


def region_mask(place: str, grid: int) -> torch.Tensor:
    """(grid * grid,) float: 1 at the codes of the raster grid's half `place` (left, right, top, bottom), else 0."""
    if place not in PLACES:
        raise ValueError(f"a region is one of {', '.join(PLACES)}, got {place!r}")
    line = torch.arange(grid) < grid // 2 if place in ("left", "top") else torch.arange(grid) >= grid // 2
    rows, cols = (torch.ones(grid, dtype=torch.bool), line) if place in ("left", "right") else \
        (line, torch.ones(grid, dtype=torch.bool))
    return (rows[:, None] & cols[None, :]).reshape(-1).float()


@dataclass(frozen=True)
class Regions:
    """Regional guidance: R more prompts per row, each guiding only its own codes. With u, c and s_r the logits
    under the unconditional prompt, the prompt and region r's prompt, a code's logits are

        u + guidance * (c - u) + regional * sum_r mask_r * (s_r - u)

    (classifier-free guidance plus a product of experts in which each extra expert speaks only in its region:
    outside it, "a red bird on the left" would ask for background where the other object goes). A row with
    fewer regions than R repeats its prompt with a zero mask. The batch grows from 2 to 2 + R rows per image."""

    ids: torch.Tensor  # (R, B, T) region r's prompt for each row
    masks: torch.Tensor  # (R, B, N) float: 1 where region r's prompt guides code n of that row

    def __post_init__(self) -> None:
        if self.ids.dim() != 3 or self.masks.dim() != 3 or self.ids.shape[:2] != self.masks.shape[:2]:
            raise ValueError(f"regions need ids (R, B, T) and masks (R, B, N), got {tuple(self.ids.shape)} and "
                             f"{tuple(self.masks.shape)}")

    def expand(self, k: int) -> "Regions":
        """Each row's regions for k rows in a row (as ids.repeat_interleave(k) does to prompts)."""
        return Regions(self.ids.repeat_interleave(k, dim=1), self.masks.repeat_interleave(k, dim=1))


def _regional(logits: torch.Tensor, B: int, masks: torch.Tensor, weight: float) -> torch.Tensor:
    """weight * sum_r mask_r * (s_r - u) for logits (rows, W, V) laid out [prompts, region 0 .. R-1, uncond]
    (B rows each) and masks (R, B, W) of the W positions: (B, W, V)."""
    R = masks.shape[0]
    u = logits[-B:].float()
    s = logits[B:B * (R + 1)].float().view(R, B, *logits.shape[1:])
    return weight * (masks[..., None] * (s - u)).sum(0)


def _guided(logits: torch.Tensor, B: int, cfg: SamplingConfig, scale: float | torch.Tensor,
            masks: torch.Tensor | None = None) -> torch.Tensor:
    """Guided logits (B, W, V) from one batch's logits (rows, W, V) laid out [prompts, region 0 .. R-1, uncond]
    (B rows each): classifier-free guidance at scale (a number, or (B, W, 1) for each code's own), plus
    regional guidance where masks (R, B, W) are given. In float32 whatever the model's dtype: a bf16 sum of
    scaled logits rounds by up to 0.25 (plain decoding of a bf16 model did so before t2i 0.9.0; Jacobi
    windows and regional guidance never did)."""
    guided = guide(logits[:B].float(), logits[-B:].float(), scale)
    if masks is not None:
        guided = guided + _regional(logits, B, masks, cfg.regional)
    return guided


Generators = torch.Generator | list[torch.Generator]  # one for the batch, or one per row


def distribution(logits: torch.Tensor, cfg: SamplingConfig) -> torch.Tensor:
    """The probabilities (..., V) that a code is drawn from, given its (guided) logits (..., V): temperature, then
    top-k, then top-p, then softmax. Plain decoding (sample_next) and Jacobi windows (_window_probs) both draw
    from it, so a filter added here reaches both."""
    logits = logits.float()
    if cfg.temperature != 1:  # (x / 1 is x: the default skips a pass over the logits, the same bytes)
        logits = logits / cfg.temperature
    return torch.softmax(top_p_filter(top_k_filter(logits, cfg.top_k), cfg.top_p), dim=-1)


def sample_next(logits: torch.Tensor, cfg: SamplingConfig, generator: Generators) -> torch.Tensor:
    """Draw one code per row from logits (B, V) after temperature, top-k and top-p. With a list of
    generators, row r draws from generator[r] alone (as it would in a batch of its own)."""
    probs = distribution(logits, cfg)
    if isinstance(generator, torch.Generator):
        return torch.multinomial(probs, 1, generator=generator).squeeze(-1)  # (B,)
    if len(generator) != probs.shape[0]:
        raise ValueError(f"{len(generator)} generators for {probs.shape[0]} rows")
    return torch.cat([torch.multinomial(probs[lo:hi], 1, generator=g) for g, lo, hi in _runs(generator)]).squeeze(-1)


def _runs(generators: list[torch.Generator]) -> list[tuple[torch.Generator, int, int]]:
    """Consecutive rows that share one generator, as (generator, first row, end): each run draws in one call,
    as its rows would in a batch of their own (on any device, not only where a call over (n, V) happens
    to consume the stream as n calls over (1, V) do)."""
    runs: list[tuple[torch.Generator, int, int]] = []
    for r, g in enumerate(generators):
        if runs and runs[-1][0] is g:
            runs[-1] = (g, runs[-1][1], r + 1)
        else:
            runs.append((g, r, r + 1))
    return runs


@torch.inference_mode()
def generate_codes(model: Transformer, text: torch.Tensor, empty: torch.Tensor, cfg: SamplingConfig,
                   generator: torch.Generator, progress: Callable[[int], None] | None = None) -> torch.Tensor:
    """Sample image codes (B, n_image) for prompts text (B, T); empty (T,) is the unconditional prompt."""
    return draw_codes(model, text, empty, cfg, generator, progress)[0]


def _uniform(generator: Generators, shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """Uniform [0, 1) numbers of shape (B, ...): from one generator, or row r from generator[r]."""
    if isinstance(generator, torch.Generator):
        return torch.rand(shape, generator=generator, device=device)
    return torch.cat([torch.rand((hi - lo, *shape[1:]), generator=g, device=device) for g, lo, hi in _runs(generator)])


def _draw(probs: torch.Tensor, generator: Generators, u: torch.Tensor | None = None) -> torch.Tensor:
    """One index per distribution of probs (B, ..., V) (unnormalised weights allowed) -> (B, ...), by the
    inverse of each distribution's cumulative sum at a uniform draw (one per distribution, from generator or
    given as u (B, ...); a code of weight 0 is never drawn). torch.multinomial draws an exponential per code,
    which over a window's (B, T, V) costs several times more."""
    cdf = probs.float().cumsum(-1)
    total = cdf[..., -1:]
    if u is None:
        u = _uniform(generator, tuple(probs.shape[:-1]), probs.device)
    u = u[..., None] * total
    V = probs.shape[-1]
    idx = torch.searchsorted(cdf, u, right=True).squeeze(-1).clamp(max=V - 1)  # the first code passing u
    # Rounding can land on a code of weight 0: u rounded up to the total, or (a GPU's parallel cumsum) a sum
    # that grows by an ulp over a zero. Such a draw takes the next code of nonzero weight, else the last one.
    bad = probs.gather(-1, idx[..., None]).squeeze(-1) <= 0
    if bool(bad.any()):
        later = (probs > 0) & (torch.arange(V, device=probs.device) >= idx[..., None])
        last = V - 1 - (probs.flip(-1) > 0).int().argmax(-1)
        idx = torch.where(bad, torch.where(later.any(-1), later.int().argmax(-1), last), idx)
    return idx


def _window_probs(logits: torch.Tensor, B: int, cfg: SamplingConfig, pos: torch.Tensor, scales: torch.Tensor,
                  regions: Regions | None = None) -> torch.Tensor:
    """The sampling distributions (B, W, V) of the codes at grid indices pos (B, W) from window logits (rows,
    W, V): guidance (at each code's own scale, scales[pos]) and regional guidance (regions' masks at pos),
    temperature, top-k and top-p, as sample_next applies them to one code."""
    if cfg.guided or regions is not None:
        at = None if regions is None else regions.masks.gather(2, pos[None].expand(regions.masks.shape[0], -1, -1))
        logits = _guided(logits, B, cfg, scales[pos][..., None], at)  # at: (R, B, W)
    return distribution(logits, cfg)


def _pick(generator: Generators, keep: torch.Tensor) -> Generators:
    """The generators of the rows still kept (keep (B,) bools), for a decode that drops finished rows."""
    if isinstance(generator, torch.Generator):
        return generator
    return [g for g, k in zip(generator, keep.tolist(), strict=True) if k]


def _jacobi_codes(model: Transformer, text: torch.Tensor, B: int, cfg: SamplingConfig, generator: Generators,
                  progress: Callable[[int], None] | None, stats: dict | None,
                  regions: Regions | None = None) -> torch.Tensor:
    """Speculative Jacobi decoding (Teng et al. 2024, "Accelerating auto-regressive text-to-image generation
    with training-free speculative Jacobi decoding"): each forward pass reads, for every image, a window of
    W = cfg.jacobi drafted codes after its last final one, and checks the W + 1 drafts it gives a
    distribution for in order with the speculative-sampling test (keep draft d, drawn from q, with
    probability min(1, p(d) / q(d)) under the model's p given the final codes; at the first refusal draw from
    max(0, p - q), renormalised). Every code is then distributed as plain decoding would draw it, and each
    pass makes at least one code of every image still drawing final. A draft is the code above it (or to its left on the
    first row) with q one-hot, until a pass has seen its position; then it is drawn from that pass's p (its
    Jacobi iterate). Each image's window starts at its own place (the cache is ragged: Transformer.
    ragged_window_logits), so an image moves at its own pace, and its draws depend on its own rows alone (a
    list of generators: on its own generator; the same codes as decoded alone, up to the rounding of a larger
    product). An image whose codes are all final draws nothing more, and leaves the batch (its rows the KV
    cache) once a quarter of the batch has finished. An image that made fewer than JACOBI_MIN_RATE codes final
    per pass in its first JACOBI_CHECK passes narrows its window to its next code (the distribution is kept:
    that is the test with no drafts after the first); once every image drawing has, a pass reads one code per
    row. Each pass draws, per row, W + 1 uniforms for the test, one for the refused code and W + 1 for the
    iterates whatever the window's width, so an image's stream does not depend on the others'. A window
    wider than the grid reads N - 1 drafts. text (rows, T) holds the prompts then, when guided, the
    unconditional rows (and before them, with regions, the region rows). stats, if given, receives
    "passes", "narrowed" (images that narrowed) and, once the check is reached, "paces" (the codes each
    image still drawing had made final by then)."""
    mc, device = model.cfg, text.device
    N, V, W = mc.n_image, mc.image_vocab, min(cfg.jacobi, mc.n_image - 1)
    T = W + 1  # inputs per pass and row: the last final code and W drafts; distributions for T codes
    rows = text.shape[0]
    per = rows // B  # rows per image: the prompt, any regions, the unconditional prompt
    cache = KVCache.for_model(model, rows, device, slack=T)
    # Each code's guidance scale, and the region masks, over the grid and the padding past it (the last
    # code's scale; no region there): what a window reads at its positions
    scales = torch.tensor([cfg.guidance_at(min(i, N - 1), N) for i in range(N + T)], device=device)
    if regions is not None:  # masks (R, B, N + T) from here on: windows read the padding past the grid
        regions = Regions(regions.ids, F.pad(regions.masks, (0, T)))
    codes = torch.zeros(B, N + T, dtype=torch.long, device=device)  # final codes, then drafts, then padding
    q = torch.zeros(B, N + T, V, dtype=torch.float32, device=device)  # what each draft was drawn from
    logits = model.image_logits(text, torch.zeros(rows, 0, dtype=torch.long, device=device), cache)
    zero = torch.zeros(B, 1, dtype=torch.long, device=device)
    codes[:, 0] = _draw(_window_probs(logits[:, None], B, cfg, zero, scales, regions)[:, 0], generator)
    final = torch.ones(B, dtype=torch.long, device=device)  # codes 0..final-1 of each image are final
    drafted = torch.ones(B, dtype=torch.long, device=device)  # positions below hold a final code or a draft
    alive = torch.arange(B, device=device)  # which image each row of codes is
    out = torch.zeros(B, N, dtype=torch.long, device=device)
    passes, all_offsets = 1, torch.arange(T, device=device)
    width = torch.full((B,), T, dtype=torch.long, device=device)  # positions of its window an image reads
    narrowed = 0
    while True:
        done = final >= N
        if int(done.sum()) >= max(1, B // 4):  # finished images leave the batch, and their rows the cache (a
            # copy of it: not for every image; until then a finished row rides along, reading padding)
            out[alive[done]] = codes[done, :N]
            keep = ~done
            if not bool(keep.any()):
                break
            idx = keep.nonzero().squeeze(1)
            cache.keep_rows((idx[None] + B * torch.arange(per, device=device)[:, None]).reshape(-1))
            codes, q, final, drafted, alive, width = (codes[idx], q[idx], final[idx], drafted[idx], alive[idx],
                                                      width[idx])
            generator = _pick(generator, keep)
            if regions is not None:
                regions = Regions(regions.ids[:, idx], regions.masks[:, idx])
            B, done = idx.shape[0], done[idx]
        if passes == 1 + JACOBI_CHECK:  # each image's pace over its first window passes (its own codes alone)
            slow = (final - 1 < JACOBI_MIN_RATE * JACOBI_CHECK) & ~done & (width > 1)
            narrowed += int(slow.sum())
            if stats is not None:  # each image's codes made final by its first JACOBI_CHECK window passes
                stats["paces"] = (final[~done] - 1).tolist()
            width = torch.where(slow, torch.ones_like(width), width)
        t_now = int(width[~done].max()) if bool((~done).any()) else 1  # this pass's window: the widest drawing
        offsets = all_offsets[:t_now]
        pos = final[:, None] + offsets  # (B, t_now): the codes this pass gives a distribution for
        rows_at = torch.arange(B, device=device)
        for w in range(max(0, int((drafted - final).min())), t_now):  # drafts for positions no pass has seen
            j = final + w
            new = (j >= drafted) & (j < N) & (w < width)
            if not bool(new.any()):
                continue
            src = torch.where(j >= mc.grid, j - mc.grid, j - 1)
            code = torch.where(new, codes[rows_at, src], codes[rows_at, j])
            codes[rows_at, j] = code
            q[rows_at, j] = torch.where(new[:, None], F.one_hot(code, V).float(), q[rows_at, j])
        drafted = torch.maximum(drafted, (final + width).clamp(max=N))
        window = codes.gather(1, pos - 1)  # inputs: the last final code, then drafts
        logits = model.ragged_window_logits(window.repeat(per, 1), (final - 1).repeat(per), cache)  # (rows, t_now, V)
        p = _window_probs(logits, B, cfg, pos, scales, regions)  # (B, t_now, V) for codes final..final+t_now-1
        passes += 1
        # The test, on the images still drawing: a finished one riding along draws nothing, so what an image
        # draws does not depend on when others finish.
        act = None if not bool(done.any()) else (~done).nonzero().squeeze(1)
        at_rows = rows_at if act is None else act
        gen = generator if act is None else _pick(generator, ~done)
        p, pos, fin, wid = (p, pos, final, width) if act is None else (p[act], pos[act], final[act], width[act])
        d = codes[at_rows[:, None], pos]
        q_w = q[at_rows[:, None], pos]  # (b, t_now, V)
        p_d = p.gather(-1, d[..., None]).squeeze(-1)
        q_d = q_w.gather(-1, d[..., None]).squeeze(-1)
        u = _uniform(gen, (pos.shape[0], T), device)[:, :t_now]
        valid = (pos < N) & (offsets[None] < wid[:, None])
        refused = (u * q_d >= p_d) & valid
        any_refused = refused.any(dim=1)
        first = torch.where(any_refused, refused.int().argmax(dim=1), valid.sum(dim=1))  # window index
        at = first.clamp(max=t_now - 1)
        sub = torch.arange(pos.shape[0], device=device)
        residual = (p[sub, at] - q_w[sub, at]).clamp(min=0)
        residual = torch.where(residual.sum(-1, keepdim=True) > 0, residual, p[sub, at])
        fix = _draw(residual, gen)  # (b,): the refused position's code, for rows with a refusal
        u_iterate = _uniform(gen, (pos.shape[0], T), device)[:, :t_now]
        redraft = _draw(p, gen, u_iterate)  # (b, t_now): the next Jacobi iterate of the codes after a refusal
        after = (offsets[None] > first[:, None]) & valid
        d = torch.where(after, redraft, d)
        d[sub, at] = torch.where(any_refused, fix, d[sub, at])
        codes[at_rows[:, None], pos] = d
        q[at_rows[:, None], pos] = torch.where(after[..., None], p, q_w)
        final[at_rows] = fin + torch.where(any_refused, first + 1, first)
        if progress is not None:
            progress(int(final.min()))
    if stats is not None:
        stats["passes"], stats["narrowed"] = passes, narrowed
    return out


@torch.inference_mode()
def draw_codes(model: Transformer, text: torch.Tensor, uncond: torch.Tensor, cfg: SamplingConfig,
               generator: Generators, progress: Callable[[int], None] | None = None,
               known: torch.Tensor | None = None, keep: torch.Tensor | None = None, stats: dict | None = None,
               regions: Regions | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw image codes (B, n_image) for prompts text (B, T) in raster order.

    uncond (T,) or (B, T) is what guidance pushes away from: the empty prompt, or a negative prompt; a list
    of generators gives each row its own random stream (sample_next). An image
    prompt is known (B, N) codes and keep (B, N) bools: a kept position takes its known code instead of a
    draw (the model still reads it, so what follows is conditioned on it). The leading run of positions
    kept in every row is read in one pass. Also returns, per row, the log-probability (nats, under the
    guided distribution at temperature 1) of the kept codes that come after the row's first drawn code:
    how well what was drawn fits what was kept after it (0 when nothing kept follows a draw). With
    cfg.jacobi, codes come from speculative Jacobi decoding (_jacobi_codes; no image prompt). stats, if
    given, receives "passes": the transformer's forward passes. regions (for rows of text), with
    cfg.regional above 0, adds regional guidance (Regions); None or a weight of 0 decodes without it. With
    cfg.guidance_stop, guidance (a negative prompt's too) and regional guidance stop after that share of the codes
    and their rows leave the batch: the codes after it, and the log-probability of kept codes there, are the
    prompt's alone.
    """
    B, n_image = text.shape[0], model.cfg.n_image
    device = text.device
    prompted = keep is not None
    if prompted and (known is None or known.shape != (B, n_image) or keep.shape != (B, n_image)):
        raise ValueError(f"known and keep must both be ({B}, {n_image})")
    if regions is not None and (cfg.regional == 0 or regions.ids.shape[0] == 0):
        regions = None
    if regions is not None:
        if regions.ids.shape[1:] != text.shape or regions.masks.shape[2] != n_image:
            raise ValueError(f"regions for {tuple(regions.ids.shape[1:])} prompts and {regions.masks.shape[2]} "
                             f"codes, but the batch is {tuple(text.shape)} and the model draws {n_image}")
        regions = Regions(regions.ids.to(device), regions.masks.to(device))
    use_guidance = cfg.guided or regions is not None
    if use_guidance:  # one batch holds the prompts, any region prompts, and as many unconditional (or negative)
        extra = [] if regions is None else [regions.ids.flatten(0, 1)]
        text = torch.cat([text, *extra, uncond.to(device).expand(B, -1)], dim=0)  # (2B, T), or ((2 + R) B, T)
    if cfg.jacobi:
        if prompted:
            raise UsageError(f"{option('jacobi')} does not combine with an image prompt; leave one of them out")
        if not cfg.use_cache:
            raise ValueError("Jacobi decoding needs the KV cache")
        return (_jacobi_codes(model, text, B, cfg, generator, progress, stats, regions),
                torch.zeros(B, device=device))
    rows = text.shape[0]
    cache = KVCache.for_model(model, rows, device) if cfg.use_cache else None
    codes = torch.zeros(rows, n_image, dtype=torch.long, device=device)  # (rows, N), filled left to right
    kept_logprob = torch.zeros(B, dtype=torch.float32, device=device)
    start = 0
    if prompted:
        drawn_yet = torch.zeros(B, dtype=torch.bool, device=device)  # whether a row has drawn a code so far
        all_kept = keep.all(dim=0)
        start = n_image if bool(all_kept.all()) else int(all_kept.int().argmin())  # kept in every row
        codes[:, :start] = known[:, :start].repeat(rows // B, 1)
    stop = cfg.guidance_stops_at(n_image)
    per_image = codes.view(rows // B, B, n_image)  # each image's rows: a drawn code is written to them at once
    for i in range(start, n_image):
        if use_guidance and i >= stop:  # guidance stops: the unconditional and region rows leave the batch
            use_guidance, rows, text, codes = False, B, text[:B], codes[:B]
            per_image = codes.view(1, B, n_image)
            if cache is not None:
                cache.keep_rows(torch.arange(B, device=device))
        logits = model.image_logits(text, codes[:, :i], cache)  # (rows, V); the first call reads text + kept run
        if use_guidance:  # (rows, V) -> (B, V); the region rows sit between the prompts and the unconditional rows
            at = None if regions is None else regions.masks[:, :, i:i + 1]  # (R, B, 1)
            logits = _guided(logits[:, None], B, cfg, cfg.guidance_at(i, n_image), at)[:, 0]
        if not prompted:
            nxt = sample_next(logits, cfg, generator)  # (B,)
        else:
            keep_i = keep[:, i]
            nxt = known[:, i] if bool(keep_i.all()) else torch.where(keep_i, known[:, i],
                                                                      sample_next(logits, cfg, generator))
            scored = keep_i & drawn_yet
            if bool(scored.any()):
                logp = torch.log_softmax(logits.float(), dim=-1).gather(1, known[:, i:i + 1]).squeeze(1)
                kept_logprob += torch.where(scored, logp, torch.zeros_like(logp))
            drawn_yet |= ~keep_i
        per_image[:, :, i] = nxt  # every row of an image reads the code it drew (a view: no repeated copy)
        if progress is not None:
            progress(i + 1)
    if stats is not None:
        stats["passes"] = n_image - start
    return codes[:B], kept_logprob
