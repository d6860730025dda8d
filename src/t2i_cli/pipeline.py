"""TextToImage: the one place where tokenizer, transformer, dVAE and CLIP meet."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

import torch

from t2i_cli.devices import native_bf16, resolve_device
from t2i_cli.errors import PromptWarning, UsageError, option, said_value, warn_caller
from t2i_cli.models.dvae import check_images
from t2i_cli.models.tokenizer import Encoded
from t2i_cli.prompt_file import check_negative
from t2i_cli.sampling import Regions, SamplingConfig, draw_codes, refuse_greedy_copies, region_mask
from t2i_cli.sampling_config import MAX_IMAGES, PRECISIONS, check_count, int8_off_cpu, whole, whole_seed
from t2i_cli.weights import Bundle, load_folder
from t2i_cli.world.captions import object_prompts, region_prompts

if TYPE_CHECKING:
    from t2i_cli.image_prompt import ImagePrompt

# The transformer's inference weights: bf16 streams half the bytes per code, int8 (weight-only, one scale per
# output channel, bf16 activations; CPU only) a quarter. (PRECISIONS lives in the torch-free sampling_config.)
# --precision auto: the fastest format whose `t2i eval` overall stays within 1 point of fp32 on both seeds
# (BENCHMARKS.md, "The KV cache of bf16 and int8 on the CPU"): bf16 on the CPU, 75.7 / 76.3% against
# 75.7 / 75.4%, faster than int8 at the default best of 4, at 16 images and with --jacobi (int8 is faster
# only for one image without Jacobi, 0.63 against 0.76 s); on a GPU, where no other format was measured, fp32.
# Measured on a CPU with AVX-512 BF16. One without native bf16 arithmetic (AVX2 only) emulates it: there int8
# (bf16 activations, a quarter of the weight bytes) is the fastest, 2.3x / 1.6x / 1.1x fp32 at 1 / 4 / 16
# images, and plain bf16 the slowest at 4 and 16 (BENCHMARKS.md, "--precision on a CPU without native bf16").
AUTO_PRECISION = {"cpu": "bf16"}

# `t2i rerank --precision` is the CLIP's: fp32 or bf16 (its work is convolutions; int8 covers only the
# transformer's linear layers). auto: see BENCHMARKS.md, "rerank --precision".
CLIP_PRECISIONS = ("fp32", "bf16")
AUTO_CLIP_PRECISION = {"cpu": "bf16"}  # 1.7-2x fp32 with native bf16, the same hard-negative accuracy (BENCHMARKS.md)
MAX_BATCH = 16  # images decoded together; bounds memory whatever --n is
MAX_EVAL_BATCH = 32  # images `t2i eval` may decode together (world.evaluate.decode_batch; 1.12x faster than 16)
# ... and fewer where a model's fp32 state for that many images would pass DECODE_MEMORY (TextToImage.fit): a
# weights file's config bounds each image's state (weights.MAX_ACTIVATION_BYTES), this bounds a batch's. The
# shipped model takes 50 MiB an image (ROWS_PER_IMAGE rows of KV cache, each with Jacobi's slack), 1.6 GiB for eval's
# 32, so its batches are never cut; a model's row must pass 32 MiB before 32 are cut here, 64 MiB before 16 are
# (`t2i eval` asks for 32 only where world.evaluate.decode_batch finds 4 rows of each within 1 GiB, 8 MiB a row).
DECODE_MEMORY = 4 << 30
ROWS_PER_IMAGE = 4  # decode rows an image may take: its prompt, guidance's row and two region prompts
# The reranker's score of a two-object prompt in the world's grammar adds this times the mean of each object's
# crop score: the CLIP's score of the half of the picture the object belongs in against the object's own
# caption (world.captions.object_prompts). BENCHMARKS.md, "Reranking by regions".
CROP_SCORE_WEIGHT = 0.5


def auto_precision(device: torch.device) -> str:
    """What --precision auto means on this device (AUTO_PRECISION; int8 on a CPU without native bf16)."""
    return _auto(AUTO_PRECISION, device, without_native_bf16="int8")


def auto_clip_precision(device: torch.device) -> str:
    """What `rerank --precision auto` means on this device (AUTO_CLIP_PRECISION; fp32 on a CPU without native
    bf16, where emulated bf16 convolutions took 14.6x as long as fp32, BENCHMARKS.md)."""
    return _auto(AUTO_CLIP_PRECISION, device, without_native_bf16="fp32")


def _auto(table: dict[str, str], device: torch.device, without_native_bf16: str) -> str:
    """The table's format for this device type (fp32 where it has none); a CPU bf16 entry becomes
    without_native_bf16 on a CPU that would only emulate bf16."""
    precision = table.get(device.type, "fp32")
    if device.type == "cpu" and precision == "bf16" and not native_bf16():
        return without_native_bf16
    return precision


def regional_unused(weight: float, which: str) -> UsageError:
    """The refusal of --regional W (above 0) where no prompt draws regional guidance: it would draw exactly as
    without it (README), and said nothing. which: "this prompt has no such pair", "no prompt of the file has such a
    pair", "no val caption has such a pair"."""
    return UsageError(f"{option('regional', float(weight))} guides the two objects of a prompt in the world's grammar "
                      f"(\"a red bird and a blue fish\", \"... above ...\"), and {which} whose words the model reads "
                      f"whole, so it would draw exactly as without it; leave {option('regional')} out")


