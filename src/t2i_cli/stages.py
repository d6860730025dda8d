"""The four training stages: what each one builds, what its loss is, and what samples it draws."""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import math
import os
import shutil
import typing
import warnings
from pathlib import Path
from typing import Any, Iterator

import torch
import torch.nn as nn

from t2i_cli.errors import (
    DataError,
    OutputError,
    T2IError,
    TrainingWarning,
    UsageError,
    ascii_number_words,
    brief,
    counted,
    model_option,
    option,
    spoken,
    warn_caller,
)
from t2i_cli.files import (
    Busy,
    atomic_write_bytes,
    check_folder_path,
    file_above,
    folder_lock,
    folder_locked,
    is_own_json,
    is_whole_run,
    make_folder,
    missing_folders,
    refuse_dash,
    remove_empty,
    shell_word,
    temporary_of,
)
from t2i_cli.images import contact_sheet, encode_png, image_from_tensor, line_plot, tensor_from_image
from t2i_cli.models.clip import Clip, ClipConfig
from t2i_cli.models.dvae import DVAE, DVAEConfig, code_usage
from t2i_cli.models.dvae import psnr as dvae_psnr
from t2i_cli.models.tokenizer import TextTokenizer
from t2i_cli.models.transformer import Transformer, TransformerConfig
from t2i_cli.sampling import SamplingConfig, generate_codes
from t2i_cli.train import Dist, TrainConfig, plain, split_refusal
from t2i_cli.weights import MAX_TOKENIZER_FILE, check_budget, check_export_whole, load_model, load_tokenizer

PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    # Small enough for a test to run a few steps in about a second.
    "tiny": {
        "tokenizer": {"vocab_size": 128, "tokenizer_captions": 2000},
        "dvae": {"image_side": 16, "batch_size": 8, "recon_loss": "logit_laplace",
                 "model": {"n_codes": 64, "fsq_levels": (4, 4, 4), "n_hid": 8, "code_dim": 16, "n_res": 1}},
        "transformer": {"image_side": 16, "batch_size": 8, "text_len": 12,
                        "model": {"n_layer": 2, "n_head": 2, "n_embd": 32}},
        "clip": {"image_side": 16, "batch_size": 8, "text_len": 12,
                 "model": {"n_hid": 8, "n_embd": 32, "n_layer": 1, "n_head": 2, "embed_dim": 16}},
    },
    # The CPU recipe (`make weights`, 64 px, about an hour on 2 cores; 44% on `t2i eval` at the default best of
    # 4): sizes chosen by measurement on a 2-core CPU. Not the shipped model, which is `large`.
    "default": {
        "tokenizer": {"vocab_size": 512},
        # logit_laplace: DALL-E's likelihood; L1 collapses on pictures with white backgrounds, and on the world
        # logit_laplace also measured 1 dB better at 400 steps (BENCHMARKS.md, docs/own-data.md).
        # FSQ with 1,000 codes (8x5x5x5) instead of a Gumbel-softmax codebook of 512: +1.9 dB on real pictures
        # at 400 steps, +0.9 dB at 1,200, and better on the world too (BENCHMARKS.md "The dVAE's bottleneck").
        # 2,400 steps: the dVAE is still improving at 1,200 on real pictures (docs/own-data.md). On the world the
        # preset trains the Gumbel-softmax codebook of 512 instead (ON_WORLD below).
        # kl_max, kl_warmup: the Gumbel-softmax codebook's (`--model fsq_levels=`); FSQ has no KL term.
        "dvae": {"steps": 2400, "batch_size": 32, "lr": 1e-3, "recon_loss": "logit_laplace", "kl_max": 1e-2,
                 "kl_warmup": 0.1,
                 "model": {"downsample": 8, "n_codes": 1000, "fsq_levels": (8, 5, 5, 5), "n_hid": 32,
                           "code_dim": 64}},
        "transformer": {"steps": 3000, "batch_size": 32, "lr": 1e-3,
                        "model": {"n_layer": 6, "n_head": 6, "n_embd": 192}},
        "clip": {"steps": 500, "batch_size": 64, "lr": 1e-3, "model": {}},
    },
    # The shipped model (weights/README.md): 128 px native, 16x16 codes, an 8-layer transformer, sized for
    # one GPU. The step counts are what a throughput probe fitted into about 20 minutes of an H100. Its dVAE
    # was trained with L1 (world renders only), kept so that `make weights-gpu` reproduces it; for user data
    # pass --recon-loss logit_laplace (not yet measured at this size).
    "large": {
        "tokenizer": {"vocab_size": 512},
        "dvae": {"image_side": 128, "steps": 5600, "batch_size": 64, "lr": 1e-3, "kl_max": 1e-2, "kl_warmup": 0.1,
                 "recon_loss": "l1",
                 "model": {"downsample": 8, "n_codes": 512, "n_hid": 48, "code_dim": 64}},
        "transformer": {"image_side": 128, "steps": 5600, "batch_size": 128, "lr": 6e-4, "warmup": 500,
                        "model": {"n_layer": 8, "n_head": 8, "n_embd": 384}},
        "clip": {"image_side": 128, "steps": 2000, "batch_size": 128, "lr": 1e-3, "model": {}},
    },
}


def _sample_captions(dataset, n: int) -> list[str]:
    """The first n captions of a source: the fixed prompts of every sample grid."""
    return [dataset[i][1] for i in range(min(n, len(dataset)))]


def encode_captions(tok: TextTokenizer, captions: list[str], text_len: int) -> torch.Tensor:
    """Captions -> text ids (B, text_len), as the transformer and CLIP stages train on them."""
    return torch.tensor([tok.encode(c, text_len).ids for c in captions])


def _write_png(path: Path, img) -> None:
    atomic_write_bytes(path, encode_png(img))


def write_curve(run_dir: Path, history: list[tuple[int, float]], val_history: list[tuple[int, float]]) -> None:
    """loss.png: the training loss, and the validation loss where there is one, against the step."""
    if len(history) >= 2:
        series = {"training": history} | ({"validation": val_history} if val_history else {})
        _write_png(Path(run_dir) / "loss.png", line_plot(series, title="loss"))


VAL_N = 64  # validation images per evaluation (the first of the val split): bounded cost per sample grid


def val_batches(val, batch: int) -> Iterator[tuple[torch.Tensor, list[str]]]:
    """The first VAL_N items of a validation dataset in batches: (images (B, 3, H, W), captions)."""
    n = min(VAL_N, len(val))
    for lo in range(0, n, batch):
        items = [val[i] for i in range(lo, min(n, lo + batch))]
        yield torch.stack([x for x, _ in items]), [c for _, c in items]


def codebook_usage(codes: torch.Tensor, n_codes: int) -> dict[str, float]:
    """Perplexity of the code histogram and the share of codes used at least once."""
    perplexity, used = code_usage(codes, n_codes)
    return {"perplexity": perplexity, "codes_used": used / n_codes}


class DVAEStage:
    """The dVAE. Gumbel-softmax: temperature annealed 1 -> tau_end (cosine), KL weight ramped up from 0. FSQ
    (--model fsq_levels=...): no temperature and no KL, the reconstruction loss alone."""

    kind = "dvae"
    curve = "recon_l1"  # loss.png draws pixel L1, the scale of val_loss, whatever the training loss

    def __init__(self, cfg: TrainConfig, run_dir: Path, dd: Dist, dataset, procedural: bool, val=None):
        self.cfg, self.dataset, self.procedural, self.val = cfg, dataset, procedural, val
        torch.manual_seed(cfg.seed)
        if cfg.finetune_decoder:  # start from a trained dVAE; its encoder and codebook stay frozen
            self.model = load_model(Path(run_dir) / "dvae_init.safetensors", "dvae", dd.device).train()
            for p in (*self.model.encoder.parameters(), *self.model.codebook.parameters()):
                p.requires_grad_(False)
        else:
            mcfg = dvae_model_config(cfg)
            self.model = DVAE(mcfg).to(dd.device)
        from t2i_cli.data import as_stored

        # Samples reconstruct val images (training ones, as stored, where a source has no val split).
        shown = val if val is not None and len(val) else dataset
        self.fixed = torch.stack([as_stored(shown, i)[0] for i in range(min(8, len(shown)))])  # (8, 3, H, W)

    def schedule(self, step: int) -> tuple[float, float]:
        """(Gumbel temperature, KL weight) at a step."""
        t = min(1.0, step / max(1, self.cfg.steps - 1))
        tau = self.cfg.tau_end + (1 - self.cfg.tau_end) * 0.5 * (1 + math.cos(math.pi * t))
        kl = self.cfg.kl_max * min(1.0, step / max(1, self.cfg.kl_warmup * self.cfg.steps))
        return tau, kl

    def loss(self, model: nn.Module, images: torch.Tensor, captions: list[str], step: int):
        tau, kl_weight = self.schedule(step)
        _, loss, parts = model(images, tau=tau, kl_weight=kl_weight, hard=self.cfg.finetune_decoder,
                               loss=self.cfg.recon_loss)
        metrics = {k: float(v) for k, v in parts.items()} | ({} if self.model.cfg.fsq_levels else {"tau": tau})
        # Not of a diverged step (NaN latents make no codes): train_loop stops the run on its loss instead.
        if step % self.cfg.log_every == self.cfg.log_every - 1 and bool(torch.isfinite(loss)):
            with torch.no_grad():
                metrics |= codebook_usage(self.model.codes_from_image(images), self.model.cfg.n_codes)
        return loss, metrics

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """On the val split, as at inference (argmax codes): L1 (the val loss), PSNR and codebook use."""
        self.model.eval()
        device, l1, psnr, codes = next(self.model.parameters()).device, [], [], []
        for x, _ in val_batches(self.val, 32):
            c = self.model.codes_from_image(x.to(device))
            recon = self.model.image_from_codes(c).float().cpu()
            l1.append((recon - x).abs().mean(dim=(1, 2, 3)))
            psnr.append(dvae_psnr(recon, x))
            codes.append(c.flatten().cpu())
        self.model.train()
        usage = codebook_usage(torch.cat(codes), self.model.cfg.n_codes)
        return {"val_loss": float(torch.cat(l1).mean()), "val_psnr": float(torch.cat(psnr).mean()),
                "val_perplexity": usage["perplexity"], "val_codes_used": usage["codes_used"]}

    @torch.no_grad()
    def write_samples(self, run_dir: Path, step: int, history, val_history=()) -> None:
        self.model.eval()
        x = self.fixed.to(next(self.model.parameters()).device)
        recon = self.model.image_from_codes(self.model.codes_from_image(x)).float().cpu()
        self.model.train()
        pics = [image_from_tensor(t) for pair in zip(self.fixed, recon, strict=True) for t in pair]
        labels = [s for _ in range(len(self.fixed)) for s in ("input", "codes")]
        _write_png(Path(run_dir) / "samples" / f"step-{step:06d}.png",
                   contact_sheet(pics, labels, columns=4, label_height=12))
        write_curve(run_dir, history, list(val_history))


