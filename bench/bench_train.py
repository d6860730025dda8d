"""Training throughput per stage, fp32 against bf16 autocast, side by side in one run; prints markdown.

    .venv/bin/python bench/bench_train.py [--steps 6] [--reps 5] [--device cpu|cuda] [--preset default|large]

Each stage trains the preset's model (at its batch size and image size) on a fixed batch of world renders (data loading
is not timed: in training it runs in a DataLoader worker, off the critical path). For each precision: one
warm-up step, then the median over --reps timings of --steps optimizer steps. dVAE and CLIP report
images/s; the transformer reports tokens/s (text + image tokens per sample, as trained).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import time

import torch

from t2i_cli.data import open_source
from t2i_cli.models.clip import Clip, ClipConfig
from t2i_cli.models.dvae import DVAE, DVAEConfig
from t2i_cli.models.transformer import Transformer, TransformerConfig
from t2i_cli.stages import PRESETS, apply_preset
from t2i_cli.train import TrainConfig, make_optimizer

TEXT_LEN, N_BPE = 24, 178  # the default tokenizer's size (weights/tokenizer.json)


def batch(size: int, n: int) -> torch.Tensor:
    """n world renders at size px (3, size, size) in [0, 1], stacked."""
    ds = open_source("world:train", size, n_scenes=n)
    return torch.stack([ds[i][0] for i in range(n)])


def setups(device: torch.device, preset: str):
    """(stage, model, step closure, items per step, unit) for each stage at the preset's size."""
    p = PRESETS[preset]
    dv = p["dvae"]
    side = dv.get("image_side", 64)
    dcfg = DVAEConfig(image_side=side, **apply_preset("dvae", preset, {}, "world:train")["model"])  # as on the world
    imgs = batch(side, dv["batch_size"]).to(device)
    dvae = DVAE(dcfg).to(device)
    yield "dvae", dvae, lambda: dvae(imgs, tau=0.5, kl_weight=0.01)[1], dv["batch_size"], "images/s"

    tr = p["transformer"]
    tcfg = TransformerConfig(text_vocab=N_BPE + TEXT_LEN, text_len=TEXT_LEN, image_vocab=dcfg.n_codes,
                             grid=dcfg.grid, **tr["model"])
    g = torch.Generator().manual_seed(0)
    text = torch.randint(0, N_BPE, (tr["batch_size"], TEXT_LEN), generator=g).to(device)
    codes = torch.randint(0, dcfg.n_codes, (tr["batch_size"], tcfg.n_image), generator=g).to(device)
    model = Transformer(tcfg).to(device)
    tokens = tr["batch_size"] * (TEXT_LEN + tcfg.n_image)
    yield "transformer", model, lambda: model(text, codes)[1], tokens, "tokens/s"

    cl = p["clip"]
    ccfg = ClipConfig(image_side=side, text_vocab=N_BPE + TEXT_LEN, text_len=TEXT_LEN, n_pad_start=N_BPE, **cl["model"])
    cimgs = batch(side, cl["batch_size"]).to(device)
    ctext = torch.randint(0, N_BPE, (cl["batch_size"], TEXT_LEN), generator=g).to(device)
    clip = Clip(ccfg).to(device)
    yield "clip", clip, lambda: clip(cimgs, ctext)[1], cl["batch_size"], "images/s"


def time_steps(model, loss_fn, device: torch.device, precision: str, steps: int, reps: int) -> list[float]:
    """Seconds per optimizer step, one value per rep (median of nothing: the caller takes it)."""
    opt = make_optimizer(model, TrainConfig(stage="bench", data=""))
    enabled = precision == "bf16"

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled):
            loss = loss_fn()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()  # warm-up
    out = []
    for _ in range(reps):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        out.append((time.perf_counter() - t0) / steps)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--preset", default="default", choices=[k for k in PRESETS if k != "tiny"])
    args = ap.parse_args()
    device = torch.device(args.device)
    print(f"- date {datetime.datetime.now().isoformat(timespec='seconds')}; {platform.platform()}; "
          f"{os.cpu_count()} CPUs; torch {torch.__version__}; {torch.get_num_threads()} threads; device {device}; "
          f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"- median of {args.reps} timings of {args.steps} steps each, after one warm-up step; "
          f"{args.preset} preset sizes\n")
    print("| stage | batch | fp32 | bf16 autocast | bf16 / fp32 | bf16 s/step |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, model, loss_fn, items, unit in setups(device, args.preset):
        rates = {}
        for precision in ("fp32", "bf16"):  # interleaved per stage, same process, same batch
            sec = statistics.median(time_steps(model, loss_fn, device, precision, args.steps, args.reps))
            rates[precision] = items / sec
        print(f"| {name} | {items} {unit.split('/')[0]} | {rates['fp32']:,.0f} {unit} | {rates['bf16']:,.0f} {unit} "
              f"| {rates['bf16'] / rates['fp32']:.2f}x | {items / rates['bf16']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