def guidance_stop_unused(stop: float, which: str) -> UsageError:
    """The refusal of --guidance-stop F beside --guidance 1 where no prompt draws regional guidance: it has
    nothing to stop. which: "this prompt draws no", "no prompt of the file draws", "no val caption draws". (Named
    as the caller named them: evaluate_data's Python caller passed guidance_stop=0.5, not --guidance-stop.)"""
    return UsageError(f"{option('guidance_stop', float(stop))} has nothing to stop: {option('guidance', 1)} turns "
                      f"guidance off, and {which} regional guidance (only a prompt of two objects in the world's "
                      f"grammar, whose words the model knows, draws it); leave {option('guidance_stop')} out, or "
                      f"give a {option('guidance')} above 1")


def batch_seed(seed: int, start: int) -> int:
    """The generator seed of the batch whose first image has index `start`: each batch draws from its own
    generator, so `--from` redraws one image by decoding only its batch."""
    if start == 0:
        return seed
    digest = hashlib.sha256(f"t2i-batch:{seed}:{start}".encode()).digest()  # no (seed, start) lands on another seed
    return int.from_bytes(digest[:8], "big") % 2**63


@dataclass
class Generated:
    """One generated image and how it was made."""

    image: torch.Tensor  # (3, H, W) in [0, 1]
    prompt: str  # the prompt as the user gave it
    index: int  # position among the images drawn for this prompt and seed
    score: float | None = None  # CLIP score, when reranked
    rank: int | None = None  # 1 = best, when reranked
    fit: float | None = None  # image prompts: mean log-probability (nats) of the kept codes after a drawn one
    # (None without an image prompt, or where no kept code follows a drawn one: `complete` keeps the top rows)
    codes: torch.Tensor | None = None  # (grid * grid,) the image codes it was decoded from


@dataclass(frozen=True)
class Request:
    """A prompt encoded once and sampling settings checked once against the model (TextToImage.request)."""

    prompt: str  # the prompt as the user gave it
    encoded: Encoded  # its token ids, and what was dropped or unknown (callers warn about those)
    sampling: SamplingConfig  # valid for this model's codebook
    negative: str | None = None  # what guidance pushes away from instead of the empty prompt
    negative_encoded: Encoded | None = None
    regions: tuple[tuple[str, str], ...] = ()  # regional guidance: (region prompt, place) for each object
    regions_encoded: tuple[Encoded, ...] = ()


def check_count_and_seed(n: object, seed: object) -> tuple[int, int]:
    """Refuse a count of images that is not a whole number of 1 or more (n=-1 drew nothing, without a word; n=0
    returned [], where `--n 0` is refused) and a seed that a torch.Generator does not take (1.5: a raw torch
    error); return them as plain ints (numpy's too: sampling_config.whole). n is at most MAX_IMAGES, --n's bound
    (n=10**5000 drew on for ever, holding every image, where the command line stops at 256)."""
    return (check_count(n, "n", MAX_IMAGES, UsageError, "images", " a call (as --n)",
                        "; draw more in several calls, each with its own seed"), whole_seed(seed, UsageError))