class TransformerStage:
    """[text ; dVAE codes] language modelling, dropping cond_drop of the captions for guidance."""

    kind = "transformer"

    def __init__(self, cfg: TrainConfig, run_dir: Path, dd: Dist, dataset, procedural: bool, val=None):
        self.cfg, self.dataset, self.procedural, self.device, self.val = cfg, dataset, procedural, dd.device, val
        self.tok = load_tokenizer(Path(run_dir) / "tokenizer.json")
        self.dvae = load_model(Path(run_dir) / "dvae.safetensors", "dvae", dd.device)
        if self.dvae.cfg.image_side != cfg.image_side:
            raise UsageError(f"the dVAE was trained on {self.dvae.cfg.image_side} px images, not {cfg.image_side}; "
                             f"pass {option('image_side', self.dvae.cfg.image_side)}")
        mcfg = TransformerConfig(text_vocab=self.tok.vocab_size(cfg.text_len), text_len=cfg.text_len,
                                 image_vocab=self.dvae.cfg.n_codes, grid=self.dvae.cfg.grid, **cfg.model)
        check_budget(mcfg, python=True)
        torch.manual_seed(cfg.seed)
        self.model = Transformer(mcfg).to(dd.device)
        self.empty = torch.tensor(self.tok.empty(cfg.text_len))
        self.prompts = _sample_captions(val if val is not None and len(val) else dataset, 4)  # val captions

    def encode_text(self, captions: list[str]) -> torch.Tensor:
        return encode_captions(self.tok, captions, self.cfg.text_len)

    def loss(self, model: nn.Module, images: torch.Tensor, captions: list[str], step: int):
        with torch.no_grad():
            codes = self.dvae.codes_from_image(images).flatten(1)  # (B, N)
        text = self.encode_text(captions)
        drop = torch.rand(len(captions)) < self.cfg.cond_drop  # the global RNG is seeded per step
        text[drop] = self.empty
        _, loss = model(text.to(self.device), codes)
        return loss, {}

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """On the val split: the training loss without caption dropout, and the image codes' cross-entropy in
        bits per code."""
        self.model.eval()
        losses, bits, n = 0.0, 0.0, 0
        for x, captions in val_batches(self.val, 32):
            codes = self.dvae.codes_from_image(x.to(self.device)).flatten(1)  # (B, N)
            logits, loss = self.model(self.encode_text(captions).to(self.device), codes)
            ce = nn.functional.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), codes.reshape(-1))
            losses, bits, n = losses + float(loss) * len(x), bits + float(ce) / math.log(2) * len(x), n + len(x)
        self.model.train()
        return {"val_loss": losses / n, "val_bits_per_code": bits / n}

    @torch.no_grad()
    def write_samples(self, run_dir: Path, step: int, history, val_history=()) -> None:
        self.model.eval()
        gen = torch.Generator(device=self.device).manual_seed(0)
        text = self.encode_text(self.prompts).to(self.device)
        codes = generate_codes(self.model, text, self.empty, SamplingConfig(top_k=32), gen)
        g = self.model.cfg.grid
        images = self.dvae.image_from_codes(codes.view(-1, g, g)).float().cpu()
        self.model.train()
        sheet = contact_sheet([image_from_tensor(t) for t in images], self.prompts, columns=4)
        _write_png(Path(run_dir) / "samples" / f"step-{step:06d}.png", sheet)
        write_curve(run_dir, history, list(val_history))


VAL_HARD_N = 128  # world val scenes whose hard-negative twins a CLIP validation scores


@torch.no_grad()
def hard_negative_accuracy(model: Clip, tok: TextTokenizer, text_len: int, side: int, indices, device,
                           split: str = "val") -> dict[str, Any]:
    """How often a scorer prefers a world scene to its hard-negative twin (world.negatives), as a reranker
    must: for the scene's caption, the scene's image scores higher than the twin's image. Per kind of
    twin, and overall (ties count as failures)."""
    from t2i_cli.world.negatives import twin_scene
    from t2i_cli.world.splits import scene

    wins: dict[str, list[bool]] = {}
    indices = list(indices)
    for lo in range(0, len(indices), 32):
        part = indices[lo:lo + 32]
        scenes = [scene(split, i, side) for i in part]  # (image, caption, spec)
        twins = [twin_scene(split, i, side) for i in part]  # (image, caption, spec, kind)
        real = torch.stack([tensor_from_image(s[0]) for s in scenes]).to(device)
        twin = torch.stack([tensor_from_image(t[0]) for t in twins]).to(device)
        text = encode_captions(tok, [s[1] for s in scenes], text_len).to(device)
        better = (model.score(real, text) > model.score(twin, text)).tolist()
        for t, b in zip(twins, better, strict=True):
            wins.setdefault(t[3], []).append(bool(b))
    every = [b for v in wins.values() for b in v]
    return {"accuracy": sum(every) / max(1, len(every)), "n": len(every),
            "kinds": {k: {"accuracy": sum(v) / len(v), "n": len(v)} for k, v in sorted(wins.items())}}


def _gather(t: torch.Tensor) -> torch.Tensor:
    """Every process's t (the same shape on each), concatenated in rank order along dim 0; a float tensor's
    gradient flows back to the process it came from (torch.distributed.nn), a mask is gathered as is."""
    import torch.distributed as dist
    import torch.distributed.nn.functional as dist_fn

    if t.is_floating_point():
        with warnings.catch_warnings():  # its deprecation names no replacement that carries the gradient back
            warnings.simplefilter("ignore", FutureWarning)
            return torch.cat(dist_fn.all_gather(t.float().contiguous()))
    parts = [torch.empty_like(t, dtype=torch.uint8) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, t.to(torch.uint8).contiguous())
    return torch.cat(parts).to(t.dtype)


class ClipStage:
    """Symmetric contrastive loss between image and caption embeddings."""

    kind = "clip"

    def __init__(self, cfg: TrainConfig, run_dir: Path, dd: Dist, dataset, procedural: bool, val=None):
        self.cfg, self.dataset, self.procedural, self.device, self.val = cfg, dataset, procedural, dd.device, val
        self.dd = dd
        self.tok = load_tokenizer(Path(run_dir) / "tokenizer.json")
        mcfg = ClipConfig(image_side=cfg.image_side, text_vocab=self.tok.vocab_size(cfg.text_len),
                          text_len=cfg.text_len, n_pad_start=self.tok.n_bpe, **cfg.model)
        check_budget(mcfg, python=True)
        torch.manual_seed(cfg.seed)
        self.model = Clip(mcfg).to(dd.device)
        if cfg.init:  # start from a trained CLIP (its architecture is mcfg's: train_options.train_config)
            start = load_model(Path(run_dir) / CLIP_INIT, "clip")
            if (start.cfg.text_vocab, start.cfg.n_pad_start) != (mcfg.text_vocab, mcfg.n_pad_start):
                raise UsageError(f"{option('init')} {cfg.init}: that CLIP reads another tokenizer's ids "
                                 f"({start.cfg.text_vocab} ids, not {mcfg.text_vocab}); pass the "
                                 f"{option('tokenizer')} it was trained with")
            self.model.load_state_dict(start.state_dict())

    def loss(self, model: nn.Module, images: torch.Tensor, captions: list[str], step: int):
        text = encode_captions(self.tok, captions, self.cfg.text_len).to(self.device)
        if self.dd.n_procs > 1:  # every process's images and captions are each row's negatives, as in one process
            offset = self.dd.rank * len(captions)
            logits, loss = model(images, text, gather=_gather, offset=offset)
        else:
            offset = 0
            logits, loss = model(images, text)
        acc = (logits.argmax(1) == offset + torch.arange(len(captions), device=logits.device)).float().mean()
        return loss, {"batch_top1": float(acc)}

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """On the val split (one batch of up to VAL_N): the contrastive loss and image-to-caption top-1."""
        self.model.eval()
        x, captions = next(val_batches(self.val, VAL_N))
        logits, loss = self.model(x.to(self.device), encode_captions(self.tok, captions, self.cfg.text_len)
                                  .to(self.device))
        top1 = (logits.argmax(1) == torch.arange(len(captions), device=logits.device)).float().mean()
        out = {"val_loss": float(loss), "val_top1": float(top1)}
        if getattr(self.val, "split", None) == "val":  # the world: how often it tells a scene from its twin
            out["val_hard"] = hard_negative_accuracy(self.model, self.tok, self.cfg.text_len, self.cfg.image_side,
                                                     range(VAL_HARD_N), self.device)["accuracy"]
        self.model.train()
        return out

    def write_samples(self, run_dir: Path, step: int, history, val_history=()) -> None:
        write_curve(run_dir, history, list(val_history))


STAGE_CLASSES = {"dvae": DVAEStage, "transformer": TransformerStage, "clip": ClipStage}


