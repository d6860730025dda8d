"""`t2i eval --data SRC`: how well a weights folder models any data, measured on its validation split.

- dVAE: reconstruction PSNR from argmax codes (as at inference) and codebook use on the val images;
- transformer: cross-entropy of the val images' codes given their captions, in bits per code;
- generation: one image per val caption (seeded), or `draws` of them; the CLIP cosine of the generated images and
  of the real ones against the same captions (clip.safetensors' sentence-level embeddings alone: not the
  reranker's score, which adds the word-region term, the crops and clip-2), and two distances between the two
  sets in CLIP's image-embedding space: the Frechet distance (biased upward at small n, so only runs at the same
  --n compare) and the kernel distance (KID: an unbiased squared MMD, comparable across n). Both use t2i's own
  small CLIP, so they are NOT comparable with published FID or KID numbers (Inception features, 50,000
  images); they compare models on the same data and CLIP only.
"""

from __future__ import annotations

import math
import os
import random
import time
from typing import Any, Callable

import torch

from t2i_cli.data import CaptionDataset, open_source
from t2i_cli.errors import DataError, UsageError, said_value
from t2i_cli.models.dvae import code_usage, psnr
from t2i_cli.pipeline import (
    MAX_BATCH,
    Generated,
    TextToImage,
    guidance_stop_unused,
    refuse_greedy_copies,
    regional_unused,
)
from t2i_cli.sampling import SamplingConfig
from t2i_cli.sampling_config import MAX_PER_TASK, check_count, whole, whole_seed