def check_progress(progress: object) -> None:
    """progress is None or a function of the codes drawn so far: an image prompt given in its place (batches'
    fourth parameter, __call__'s fifth) failed at the first code as "'ImagePrompt' object is not callable"."""
    if progress is not None and not callable(progress):
        hint = "; give an image prompt as image=..." if type(progress).__name__ == "ImagePrompt" else ""
        raise UsageError(f"progress must be a function of the codes drawn so far, or None; got "
                         f"{type(progress).__name__}{hint}")


class TextToImage:
    """Load a weights folder once, then turn prompts into images."""

    def __init__(self, bundle: Bundle, device: torch.device):
        self.bundle = bundle
        self.device = device
        self.precision = "fp32"  # of the transformer's weights (from_folder's precision)
        self.decoder_precision = "fp32"  # of the dVAE's decoder (bf16 beside a bf16 or int8 transformer on a CPU
        # with native bf16)

    @classmethod
    def from_folder(cls, folder: Path, device: str | torch.device = "auto", need_clip: bool = False,
                    precision: str = "fp32", clip_precision: str = "fp32") -> "TextToImage":
        """Load every model of a weights folder onto a device; precision bf16 casts the transformer (the
        decode loop's weights) to bfloat16 at load (on the CPU with oneDNN-packed linear layers, models.
        transformer.pack_bf16), int8 quantises its linear layers (models.transformer.quantize_int8). With
        either, on a CPU with native bf16 the dVAE's decoder runs in bf16 too (DVAE.decode_in; 5x faster with
        AMX, BENCHMARKS.md "The dVAE decoder in bf16"); fp32 keeps every model in fp32, and the dVAE's encoder
        always is. clip_precision bf16 casts the CLIP (`rerank --precision`)."""
        if precision not in (*PRECISIONS, "auto"):
            raise UsageError(f"{option('precision')} must be one of auto, {', '.join(PRECISIONS)}, got {precision!r}")
        if clip_precision not in (*CLIP_PRECISIONS, "auto"):
            hint = "; int8 quantises the transformer, which rerank does not run" if clip_precision == "int8" else ""
            raise UsageError(f"{option('clip_precision', cli='--precision')} of the CLIP must be auto, fp32 or bf16, "
                             f"got {clip_precision!r}{hint}")
        dev = resolve_device(device)
        if clip_precision == "auto":
            clip_precision = auto_clip_precision(dev)
        if precision == "auto":
            precision = auto_precision(dev)
        if precision == "int8" and dev.type != "cpu":
            raise int8_off_cpu()
        bf16_decoder = precision in ("bf16", "int8") and dev.type == "cpu" and native_bf16()
        # Each model that runs in bf16 is read into bf16 straight from the file (the casts below then have
        # nothing left to convert): no fp32 copy on the way, about 60 MB less at the peak of loading.
        bf16 = torch.bfloat16
        casts = {"transformer": {"": bf16} if precision == "bf16" else {},
                 "dvae": {"decoder.": bf16, "codebook.": bf16} if bf16_decoder else {},
                 "clip": {"": bf16} if clip_precision == "bf16" else {}}
        pipe = cls(load_folder(folder, dev, need_clip=need_clip, casts=casts), dev)
        pipe.precision = precision
        if precision == "bf16" and dev.type == "cpu":
            from t2i_cli.models.transformer import pack_bf16

            pack_bf16(pipe.bundle.transformer)
        elif precision == "bf16":
            pipe.bundle.transformer.to(torch.bfloat16)
        elif precision == "int8":
            from t2i_cli.models.transformer import quantize_int8

            quantize_int8(pipe.bundle.transformer)
        if bf16_decoder:
            pipe.bundle.dvae.decode_in(torch.bfloat16)
            pipe.decoder_precision = "bf16"
        if clip_precision == "bf16":
            for clip in pipe.bundle.clips:
                clip.to(torch.bfloat16)
        return pipe

    @property
    def text_len(self) -> int:
        return self.bundle.transformer.cfg.text_len

    def request(self, prompt: str, sampling: SamplingConfig = SamplingConfig(), negative: str | None = None,
                warn: bool = True) -> Request:
        """Encode a prompt (and a negative prompt) to the model's text length and check the sampling settings
        against the model. warn: a PromptWarning where the model loses words of it (past its text length, or
        unknown to its tokenizer; request.encoded says which), for a caller that does not count them itself."""
        if not isinstance(prompt, str) or not (negative is None or isinstance(negative, str)):
            what, value = ("prompt", prompt) if not isinstance(prompt, str) else ("negative", negative)
            raise UsageError(f"the {what} must be a str, got {type(value).__name__} (one prompt a call; several: "
                             f"draw_each)")
        if not isinstance(sampling, SamplingConfig):
            raise UsageError(f"sampling must be a SamplingConfig, got {type(sampling).__name__}")
        sampling.check_vocab(self.bundle.transformer.cfg.image_vocab)
        check_negative(negative, sampling)
        neg = None if negative is None else self.bundle.tokenizer.encode(negative, self.text_len)
        regions: tuple[tuple[str, str], ...] = ()
        encoded: tuple[Encoded, ...] = ()
        if sampling.regional > 0 and (found := region_prompts(prompt)):
            # Only where the model reads every word of each region prompt whole (not a folder trained on other
            # captions, which may not know "left"): otherwise the prompt decodes without regions.
            enc = tuple(self.bundle.tokenizer.encode(text, self.text_len) for text, _ in found)
            if not any(e.n_dropped or e.unknown_words for e in enc):
                regions, encoded = tuple(found), enc
        request = Request(prompt, self.bundle.tokenizer.encode(prompt, self.text_len), sampling, negative, neg,
                          regions, encoded)
        for what, enc in (("the prompt", request.encoded), ("the negative prompt", neg)):
            if warn and enc is not None and (enc.n_dropped or enc.unknown_words):
                lost = [f"its last {enc.n_dropped} tokens are past the model's {self.text_len} and dropped"] \
                    if enc.n_dropped else []
                if enc.unknown_words:
                    lost.append(f"the tokenizer does not know {', '.join(map(repr, enc.unknown_words))} (the model "
                                f"saw them rarely or never in training)")
                warn_caller(f"{what} {(prompt if enc is request.encoded else negative)!r}: {'; '.join(lost)}",
                            PromptWarning)
        return request

    def _regions(self, requests: list[Request], k: int) -> Regions | None:
        """Regional guidance for the rows of requests, k rows each (None when no request has regions): a
        request without them repeats its own prompt under a zero mask."""
        R = max(len(r.regions) for r in requests)
        if R == 0:
            return None
        grid, n_image = self.bundle.transformer.cfg.grid, self.bundle.transformer.cfg.n_image
        ids = [[r.regions_encoded[j].ids if j < len(r.regions) else r.encoded.ids for r in requests]
               for j in range(R)]
        masks = [[region_mask(r.regions[j][1], grid) if j < len(r.regions) else torch.zeros(n_image)
                  for r in requests] for j in range(R)]
        return Regions(torch.tensor(ids, device=self.device), torch.stack([torch.stack(m) for m in masks])
                       .to(self.device)).expand(k)

    def __call__(self, prompt: str, n: int = 1, seed: int = 0, sampling: SamplingConfig = SamplingConfig(),
                 progress: Callable[[int], None] | None = None, image: ImagePrompt | None = None) -> list[Generated]:
        """Draw n images for one prompt (keeping an image prompt's codes where given: image_prompt.build); the
        same seed and settings give the same images."""
        return [g for batch in self.batches(self.request(prompt, sampling), n, seed, progress, image) for g in batch]

    def image_bytes(self) -> int:
        """A bound on the fp32 state one image takes in a decode batch: ROWS_PER_IMAGE rows of the transformer's
        KV cache (each its whole block and Jacobi's slack), or the dVAE's activations for it. (Not the CLIP's: a
        batch's images are drawn from its own seed, and a reranker added to a folder must not change them.)"""
        t = self.bundle.transformer.cfg
        kv = 4 * 2 * t.n_layer * (t.block_size + t.n_image) * t.n_embd * ROWS_PER_IMAGE
        return max(kv, self.bundle.dvae.cfg.activation_bytes())

    def fit(self, most: int, rows: int = 1) -> int:
        """Images of `rows` decode rows each (image prompts' --redraws) that one batch may take: at most `most`,
        and no more than DECODE_MEMORY holds (at least one)."""
        return max(1, min(most, DECODE_MEMORY // (self.image_bytes() * rows)))

    def score_fit(self, most: int) -> int:
        """Images a CLIP scores at a time: at most `most`, and no more than DECODE_MEMORY of the largest
        reranker's fp32 activations hold (at least one)."""
        clip = max((c.cfg.activation_bytes() for c in self.bundle.clips), default=1)
        return max(1, min(most, DECODE_MEMORY // clip))

    def per_batch(self, image: ImagePrompt | None = None) -> int:
        """Images per batch: MAX_BATCH rows, each image taking `redraws` of them, as DECODE_MEMORY allows."""
        k = 1
        if image is not None:
            self._check_image(image)
            k = image.redraws
        return self.fit(max(1, MAX_BATCH // k), k)

    def kept_by_all(self, image: ImagePrompt, n: int, seed: int) -> torch.Tensor:
        """(N,) bools: the cells that each of the n images this seed draws keeps from the image prompt (vary's random
        cells drawn as _batch draws them, first from each batch's generator), on the CPU."""
        n, seed = check_count_and_seed(n, seed)
        per = self.per_batch(image)
        keep = torch.ones(image.codes.numel(), dtype=torch.bool)
        for start in range(0, n, per):
            gen = torch.Generator(device=self.device).manual_seed(batch_seed(seed, start))
            keep &= image.keep_masks(min(per, n - start), gen).all(dim=0).cpu()
        return keep

    def _check_image(self, image: ImagePrompt) -> None:
        """An image prompt's codes are this model's: its grid's N codes, each in its dVAE's codebook."""
        from t2i_cli.image_prompt import ImagePrompt

        if not isinstance(image, ImagePrompt):  # (a picture's path or tensor: image_prompt.build makes one)
            raise UsageError(f"image must be an ImagePrompt (image_prompt.build(pipe.bundle.dvae, PATH, ...)), got "
                             f"{type(image).__name__}")
        n, n_codes = self.bundle.transformer.cfg.n_image, self.bundle.dvae.cfg.n_codes
        if image.codes.numel() != n:
            raise UsageError(f"the image prompt has {image.codes.numel()} codes and this model draws {n} (its "
                             f"{self.bundle.transformer.cfg.grid}x{self.bundle.transformer.cfg.grid} grid); make "
                             f"them with this model's dVAE")
        lo, hi = (int(v) for v in image.codes.aminmax())
        if lo < 0 or hi >= n_codes:
            raise UsageError(f"the image prompt's codes run {lo}..{hi} and this model's codebook holds "
                             f"0..{n_codes - 1}; make them with this model's dVAE")

    def batches(self, request: Request, n: int, seed: int, progress: Callable[[int], None] | None = None,
                image: ImagePrompt | None = None) -> Iterator[list[Generated]]:
        """Yield the n images in batches of at most MAX_BATCH rows, so callers can save each batch at once."""
        n, seed = check_count_and_seed(n, seed)
        check_progress(progress)
        per = self.per_batch(image)  # (checks the image prompt)
        refuse_greedy_copies(request.sampling, n, image, vocab=self.bundle.transformer.cfg.image_vocab)
        for start in range(0, n, per):
            b = min(per, n - start)
            tick = (lambda k, d=start * self.bundle.transformer.cfg.n_image, b=b: progress(d + k * b)) \
                if progress else None
            yield self._batch(request, start, b, seed, image, tick)

    def draw_each(self, requests: list[Request], seeds: list[int], n: int = 1, batch: int = MAX_BATCH,
                  ) -> list[Generated]:
        """n images per request (request-major), request i's drawn from one generator seeded with seeds[i],
        decoded `batch` images (MAX_BATCH by default; up to MAX_EVAL_BATCH) at a time: the images of request i
        are those of `batches(requests[i], n, seeds[i])` (up to the float rounding of a larger matrix
        product), for many prompts at the cost of a batch. (A request's n rows share its generator and draw in
        one call, as in a batch of their own: sampling._runs; tested.)"""
        # (UsageErrors, as every refusal of the API: a ValueError here reached `t2i eval`'s user as an internal error)
        if (given := whole(batch)) is None or not 1 <= given <= MAX_EVAL_BATCH:
            raise UsageError(f"draw_each decodes 1..{MAX_EVAL_BATCH} images at a time, got batch={said_value(batch)}")
        batch = given
        if isinstance(requests, Request) or not all(isinstance(r, Request) for r in requests):
            raise UsageError("draw_each takes a list of requests (pipe.request(prompt, sampling)), one per seed")
        if len(requests) != len(seeds):
            raise UsageError(f"draw_each takes one seed per request; got {len(requests)} requests and {len(seeds)} "
                             f"seeds")
        if not requests:  # (it returned [] silently: as n=0 is refused here, and by pipe(prompt, n=0), and rerank([]))
            raise UsageError("draw_each needs at least one request (it draws n images for each)")
        seeds = [check_count_and_seed(1, seed)[1] for seed in seeds]
        if len({r.sampling for r in requests}) > 1:
            raise UsageError("draw_each needs one sampling setting for every request")
        if (count := whole(n)) is None or not 1 <= count <= MAX_BATCH:
            raise UsageError(f"draw_each draws 1..{MAX_BATCH} images per request, got n={said_value(n)}")
        n = count
        refuse_greedy_copies(requests[0].sampling, n, vocab=self.bundle.transformer.cfg.image_vocab)
        cfg, empty = self.bundle.transformer.cfg, self.bundle.tokenizer.empty(self.text_len)
        batch = self.fit(batch)
        if n > batch:  # a request's n images do not fit one decode (a large model): as batches() draws them
            return [g for r, s in zip(requests, seeds, strict=True) for part in self.batches(r, n, s) for g in part]
        out: list[Generated] = []
        # Requests per decode (with Jacobi decoding too: each image moves at its own pace and a request's rows
        # draw from its own generator alone, sampling._jacobi_codes).
        per = max(1, batch // n)
        for lo in range(0, len(requests), per):
            part = requests[lo:lo + per]
            gens = [g for s in seeds[lo:lo + per]
                    for g in [torch.Generator(device=self.device).manual_seed(batch_seed(s, 0))] * n]
            ids = torch.tensor([r.encoded.ids for r in part for _ in range(n)], device=self.device)
            uncond = torch.tensor([r.negative_encoded.ids if r.negative_encoded else empty
                                   for r in part for _ in range(n)], device=self.device)
            with torch.inference_mode():
                codes, _ = draw_codes(self.bundle.transformer, ids, uncond, part[0].sampling, gens,
                                      regions=self._regions(part, n))
                images = self.bundle.dvae.image_from_codes(codes.view(len(gens), cfg.grid, cfg.grid)).float().cpu()
            images, codes = images.clone(), codes.cpu().clone()  # (out of inference mode, as _batch's)
            out += [Generated(images[i * n + j], r.prompt, j, codes=codes[i * n + j]) for i, r in enumerate(part)
                    for j in range(n)]
        return out

    def redraw(self, request: Request, n: int, seed: int, index: int, image: ImagePrompt | None = None,
               progress: Callable[[int], None] | None = None) -> Generated:
        """Image `index` of the n drawn with this seed, decoding only its batch (the same pixels). A seed outside
        0..2**63-1, or an n or index that is no whole number, is refused as batches refuses it (a seed of -1 was drawn
        from, an image batches never draws; index True was image 1)."""
        n, seed = check_count_and_seed(n, seed)
        if (number := whole(index)) is None or not 0 <= number < n:
            raise UsageError(f"index {said_value(index)} is not among the {n} images drawn")
        index = number
        check_progress(progress)
        per = self.per_batch(image)
        start = index // per * per
        return self._batch(request, start, min(per, n - start), seed, image, progress)[index - start]

    def _batch(self, request: Request, start: int, b: int, seed: int, image: ImagePrompt | None,
               progress: Callable[[int], None] | None) -> list[Generated]:
        """Images start..start+b-1: one decode of b (times redraws) rows from the batch's own generator."""
        cfg = self.bundle.transformer.cfg
        gen = torch.Generator(device=self.device).manual_seed(batch_seed(seed, start))
        ids = torch.tensor(request.encoded.ids, device=self.device)
        neg = request.negative_encoded
        uncond = torch.tensor(neg.ids if neg else self.bundle.tokenizer.empty(self.text_len), device=self.device)
        k = image.redraws if image is not None else 1
        known = keep = None
        if image is not None:
            keep = image.keep_masks(b, gen).repeat_interleave(k, dim=0)  # (b * k, N)
            known = image.codes.to(self.device).view(1, -1).expand(b * k, -1)
        with torch.inference_mode():
            codes, logprob = draw_codes(self.bundle.transformer, ids.expand(b * k, -1), uncond, request.sampling,
                                        gen, progress, known, keep, regions=self._regions([request], b * k))
            fit = None
            if image is not None:
                follow = _kept_after_drawn(keep)  # (b * k,) kept codes the log-probability sums over
                fit = (logprob / follow.clamp(min=1)).view(b, k)
                best = fit.argmax(dim=1)  # the first of equal fits
                codes = codes.view(b, k, -1)[torch.arange(b), best]
                # (None where no kept code follows a drawn one, as when the top rows are kept: nothing measured)
                fit = [f if n else None for f, n in zip(fit[torch.arange(b), best].tolist(),
                                                         follow.view(b, k)[torch.arange(b), best].tolist(),
                                                         strict=True)]
            images = self.bundle.dvae.image_from_codes(codes.view(b, cfg.grid, cfg.grid)).float().cpu()
        # (copied out of inference mode: a caller's own autograd, or an in-place edit, may use them)
        images, codes = images.clone(), codes.reshape(b, -1).cpu().clone()
        return [Generated(images[i], request.prompt, start + i, fit=None if fit is None else fit[i], codes=codes[i])
                for i in range(b)]

    def bits(self, prompts: list[str], codes: torch.Tensor, warn: bool = True) -> torch.Tensor:
        """Each code's bits under the transformer (B, N): -log2 p(code | its prompt, the codes before it), the
        logits in float32, for codes (B, N) in raster order as Generated.codes give them, or (B, grid, grid) as the
        dVAE's codes_from_image gives them (the same (B, N) out); one prompt per row. `rerank --bits` is their mean per
        picture. In the transformer's own format (the pipeline's --precision; fp32 by default). warn: as request's."""
        import math

        n_image, vocab = self.bundle.transformer.cfg.n_image, self.bundle.transformer.cfg.image_vocab
        grid = self.bundle.transformer.cfg.grid
        if isinstance(prompts, str):  # ("ab": the prompts "a" and "b")
            raise UsageError(f"bits takes a list of prompts, one per row of codes; got a str (for one prompt: "
                             f"[{prompts!r}])")
        if (odd := next((p for p in prompts if not isinstance(p, str)), None)) is not None:
            raise UsageError(f"bits takes a list of prompts (str), one per row of codes; it holds an item of type "
                             f"{type(odd).__name__}")
        if not isinstance(codes, torch.Tensor):  # (a list: "'list' object has no attribute 'dim'")
            raise UsageError(f"codes must be a tensor (B, {n_image}) or (B, {grid}, {grid}), got "
                             f"{type(codes).__name__} (torch.tensor(codes))")
        if codes.dim() == 3 and tuple(codes.shape[1:]) == (grid, grid):  # (codes_from_image's, as the dVAE takes)
            codes = codes.flatten(1)
        if codes.dim() != 2 or codes.shape[1] != n_image or len(prompts) != codes.shape[0]:
            raise UsageError(f"bits takes one prompt per row of codes (B, {n_image}) or (B, {grid}, {grid}); got "
                             f"{len(prompts)} prompts and codes of shape {tuple(codes.shape)}")
        if codes.dtype.is_floating_point or codes.dtype.is_complex or codes.dtype == torch.bool \
                or codes.numel() and not (0 <= int(codes.min()) and int(codes.max()) < vocab):  # (bools were 0/1)
            raise UsageError(f"codes must be integers in 0..{vocab - 1}, the codebook of this model")
        if not len(prompts):
            return torch.zeros(0, n_image)
        codes = codes.long().to(self.device)
        text = torch.tensor([self.request(p, warn=warn).encoded.ids for p in prompts], device=self.device)
        with torch.inference_mode():
            logits, _ = self.bundle.transformer(text, codes)
            nats = torch.nn.functional.cross_entropy(logits.float().transpose(1, 2), codes, reduction="none")
        return (nats / math.log(2)).cpu().clone()  # (out of inference mode: a plain tensor)

    def score(self, images: torch.Tensor, prompt: str, objects: list[tuple[str, str]] | None = None) -> torch.Tensor:
        """CLIP scores (B,) of images (B, 3, H, W) against one prompt; for two objects in the world's grammar,
        plus CROP_SCORE_WEIGHT x the mean of the objects' crop scores (objects: those crops' (text, place), in
        place of the ones the prompt parses to: rerank --explain holds them when a word's removal unparses it).
        With a second reranker in the folder (weights.SECOND_CLIP), the mean of the two CLIPs' scores. An object
        whose text the CLIP does not read whole adds no crop score, as a prompt's own objects do not. The scores
        are a plain tensor (copied out of inference mode, as the images and bits are: `scores -= scores.mean()` was
        "Inplace update to inference tensor outside InferenceMode is not allowed")."""
        return self._score(images, prompt, objects).clone()

    @torch.inference_mode()
    def _score(self, images: torch.Tensor, prompt: str, objects: list[tuple[str, str]] | None = None) -> torch.Tensor:
        """score's work, in inference mode."""
        from t2i_cli.world.render import PLACE_BOXES

        clip = self.bundle.clip
        if clip is None:
            raise UsageError(f"{self.bundle.folder} has no clip.safetensors; reranking needs a CLIP model")
        if not isinstance(prompt, str):
            raise UsageError(f"score takes one prompt (a str), got {type(prompt).__name__}")
        if objects is not None and (not isinstance(objects, (list, tuple)) or not all(
                isinstance(o, (list, tuple)) and len(o) == 2 and all(isinstance(v, str) for v in o)
                and o[1] in PLACE_BOXES for o in objects)):  # (a place of another name: KeyError 'middle'; one
            # pair alone, ("a red bird", "left"): "too many values to unpack")
            raise UsageError(f"objects must be a list of (text, place) pairs, each place one of "
                             f"{', '.join(PLACE_BOXES)}; got {objects!r}")
        check_images(images)
        images = images.to(self.device)

        def against(x: torch.Tensor, text: Encoded) -> torch.Tensor:
            ids = torch.tensor([text.ids], device=self.device)
            return torch.stack([c.score(x, ids).float().cpu() for c in self.bundle.clips]).mean(0)

        per = self.score_fit(len(images))
        if per < len(images):  # a large CLIP: as many images at a time as DECODE_MEMORY holds
            return torch.cat([self._score(images[i:i + per], prompt, objects) for i in range(0, len(images), per)])
        tokenizer, text_len = self.bundle.tokenizer, clip.cfg.text_len
        scores = against(images, tokenizer.encode(prompt, text_len))
        if CROP_SCORE_WEIGHT and (objects := object_prompts(prompt) if objects is None else objects):
            # As regional guidance: only where the CLIP reads every word of each object's caption whole.
            enc = [tokenizer.encode(text, text_len) for text, _ in objects]
            if not any(e.n_dropped or e.unknown_words for e in enc):
                crops = torch.stack([against(crop_place(images, place), e)
                                     for e, (_, place) in zip(enc, objects, strict=True)])
                scores = scores + CROP_SCORE_WEIGHT * crops.mean(0)
        return scores

    def rerank(self, results: list[Generated], keep: int) -> list[Generated]:
        """Score results against their prompt and return the best `keep`, with score and rank set."""
        if not results:
            raise UsageError("rerank needs at least one result")
        # (-1 kept all but the worst, True one; 0 returned [], where `--keep 0` is refused)
        keep = check_count(keep, "keep", error=UsageError, unit="results")
        if len({r.prompt for r in results}) > 1:  # (each was scored against the first one's prompt)
            raise UsageError("rerank ranks the results of one prompt; rerank each prompt's results apart")
        scores = self.score(torch.stack([r.image for r in results]), results[0].prompt)
        order = torch.argsort(scores, descending=True, stable=True).tolist()  # equal scores: the first drawn first
        for rank, i in enumerate(order, start=1):
            results[i].score, results[i].rank = float(scores[i]), rank
        return [results[i] for i in order[:keep]]


def crop_place(images: torch.Tensor, place: str) -> torch.Tensor:
    """(B, 3, H, W) -> the box the world draws an object of that place in (left, right, top, bottom;
    world.render.PLACE_BOXES), padded to a square with its edge pixels."""
    from t2i_cli.world.render import PLACE_BOXES

    H, W = images.shape[-2:]
    x0, y0, x1, y1 = PLACE_BOXES[place]
    box = images[..., round(y0 * H):round(y1 * H), round(x0 * W):round(x1 * W)]
    h, w = box.shape[-2:]
    side = max(h, w)
    pad = ((side - w) // 2, side - w - (side - w) // 2, (side - h) // 2, side - h - (side - h) // 2)
    return torch.nn.functional.pad(box, pad, mode="replicate")


def _kept_after_drawn(keep: torch.Tensor) -> torch.Tensor:
    """Per row of keep (R, N): how many kept positions come after the row's first drawn one."""
    drawn_before = (~keep).int().cumsum(dim=1) > 0
    return (keep & drawn_before).sum(dim=1)