# What a preset changes when --data is the procedural world. The default preset's dVAE on the world is DALL-E's
# Gumbel-softmax codebook of 512, not FSQ: in the same CPU recipe side by side, FSQ's dVAE was better (+0.7 dB)
# but the whole model on it scored 2-9 points lower on every `t2i eval` (its 1,000 codes are harder for the
# transformer to predict: 2.60 against 1.88 val bits per code), while on real pictures FSQ is what reaches
# 22 dB (BENCHMARKS.md "The CPU recipe: FSQ against Gumbel-softmax", docs/own-data.md).
ON_WORLD: dict[str, dict[str, dict[str, Any]]] = {
    "default": {"dvae": {"model": {"fsq_levels": (), "n_codes": 512}}},
}
# What a preset changes on a folder or manifest. A small folder's transformer memorises it: on the 1,280 emoji
# its validation loss is lowest at step 500 of 3,000 and only rises after; with --patience 2 the stage stops at
# 1,500 and exports the same model byte for byte in 42% of the time (BENCHMARKS.md "Stopping early"). The
# transformer exports its best model, so a stop costs nothing there; the dVAE (whose last model is exported,
# its schedule not finished) and the world's streamed data keep no patience.
# Mirroring half the training pictures (--flip) lowered the transformer's best validation bits per code on the
# 363 icons from 7.24 to 6.76 and 7.34 to 6.80 (seeds 0, 1) and slowed its overfitting; the dVAE's val PSNR was
# the same (22.83 against 22.74 dB), and the dVAE sees the pictures whose codes the transformer learns. The
# CLIP's validation did not gain: it stays off there (BENCHMARKS.md "Mirrored pictures").
# Showing each training picture as a random square of 0.8 to all of its side (--crop 0.8) lowered it again, 6.76 ->
# 6.50 and 6.80 -> 6.47 (seeds 0, 1), with a best step 3-3.5x later and generated pictures of 3.2-3.3x the CLIP
# score; in a whole run the dVAE trained on crops was as good (22.91 against 22.83 dB) and the pictures better
# (BENCHMARKS.md "Cropped pictures").
AUGMENT = {"dvae": {"flip": True, "crop": 0.8}, "transformer": {"flip": True, "crop": 0.8}}
ON_FOLDER: dict[str, dict[str, dict[str, Any]]] = {
    "default": {"dvae": AUGMENT["dvae"], "transformer": {"patience": 2, **AUGMENT["transformer"]}},
    "large": AUGMENT,
}


def _out() -> str:
    """How a message names the folder a run starts in: --out to the command line, run_stage's run_dir from
    Python."""
    return option("run_dir", cli="--out")


def is_world(data: str) -> bool:
    """Whether a --data source is the procedural world (world, world:train, world:val)."""
    return data == "world" or data.startswith("world:")


def apply_preset(stage: str, preset: str, overrides: dict[str, Any], data: str) -> dict[str, Any]:
    """TrainConfig fields for a stage: the preset's (with its ON_WORLD or ON_FOLDER changes for the data), then
    the user's overrides (model fields merged)."""
    if preset not in PRESETS:
        raise UsageError(f"{option('preset')} must be one of {', '.join(PRESETS)}, got {preset!r}")
    fields = {k: (dict(v) if isinstance(v, dict) else v) for k, v in PRESETS[preset].get(stage, {}).items()}
    model = dict(fields.pop("model", {}))
    changes = dict((ON_WORLD if is_world(data) else ON_FOLDER).get(preset, {}).get(stage, {}))
    model.update(changes.pop("model", {}))
    fields.update(changes)
    overrides = dict(overrides)  # (popped below: the caller's own dict, reused for the next stage, kept whole)
    mine = {k: plain(v) for k, v in dict(overrides.pop("model", {}) or {}).items()}  # (np.array fsq_levels: its
    # truth below was numpy's ValueError)
    model.update(mine)
    if stage == "dvae" and mine.get("fsq_levels") and "n_codes" not in mine:
        model["n_codes"] = math.prod(mine["fsq_levels"])  # FSQ's codebook size is the product of its levels
    fields.update({k: v for k, v in overrides.items() if v is not None})
    fields["model"] = model
    return fields


def dependencies(cfg: TrainConfig) -> list[tuple[Path, str]]:
    """(source file, name in the run folder) of what the stage needs copied in (cfg.dvae, cfg.tokenizer);
    a missing one is a usage error, found before anything is written."""
    finetune = cfg.stage == "dvae" and cfg.finetune_decoder
    deps = []
    for name, src, needed in (("tokenizer.json", cfg.tokenizer, cfg.stage in ("transformer", "clip")),
                              ("dvae.safetensors", cfg.dvae, cfg.stage == "transformer" or finetune)):
        if not needed:
            continue
        path = _resolve(src, name)
        if path is None:
            key = name.split(".")[0]
            raise UsageError(f"the {cfg.stage} stage needs {spoken(f'--{key} PATH', key)} "
                             f"(a {name} file, a run folder or a weights folder)")
        if name == "tokenizer.json":  # read now, so that a bad one is named as given, not as the run's copy
            whole = is_whole_run(path.parent.parent) and path.parent.name == "tokenizer"
            load_tokenizer(path, f"the whole run's tokenizer stage wrote it damaged: start the run again in a new "
                           f"{_out()}" if whole else f"give {option('tokenizer')} a tokenizer run folder, a weights "
                           f"folder or its tokenizer.json")
        deps.append((path, "dvae_init.safetensors" if finetune else name))
    if cfg.stage == "clip" and cfg.init:
        deps.append((_resolve(cfg.init, "clip.safetensors"), CLIP_INIT))
    return deps


def dependency_runs(cfg: TrainConfig) -> list[str]:
    """The start's word on a --dvae or --tokenizer given as the run folder of that stage (a new run copies its
    file now, and keeps that copy for good): one being trained by another process now is refused (Busy, before
    anything is written; its file changes under the copy), and the warnings of a dVAE run stopped before its
    last step (a transformer, or a fine-tuned decoder, is tied to the codes of that step). A file, a weights
    folder or another stage's run (whose file is a copy, fixed) is taken as given. --patience's early stop is a
    finished run: its steps became the step it stopped at. Rank 0 alone (a whole run's other ranks may ask
    before rank 0 has let go of the stage it just finished)."""
    from t2i_cli.train import CHECKPOINT, RUN_CONFIG, read_run_config
    from t2i_cli.weights import read_metadata

    finetune = cfg.stage == "dvae" and cfg.finetune_decoder
    notes = []
    for flag, src, stage, needed in ((option("tokenizer"), cfg.tokenizer, "tokenizer",
                                      cfg.stage in ("transformer", "clip")),
                                     (option("dvae"), cfg.dvae, "dvae", cfg.stage == "transformer" or finetune)):
        folder = Path(src) if needed and src else None
        if folder is not None and folder.name == f"{stage}.{'json' if stage == 'tokenizer' else 'safetensors'}" \
                and folder.is_file():  # the model file inside a run folder is that run's
            folder = folder.parent
        if folder is None or not folder.is_dir() or not (folder / RUN_CONFIG).is_file():
            continue
        try:
            run = read_run_config(folder)
        except T2IError:
            continue  # (not a run config t2i reads: its file is taken as any other)
        if run.stage != stage:
            continue
        if is_world(cfg.data) and not is_world(run.data):  # (--data left out of a stage-by-stage command: the
            # transformer or CLIP learned the world's scenes with a tokenizer and dVAE of your pictures, unsaid)
            notes.append(f"{flag} {shell_word(folder)} learned from {run.data}, but this run trains on {cfg.data} "
                         f"(the procedural world, where {option('data')} left out trains); give "
                         f"{spoken(f'--data {shell_word(run.data)}', f'data={run.data!r}')} to train on those "
                         f"pictures")

        def step_of(path: Path) -> int | None:
            try:
                return int(read_metadata(path).get("step", "")) if path.is_file() else None
            except (T2IError, ValueError, OSError):
                return None

        model_step = step_of(folder / f"{stage}.safetensors")
        step = step_of(folder / CHECKPOINT)
        step = model_step if step is None else step
        word = shell_word(folder)
        if folder_locked(folder):
            at = f" (saved at step {step:,} of {run.steps:,} so far)" if step is not None and stage != "tokenizer" \
                else ""
            now = "" if stage == "tokenizer" else " (or a copy of its dvae.safetensors, to take the dVAE as it is now)"
            raise Busy(f"{flag} {word} is a {stage} run being trained by another t2i process now{at}; wait for it "
                       f"to finish and start again, or give {flag} a finished run or a weights folder{now}")
        if stage != "dvae" or step is None or min(s for s in (step, model_step) if s is not None) >= run.steps \
                or run.finetune_decoder and finetune:  # (a fine-tune's codes are its start's: it starts from it)
            continue
        lag = f" (its dvae.safetensors at step {model_step:,})" if model_step is not None and model_step != step \
            else ""
        # (a run whose checkpoint reached its end but whose model file holds an earlier step: a kill before its
        # last write; "stopped at step 6 of 6" read as a finished run)
        stopped = f"stopped at step {step:,} of {run.steps:,}{lag}" if step < run.steps else \
            f"reached step {step:,} of {run.steps:,} but its dvae.safetensors holds step {model_step:,}"
        finish = (f"finish it first with `t2i train --resume {word}` (stop this run), unless an early dVAE is "
                  f"what you want")
        if run.finetune_decoder:  # its encoder and codebook are its start's, frozen
            notes.append(f"{flag} {word} {stopped}: a {option('finetune_decoder')} run "
                         f"whose decoder is unfinished (the codes are those of the dVAE it started from); this "
                         f"transformer takes that decoder; {finish}, or export the finished one beside it later "
                         f"(t2i export ... --force)")
        else:
            who = "the decoder is fine-tuned on" if finetune else "the transformer learns"
            notes.append(f"{flag} {word} {stopped}: {who} the codes of that "
                         f"unfinished dVAE and stays tied to them (finishing the dVAE later does not change this "
                         f"run); {finish}")
    return notes


RUN_BUSY = ("{run_dir} is being trained by another t2i process now; wait for it to finish (a second process would "
            "write the same files)")
CLIP_INIT = "clip_init.safetensors"  # in a clip run started with --init: the weights it started from


def clip_config(src: str) -> ClipConfig:
    """The config of a CLIP given as a file, run or weights folder."""
    return load_model(_resolve(src, "clip.safetensors"), "clip").cfg


def check_new_folder(run_dir: Path, keep_going: str = "", own: list[tuple[Path, str]] = ()) -> None:
    """Refuse an --out that a new run cannot use: a file, a path inside a file, or a folder that already holds
    files (a run would replace files of those names: nothing a user made is lost unasked). keep_going ends
    the folder's message (how to continue a run of one's own there). own: the run's dependencies (source,
    name); a folder holding only copies of them, byte for byte, and their temporaries is what a start killed
    while copying them left (kill -9): the run starts there (it was refused, and a whole run could not go on)."""
    refuse_dash(run_dir, _out(), "runs/mine")
    run_dir = Path(run_dir)
    if run_dir.is_symlink() and not run_dir.exists():  # a link to nothing, or a loop of links: said as such (it
        check_folder_path(run_dir, _out())  # was "is a file")
    if run_dir.exists() or run_dir.is_symlink():
        if not run_dir.is_dir():
            raise UsageError(f"{_out()} {run_dir} is a file; pick a folder to create")
        if any(not _left_by_a_start(p, own) for p in run_dir.iterdir()):
            if folder_locked(run_dir):  # a run another process is starting there now (two whole runs started at
                # once into one --out: the second was told the first's stage folder "holds other files")
                raise UsageError(RUN_BUSY.format(run_dir=run_dir))
            raise UsageError(f"{_out()} {run_dir} is a folder that holds other files; pick a new or empty folder"
                             f"{keep_going}")
        return
    blocker = file_above(run_dir)
    if blocker is not None:
        raise UsageError(f"{_out()} {run_dir} is inside {blocker}, which is a file; pick a folder to create")