EVAL_BATCH = 32  # val images read, encoded and embedded at a time


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Frechet distance between Gaussians fitted to two sets of embeddings (N, D) and (M, D)."""
    a, b = a.double(), b.double()
    mu = a.mean(0) - b.mean(0)
    sa, sb = torch.cov(a.T), torch.cov(b.T)
    # Tr sqrt(sa sb) = Tr sqrt(sa^1/2 sb sa^1/2), a symmetric PSD matrix: its square root through eigh.
    w, v = torch.linalg.eigh(sa)
    root = v @ torch.diag(w.clamp_min(0).sqrt()) @ v.T
    inner = torch.linalg.eigvalsh(root @ sb @ root).clamp_min(0).sqrt().sum()
    return float(mu @ mu + torch.trace(sa) + torch.trace(sb) - 2 * inner)


def kernel_distance(a: torch.Tensor, b: torch.Tensor, caption_of_b: torch.Tensor | None = None) -> float | None:
    """Kernel distance (KID, Binkowski et al. 2018) between two sets of embeddings (N, D) and (M, D): the unbiased
    estimate of the squared maximum mean discrepancy under the cubic polynomial kernel k(x, y) = (x.y / D + 1)^3.
    Its expectation is 0 for two samples of one distribution whatever N and M (the Frechet distance's grows as
    N falls); None under two of either. caption_of_b (M,): b[j] was drawn from the caption of a[caption_of_b[j]]
    (eval --data): such a pair, and two of b's drawn from one caption, are not independent draws, and are left
    out of the means (with them a perfect model scored below 0, by more at small N and with more draws)."""
    if len(a) < 2 or len(b) < 2:
        return None
    a, b = a.double(), b.double()
    d = a.shape[1]

    def k(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (x @ y.T / d + 1) ** 3

    def mean_where(values: torch.Tensor, keep: torch.Tensor) -> float | None:
        return float(values[keep].mean()) if bool(keep.any()) else None

    group_a = torch.arange(len(a))
    group_b = torch.arange(len(a), len(a) + len(b)) if caption_of_b is None else caption_of_b.long()
    terms = (mean_where(k(a, a), group_a[:, None] != group_a[None, :]),
             mean_where(k(b, b), (group_b[:, None] != group_b[None, :])),
             mean_where(k(a, b), group_a[:, None] != group_b[None, :]))
    if any(t is None for t in terms):  # (every drawn image of one caption, the only real one's)
        return None
    return terms[0] + terms[1] - 2 * terms[2]


# Student's t: the two-sided 95% quantile for 1..30 degrees of freedom (a val split is often a few pictures:
# 1.96 standard errors covered the mean 70% of the time at 2 pictures, 88% at 5: BENCHMARKS.md "How often `eval
# --data`'s 95% interval holds the mean")
T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
       2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def t95(df: int) -> float:
    """The two-sided 95% quantile of Student's t with df degrees of freedom (df >= 1): the table to 30, then the
    Cornish-Fisher expansion around 1.96 (within 0.001 of it from 30 on)."""
    if df <= len(T95):
        return T95[df - 1]
    z = 1.959964
    return z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df ** 2)


def interval(values: torch.Tensor) -> list[float] | None:
    """The 95% confidence interval [low, high] of the mean of independent measurements (N,): the mean -+ t
    standard errors, t Student's quantile for N - 1 degrees of freedom (12.7 at 2, 2.78 at 5, 2.05 at 30), or
    None under two of them. Of a measure over the val pictures it says how far another draw of as many pictures
    could move it (two models scored on the same pictures differ more surely than their two intervals say)."""
    if len(values) < 2:
        return None
    v = values.double()
    half = t95(len(v) - 1) * float(v.std()) / math.sqrt(len(v))
    return [float(v.mean()) - half, float(v.mean()) + half]


def caption_seed(seed: int, i: int) -> int:
    """The seed caption i of an `eval --data` run draws from (hashed, as the world eval's image_seed: seed s's
    caption i + 1 drew from s + 1's caption i, so two seeds' measurements shared all but one draw)."""
    return random.Random(f"t2i-eval-data:{seed}:{i}").randrange(2 ** 31)


def _val(source: str, side: int, checking: Callable[[int, int], None] | None = None) -> CaptionDataset:
    """The val split of a folder or manifest; of the world, the split a name gives (world:heldout), else val."""
    named_split = source.startswith("world:")
    if source == "world:train":  # its first scenes are the first every stage trained on
        raise UsageError("--data world:train would score scenes the models trained on; use world:val (what "
                         "--data world reads) or world:heldout")
    if named_split and source.partition(":")[2] not in ("val", "heldout"):  # world:train is refused above
        raise DataError(f"unknown world split {source.partition(':')[2]!r}; use world, world:val or world:heldout")
    val = open_source(source, side, part="all" if named_split else "val", n_scenes=10_000, checking=checking)
    if not len(val):
        raise DataError(f"{source} has no validation split (it needs at least two images); add images")
    return val


@torch.inference_mode()
def evaluate_data(pipe: TextToImage, source: str | os.PathLike, n: int, seed: int,
                  sampling: SamplingConfig = SamplingConfig(),
                  progress: Callable[[str, int, int], None] | None = None, draws: int = 1,
                  keep: Callable[[int, int, Generated], None] | None = None,
                  keep_real: Callable[[int, str, torch.Tensor, torch.Tensor, float, torch.Tensor], None] | None = None,
                  regional_asked: bool = False) -> dict[str, Any]:
    """Every measurement above on the val split of source, n val captions for generation, `draws` images drawn for each
    (1..MAX_BATCH, with n x draws at most MAX_PER_TASK, as `eval --data`'s; a small split's CLIP score and Frechet
    distance are steadier with more); the means and their 95% intervals, and each picture's own ("pictures": its file,
    caption, PSNR, bits and cosines). keep, if given, is called with each drawn image: keep(caption index, its seed, the
    Generated); keep_real with each val picture measured: keep_real(its index, its caption, the picture as the dVAE
    reads it (3, H, W), the dVAE's reconstruction from its argmax codes, their PSNR, those codes (grid * grid,)).
    regional_asked: `--regional` was given, so a weight above 0 that no val caption draws with is refused (it would
    change nothing)."""
    if (count := whole(draws)) is None or not 1 <= count <= MAX_BATCH:  # (1.5 and "2" were
        # raw TypeErrors, True refused as draw_each's n=True)
        raise ValueError(f"draws must be in 1..{MAX_BATCH}, got {said_value(draws)}")
    # (plain ints: numpy's np.int64 too; n at most `eval --n`'s bound, as the command refuses more)
    draws, n, seed = count, check_count(n, "n", MAX_PER_TASK, unit="val pictures"), whole_seed(seed)
    if n * draws > MAX_PER_TASK:  # the images drawn, bounded as `eval --data` bounds --n x --draws (n=10000,
        # draws=16 drew 160,000 images, where the command refuses past 10,000)
        raise ValueError(f"draws must be in 1..{MAX_BATCH}, with n x draws at most {MAX_PER_TASK}; got draws={draws} "
                         f"and n={n}")
    source = os.fspath(source)  # (a Path, as every other API takes a folder)
    start = time.perf_counter()
    b = pipe.bundle
    sampling.check_vocab(b.transformer.cfg.image_vocab)  # (a --top-k past the codebook: before any picture is read)
    if b.clip is not None:  # draws of one greedy image, refused as draws= before any picture is read (it was n=,
        # by draw_each, once every val picture was checked); a top_p at or below 1/codebook is greedy too
        refuse_greedy_copies(sampling, draws, name="draws", vocab=b.transformer.cfg.image_vocab)
    val = _val(source, b.dvae.cfg.image_side,
               None if progress is None else lambda done, total: progress("checking pictures", done, total))
    count = min(n, len(val))
    # draws: the images drawn per caption, 0 without a CLIP (nothing would measure them, so none is drawn)
    result: dict[str, Any] = {"source": source, "n": count, "val_size": len(val), "seed": seed,
                              "draws": draws if b.clip is not None else 0}
    if (skipped := val.skipped_message()) is not None:  # what of the source could not be used (as training says)
        result["skipped"] = skipped
    # Words the tokenizer did not learn whole, read as pieces or as unknown (the shipped world model scoring a user's
    # photos): its scores then say how little it reads of these captions, which the user should know before reading
    # them as a model's quality.
    unknown = [w for i in range(count) for c in val.captions_at(i)
               for w in b.tokenizer.encode(c, pipe.text_len).unknown_words]
    if unknown:
        result["unknown_words"] = {"words": len(unknown), "examples": list(dict.fromkeys(unknown))[:5]}
    clip = b.clip
    asked = (regional_asked and sampling.regional > 0) or (sampling.guidance_stop is not None and not sampling.guided)
    regions = clip is not None and asked and any(
        pipe.request(c, sampling, warn=False).regions for i in range(count) for c in val.captions_at(i))
    if clip is not None and sampling.guidance_stop is not None and not sampling.guided and not regions:
        # as generate refuses it, before any picture is read: there is nothing it would stop
        raise guidance_stop_unused(sampling.guidance_stop, "no val caption draws")
    if clip is not None and regional_asked and sampling.regional > 0 and not regions:
        raise regional_unused(sampling.regional, "no val caption has such a pair")  # (before any picture is read)
    if clip is not None:
        side = clip.cfg.image_side
        fit = lambda t: torch.nn.functional.interpolate(t, size=(side, side), mode="area") \
            if t.shape[-1] != side else t  # noqa: E731

    # The val images a batch at a time (--n 10,000 held every image, real and drawn, 20,000 pictures, and embedded
    # them in one batch): their codes, PSNR and CLIP embeddings are kept, not the pictures.
    captions: list[str] = []
    codes, psnrs, real_emb, txt_emb = [], [], [], []
    batch = min(pipe.fit(EVAL_BATCH), pipe.score_fit(EVAL_BATCH))  # fewer for a large model (DECODE_MEMORY)
    for lo in range(0, count, batch):
        part = [val[i] for i in range(lo, min(count, lo + batch))]  # (image (3, H, W) in [0, 1], caption)
        x = torch.stack([im for im, _ in part]).to(pipe.device)
        captions += [c for _, c in part]
        c = b.dvae.codes_from_image(x)
        recon = b.dvae.image_from_codes(c)
        psnrs.append(psnr(recon, x).cpu())
        if keep_real is not None:
            for j, (_, caption) in enumerate(part):
                keep_real(lo + j, caption, x[j], recon[j], float(psnrs[-1][j]), c[j].flatten().cpu())
        codes.append(c.flatten(1).cpu())
        if clip is not None:
            text = torch.tensor([b.tokenizer.encode(cap, clip.cfg.text_len).ids for _, cap in part],
                                device=pipe.device)
            img, txt = clip.embed(fit(x), text)
            real_emb.append(img.cpu())
            txt_emb.append(txt.cpu())
        if progress is not None:
            progress("val images", lo + len(part), count)
    flat = torch.cat(codes)
    perplexity, used = code_usage(flat, b.dvae.cfg.n_codes)
    per_psnr = torch.cat(psnrs).double()  # (the mean of float32s in float32 was off its rows by 1e-8)
    result["dvae"] = {"psnr": float(per_psnr.mean()), "psnr_ci95": interval(per_psnr), "perplexity": perplexity,
                      "codes_used": used, "n_codes": b.dvae.cfg.n_codes}  # (the table said "227", of how many unsaid)

    # each val picture's bits per code under its caption, as `rerank --bits` reads them (every picture has as many
    # codes: the mean of theirs is the whole's)
    per_bits = torch.cat([pipe.bits(captions[lo:lo + batch], flat[lo:lo + batch], warn=False).double().mean(1)
                          for lo in range(0, count, batch)])
    result["transformer"] = {"bits_per_code": float(per_bits.mean()), "bits_per_code_ci95": interval(per_bits)}

    fake_emb, per = [], max(1, pipe.fit(MAX_BATCH) // draws)
    for lo in range(0, count if clip is not None else 0, per):  # without a CLIP nothing measures the drawn images
        # (many captions in one decode, each from its own seed)
        part = captions[lo:lo + per]
        seeds = [caption_seed(seed, lo + i) for i in range(len(part))]
        drawn = pipe.draw_each([pipe.request(c, sampling, warn=False) for c in part], seeds, draws)
        if keep is not None:
            for j, g in enumerate(drawn):
                keep(lo + j // draws, seeds[j // draws], g)
        # (caption-major: caption i's draws at i * draws ..., compared below with their caption's text embedding)
        drawn_images, at_once = torch.stack([g.image for g in drawn]), pipe.score_fit(len(drawn))  # (a large CLIP)
        fake_emb += [clip.embed_images(fit(drawn_images[i:i + at_once].to(pipe.device))).cpu()
                     for i in range(0, len(drawn), at_once)]
        if progress is not None:
            progress("generate", (lo + len(part)) * draws, count * draws)
    if clip is not None:
        real_img, txt, fake_img = torch.cat(real_emb), torch.cat(txt_emb), torch.cat(fake_emb)
        fake_txt = txt.repeat_interleave(draws, dim=0)  # each generated image against its own caption
        # (a caption's draws are not independent measurements: its mean is one, for the interval)
        per_caption = (fake_img * fake_txt).sum(-1).double().reshape(count, draws).mean(1)
        per_real = (real_img * txt).sum(-1).double()
        result["clip"] = {"score_generated": float(per_caption.mean()), "score_generated_ci95": interval(per_caption),
                          "score_real": float(per_real.mean()), "score_real_ci95": interval(per_real),
                          "frechet_distance": frechet_distance(real_img, fake_img)
                          if count >= 2 else None,  # a covariance needs two images: not measured (JSON null)
                          "kernel_distance": kernel_distance(real_img, fake_img,
                                                             torch.arange(count).repeat_interleave(draws)),
                          "embedding_dim": real_img.shape[1]}
        result["clip_score"] = ("the cosine of clip.safetensors' sentence-level text and image embeddings (not the "
                                "reranker's score)")
    # each val picture's own measurements, to find the pictures a mean hides (the worst PSNR, a caption the model
    # reads little of): the file it was read from, the caption measured and (with a CLIP) its drawings' mean cosine
    result["pictures"] = [{"index": i, "file": val.file_of(i), "caption": captions[i], "psnr": float(per_psnr[i]),
                           "bits_per_code": float(per_bits[i])}
                          | ({"score_real": float(per_real[i]), "score_generated": float(per_caption[i])}
                             if clip is not None else {})
                          for i in range(count)]
    result["seconds"] = time.perf_counter() - start
    return result