def _stopped_at(stage_dir: Path) -> tuple[int, int] | None:
    """(its step, its steps) of a whole run's stage folder stopped before its last step; None where it finished
    (or stopped early, --patience) or cannot be read (said where it is resumed)."""
    from t2i_cli.train import CHECKPOINT, finished, read_run_config, stopped_early
    from t2i_cli.weights import read_metadata

    try:
        steps = read_run_config(stage_dir).steps
        ckpt = stage_dir / CHECKPOINT
        step = int(read_metadata(ckpt).get("step", 0)) if ckpt.is_file() else 0
        if finished(stage_dir, steps) or stopped_early(stage_dir, steps):
            return None
    except (T2IError, ValueError, OSError):
        return None
    return step, steps


def whole_run_refusal(run_dir: Path, stage: str) -> str:
    """What a new one-stage run with --out a whole run (`--stage all`) is told: that the folder is one, and the
    command that trains that stage of it further (it was told the folder "holds other files", as if a stranger's)."""
    from t2i_cli.train import RUN_CONFIG, read_run_config

    word, sub = shell_word(run_dir), Path(run_dir) / stage
    if stage == "tokenizer":
        what = (f"its tokenizer is {shell_word(sub / 'tokenizer.json')}; another vocabulary is a new run: pick a new "
                f"or empty {_out()}")
    elif (sub / RUN_CONFIG).is_file() and (stopped := _stopped_at(sub)) is not None:
        # a stage stopped before its last step (Ctrl-C, a kill): the whole run's --resume finishes it; it was told
        # "--resume RUN/STAGE --steps N, N over its 200,000" of a stage at step 48,327
        if folder_locked(sub) or folder_locked(Path(run_dir)):  # (a whole run training now: no resume yet)
            what = (f"its {stage} stage is being trained now (checkpoint at step {stopped[0]:,} of {stopped[1]:,}): "
                    f"let it finish; or pick a new or empty {_out()} for a {stage} run of its own")
        else:
            # (CLIP is the last stage: none after it, and the resume exports the run's weights)
            then = "the stages after it" if stage != "clip" else f"exports {shell_word(Path(run_dir) / 'weights')}"
            what = (f"its {stage} stage stopped at step {stopped[0]:,} of {stopped[1]:,}: t2i train --resume {word} "
                    f"finishes it and {then}; or pick a new or empty {_out()} for a {stage} run of its own")
    elif (sub / RUN_CONFIG).is_file():
        try:
            over = f", N over its {read_run_config(sub).steps:,}"
        except T2IError:  # (said where it is resumed)
            over = ""
        weights = shell_word(Path(run_dir) / "weights")
        then = (f" (its transformer stage learned the codes of its dVAE as it is, so {weights} keeps that one: a "
                f"longer-trained dVAE serves a transformer trained anew on it)"
                if stage == "dvae" and (Path(run_dir) / "transformer" / RUN_CONFIG).is_file()
                else f", then t2i train --resume {word} to export it to {weights}")
        what = (f"to train its {stage} stage further: t2i train --resume {shell_word(sub)} --steps N{over}{then}; "
                f"or pick a new or empty {_out()} for a {stage} run of its own")
    else:
        what = (f"its {stage} stage has not started: t2i train --resume {word} trains it; or pick a new or empty "
                f"{_out()} for a {stage} run of its own")
    return f"{_out()} {word} is a whole run (--stage all), not a folder for a new {stage} run; {what}"


def _left_by_a_start(path: Path, own: list[tuple[Path, str]]) -> bool:
    """Whether path is a copy of one of a run's dependencies (byte for byte) or a temporary of one, or the
    record of its data (data.DATA_RECORD, written just before the run's config) or its temporary."""
    from t2i_cli.data import DATA_RECORD, MAX_DATA_RECORD, is_record

    if path.is_symlink() or not path.is_file():
        return False
    if temporary_of(path.name) == DATA_RECORD or (path.name == DATA_RECORD and path.stat().st_size <= MAX_DATA_RECORD
                                                  and is_own_json(path, is_record)):
        return True
    for src, name in own:
        if temporary_of(path.name) == name:
            return True
        if path.name == name and not os.path.samefile(path, src) and path.stat().st_size == Path(src).stat().st_size \
                and path.read_bytes() == Path(src).read_bytes():  # (--out the dependency's own folder: refused)
            return True
    return False


class MadeParent(typing.NamedTuple):
    """A folder make_run_folder made above the run's (`--out new/a/b`: new and new/a): undo_start removes it only
    while it is empty (another process may have put something there since)."""

    path: Path


def make_run_folder(run_dir: Path, created: list) -> None:
    """Create a new run's folder (adding it to created, for undo_start, only if this process made it: a folder
    another process made at the same moment is not ours to remove), with the parents it needs (added as
    MadeParent), or check that an existing one is writable."""
    if not run_dir.exists() and file_above(run_dir) is None:
        parents = missing_folders(run_dir)[1:]  # nearest first
        try:
            run_dir.mkdir(parents=True)
            created += [MadeParent(p) for p in reversed(parents)]  # (undone after the folder, nearest first)
            created.append(run_dir)
            return
        except FileExistsError:
            pass
        except OSError:
            pass  # make_folder says why, in its one line
    make_folder(run_dir, _out())


def copy_dependencies(run_dir: Path, deps: list[tuple[Path, str]], created: list[Path]) -> None:
    """Copy a new run's dependencies in, so the run (and its export) stands alone; each file is added to created
    as it is written (a stop between two copies is undone whole: the half-copied start was a folder of other
    files that no retry or resume would take)."""
    for src, name in deps:
        if not (run_dir / name).exists():  # a copy already there (a killed start's) is left if this start is undone
            created.append(run_dir / name)
        atomic_write_bytes(run_dir / name, Path(src).read_bytes())


def undo_start(created: list) -> None:
    """Remove what make_run_folder and copy_dependencies created: a start that failed leaves nothing that blocks a
    retry (and no empty folder it made above the run's)."""
    for path in reversed(created):
        if isinstance(path, MadeParent):
            remove_empty([path.path])
        elif path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def dvae_config(src: str) -> DVAEConfig:
    """The config of a dVAE given as a file, run or weights folder."""
    return load_model(_resolve(src, "dvae.safetensors"), "dvae").cfg


def _resolve(src: str | None, name: str) -> Path | None:
    """A dependency given as the file itself or as a folder (run or weights) that holds it."""
    if not src:
        return None
    p = Path(src)
    if p.is_dir():
        stage = name.partition(".")[0]  # dvae, tokenizer
        if not (p / name).is_file() and (p / stage / name).is_file():  # a --stage all run: its stages' folders
            also = f", or its weights, {shell_word(p / 'weights')}" if (p / "weights" / name).is_file() else ""
            raise UsageError(f"{p} holds no {name}, its {stage} stage does: pass {shell_word(p / stage)}{also}")
        p = p / name
    if not p.is_file():
        raise UsageError(f"{p} does not exist; pass the {name} file or a folder that holds it")
    check_export_whole(p.parent)  # a weights folder an export was killed in may hold its tokenizer beside another
    # export's dVAE (`--tokenizer W --dvae W` trained a transformer on the two, as generate refuses to draw with them)
    return p


# The tokenizer stage measures the share of caption words its vocabulary reads as unknown on up to UNKNOWN_SAMPLE
# of the captions it learned from, and warns above UNKNOWN_WARN (a --vocab-size smaller than the captions'
# characters: at 3, "a red bird" read "red" and "bird" as unknown, silently).
UNKNOWN_SAMPLE = 5000
UNKNOWN_WARN = 0.05


def unknown_share(tok: TextTokenizer, texts: typing.Iterable[str]) -> tuple[int, int, str]:
    """(words read as unknown, words, the unknown word met most often: the first of those met as often) over
    texts: a word (the tokenizer's pre-tokenizer's: letters and digits, or a run of punctuation) is unknown
    where one of its tokens is [UNK], a character the vocabulary lacks (a word split into pieces is not)."""
    unknown: dict[str, int] = {}
    n_words = n_unknown = 0
    for text in texts:
        lost, words = tok.unread_words(text)
        n_words += words
        n_unknown += len(lost)
        for word in lost:
            unknown[word] = unknown.get(word, 0) + 1
    example = max(unknown, key=unknown.__getitem__) if unknown else ""  # (the first of the most met)
    return n_unknown, n_words, example


def train_tokenizer(cfg: TrainConfig, run_dir: Path, dataset, warn=None) -> dict[str, Any]:
    """Learn the BPE vocabulary from the source's captions; writes run_dir/tokenizer.json. warn(line): said when
    over UNKNOWN_WARN of the caption words it learned from read as unknown (unknown_share, on up to
    UNKNOWN_SAMPLE of its captions)."""
    from t2i_cli.data import WorldDataset, caption_count, captions

    class Captions:  # read twice (the characters, then the training) without holding them all
        def __iter__(self):
            return captions(dataset, limit=cfg.tokenizer_captions)

    tok = TextTokenizer.train(Captions(), vocab_size=cfg.vocab_size)
    # what captions() read: up to the limit, of the world's scenes (a caption each) or of all a folder's captions
    total = len(dataset) if isinstance(dataset, WorldDataset) else caption_count(dataset)
    learned = min(cfg.tokenizer_captions, total)
    text = tok.to_json().encode()
    if len(text) > MAX_TOKENIZER_FILE:  # what load_tokenizer would refuse: say so now, not at the next stage
        raise UsageError(f"the tokenizer of {tok.n_bpe:,} tokens is {len(text):,} bytes, more than the "
                         f"{MAX_TOKENIZER_FILE >> 20} MB a tokenizer file may hold; use a smaller "
                         f"{option('vocab_size')}")
    atomic_write_bytes(Path(run_dir) / "tokenizer.json", text)
    if warn is not None:
        lost, words, example = unknown_share(tok, captions(dataset, limit=min(cfg.tokenizer_captions, UNKNOWN_SAMPLE)))
        if words and lost / words > UNKNOWN_WARN:
            warn(f"the tokenizer of {tok.n_bpe} tokens reads {lost / words:.0%} of the caption words it learned from "
                 f"as unknown ({lost:,} of {words:,}, e.g. {brief(example)!r}): its "
                 f"{option('vocab_size', cfg.vocab_size)} holds too few of their characters; a larger "
                 f"{option('vocab_size')} keeps them")
    summary = {"vocab": tok.n_bpe, "captions": learned}
    if not isinstance(dataset, WorldDataset) and learned < total:
        summary["captions_in_source"] = total  # a sample of them, spread evenly over it (data.captions)
    return summary


def vocab_note(asked: int, learned: dict[str, Any]) -> str | None:
    """The line that says a tokenizer stage learned fewer tokens than --vocab-size asked (its summary's "vocab"),
    or None: BPE stops merging once every word of its captions is one token, so a few captions hold only so many
    (--vocab-size 5000 on 19 short captions: 68 tokens, said in the summary's numbers alone before)."""
    got = learned.get("vocab")
    if not isinstance(got, int) or got >= asked:
        return None
    captions = learned.get("captions")
    asked_for = spoken(f"--vocab-size {asked:,}", option("vocab_size", asked))
    return (f"the tokenizer has {got:,} tokens, not the {asked_for} asked: every word of the "
            f"{f'{captions:,} ' if isinstance(captions, int) else ''}captions it learned from is one token at "
            f"{got:,}, so there was nothing more to merge (more captions, or more varied ones, make a larger "
            f"vocabulary)")


MODEL_CONFIGS = {"dvae": DVAEConfig, "transformer": TransformerConfig, "clip": ClipConfig}
# Model config fields a stage derives from its data and dependencies, with the option that sets them.
DERIVED_FIELDS = {
    "dvae": {"image_side": "--image-side"},
    "transformer": {"text_vocab": "--tokenizer", "text_len": "--text-len", "image_vocab": "--dvae", "grid": "--dvae"},
    "clip": {"image_side": "--image-side", "text_vocab": "--tokenizer", "text_len": "--text-len",
             "n_pad_start": "--tokenizer"},
}


def model_config_fields(stage: str) -> set[str]:
    """The model config fields a stage accepts as --model overrides (not those it derives)."""
    return {f.name for f in dataclasses.fields(MODEL_CONFIGS[stage])} - set(DERIVED_FIELDS[stage])


def parse_model_overrides(stage: str, items: list[str]) -> dict[str, Any]:
    """--model KEY=VALUE items parsed by their field's type; a wrong key or value is a usage error naming it."""
    if items and stage not in MODEL_CONFIGS:
        raise UsageError(f"--model does not apply to the {stage} stage")
    types = typing.get_type_hints(MODEL_CONFIGS[stage]) if items else {}
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if key in out:
            raise UsageError(f"--model {key} is given twice; give each setting once")
        prefix, dot, bare = key.partition(".")
        if dot and bare in model_config_fields(stage) and prefix in MODEL_CONFIGS:  # a whole run's STAGE.KEY
            raise UsageError(f"--model {brief(repr(item))}: a STAGE. prefix belongs to --stage all; a {stage} run "
                             f"takes --model {bare}={brief(text)}" if prefix == stage else
                             f"--model {brief(repr(item))} sets the {prefix} stage's, not this {stage} run's")
        if sep or key in DERIVED_FIELDS[stage]:
            refuse_model_key(stage, key, model_option(key, text) if sep else f"--model {key}")
        if not sep:
            raise UsageError(f"--model {brief(repr(item))}: expected KEY=VALUE with KEY one of "
                             f"{', '.join(sorted(model_config_fields(stage)))}")
        out[key] = parse_typed(key, text.strip(), types[key])
    return out


def refuse_model_key(stage: str, key: str, named: str) -> None:
    """Refuse a model setting the stage does not take (one it sets itself from another option, or none of its
    model's), named as `named` ("--model n_head=3", "model={'n_head': 3}"): the command line's --model (which said
    it in other words) and a TrainConfig's model made in Python (check_run_config) alike."""
    if key in DERIVED_FIELDS[stage]:
        sets = DERIVED_FIELDS[stage][key]
        raise UsageError(f"{brief(named)}: the {stage} stage sets it (use "
                         f"{option(sets[2:].replace('-', '_'), cli=sets)})")
    if key not in model_config_fields(stage):
        raise UsageError(f"{brief(named)}: the {stage} model has no setting {brief(repr(key))}; its settings are "
                         f"{', '.join(sorted(model_config_fields(stage)))}")


def parse_typed(key: str, text: str, kind: Any) -> Any:
    """text as a value of a config field's type (bool, int, float, or a tuple of ints), else a usage error. Its
    digits are 0-9 alone, as every other number t2i reads: Python's int() took `n_hid=٣` (an Arabic-Indic 3) as 3,
    where `--n ٣` is refused."""
    name = {bool: "true or false", int: "an integer", float: "a finite number"}.get(kind,
                                                                                  "integers separated by commas")
    if not text.isascii() and kind is not bool:  # (a bool's words are no digits: `word_region=ｔrue` was told to
        # write true or false "in the digits 0-9"; it is refused below, as any other word)
        raise UsageError(f"--model {key}={brief(repr(text))}: {key} takes {name}, {ascii_number_words(text)}")
    try:
        if kind is bool:
            if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(text)
            return text.lower() in ("true", "1", "yes")
        if kind is int:
            return int(text)
        if kind is float:
            value = float(text)
            if not math.isfinite(value):
                raise ValueError(text)
            return value
        if typing.get_origin(kind) is tuple:
            return tuple(int(v) for v in text.strip("()[]").split(",") if v.strip())
    except ValueError:
        pass
    else:
        raise UsageError(f"--model {key}: fields of type {kind} cannot be set from the command line")
    raise UsageError(f"--model {key}={brief(repr(text))}: {key} takes {name}")


PAIRED = " in even shares (--hard-negatives: a scene and its twin go to one process)"


def process_counts(batches: list[int], most: int = 64, paired: list[bool] | None = None) -> str:
    """The numbers of processes, up to `most`, that split every one of these batches evenly ("1, 2, 4"), each
    share even where paired says the batch's stage trains --hard-negatives: what a resume may run under (a
    resume keeps its run's batches)."""
    paired = paired or [False] * len(batches)
    return ", ".join(str(k) for k in range(1, most + 1)
                     if all(b % k == 0 and not (p and b // k % 2) for b, p in zip(batches, paired, strict=True)))


def check_run_config(cfg) -> None:
    """What the command line refuses of a run's settings, for a TrainConfig made in Python (stages.run_stage,
    which every start and resume goes through): a value of the wrong type or out of bounds, a source or option the
    stage cannot use."""
    from t2i_cli.train import TrainConfig

    if not isinstance(cfg, TrainConfig):
        raise UsageError(f"a run's settings are a TrainConfig, got {type(cfg).__name__}")
    try:
        cfg.check()
    except TypeError as e:
        raise UsageError(str(e)) from None
    except ValueError as e:
        raise UsageError(f"{e}; choose a value in range") from None
    if cfg.model and cfg.stage not in MODEL_CONFIGS:  # (a tokenizer run's model settings were dropped unsaid)
        raise UsageError(f"{option('model')} does not apply to the {cfg.stage} stage; leave it empty")
    for key in cfg.model if cfg.stage in MODEL_CONFIGS else ():  # (a TypeError of the model's class was said: "got
        # an unexpected keyword argument 'nope'", "got multiple values for keyword argument 'image_side'")
        refuse_model_key(cfg.stage, key, model_option(key, cfg.model[key]))
    if cfg.patience and not cfg.sample_every:
        raise UsageError(f"patience {cfg.patience} watches the validation loss, which is measured every sample_every "
                         f"steps: give sample_every above 0, or patience 0")
    if cfg.data == "world:val":
        raise UsageError("data world:val is the split every stage validates on; train on world:train (or world)")
    if cfg.hard_negatives and not is_world(cfg.data):
        raise UsageError("hard_negatives needs the world: it changes the scene a caption describes, and a folder of "
                         "pictures has no scenes to change")
    if cfg.hard_negatives and cfg.batch_size % 2:
        raise UsageError(f"hard_negatives pairs every scene with its twin in the batch: batch_size must be even, got "
                         f"{cfg.batch_size}")
    if (cfg.flip or cfg.crop < 1) and is_world(cfg.data):
        raise UsageError("flip and crop vary the pictures of a folder or manifest; the world draws a fresh scene for "
                         "every sample (and its captions say where things are): leave them at False and 1.0")


def check_run_file_model(run_dir: Path, run) -> None:
    """A resume's model settings as its run's train_config.json holds them (run: that file, read and checked by
    read_run_config, so its model is a dict; check_run_file's first check): each a setting its stage's model takes,
    of its type, else refused naming the file, in JSON's words. A command-line resume was told Python's "n_hid is
    True" of the file's true, and "--model zzz=1: the dvae model has no setting 'zzz'" of a key the file holds, as of
    settings it never gave."""
    import json

    from t2i_cli.train import RUN_CONFIG
    from t2i_cli.weights import check_setting_types

    path = Path(run_dir) / RUN_CONFIG
    if run.stage not in MODEL_CONFIGS:
        return
    try:
        for key in run.model:
            if key in DERIVED_FIELDS[run.stage] or key not in model_config_fields(run.stage):
                raise ValueError(f"its model holds {brief(json.dumps(key))}, no setting a {run.stage} run's model "
                                 f"takes; its settings are {', '.join(sorted(model_config_fields(run.stage)))}")
        check_setting_types(MODEL_CONFIGS[run.stage], run.model)
    except ValueError as e:
        raise UsageError(f"{path} is not a readable run config ({e}); the run cannot be resumed") from None


class CannotBuild(UsageError):
    """Settings that cannot build a stage's model ("cannot build the dvae model from these settings: WHY"); its stage
    and why kept, for a resume's refusal, which says them of the run's file (run_file_refusal)."""

    def __init__(self, stage: str, why: object):
        super().__init__(f"cannot build the {stage} model from these settings: {why}")
        self.stage, self.why = stage, str(why)


@contextlib.contextmanager
def run_file_refusal(path: Path) -> Iterator[None]:
    """Refusals inside are of a resumed run's own settings as the file at path holds them (a stage's
    train_config.json, a whole run's all.json: edited, or damaged, since the run started): said naming that file,
    as a run that cannot be resumed as it is, never as an option the user gave ("cannot build the dvae model from
    these settings" named no file, and a resume cannot change them). A setting is named by the file's key where the
    check names keywords (model={'nope': 1}, not --model nope=1); all.json records the command's options, and the
    whole run's checks name them so (--steps)."""
    from t2i_cli.errors import SPEAKING

    speaking, SPEAKING["cli"] = SPEAKING["cli"], False
    try:
        yield
    except CannotBuild as e:
        raise UsageError(f"{path} holds settings that cannot build the {e.stage} model ({e.why}); the run cannot be "
                         f"resumed as it is") from e
    except UsageError as e:
        raise UsageError(f"{path} holds settings a run cannot train with ({e}); the run cannot be resumed as it "
                         f"is") from e
    finally:
        SPEAKING["cli"] = speaking


def _refused(check: typing.Callable[[Any], None], cfg: Any) -> bool:
    """Whether check(cfg) raises a UsageError."""
    try:
        check(cfg)
    except UsageError:
        return True
    return False


def check_run_file(cfg, run_dir: Path) -> None:
    """For a resume (stages.run_stage, before the resume's own settings are judged): the run's own settings as its
    train_config.json holds them are ones a run trains with (check_run_config's), that build its stage's model
    (run_model_refusal) and the model its checkpoint holds (_not_the_checkpoints), else refused naming that file
    (run_file_refusal), as a run that cannot be resumed as it is. A refusal that what the resume may change
    mends (its sample_every for the file's patience) is left to cfg, the resume's settings; one of what it changed
    (patience given beside the run's sample_every 0) is said of cfg, after this."""
    from t2i_cli.train import RUN_CONFIG, TrainConfig, read_run_config

    if not isinstance(cfg, TrainConfig) or not (Path(run_dir) / RUN_CONFIG).is_file():
        return  # (said by check_run_config, and check_resume)
    run, path = read_run_config(run_dir), Path(run_dir) / RUN_CONFIG
    check_run_file_model(run_dir, run)  # its model settings' keys and types, said as its file holds them
    with run_file_refusal(path):
        if _refused(check_run_config, run) and _refused(check_run_config, cfg):
            check_run_config(run)  # (raises: the run's own refusal, said of its file)
        run_model_refusal(run, run_dir)
    if (changed := _not_the_checkpoints(run, run_dir)):
        raise UsageError(f"{path} holds other settings than its checkpoint was trained with ({changed}); the run "
                         f"cannot be resumed as it is: put back the checkpoint's settings there (or the run's own "
                         f"checkpoint)")


MODEL_SHAPING = ("image_side", "text_len", "model")  # the run settings a stage's model is built of


def _not_the_checkpoints(run, run_dir: Path) -> str:
    """How the settings a run's model is built of (MODEL_SHAPING) differ from those its checkpoint recorded ("text_len
    13, the checkpoint's 12"; at most three), or "": a train_config.json edited since built another model, which the
    checkpoint did not fit ("checkpoint.safetensors does not match this run's model ...; start a new run", of a run
    whose file alone had changed), or which it fitted (a CLIP of image_side 16 went on at 32, unsaid). (Which of the
    two changed is not known: a checkpoint copied from another run is the other.) A checkpoint that does not read
    is said where it is loaded; one without an average of the weights that its run's ema asks for (or the reverse)
    is said as the load says it, of the checkpoint."""
    import json

    from t2i_cli.train import CHECKPOINT
    from t2i_cli.weights import read_metadata, upgrade_config

    if run.stage == "tokenizer" or not (Path(run_dir) / CHECKPOINT).is_file():
        return ""
    try:
        saved = upgrade_config("train", json.loads(read_metadata(Path(run_dir) / CHECKPOINT)["train_config"]))
    except (T2IError, OSError, KeyError, ValueError, TypeError, RecursionError):
        return ""
    own = json.loads(json.dumps(run.to_json()))
    shown = lambda held, key: json.dumps(held[key]) if key in held else "not set"  # noqa: E731
    said = [f"{key} {shown(own, key)}, the checkpoint's {shown(saved, key)}" for key in MODEL_SHAPING[:2]
            if key in saved and own[key] != saved[key]]
    if isinstance(saved.get("model"), dict) and own["model"] != saved["model"]:
        mine, theirs = own["model"], saved["model"]
        said += [f"model's {key} {shown(mine, key)}, the checkpoint's {shown(theirs, key)}"
                 for key in sorted(set(mine) | set(theirs), key=str) if mine.get(key, ...) != theirs.get(key, ...)]
    return brief("; ".join(said[:3]), 200)


def run_model_refusal(run, run_dir: Path) -> None:
    """Refuse (CannotBuild) a started run's settings that cannot build its stage's model, checked before its data
    is opened, as the stage builds it: the dVAE's config; a transformer's or CLIP's on the meta device with the
    tokenizer the run copied (RUN/tokenizer.json), a transformer's with the dVAE it copied (RUN/dvae.safetensors's
    header). A copy that does not read is said where the stage loads it."""
    from t2i_cli.weights import file_config

    if run.stage == "dvae" and not run.finetune_decoder:  # (a fine-tune's model is its dvae_init's own)
        dvae_model_config(run)
    if run.stage not in ("transformer", "clip"):
        return
    try:
        n_bpe = load_tokenizer(Path(run_dir) / "tokenizer.json").n_bpe
        dvae = file_config(Path(run_dir) / "dvae.safetensors", "dvae")[0] if run.stage == "transformer" else None
    except (T2IError, OSError):
        return
    if dvae is not None and dvae.image_side != run.image_side:  # (the stage said "pass --image-side 16", which a
        # resume refuses)
        raise CannotBuild("transformer", f"its dVAE, dvae.safetensors, was trained on {dvae.image_side} px images, "
                                         f"not the image_side {run.image_side} it holds")
    _check_builds(run, n_bpe, dvae)


def _check_builds(cfg, n_bpe: int, dvae: DVAEConfig | None) -> None:
    """Refuse (CannotBuild) a transformer's or CLIP's settings that cannot build its model, built on the meta
    device (no memory) with n_bpe as its tokenizer's learned tokens and, for a transformer, dvae's codes."""
    try:
        if cfg.stage == "transformer":
            mcfg: Any = TransformerConfig(text_vocab=n_bpe + cfg.text_len, text_len=cfg.text_len,
                                          image_vocab=dvae.n_codes, grid=dvae.grid, **cfg.model)
        else:
            mcfg = ClipConfig(image_side=cfg.image_side, text_vocab=n_bpe + cfg.text_len, text_len=cfg.text_len,
                              n_pad_start=n_bpe, **cfg.model)
        check_budget(mcfg, python=True)
        with torch.device("meta"):
            (Transformer if cfg.stage == "transformer" else Clip)(mcfg)
    except (ValueError, TypeError) as e:
        raise CannotBuild(cfg.stage, e) from e


def check_resume(cfg, run_dir: Path) -> None:
    """For a resume from Python (stages.run_stage): a folder that is not a run, or settings other than the run's
    own but for what a resume may change (RESUMABLE_FIELDS) are refused: a changed model or data trained on
    without a word, and a changed model's config, written before its checkpoint failed to load, left the run
    unresumable."""
    from dataclasses import fields

    from t2i_cli.files import same_place
    from t2i_cli.train import RESUMABLE_FIELDS, RUN_CONFIG, read_run_config

    if not (Path(run_dir) / RUN_CONFIG).is_file():  # (a mistyped path, or a folder of one's own: trained over)
        raise UsageError(f"{run_dir} is not a t2i run folder (no {RUN_CONFIG}); give the folder of a run to resume, "
                         f"or start a new run there (resume=False)")
    run = read_run_config(run_dir)
    settled, theirs = cfg.settled(), run.settled()
    if same_place(cfg.data, run.data):  # (the run's folder named another way)
        settled["data"] = theirs["data"]
    differ = [f.name for f in fields(run) if settled.get(f.name) != theirs.get(f.name)]
    if differ:
        raise UsageError(f"a resume keeps its run's settings but {', '.join(sorted(RESUMABLE_FIELDS))}; these differ "
                         f"from {run_dir}'s: " + "; ".join(f"{k} {settled.get(k)!r}, the run's {theirs.get(k)!r}"
                                                            for k in differ[:3])
                         + "; resume with train.read_run_config(RUN_DIR) and change only those")
    if cfg.steps < run.steps:
        raise UsageError(f"steps {cfg.steps} is fewer than the run's {run.steps}; a resume's steps is a new total "
                         f"that extends the run")


def check_new_model(cfg: TrainConfig) -> None:
    """Refuse what a new run must not train but an older run may hold: FSQ levels outside a new run's 1 to 8
    channels of 3 to 64, said in their own words for a channel of 2 levels. FSQ's shifted
    tanh puts its one boundary at z = -3.8, where the tanh is flat: nearly every cell takes one value (FSQ((2,)) on
    linspace(-10, 10): 620 and 1381 of 2001), a wasted channel. A dVAE trained with one still loads, resumes and
    fine-tunes, so this is checked where a run starts (t2i train's new stage, a whole run's stages not yet begun,
    run_stage without resume), not where a config is built (a resume compares the configs it builds)."""
    levels = cfg.model.get("fsq_levels") if cfg.stage == "dvae" and isinstance(cfg.model, dict) else None
    if levels and any(v == 2 for v in levels):
        raise UsageError(f"the dVAE's fsq_levels {','.join(map(str, levels))}: FSQ needs 3 or more levels per "
                         f"channel (a channel of 2 rounds nearly every value to one level); give each channel 3 or "
                         f"more (e.g. 8,5,5,5)")
    if levels and isinstance(levels, (list, tuple)) and all(type(v) is int for v in levels) \
            and (len(levels) > 8 or any(not 3 <= v <= 64 for v in levels)):  # (the config takes 2 to 64,
        # which an older run's dVAE may hold: a new run's range is said here, before the config's)
        raise UsageError(f"the dVAE's fsq_levels {','.join(map(str, levels))}: a new run takes 1 to 8 level counts, "
                         f"each 3 to 64 (e.g. 8,5,5,5)")


def run_stage(cfg: TrainConfig, run_dir: Path, resume: bool = False, progress=None,
              device: str = "auto", warn=None, checking=None, keep_group: bool = False,
              data_since: Path | None = None) -> dict[str, Any]:
    """Start (or resume) one stage in run_dir; under torchrun every process calls this. checking(done, total)
    follows the check of a folder's or manifest's pictures (data.open_source), before training starts.
    keep_group: the torchrun process group stays for the next stage (a whole run, which ends it): made again
    for each stage, a rank could read the last group's addresses from the store and fail to connect.
    A start on a folder or manifest records what it read (data.DATA_RECORD); a resume warns, in one line, when
    the pictures or captions are not those any more, against run_dir's record or data_since (a whole run's:
    the record of its first stage that has one).

    A folder becomes a run (train_config.json) only once its stage is built and training starts: a start
    that fails (no usable data, a missing dependency, an unbuildable model) leaves nothing behind."""
    import torch.distributed as dist

    from t2i_cli.data import DATA_RECORD, TRAINING_CACHE_BYTES, Augment, PairDataset, open_source
    from t2i_cli.files import atomic_write_json
    from t2i_cli.train import (
        CHECKPOINT,
        RUN_CONFIG,
        clean_stale_temporaries,
        finished,
        setup_distributed,
        sync_model_file,
    )

    if resume:  # what is wrong with the run's own settings is said of its file, before the resume's are judged
        check_run_file(cfg, run_dir)
    check_run_config(cfg)  # (the command line's are; one made in Python is checked here)
    if not resume:
        check_new_model(cfg)
    if warn is None:  # (from Python: the start's warnings were dropped without a word)
        def warn(text: str) -> None:
            warn_caller(text, TrainingWarning)
    if cfg.stage not in ("tokenizer", *STAGE_CLASSES):
        raise UsageError(f"{option('stage')} must be tokenizer, dvae, transformer or clip, got {cfg.stage!r}")
    dd = setup_distributed(device)
    run_dir = Path(run_dir)
    held = contextlib.ExitStack()  # the run folder's lock, for the whole stage (rank 0)
    try:
        if cfg.stage != "tokenizer" and (why := split_refusal(cfg, dd.n_procs)):  # before the folder is a run (a
            # retry works)
            if resume:  # (its --batch-size was given when it started, or is its preset's: a resume cannot change it)
                raise UsageError(f"{run_dir}'s batch of {cfg.batch_size} cannot be split over {dd.n_procs} processes"
                                 f"{PAIRED if cfg.hard_negatives else ''}; resume it with a number of processes that "
                                 f"divides it ({process_counts([cfg.batch_size], paired=[cfg.hard_negatives])})")
            raise UsageError(why)
        if resume:
            check_resume(cfg, run_dir)
        if resume and cfg.stage != "tokenizer" and finished(run_dir, cfg.steps):  # nothing to train, validate or
            # write: its data is not opened again (a folder's check of every picture, and its skipped files said);
            # what a kill left is still mended (a temporary, a model file behind its checkpoint)
            if dd.is_main:
                with folder_lock(run_dir, RUN_BUSY.format(run_dir=run_dir)):
                    clean_stale_temporaries(run_dir)
                    sync_model_file(run_dir, cfg.stage)
            return {"step": cfg.steps}
        if resume and cfg.stage == "tokenizer" and (run_dir / "tokenizer.json").is_file():  # learned already: a
            # resume learned it again from the data as it is now and wrote it over (another tokenizer where the
            # captions had changed, under the stages that read the first)
            return {"learned": str(run_dir / "tokenizer.json")}
        if not resume and (run_dir / RUN_CONFIG).exists():
            again = spoken(f"--resume {shell_word(run_dir)}", "resume=True")
            raise UsageError(f"{run_dir} already holds a run; continue it with {again} or pick another {_out()}")
        if not resume and is_whole_run(run_dir):
            raise UsageError(whole_run_refusal(run_dir, cfg.stage))

        def check_and_open() -> tuple[list[tuple[Path, str]], list[str], Any, Any]:  # on every process (_agreed)
            deps = [] if resume else dependencies(cfg)
            # a --dvae or --tokenizer run being trained now is refused; one stopped unfinished is said once the
            # run has started (a resume keeps its own copy: said when it started)
            notes = dependency_runs(cfg) if not resume and dd.is_main else []
            # A new run writes only into a new or empty folder (checked by the rank that creates it: the others
            # may look after it has copied the run's dependencies in).
            if not resume and dd.is_main:
                check_new_folder(run_dir, own=deps)
            if resume:
                check_data_still_there(cfg.data, run_dir)
            # A world source streams fresh scenes: make it large enough that no run repeats one.
            try:
                dataset = open_source(cfg.data, cfg.image_side, n_scenes=2**30 - 1, part="train",
                                      val_fraction=cfg.val_fraction, twins=cfg.hard_negatives, checking=checking)
                val = open_source(cfg.data, cfg.image_side, n_scenes=VAL_N, part="val",
                                  val_fraction=cfg.val_fraction)
            except DataError as e:  # (a source gone or of no usable pairs: every torchrun process found it alike,
                e.every_rank = True  # and each said it; rank 0 says it)
                raise
            return deps, notes, dataset, val

        deps, notes, dataset, val = _agreed(dd, check_and_open)
        # Decoded pictures kept: validation's first VAL_N in this process; the training pictures in each process
        # that reads them (every loader worker meets every picture: each keeps its own share), on each rank of
        # this machine.
        if isinstance(val, PairDataset):
            val.cache_bytes = VAL_N * cfg.image_side ** 2 * 3
        if isinstance(dataset, PairDataset):
            dataset.cache_bytes = TRAINING_CACHE_BYTES // (max(1, cfg.num_workers) * _ranks_on_this_machine(dd))
            if cfg.flip or cfg.crop < 1:  # validation sees the pictures as they are
                dataset.augment = Augment(cfg.seed, cfg.flip, cfg.crop)
        created: list = []  # Paths, and MadeParents

        def claim() -> None:  # (rank 0) one process trains a run folder at a time: a second is refused before
            # it writes
            if not resume:
                make_run_folder(run_dir, created)
            elif not os.access(run_dir, os.W_OK):  # (a read-only disk): "choose a writable folder" was said, which a
                # resume cannot do
                raise OutputError(f"cannot write to {run_dir} (a read-only disk or folder); a resume writes its "
                                  f"checkpoints there: copy the run folder to a writable place and resume that copy")
            held.enter_context(folder_lock(run_dir, RUN_BUSY.format(run_dir=run_dir) if resume else (
                f"{_out()} {run_dir} is being used by another t2i process starting a run there; pick another "
                f"{_out()}")))
            if not resume:  # still new now that it is ours (another run may have started there)
                check_new_folder(run_dir, own=deps)
            clean_stale_temporaries(run_dir)  # a killed start's, or a killed run's (the folder is ours now)
            if not resume:
                copy_dependencies(run_dir, deps, created)
            elif cfg.stage != "tokenizer":
                sync_model_file(run_dir, cfg.stage)

        try:
            _agreed(dd, claim if dd.is_main else lambda: None)  # (the others wait for the dependencies it copies)
            stage = _build_stage(cfg, run_dir, dd, dataset, val) if cfg.stage != "tokenizer" else None
            if dd.is_main and not resume and dataset.record is not None:  # what it reads, for a resume to compare
                created.append(run_dir / DATA_RECORD)  # (one a killed start left is its own: _left_by_a_start)
                atomic_write_json(run_dir / DATA_RECORD, dataset.record)
            if dd.is_main:  # from here the folder is a run (a resume records an extended schedule)
                atomic_write_json(run_dir / RUN_CONFIG, cfg.to_json())
        except Busy:  # the folder is another process's now, even one this process made: nothing of it is undone
            raise
        except BaseException:
            undo_start(created)
            raise
        try:
            for note in notes:  # the start's first warnings (the run is made)
                warn(note)
            since = data_since if data_since is not None else (run_dir / DATA_RECORD if resume else None)
            return _train_started(cfg, run_dir, dd, resume, dataset, val, stage, progress, warn, since,
                                  whole=data_since is not None)
        except KeyboardInterrupt:  # no checkpoint: the step loop never began (its stops checkpoint, deferred)
            if dd.is_main and not resume and not (run_dir / CHECKPOINT).exists():
                undo_start(created + [run_dir / RUN_CONFIG, run_dir / "metrics.jsonl"])
            raise
    finally:
        held.close()
        # Gloo's threads still running at interpreter exit abort the process ("terminate called ...").
        if dd.n_procs > 1 and dist.is_initialized() and not keep_group:
            gc.collect()  # what still refers to the group (a DDP wrapper in a cycle) goes first: freed after the
            # group was destroyed, it hung its process (train_loop drops its own)
            dist.destroy_process_group()


class StoppedTogether(T2IError):
    """A torchrun process stopping at another's failure in the start's checks (_agreed): said by rank 0 alone
    (every_rank), with the failing process's exit code."""

    every_rank = True

    def __init__(self, exit_code: int, message: str):
        super().__init__(message)
        self.exit_code = exit_code


def _agreed(dd: Dist, work: typing.Callable[[], Any]) -> Any:
    """work() on every torchrun process (a start's checks, or what rank 0 alone does before the others go on),
    then every process learns whether any failed; where one did, all stop before training. The first that
    failed raises its error, the others StoppedTogether: rank 0 says the error, its own or, naming the rank, one
    a process met alone (a path its machine lacks), where that process exited silently, taking it for
    everyone's. Without the agreement rank 0's own refusal (a non-empty --out) was followed by a line of each
    other process, that it had lost rank 0."""
    import torch.distributed as dist

    failed: BaseException | None = None
    result = None
    try:
        result = work()
    except BaseException as e:
        failed = e
    if dd.n_procs > 1:
        code = 0 if failed is None else 130 if isinstance(failed, KeyboardInterrupt) else getattr(failed,
                                                                                                  "exit_code", 1)
        said = list(str(failed).encode("utf-8", "surrogateescape")) if isinstance(failed, T2IError) else []
        codes = [torch.zeros(2, dtype=torch.long, device=dd.device) for _ in range(dd.n_procs)]
        try:
            dist.all_gather(codes, torch.tensor([code, len(said)], device=dd.device))
        except BaseException:
            if failed is None:
                raise
            raise failed from None
        first = next((r for r, c in enumerate(codes) if c[0]), None)
        if first is not None:
            code, size, why = int(codes[first][0]), int(codes[first][1]), ""
            if first != 0:  # rank 0 says another's error
                text = torch.tensor(said if first == dd.rank else [0] * size, dtype=torch.uint8, device=dd.device)
                if size:  # (every process takes part)
                    dist.broadcast(text, src=first)
                why = (f"rank {first}: {bytes(text.tolist()).decode('utf-8', 'surrogateescape')}" if size else
                       f"rank {first} was stopped (Ctrl-C or SIGTERM) before training began; nothing of it was "
                       f"trained" if code == 130 else
                       f"rank 0 stopped: rank {first} stopped first (its own line, or torchrun's, says why)")
            if first != dd.rank or not dd.is_main and said:  # (a bug or a stop of its own: said as before)
                raise StoppedTogether(code, why)
    if failed is not None:
        raise failed
    return result


def steps_left(cfg: TrainConfig, run_dir: Path, resume: bool) -> bool:
    """Whether the run has steps left to train (a resume of one at its last step trains none: the data it reads
    now changes nothing of it)."""
    from t2i_cli.train import CHECKPOINT
    from t2i_cli.weights import read_metadata

    if not resume or cfg.stage == "tokenizer" or not (run_dir / CHECKPOINT).is_file():
        return True
    try:
        return int(read_metadata(run_dir / CHECKPOINT).get("step", "0")) < cfg.steps
    except (T2IError, ValueError):  # (a checkpoint that does not read is said where it is read)
        return True


def _train_started(cfg: TrainConfig, run_dir: Path, dd: Dist, resume: bool, dataset, val, stage, progress,
                   warn, since: Path | None = None, whole: bool = False) -> dict[str, Any]:
    """run_stage once its folder is a run: the start's warnings, then the tokenizer or the training loop. since:
    the data record to compare the data with (a resume's); whole: a whole run's stage (its change is the run's,
    captions too, said once by the CLI: a dVAE's own line, of its pictures alone, was a second one)."""
    import torch.distributed as dist

    from t2i_cli.data import data_change
    from t2i_cli.train import train_loop

    summary: dict[str, Any] = {"skipped": dataset.skipped_message()}
    # (a dVAE reads a caption only for --flip's rule, never mirroring a picture whose caption says left or right)
    if since is not None and dd.is_main and warn is not None and steps_left(cfg, run_dir, resume) \
            and (changed := data_change(since, dataset.record, captions_read=whole or cfg.stage != "dvae" or cfg.flip)):
        warn(changed)
    first: list[str] = []  # (the warning named none: which caption of 190 to shorten was left to guess)
    cut = long_captions(stage, dataset, first) if stage is not None and dd.is_main and not resume else 0
    if cut and warn is not None:
        shown = brief(" ".join(first[0].split()), 80)
        warn(f"{counted(cut, 'caption')} {'is' if cut == 1 else 'are'} longer than the text length ({cfg.text_len} "
             f"tokens) and {'is' if cut == 1 else 'are'} cut to it{': ' if cut == 1 else ', e.g. '}\"{shown}\"; "
             f"raise {option('text_len')} to keep them whole")
    if stage is not None and dd.is_main and not resume and warn is not None:
        # the CLIP learns by telling each picture's caption from the batch's others: a picture's copies there are
        # others with its own caption (one picture: nothing to tell apart, the loss stays at ln batch)
        alone = cfg.stage == "clip" and _pictures(dataset) == 1
        contrast = " (the CLIP stage learns by telling a batch's pictures apart: with one picture it learns nothing)"
        if len(dataset) < cfg.batch_size:
            kept = f" ({n} more held out for validation)" if (n := getattr(dataset, "held_out", 0)) else ""
            warn(f"{counted(len(dataset), 'training picture')}{kept}, fewer than a batch of {cfg.batch_size}: "
                 f"every batch repeats them{contrast if alone else ''}; add pictures or lower {option('batch_size')}")
        elif alone:  # one picture on many pairs (manifest lines)
            warn(f"{len(dataset)} training pairs hold one picture{contrast}; add pictures")
    if stage is not None and dd.is_main and not len(val) and warn is not None:
        warn(no_validation(cfg, len(dataset)))
    if stage is None:
        learned = train_tokenizer(cfg, run_dir, dataset, warn) if dd.is_main else {}
        if dd.n_procs > 1:  # the others wait for it: a whole run's next stage reads it, in a new process group
            dist.barrier()
        return summary | learned
    summary |= train_loop(stage, cfg, run_dir, dd, progress, warn)
    if dd.n_procs > 1:
        dist.barrier()  # every rank waits for rank 0's last checkpoint before the group goes away
    return summary


def _ranks_on_this_machine(dd: Dist) -> int:
    """The processes of this run on this machine: torchrun's LOCAL_WORLD_SIZE, within 1..the run's processes."""
    if dd.n_procs <= 1:
        return 1
    try:
        return min(max(1, int(os.environ.get("LOCAL_WORLD_SIZE", dd.n_procs))), dd.n_procs)
    except ValueError:
        return dd.n_procs


def no_validation(cfg: TrainConfig, n_pairs: int) -> str:
    """The one warning of a run whose validation split is empty: a folder or manifest whose usable pairs all
    show one picture (the split is by image content, and holds one out only from two distinct pictures), in
    n_pairs image-caption pairs (copies under other captions, or several manifest lines). Nothing is
    validated, so nothing that needs validation happens."""
    stop = (f", and {option('patience', cfg.patience)} cannot stop it early (it counts validations)"
            if cfg.patience else "")
    if cfg.val_fraction == 0:  # (the Python API's: the command line holds out the default share)
        return f"no validation pictures: val_fraction is 0; this run logs no val_* metrics{stop}"
    pairs = f" (in {n_pairs} image-caption pairs)" if n_pairs > 1 else ""
    return (f"no validation pictures: {cfg.data} has one distinct usable picture{pairs}, and one is held out "
            f"for validation only from two or more; this run logs no val_* metrics{stop}; add pictures")


def _pictures(dataset) -> int:
    """Distinct picture files a dataset trains on (a picture with several captions, or on several manifest lines,
    is several pairs and one picture); its length for the world's scenes."""
    pairs = getattr(dataset, "pairs", None)
    return len(dataset) if pairs is None else len({str(path) for path, _ in pairs})


def long_captions(stage, dataset, first: list[str] | None = None) -> int:
    """How many captions of a folder or manifest the stage's tokenizer cuts at its text length (0 for the
    world, whose captions are short by construction, and for stages without text); the first one cut is appended
    to first, where given."""
    from t2i_cli.data import PairDataset

    tok = getattr(stage, "tok", None)
    if tok is None or not isinstance(dataset, PairDataset):
        return 0
    cut = [c for i in range(len(dataset)) for c in dataset.captions_at(i)
           if tok.encode(c, stage.cfg.text_len).n_dropped > 0]
    if first is not None:
        first.extend(cut[:1])
    return len(cut)


def dvae_model_config(cfg: TrainConfig) -> DVAEConfig:
    """The config of a new dVAE run's model, refused as the dvae stage's start would refuse it (a whole run checks
    it before its tokenizer stage trains)."""
    # The logit-Laplace loss models pixels mapped into [eps, 1 - eps]; DALL-E's eps is 0.1.
    fields = {"pixel_eps": 0.1} if cfg.recon_loss == "logit_laplace" else {}
    try:
        mcfg = DVAEConfig(image_side=cfg.image_side, **(fields | cfg.model))
        check_budget(mcfg, python=True)
    except (ValueError, TypeError) as e:
        raise CannotBuild("dvae", e) from e
    if cfg.recon_loss == "logit_laplace" and mcfg.pixel_eps <= 0:  # the loss refused it at the first step
        raise UsageError(f"{model_option('pixel_eps', mcfg.pixel_eps)}: the logit_laplace loss models pixels in "
                         f"[eps, 1 - eps] and needs pixel_eps > 0 (DALL-E's is 0.1); give one, or "
                         f"{option('recon_loss', 'l1')}")
    return mcfg


def check_data_still_there(data: str, run_dir: Path) -> None:
    """Refuse to continue a run (or a whole run) whose folder or manifest of pictures is gone, saying where it
    was: --data cannot change on resume (a run keeps the data it started with)."""
    if is_world(data) or Path(os.path.expanduser(data)).exists():
        return
    from t2i_cli.errors import DataError

    if not Path(os.path.expanduser(data)).is_absolute():  # recorded as typed, before t2i 0.12.1
        raise DataError(f"{run_dir} recorded its pictures as {data}, relative to the folder it started in, and "
                        f"there is no {data} here; resume it from that folder")
    raise DataError(f"the pictures {run_dir} trains on were at {data}, which no longer exists; put them back "
                    f"there to resume it (a run keeps the data it started with)")


def check_whole_run_models(configs: dict[str, TrainConfig], started: set[str]) -> None:
    """Refuse, before a whole run's first stage trains, settings that cannot build a later stage's model (a
    --model clip.n_head that does not divide its width, a zero n_layer), as that stage's start would refuse
    them, hours later and with its folder's settings recorded. The transformer and CLIP are built on the meta
    device (no memory) with a stand-in vocabulary (the tokenizer is not trained yet, and is usually far smaller
    than --vocab-size: the size budget is checked again at the stage's start, with the real one) and the dVAE's
    codes; stages already started were checked when they started. A stage not yet begun is a new run: what a new
    run must not train (check_new_model) is refused too."""
    for stage, cfg in configs.items():
        if stage not in started:
            check_new_model(cfg)
    try:
        dvae: DVAEConfig | None = dvae_model_config(configs["dvae"])
    except UsageError:
        if "dvae" not in started:
            raise
        dvae = None  # trained under the checks of its day; its codes are read from its model when the next stage starts
    n_bpe = min(configs["tokenizer"].vocab_size, 256)
    for stage in ("transformer", "clip"):
        if stage in started or (stage == "transformer" and dvae is None):
            continue
        _check_builds(configs[stage], n_bpe, dvae)


def _build_stage(cfg: TrainConfig, run_dir: Path, dd: Dist, dataset, val):
    """The stage object, its model checked against the size budget first; settings that cannot build a
    model are a usage error (a resume's were said of its run's file before: check_run_file)."""
    try:
        return STAGE_CLASSES[cfg.stage](cfg, run_dir, dd, dataset, is_world(cfg.data), val)
    except (ValueError, TypeError) as e:
        raise CannotBuild(cfg.stage, e) from e
